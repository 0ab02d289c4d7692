//! Builds the listeners and servers from a [`Config`]; tests start the real
//! thing this way on port 0.
use crate::cli::Config;
use crate::exporter::Exporter;
use crate::http::limits;
use crate::http::ratelog::{RateLimitedLog, LOG_INTERVAL};
use crate::http::routes::{self, AppState, Routes};
use crate::http::webconfig::{WebConfig, WebConfigError};
use crate::state::clock::Clock;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// Why the exporter cannot start.
#[derive(Debug)]
pub enum StartError {
    WebConfig(WebConfigError),
    /// An address cannot be listened on.
    Listen {
        address: String,
        source: io::Error,
    },
    /// The HTTP server could not take a bound listener.
    Serve(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WebConfig(e) => write!(f, "--web-config-file {e}"),
            Self::Listen { address, source } => write!(f, "cannot listen on {address}: {source}"),
            Self::Serve(e) => write!(f, "cannot serve: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::WebConfig(e) => Some(e),
            Self::Listen { source, .. } | Self::Serve(source) => Some(source),
        }
    }
}

pub struct Application {
    servers: Vec<Server>,
    handles: Vec<ServerHandle>,
    address: SocketAddr,
    metrics_address: SocketAddr,
    exporter: Arc<Exporter>,
}

impl Application {
    /// Binds the listeners and prepares the servers; call inside an actix
    /// runtime, then await [`Application::run_until_stopped`].
    pub fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let web_config =
            config.web_config_file.as_deref().map(WebConfig::load).transpose().map_err(StartError::WebConfig)?;
        let exporter = Arc::new(Exporter::new(config, clock));
        if !exporter.authenticates() {
            log::warn!("no --callback-key set: callbacks are accepted without checking their signature");
        }
        let state = web::Data::new(AppState {
            exporter: exporter.clone(),
            max_body_bytes: config.max_body_bytes,
            read_timeout: config.read_timeout,
            rejection_log: RateLimitedLog::new(LOG_INTERVAL),
        });
        let connections = connections_per_worker(config);
        let (tls, basic_auth) = match web_config {
            Some(w) => (w.tls, w.basic_auth),
            None => (None, None),
        };
        let listener = bind(&config.listen_address)?;
        let address = listener.local_addr().map_err(StartError::Serve)?;
        let mut servers = Vec::new();
        let metrics_address = match &config.metrics_listen_address {
            None => {
                let routes = Routes { callback: true, metrics: true, basic_auth };
                servers.push(serve(listener, state.clone(), routes, tls, config, connections)?);
                address
            }
            Some(metrics_listen) => {
                let metrics_listener = bind(metrics_listen)?;
                let metrics_address = metrics_listener.local_addr().map_err(StartError::Serve)?;
                let callback_routes = Routes { callback: true, metrics: false, basic_auth: None };
                servers.push(serve(listener, state.clone(), callback_routes, None, config, connections)?);
                let metrics_routes = Routes { callback: false, metrics: true, basic_auth };
                servers.push(serve(metrics_listener, state.clone(), metrics_routes, tls, config, connections)?);
                metrics_address
            }
        };
        spawn_expiry(exporter.clone(), config.expiry_interval);
        log::info!("listening for callbacks on {address}, serving /metrics on {metrics_address}");
        let handles = servers.iter().map(Server::handle).collect();
        Ok(Self { servers, handles, address, metrics_address, exporter })
    }

    /// Where callbacks are received.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where /metrics is served (the same as [`Self::address`] unless split).
    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics_address
    }

    pub fn exporter(&self) -> Arc<Exporter> {
        self.exporter.clone()
    }

    /// Handles to stop the servers (gracefully or not) from elsewhere.
    pub fn handles(&self) -> Vec<ServerHandle> {
        self.handles.clone()
    }

    /// Runs until SIGINT/SIGTERM (or a handle's stop); in-flight requests
    /// are given --shutdown-timeout to finish.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        let handles = self.handles;
        let results = futures_util::future::join_all(self.servers.into_iter().map(|server| {
            let handles = handles.clone();
            async move {
                let result = server.await;
                // When one listener stops, stop the other too.
                for h in &handles {
                    h.stop(true).await;
                }
                result
            }
        }))
        .await;
        results.into_iter().collect()
    }
}

fn bind(address: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(address).map_err(|source| StartError::Listen { address: address.to_owned(), source })
}

/// The per-worker connection cap: raises the open-files limit and fits
/// --max-connections per listener inside it.
fn connections_per_worker(config: &Config) -> usize {
    let open_files = limits::raise_open_files_limit();
    let listeners = if config.metrics_listen_address.is_some() { 2 } else { 1 };
    let per_listener = limits::connections_per_listener(config.max_connections, open_files, listeners);
    log::info!("at most {per_listener} connections open per listener");
    limits::connections_per_worker(per_listener, limits::workers(config.workers))
}

fn serve(
    listener: TcpListener,
    state: web::Data<AppState>,
    routes: Routes,
    tls: Option<rustls::ServerConfig>,
    config: &Config,
    connections_per_worker: usize,
) -> Result<Server, StartError> {
    let server = HttpServer::new(move || {
        let routes = routes.clone();
        App::new().app_data(state.clone()).configure(move |cfg| routes::configure(cfg, &routes))
    })
    .shutdown_timeout(config.shutdown_timeout.as_secs())
    // The deadline for a request's headers; the callback route gives its body as long again.
    .client_request_timeout(config.read_timeout)
    .max_connections(connections_per_worker);
    let server = server.workers(limits::workers(config.workers));
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls),
        None => server.listen(listener),
    }
    .map_err(StartError::Serve)?;
    Ok(server.run())
}

fn spawn_expiry(exporter: Arc<Exporter>, every: std::time::Duration) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(every.max(std::time::Duration::from_millis(10)));
        loop {
            ticks.tick().await;
            exporter.expire();
        }
    });
}
