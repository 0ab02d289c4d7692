use clap::Parser;
use css_push_exporter::clock::SystemClock;
use css_push_exporter::config::Cli;
use css_push_exporter::Application;
use std::sync::Arc;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::new().parse_filters(&cli.config.log_level).init();
    let result = match Application::build(&cli.config, Arc::new(SystemClock)) {
        Ok(app) => app.run_until_stopped().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("css-push-exporter: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
