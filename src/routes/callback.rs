use super::AppState;
use crate::pipeline::{Handled, Outcome};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

/// `POST /callback`: any query string and any Content-Type.
pub async fn callback(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let limit = state.max_body_bytes;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let handled = if declared.is_some_and(|n| n > limit) {
        state.pipeline.reject_too_large()
    } else {
        match payload.to_bytes_limited(limit).await {
            Err(_) => state.pipeline.reject_too_large(),
            // The client went away or sent a broken chunked body: nothing to count.
            Ok(Err(e)) => return HttpResponse::BadRequest().json(json!({"code": 400, "error": e.to_string()})),
            Ok(Ok(body)) => state.pipeline.handle(&body),
        }
    };
    respond(&req, handled, limit)
}

fn respond(req: &HttpRequest, handled: Handled, limit: usize) -> HttpResponse {
    let (status, error) = match &handled.outcome {
        Outcome::Accepted | Outcome::Duplicate | Outcome::Ignored => {
            return HttpResponse::Ok().content_type("application/json").body(r#"{"code":0}"#);
        }
        Outcome::Malformed(e) => (StatusCode::BAD_REQUEST, e.to_string()),
        Outcome::Unauthorized(why) => (StatusCode::UNAUTHORIZED, format!("unauthorized: {why}")),
        Outcome::Expired => (StatusCode::UNAUTHORIZED, "expired: t is in the past".to_owned()),
        Outcome::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, format!("body larger than {limit} bytes")),
    };
    let peer = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    log::warn!(
        "rejected callback from {peer} (event_type {}, {}): {error}",
        handled.event_type,
        handled.outcome.label()
    );
    HttpResponse::build(status).json(json!({"code": status.as_u16(), "error": error}))
}
