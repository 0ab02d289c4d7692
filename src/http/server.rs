//! One listener's HTTP server: the app (its routes, and the security
//! headers and connection cap of [`super::answers`]) in a server built as actix-web's
//! `HttpServer` builds it (an actix-http `HttpService` per worker, over TCP
//! or rustls, with the same timeouts and graceful shutdown), but with each
//! connection wrapped in [`Stamped`], so that the answers the server makes
//! by itself carry the security headers too: `HttpServer` has no way to
//! wrap a connection.
use super::answers::Answers;
use super::limits::OpenConnections;
use super::routes::{self, AppState, Routes};
use super::stamped::Stamped;
use actix_http::body::MessageBody;
use actix_http::error::DispatchError;
use actix_http::{HttpService, Protocol, Request, Response};
use actix_server::{GracefulShutdownSignal, Server};
use actix_service::{fn_service, map_config, IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_web::dev::AppConfig;
use actix_web::rt::net::TcpStream;
use actix_web::{web, App};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// How one listener serves.
pub struct Settings {
    pub workers: usize,
    pub connections_per_worker: usize,
    /// For the in-flight requests at a graceful stop.
    pub shutdown_timeout: Duration,
    /// For a request's headers (then `408`).
    pub read_timeout: Duration,
    pub tls: Option<rustls::ServerConfig>,
    /// Counts the listener's connections.
    pub open: OpenConnections,
}

/// Serves `routes` on `listener`, one app per worker.
pub fn serve(
    listener: std::net::TcpListener,
    state: web::Data<AppState>,
    routes: Routes,
    settings: Settings,
) -> io::Result<Server> {
    let address = listener.local_addr()?;
    let name = format!("css-push-exporter-{address}");
    let builder = Server::build()
        .workers(settings.workers)
        .max_concurrent_connections(settings.connections_per_worker)
        .shutdown_timeout(settings.shutdown_timeout.as_secs());
    let Settings { read_timeout, tls, open, .. } = settings;
    let connections = open.clone();
    let app = move || {
        let routes = routes.clone();
        App::new()
            .wrap(Answers::new(connections.clone()))
            .app_data(state.clone())
            .configure(move |cfg| routes::configure(cfg, &routes))
    };
    let parts = Parts { app, graceful: builder.graceful_shutdown_signal(), read_timeout, open, address };
    let builder = match tls {
        None => builder.listen(name, listener, move || {
            fn_service(|io: TcpStream| async move {
                let peer = io.peer_addr().ok();
                Ok::<_, DispatchError>((Stamped::new(io, true), Protocol::Http1, peer))
            })
            .and_then(parts.http())
        })?,
        Some(config) => {
            let config = with_alpn(config);
            builder.listen(name, listener, move || {
                Acceptor::new(config.clone())
                    .map_err(|_| ())
                    .and_then(|io: TlsStream<TcpStream>| async move {
                        let h2 = io.get_ref().1.alpn_protocol().is_some_and(|p| p == b"h2");
                        let peer = io.get_ref().0.peer_addr().ok();
                        let protocol = if h2 { Protocol::Http2 } else { Protocol::Http1 };
                        Ok::<_, ()>((Stamped::new(io, !h2), protocol, peer))
                    })
                    .and_then(parts.http().map_err(|_| ()))
            })?
        }
    };
    Ok(builder.run())
}

/// HTTP/2 first, then HTTP/1.1, as actix-http offers them.
fn with_alpn(mut config: rustls::ServerConfig) -> rustls::ServerConfig {
    let mut protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    protocols.append(&mut config.alpn_protocols);
    config.alpn_protocols = protocols;
    config
}

/// What each worker's HTTP service is made of.
#[derive(Clone)]
struct Parts<F> {
    app: F,
    graceful: GracefulShutdownSignal,
    read_timeout: Duration,
    open: OpenConnections,
    address: SocketAddr,
}

impl<F> Parts<F> {
    /// The app behind HTTP on a connection, with `HttpServer`'s defaults.
    fn http<T, I, S, B>(
        &self,
    ) -> impl ServiceFactory<
        (Stamped<T>, Protocol, Option<SocketAddr>),
        Config = (),
        Response = (),
        Error = DispatchError,
        InitError = (),
    >
    where
        T: actix_codec::AsyncRead + actix_codec::AsyncWrite + Unpin + 'static,
        F: Fn() -> I,
        I: IntoServiceFactory<S, Request>,
        S: ServiceFactory<Request, Config = AppConfig> + 'static,
        S::Error: Into<actix_web::Error> + 'static,
        S::InitError: fmt::Debug,
        S::Response: Into<Response<B>> + 'static,
        <S::Service as Service<Request>>::Future: 'static,
        S::Service: 'static,
        B: MessageBody + 'static,
    {
        let app = (self.app)().into_factory().map_err(|e| e.into().error_response());
        let (graceful, open) = (self.graceful.clone(), self.open.clone());
        HttpService::build()
            .graceful_shutdown_signal(move || {
                let graceful = graceful.clone();
                async move { graceful.notified().await }
            })
            .client_request_timeout(self.read_timeout)
            .client_disconnect_timeout(Duration::from_secs(1))
            .local_addr(self.address)
            .on_connect_ext(move |_: &Stamped<T>, data| open.opened(data))
            // Nothing the app does reads its host, scheme or address from here.
            .finish(map_config(app, |()| AppConfig::default()))
    }
}
