//! `GET /`: the status page; `GET /api/v1/status`: the same as JSON. Both
//! show stream names, so they sit with /metrics (its listener, its guard).
use super::AppState;
use crate::status_page::{html, StatusPage};
use actix_web::{web, HttpResponse};

pub async fn page(state: web::Data<AppState>) -> HttpResponse {
    match snapshot(state).await {
        Ok(s) => HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html::render(&s)),
        Err(e) => e,
    }
}

pub async fn api(state: web::Data<AppState>) -> HttpResponse {
    match snapshot(state).await {
        Ok(s) => HttpResponse::Ok().json(s),
        Err(e) => e,
    }
}

/// Counting live streams walks every stream: off the worker thread, as a
/// scrape is, so callbacks on the same worker are not held up.
async fn snapshot(state: web::Data<AppState>) -> Result<StatusPage, HttpResponse> {
    let exporter = state.exporter.clone();
    let listeners = state.listeners.clone();
    web::block(move || exporter.status_page(listeners))
        .await
        .map_err(|e| HttpResponse::InternalServerError().body(format!("status failed: {e}\n")))
}
