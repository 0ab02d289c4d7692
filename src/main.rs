#![forbid(unsafe_code)]
use clap::Parser;
use css_push_exporter::cli::Cli;
use css_push_exporter::clock::SystemClock;
use css_push_exporter::Application;
use std::process::ExitCode;
use std::sync::Arc;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::new().parse_filters(&cli.config.log_level).init();
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
    let result = match Application::build(&cli.config, Arc::new(SystemClock)) {
        Ok(app) => app.run_until_stopped().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
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
