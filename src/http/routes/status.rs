//! `GET /`: the status page; `GET /api/v1/status`: the same as JSON. Both
//! show stream names, so they sit with /metrics (its listener, its guard).
use super::AppState;
use crate::status_page::rendered::Rendered;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};

pub async fn page(state: web::Data<AppState>) -> HttpResponse {
    match answer(state, Rendered::html).await {
        Ok(body) => HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body),
        Err(e) => e,
    }
}

pub async fn api(state: web::Data<AppState>) -> HttpResponse {
    match answer(state, Rendered::json).await {
        Ok(body) => HttpResponse::Ok().content_type("application/json").body(body),
        Err(e) => e,
    }
}

/// Building the page walks every stream, and it waits for a page being
/// built: off the worker thread, as a scrape is, so callbacks on the same
/// worker are not held up.
async fn answer(state: web::Data<AppState>, answer: fn(&Rendered) -> Bytes) -> Result<Bytes, HttpResponse> {
    let exporter = state.exporter.clone();
    let listeners = state.listeners.clone();
    web::block(move || answer(&exporter.status(listeners)))
        .await
        .map_err(|e| HttpResponse::InternalServerError().body(format!("status failed: {e}\n")))
}
