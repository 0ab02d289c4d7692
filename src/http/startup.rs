//! Builds the listeners and servers from a [`Config`]; tests start the real
//! thing this way on port 0.
use crate::cli::Config;
use crate::exporter::Exporter;
use crate::http::cidr::Cidr;
use crate::http::routes::{AppState, Routes};
use crate::http::webconfig::{WebConfig, WebConfigError};
use crate::http::{limits, server};
use crate::observe::ratelog::{RateLimitedLog, LOG_INTERVAL};
use crate::slo::{self, Slo, SloFileError};
use crate::state::clock::Clock;
use crate::state::persist::{Loaded, Persister, StateFile, StateFileError};
use crate::status_page::Listener;
use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use socket2::{Domain, Protocol, Socket, Type};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;

/// Why the exporter cannot start. Each message says its own part once:
/// the cause an I/O error gives is its `source()`, not repeated in the
/// message (the exporter prints the chain, `message: cause`).
#[derive(Debug)]
pub enum StartError {
    WebConfig(WebConfigError),
    State(StateFileError),
    Slo(SloFileError),
    /// A `--trusted-proxy` that is no address or range.
    TrustedProxy {
        value: String,
        reason: String,
    },
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
            Self::State(e) => e.fmt(f),
            Self::Slo(e) => e.fmt(f),
            Self::TrustedProxy { value, reason } => write!(f, "--trusted-proxy {value}: {reason}"),
            Self::Listen { address, .. } => write!(f, "cannot listen on {address}"),
            Self::Serve(_) => f.write_str("cannot serve"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The wrapped errors' messages are this one's: their causes come next.
        match self {
            Self::WebConfig(e) => e.source(),
            Self::State(e) => e.source(),
            Self::Slo(e) => e.source(),
            Self::TrustedProxy { .. } => None,
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
    /// With `--state-file`: writes it periodically and at the end.
    persister: Option<Persister>,
}

impl Application {
    /// Binds the listeners and prepares the servers; call inside an actix
    /// runtime, then await [`Application::run_until_stopped`].
    pub fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let web_config =
            config.web_config_file.as_deref().map(WebConfig::load).transpose().map_err(StartError::WebConfig)?;
        let slos = slo::definition::load(config.slo_file.as_deref()).map_err(StartError::Slo)?;
        let trusted_proxies = config
            .trusted_proxies
            .iter()
            .map(|value| {
                value.parse::<Cidr>().map_err(|reason| StartError::TrustedProxy { value: value.clone(), reason })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The state is loaded before the listeners open: ready means loaded.
        let (exporter, state_file) = match &config.state_file {
            Some(path) => {
                let (file, loaded) =
                    StateFile::open(&config.limits(), path, clock.now_secs()).map_err(StartError::State)?;
                let exporter = restored(config, slos, clock, file.path(), loaded);
                (Arc::new(exporter), Some(file))
            }
            None => (Arc::new(Exporter::with_slos(config, slos, clock)), None),
        };
        if !exporter.authenticates() {
            log::warn!("no --callback-key set: callbacks are accepted without checking their signature");
        }
        let (tls, basic_auth) = match web_config {
            Some(w) => (w.tls, w.basic_auth),
            None => (None, None),
        };
        let listener = bind(&config.listen_address)?;
        let address = listener.local_addr().map_err(StartError::Serve)?;
        let metrics_listener = config.metrics_listen_address.as_deref().map(bind).transpose()?;
        let metrics_address = match &metrics_listener {
            Some(l) => l.local_addr().map_err(StartError::Serve)?,
            None => address,
        };
        let listeners = served(address, metrics_address, tls.is_some(), basic_auth.is_some());
        let state = web::Data::new(AppState {
            exporter: exporter.clone(),
            max_body_bytes: config.max_body_bytes,
            listeners,
            read_timeout: config.read_timeout,
            trusted_proxies,
            write_timeout: config.write_timeout,
            auth_log: RateLimitedLog::new(LOG_INTERVAL),
        });
        let connections = connections_per_worker(config);
        let mut servers = Vec::new();
        match metrics_listener {
            None => {
                let routes = Routes { callback: true, metrics: true, basic_auth };
                servers.push(serve(listener, state.clone(), routes, tls, config, connections)?);
            }
            Some(metrics_listener) => {
                let callback_routes = Routes { callback: true, metrics: false, basic_auth: None };
                servers.push(serve(listener, state.clone(), callback_routes, None, config, connections)?);
                let metrics_routes = Routes { callback: false, metrics: true, basic_auth };
                servers.push(serve(metrics_listener, state.clone(), metrics_routes, tls, config, connections)?);
            }
        }
        spawn_expiry(exporter.clone(), config.expiry_interval);
        let persister = match (state_file, exporter.snapshot_stats()) {
            (Some(file), Some(stats)) => {
                let snapshotted = exporter.clone();
                let spawned =
                    Persister::spawn(file, config.state_interval, stats, exporter.take_journal(), move || {
                        snapshotted.snapshot()
                    });
                Some(spawned.map_err(StartError::Serve)?)
            }
            _ => None,
        };
        log::info!("listening for callbacks on {address}, serving /metrics on {metrics_address}");
        let handles = servers.iter().map(Server::handle).collect();
        Ok(Self { servers, handles, address, metrics_address, exporter, persister })
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
    /// are given --shutdown-timeout to finish, then the state file (if any)
    /// is written a last time.
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
        let served: io::Result<()> = results.into_iter().collect();
        if let Some(persister) = self.persister {
            actix_web::rt::task::spawn_blocking(move || persister.finish()).await.map_err(io::Error::other)??;
        }
        served
    }
}

/// The exporter with what the state file held, as the log tells.
fn restored(
    config: &Config,
    slos: Vec<Slo>,
    clock: Arc<dyn Clock>,
    path: &std::path::Path,
    loaded: Loaded,
) -> Exporter {
    // An exporter that has seen nothing writes no time: there was no snapshot.
    let written = match loaded.snapshot.written_at() {
        0 => "no snapshot to restore".to_owned(),
        at => format!("written {} s ago", clock.now_secs().saturating_sub(at)),
    };
    let (exporter, r) = Exporter::restored(config, slos, clock, loaded);
    log::info!(
        "restored {} streams ({} live) and {} remembered callbacks from {} ({written}); \
         {} journalled starts and ends replayed; {} stream histories",
        r.streams,
        r.live,
        r.dedup_entries,
        path.display(),
        r.replayed,
        r.histories
    );
    if r.over_bounds > 0 {
        log::warn!(
            "{} entries of {} did not fit --max-apps, --max-live-streams, --max-streams, --max-series or the --timeline-* bounds and were dropped",
            r.over_bounds,
            path.display()
        );
    }
    if r.invalid > 0 {
        log::warn!(
            "{} entries of {} could not have been written by an exporter and were dropped",
            r.invalid,
            path.display()
        );
    }
    exporter
}

/// What each address serves, as the status page lists it.
fn served(address: SocketAddr, metrics_address: SocketAddr, tls: bool, basic_auth: bool) -> Vec<Listener> {
    const METRICS: [&str; 5] = ["/metrics", "/", "/api/v1/status", "/streams/", "/api/v1/streams/"];
    if address == metrics_address {
        let serves = std::iter::once("/callback").chain(METRICS).collect();
        return vec![Listener { address, serves, tls, basic_auth }];
    }
    vec![
        Listener { address, serves: vec!["/callback"], tls: false, basic_auth: false },
        Listener { address: metrics_address, serves: METRICS.to_vec(), tls, basic_auth },
    ]
}

/// A listener with the system's accept backlog (`somaxconn`), not std's
/// fixed 128: connections past `--max-connections` wait in that queue.
fn bind(address: &str) -> Result<TcpListener, StartError> {
    let failed = |source| StartError::Listen { address: address.to_owned(), source };
    let backlog = system_backlog();
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on");
    for addr in address.to_socket_addrs().map_err(failed)? {
        match listen(addr, backlog) {
            Ok(listener) => {
                log::info!("listening on {addr} with an accept backlog of {backlog}");
                return Ok(listener);
            }
            Err(e) => last = e,
        }
    }
    Err(failed(last))
}

fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does on Unix: a restart need not wait out TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// `net.core.somaxconn` (the kernel caps any larger backlog at it), or
/// 4096, its default since Linux 5.4, where it cannot be read.
fn system_backlog() -> i32 {
    parse_somaxconn(std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok().as_deref())
}

fn parse_somaxconn(text: Option<&str>) -> i32 {
    text.and_then(|t| t.trim().parse::<i32>().ok()).filter(|&n| n > 0).unwrap_or(4096)
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
    limits::cut_stalled_sends(&listener, config.write_timeout);
    let workers = limits::workers(config.workers);
    let settings = server::Settings {
        workers,
        connections_per_worker,
        shutdown_timeout: config.shutdown_timeout,
        // The deadline for a request's headers; the callback route gives its body as long again.
        read_timeout: config.read_timeout,
        tls,
        open: limits::OpenConnections::new(connections_per_worker * workers),
    };
    server::serve(listener, state, routes, settings).map_err(StartError::Serve)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_is_the_kernels_or_a_modern_default() {
        assert_eq!(parse_somaxconn(Some("4096\n")), 4096);
        assert_eq!(parse_somaxconn(Some("65535")), 65535);
        assert_eq!(parse_somaxconn(Some("0")), 4096);
        assert_eq!(parse_somaxconn(Some("lots")), 4096);
        assert_eq!(parse_somaxconn(None), 4096);
    }
}
