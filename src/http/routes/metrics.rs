use super::AppState;
use crate::expose::CONTENT_TYPE;
use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use std::pin::Pin;
use std::task::{Context, Poll};

/// `GET` (and `HEAD`) `/metrics`: gzipped when the scraper accepts it, as
/// Prometheus always does.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let gzip = accepts_gzip(&req);
    let exporter = state.exporter.clone();
    // Rendering a large registry takes milliseconds: keep it off the worker
    // thread so callbacks on the same worker are not held up.
    let body = web::block(move || {
        let page = exporter.scrape();
        if gzip {
            page.gzip()
        } else {
            page.plain()
        }
    });
    match body.await {
        Ok(body) => {
            let mut res = HttpResponse::Ok();
            res.content_type(CONTENT_TYPE).insert_header((header::VARY, "Accept-Encoding"));
            if gzip {
                res.insert_header((header::CONTENT_ENCODING, "gzip"));
            }
            res.body(Shared(body))
        }
        Err(e) => HttpResponse::InternalServerError().body(format!("rendering failed: {e}\n")),
    }
}

/// A page shared by concurrent scrapes, handed out in slices: actix-web
/// copies each body chunk into the connection's write buffer, so a whole
/// page as one chunk would be one copy per scraper.
struct Shared(Bytes);

/// Small enough that a slow scraper's buffer stays small.
const SLICE_BYTES: usize = 64 * 1024;

impl MessageBody for Shared {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.0.len() as u64)
    }

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if self.0.is_empty() {
            return Poll::Ready(None);
        }
        let n = SLICE_BYTES.min(self.0.len());
        // A slice of the shared page: no copy.
        Poll::Ready(Some(Ok(self.0.split_to(n))))
    }
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers().get_all(header::ACCEPT_ENCODING).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0)));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn gzip_is_served_when_accepted() {
        let table = [
            (Some("gzip"), true),
            (Some("gzip, deflate"), true),
            (Some("deflate, GZIP;q=0.5"), true),
            (Some("*"), true),
            (Some("gzip;q=0"), false),
            (Some("br, deflate"), false),
            (Some("gzipx"), false),
            (None, false),
        ];
        for (value, want) in table {
            let mut req = TestRequest::get();
            if let Some(v) = value {
                req = req.insert_header((header::ACCEPT_ENCODING, v));
            }
            assert_eq!(accepts_gzip(&req.to_http_request()), want, "{value:?}");
        }
    }
}
