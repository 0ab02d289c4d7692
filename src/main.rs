#![forbid(unsafe_code)]
use clap::Parser;
use css_push_exporter::clock::SystemClock;
use css_push_exporter::{Application, Config};
use std::process::ExitCode;
use std::sync::Arc;

/// The command line: the exporter's flags, or a subcommand.
#[derive(Parser)]
#[command(
    name = "css-push-exporter",
    version = VERSION,
    about = "Prometheus exporter for Tencent Cloud CSS push error callbacks"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    config: Config,
}

/// `--version`: the package version, the git revision it was built from and
/// the compiler (as `css_push_exporter_build_info` labels them).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("CSS_PUSH_REVISION"),
    ", rustc ",
    env!("CSS_PUSH_RUSTC_VERSION"),
    ")"
);

#[derive(clap::Subcommand)]
enum Command {
    /// Post realistic callbacks to an exporter: a demo and a load generator.
    #[cfg(feature = "simulate")]
    Simulate(css_push_exporter::simulate::SimulateArgs),
}

impl Cli {
    /// Parses and [checks](Config::check) the command line, exiting with a
    /// usage error as clap does; also tells whether a callback key was given
    /// as a flag, where every local user can read it (`ps`, `/proc/PID/cmdline`).
    fn parse_checked() -> (Self, bool) {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().get_matches();
        let cli = Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if cli.command.is_none() {
            if let Err(e) = cli.config.check() {
                Self::command().error(clap::error::ErrorKind::ArgumentConflict, e).exit();
            }
        }
        let key_as_flag = matches.value_source("callback_keys") == Some(clap::parser::ValueSource::CommandLine);
        (cli, key_as_flag)
    }
}

/// An error and each of its causes, once: `message: cause: cause`.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[actix_web::main]
async fn main() -> ExitCode {
    let (cli, key_as_flag) = Cli::parse_checked();
    css_push_exporter::logging::init(&cli.config.log_level, cli.config.log_format);
    #[cfg(feature = "simulate")]
    if let Some(Command::Simulate(args)) = &cli.command {
        let report = css_push_exporter::simulate::run(args).await;
        if let Err(e) = report.print_summary(args) {
            eprintln!("css-push-exporter simulate: {e}");
            return ExitCode::FAILURE;
        }
        // A demo that reached nothing should not look like success.
        return if report.refused + report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    if key_as_flag {
        log::warn!("--callback-key given as a flag: every local user can read it (ps, /proc/PID/cmdline); set CSS_PUSH_CALLBACK_KEY instead");
    }
    let result = match Application::build(&cli.config, Arc::new(SystemClock)) {
        Ok(app) => app.run_until_stopped().await.map_err(|e| with_causes(&e)),
        Err(e) => Err(with_causes(&e)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once: through the log when it shows errors, else on stderr.
            if log::log_enabled!(log::Level::Error) {
                log::error!("{e}");
            } else {
                eprintln!("css-push-exporter: {e}");
            }
            ExitCode::FAILURE
        }
    }
}
