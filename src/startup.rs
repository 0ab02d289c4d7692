//! Builds the listeners and servers from a [`Config`]; tests start the real
//! thing this way on port 0.
use crate::clock::Clock;
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::routes::{self, AppState, Routes};
use crate::webconfig::WebConfig;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

pub struct Application {
    servers: Vec<Server>,
    handles: Vec<ServerHandle>,
    address: SocketAddr,
    metrics_address: SocketAddr,
    pipeline: Arc<Pipeline>,
}

impl Application {
    /// Binds the listeners and prepares the servers; call inside an actix
    /// runtime, then await [`Application::run_until_stopped`].
    pub fn build(config: &Config, clock: Arc<dyn Clock>) -> io::Result<Self> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let web_config = match &config.web_config_file {
            Some(path) => Some(WebConfig::load(path).map_err(|e| invalid(format!("--web-config-file {e}")))?),
            None => None,
        };
        let pipeline = Arc::new(Pipeline::new(config, clock));
        if !pipeline.authenticates() {
            log::warn!("no --callback-key set: callbacks are accepted without checking their signature");
        }
        let state = web::Data::new(AppState { pipeline: pipeline.clone(), max_body_bytes: config.max_body_bytes });
        let (tls, basic_auth) = match web_config {
            Some(w) => (w.tls, w.basic_auth),
            None => (None, None),
        };
        let listener = bind(&config.listen_address)?;
        let address = listener.local_addr()?;
        let mut servers = Vec::new();
        let metrics_address = match &config.metrics_listen_address {
            None => {
                let routes = Routes { callback: true, metrics: true, basic_auth };
                servers.push(serve(listener, state.clone(), routes, tls, config)?);
                address
            }
            Some(metrics_listen) => {
                let metrics_listener = bind(metrics_listen)?;
                let metrics_address = metrics_listener.local_addr()?;
                let callback_routes = Routes { callback: true, metrics: false, basic_auth: None };
                servers.push(serve(listener, state.clone(), callback_routes, None, config)?);
                let metrics_routes = Routes { callback: false, metrics: true, basic_auth };
                servers.push(serve(metrics_listener, state.clone(), metrics_routes, tls, config)?);
                metrics_address
            }
        };
        spawn_expiry(pipeline.clone(), config.expiry_interval);
        log::info!("listening for callbacks on {address}, serving /metrics on {metrics_address}");
        let handles = servers.iter().map(Server::handle).collect();
        Ok(Self { servers, handles, address, metrics_address, pipeline })
    }

    /// Where callbacks are received.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where /metrics is served (the same as [`Self::address`] unless split).
    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics_address
    }

    pub fn pipeline(&self) -> Arc<Pipeline> {
        self.pipeline.clone()
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

fn bind(address: &str) -> io::Result<TcpListener> {
    TcpListener::bind(address).map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))
}

fn serve(
    listener: TcpListener,
    state: web::Data<AppState>,
    routes: Routes,
    tls: Option<rustls::ServerConfig>,
    config: &Config,
) -> io::Result<Server> {
    let server = HttpServer::new(move || {
        let routes = routes.clone();
        App::new().app_data(state.clone()).configure(move |cfg| routes::configure(cfg, &routes))
    })
    .shutdown_timeout(config.shutdown_timeout.as_secs());
    let server = match config.workers {
        Some(n) => server.workers(n.into()),
        None => server,
    };
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

fn spawn_expiry(pipeline: Arc<Pipeline>, every: std::time::Duration) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(every.max(std::time::Duration::from_millis(10)));
        loop {
            ticks.tick().await;
            pipeline.expire();
        }
    });
}
