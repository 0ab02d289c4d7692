use clap::Parser;
use css_push_exporter::clock::SystemClock;
use css_push_exporter::config::{Cli, Command};
use css_push_exporter::{simulate, Application};
use std::process::ExitCode;
use std::sync::Arc;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::new().parse_filters(&cli.config.log_level).init();
    if let Some(Command::Simulate(args)) = &cli.command {
        let report = simulate::run(args).await;
        println!("{}", report.summary(args));
        // A demo that reached nothing should not look like success.
        return if report.refused + report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let result = match Application::build(&cli.config, Arc::new(SystemClock)) {
        Ok(app) => app.run_until_stopped().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("css-push-exporter: {e}");
            ExitCode::FAILURE
        }
    }
}
