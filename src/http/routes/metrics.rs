use super::AppState;
use crate::expose::CONTENT_TYPE;
use actix_web::{web, HttpResponse};

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let exporter = state.exporter.clone();
    // Rendering a large registry takes milliseconds: keep it off the worker
    // thread so callbacks on the same worker are not held up.
    match web::block(move || exporter.render()).await {
        Ok(body) => HttpResponse::Ok().content_type(CONTENT_TYPE).body(body),
        Err(e) => HttpResponse::InternalServerError().body(format!("rendering failed: {e}\n")),
    }
}
