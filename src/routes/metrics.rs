use super::AppState;
use crate::exposition::CONTENT_TYPE;
use actix_web::{web, HttpResponse};

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pipeline = state.pipeline.clone();
    // Rendering a large registry takes milliseconds: keep it off the worker
    // thread so callbacks on the same worker are not held up.
    match web::block(move || pipeline.render()).await {
        Ok(body) => HttpResponse::Ok().content_type(CONTENT_TYPE).body(body),
        Err(e) => HttpResponse::InternalServerError().body(format!("rendering failed: {e}\n")),
    }
}
