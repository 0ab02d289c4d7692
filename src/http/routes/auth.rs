//! The basic-auth guard of the metrics listener's routes: the check is
//! [`crate::http::basic_auth`]'s; here refusals are answered, counted and
//! logged (rate-limited) with the peer and the user name, never the password.
use super::AppState;
use crate::http::basic_auth::{BasicAuth, Verdict, PER_ADDRESS, QUEUE};
use crate::observe::auth::AuthRefusal;
use crate::text::quote::{prefix, QUOTE_BYTES};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use std::sync::Arc;

/// Middleware: where basic auth is configured, lets a request through only
/// with valid credentials.
pub async fn require(
    auth: Option<web::Data<Arc<BasicAuth>>>,
    state: web::Data<AppState>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(auth) = auth else { return Ok(next.call(req).await?.map_into_boxed_body()) };
    // The TCP peer, never a forwarding header a client can write.
    let peer = req.peer_addr().map(|a| a.ip());
    let verdict = auth.get_ref().clone().check(peer, req.headers().get(header::AUTHORIZATION)).await;
    let peer = peer.map(|p| p.to_string()).unwrap_or_default();
    let failures = state.exporter.auth_failures();
    let response = match verdict {
        Verdict::Passed => return Ok(next.call(req).await?.map_into_boxed_body()),
        Verdict::Missing => {
            failures.count(AuthRefusal::Missing);
            unauthorized()
        }
        Verdict::Invalid { user } => {
            failures.count(AuthRefusal::Invalid);
            state.auth_log.warn("basic auth invalid", || {
                format!("basic auth failed for user {:?} from {peer}", prefix(&user, QUOTE_BYTES))
            });
            unauthorized()
        }
        Verdict::Throttled => {
            failures.count(AuthRefusal::Throttled);
            state.auth_log.warn("basic auth throttled", || {
                format!("basic auth not checked for {peer}: {QUEUE} checks wait, or {PER_ADDRESS} of this address's")
            });
            HttpResponse::TooManyRequests().insert_header((header::RETRY_AFTER, "1")).body("Too many login attempts\n")
        }
    };
    Ok(req.into_response(response))
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"css-push-exporter\""))
        .body("Unauthorized\n")
}
