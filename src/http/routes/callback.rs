use super::AppState;
use crate::http::body::{self, BodyError};
use crate::http::peer;
use crate::ingest::outcome::{Handled, Outcome, Rejection};
use crate::ingest::wire::ParseError;
use actix_web::body::BoxBody;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

/// `POST /callback`: any query string and any Content-Type.
pub async fn callback(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    // Who sent it, for display: the TCP peer, or behind a trusted proxy
    // the client it forwarded for. Authentication never looks at it.
    let peer = peer::client(req.peer_addr().map(|a| a.ip()), req.headers(), &state.trusted_proxies);
    let exporter = &state.exporter;
    let limit = state.max_body_bytes;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let handled = if declared.is_some_and(|n| n > limit) {
        exporter.reject(Rejection::TooLarge { limit }, peer)
    } else {
        // The headers had --read-timeout to arrive (the server's deadline);
        // the body gets as long again, so a trickling sender is cut off.
        let after = state.read_timeout;
        match actix_web::rt::time::timeout(after, body::read(payload, limit, declared)).await {
            Err(_) => exporter.reject(Rejection::Timeout { after }, peer),
            Ok(Err(BodyError::TooLarge)) => exporter.reject(Rejection::TooLarge { limit }, peer),
            Ok(Err(BodyError::Unreadable)) => {
                exporter.reject(Rejection::Malformed(ParseError::unreadable_body()), peer)
            }
            Ok(Ok(body)) => exporter.handle(&body, peer),
        }
    };
    respond(&handled)
}

/// The answer; what happened was already counted, kept and logged by the
/// exporter's observers.
fn respond(handled: &Handled) -> HttpResponse {
    match &handled.outcome {
        Outcome::Accepted | Outcome::Duplicate | Outcome::Ignored => {
            // Built directly, its body not copied: this is every callback's answer.
            let mut res = HttpResponse::with_body(StatusCode::OK, BoxBody::new(Bytes::from_static(br#"{"code":0}"#)));
            res.headers_mut().append(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        }
        Outcome::Rejected(r) => r.error_response(),
    }
}

/// A refused callback answers with its status and `{"code", "error"}`.
impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
            Rejection::Unauthorized(_) | Rejection::Expired => StatusCode::UNAUTHORIZED,
            Rejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut res = HttpResponse::build(status);
        if let Rejection::Timeout { .. } = self {
            // The rest of the body may still trickle in: do not wait for it.
            res.force_close();
        }
        res.json(json!({"code": status.as_u16(), "error": self.to_string()}))
    }
}
