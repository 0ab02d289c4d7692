//! HTTP routes. Each listener gets the routes it serves via [`configure`].
mod auth;
mod callback;
mod health;
mod metrics;
mod status;
mod streams;

use crate::exporter::Exporter;
use crate::http::basic_auth::BasicAuth;
use crate::http::cidr::Cidr;
use crate::observe::ratelog::RateLimitedLog;
use crate::status_page::Listener;
use actix_web::middleware::from_fn;
use actix_web::web;
use std::sync::Arc;
use std::time::Duration;

/// What the routes share.
pub struct AppState {
    pub exporter: Arc<Exporter>,
    pub max_body_bytes: usize,
    /// The addresses served, for the status page.
    pub listeners: Vec<Listener>,
    /// How long a callback's body may take to arrive.
    pub read_timeout: Duration,
    /// `--trusted-proxy`: whose X-Forwarded-For names the sender shown.
    pub trusted_proxies: Vec<Cidr>,
    /// How long a /metrics page may take to be sent.
    pub write_timeout: Duration,
    /// Failed logins, rate-limited.
    pub auth_log: RateLimitedLog,
}

/// Which routes one listener serves.
#[derive(Clone)]
pub struct Routes {
    pub callback: bool,
    pub metrics: bool,
    /// Guards the status page and /metrics; never /callback (CSS cannot
    /// send credentials; its signature is checked instead) nor health checks.
    pub basic_auth: Option<Arc<BasicAuth>>,
}

pub fn configure(cfg: &mut web::ServiceConfig, routes: &Routes) {
    // First: the router tries the resources in order, and callbacks are
    // nearly every request.
    if routes.callback {
        cfg.service(web::resource("/callback").route(web::post().to(callback::callback)));
    }
    // HEAD too: load balancers health-check with it (actix-web sends no body).
    cfg.service(
        web::resource("/-/healthy").route(web::get().to(health::healthy)).route(web::head().to(health::healthy)),
    )
    .service(web::resource("/-/ready").route(web::get().to(health::ready)).route(web::head().to(health::ready)));
    if let Some(auth) = &routes.basic_auth {
        cfg.app_data(web::Data::new(auth.clone()));
    }
    let guard = || from_fn(auth::require);
    if routes.metrics {
        let resource = web::resource("/metrics").wrap(guard());
        cfg.service(resource.route(web::get().to(metrics::metrics)).route(web::head().to(metrics::metrics)));
        // The status page names streams: only where /metrics is, and as guarded.
        let page = web::resource("/").wrap(guard());
        cfg.service(page.route(web::get().to(status::page)).route(web::head().to(status::page)));
        let api = web::resource("/api/v1/status").wrap(guard());
        cfg.service(api.route(web::get().to(status::api)).route(web::head().to(status::api)));
        // Each stream's history, linked from the status page: the same guard.
        let page = web::resource("/streams/{names:.*}").wrap(guard());
        cfg.service(page.route(web::get().to(streams::page)).route(web::head().to(streams::page)));
        let api = web::resource("/api/v1/streams/{names:.*}").wrap(guard());
        cfg.service(api.route(web::get().to(streams::api)).route(web::head().to(streams::api)));
    }
}
