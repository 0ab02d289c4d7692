//! `GET /streams/{domain}/{app}/{stream}`: one stream's page;
//! `GET /api/v1/streams/{domain}/{app}/{stream}`: the same as JSON. Each
//! name is one percent-encoded path segment (a `/` in a name is `%2F`),
//! read from the raw path and matched as the metrics label it: cut to
//! `--max-label-length`. Both show stream names, so they sit with
//! /metrics (its listener, its guard), as the status page does.
use super::AppState;
use crate::state::streams::StreamId;
use crate::text::quote::{prefix, QUOTE_BYTES};
use crate::text::url::decode_segment;
use crate::timeline::page as html;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

const PAGE: &str = "/streams/";
const API: &str = "/api/v1/streams/";

pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let names = match names(&req, PAGE) {
        Ok(names) => names,
        Err((status, why)) => {
            return HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(format!("{why}\n"))
        }
    };
    let [domain, app, stream] = &names;
    let (status, body) = match state.exporter.stream_history(StreamId { domain, app, stream }) {
        Some(history) => (StatusCode::OK, html::render(&history)),
        None => (StatusCode::NOT_FOUND, html::not_found(domain, app, stream)),
    };
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body)
}

pub async fn api(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let names = match names(&req, API) {
        Ok(names) => names,
        Err((status, why)) => return error(status, why),
    };
    let [domain, app, stream] = &names;
    match state.exporter.stream_history(StreamId { domain, app, stream }) {
        Some(history) => HttpResponse::Ok().json(history),
        None => error(
            StatusCode::NOT_FOUND,
            format!(
                "no recent history of the stream {:?} / {:?} / {:?} (names are cut to --max-label-length as in \
                 the metrics; histories are kept for --timeline-max-age)",
                prefix(domain, QUOTE_BYTES),
                prefix(app, QUOTE_BYTES),
                prefix(stream, QUOTE_BYTES)
            ),
        ),
    }
}

fn error(status: StatusCode, why: String) -> HttpResponse {
    HttpResponse::build(status).json(json!({"code": status.as_u16(), "error": why}))
}

/// The three names after `base` in the raw path, decoded.
fn names(req: &HttpRequest, base: &str) -> Result<[String; 3], (StatusCode, String)> {
    let rest = req.path().strip_prefix(base).unwrap_or_default();
    let segments: Vec<&str> = rest.split('/').collect();
    let [domain, app, stream] = segments[..] else {
        let why = format!("expected {base}{{domain}}/{{app}}/{{stream}}, each name URL-encoded (a / in a name is %2F)");
        return Err((StatusCode::NOT_FOUND, why));
    };
    let decode = |segment: &str| {
        decode_segment(segment).ok_or_else(|| {
            let why = format!("{:?} is not a URL-encoded UTF-8 name", prefix(segment, QUOTE_BYTES));
            (StatusCode::BAD_REQUEST, why)
        })
    };
    Ok([decode(domain)?, decode(app)?, decode(stream)?])
}
