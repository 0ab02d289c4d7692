//! HTTP routes. Each listener gets the routes it serves via [`configure`].
mod callback;
mod health;
mod metrics;
mod status;

use crate::exporter::Exporter;
use crate::http::webconfig::{self, BasicAuth};
use crate::status::Listener;
use actix_web::middleware::from_fn;
use actix_web::web;
use std::sync::Arc;

/// What the routes share.
pub struct AppState {
    pub exporter: Arc<Exporter>,
    pub max_body_bytes: usize,
    /// The addresses served, for the status page.
    pub listeners: Vec<Listener>,
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
    cfg.route("/-/healthy", web::get().to(health::healthy)).route("/-/ready", web::get().to(health::ready));
    if routes.callback {
        cfg.service(web::resource("/callback").route(web::post().to(callback::callback)));
    }
    if let Some(auth) = &routes.basic_auth {
        cfg.app_data(web::Data::new(auth.clone()));
    }
    let guard = || from_fn(webconfig::require_basic_auth);
    if routes.metrics {
        cfg.service(web::resource("/metrics").wrap(guard()).route(web::get().to(metrics::metrics)));
        // The status page names streams: only where /metrics is, and as guarded.
        cfg.service(web::resource("/").wrap(guard()).route(web::get().to(status::page)));
        cfg.service(web::resource("/api/v1/status").wrap(guard()).route(web::get().to(status::api)));
    }
}
