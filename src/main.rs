#![forbid(unsafe_code)]
use css_push_exporter::cli::Cli;
use css_push_exporter::clock::SystemClock;
use css_push_exporter::Application;
use std::process::ExitCode;
use std::sync::Arc;

#[actix_web::main]
async fn main() -> ExitCode {
    let (cli, key_as_flag) = Cli::parse_checked();
    css_push_exporter::logging::init(&cli.config.log_level, cli.config.log_format);
    #[cfg(feature = "simulate")]
    if let Some(css_push_exporter::cli::Command::Simulate(args)) = &cli.command {
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
        Ok(app) => app.run_until_stopped().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
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
