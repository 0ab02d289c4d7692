use super::AppState;
use crate::expose::scrape::{Page, Text};
use crate::expose::CONTENT_TYPE;
use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// `GET` (and `HEAD`) `/metrics`: gzipped when the scraper accepts it, as
/// Prometheus always does.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let gzip = accepts_gzip(&req);
    let exporter = state.exporter.clone();
    // Rendering a large registry takes milliseconds: keep it off the worker
    // thread so callbacks on the same worker are not held up.
    let page = web::block(move || {
        let page = exporter.scrape();
        let body = if gzip { page.gzip() } else { page.plain() };
        (page, body)
    });
    match page.await {
        Ok((page, body)) => {
            let mut res = HttpResponse::Ok();
            res.content_type(CONTENT_TYPE).insert_header((header::VARY, "Accept-Encoding"));
            if gzip {
                res.insert_header((header::CONTENT_ENCODING, "gzip"));
            }
            res.body(Sending { page, rest: body, deadline: Instant::now() + state.write_timeout, cut: false })
        }
        Err(e) => HttpResponse::InternalServerError().body(format!("rendering failed: {e}\n")),
    }
}

/// A page being sent, handed out in slices of itself: actix-web copies each
/// body chunk into the connection's write buffer, so a whole page as one
/// chunk would be one copy per scraper. It holds the page itself, so the
/// count of pages in memory stays true, and gives up at `deadline`: a
/// scraper reading too slowly cannot hold the page for long (one that
/// stops reading is cut by the kernel, `limits::cut_stalled_sends`).
struct Sending {
    page: Arc<Page<Text>>,
    /// What is left to send: a slice of the page.
    rest: Bytes,
    deadline: Instant,
    /// Counted as cut already.
    cut: bool,
}

/// Small enough that a slow scraper's buffer stays small.
const SLICE_BYTES: usize = 64 * 1024;

impl MessageBody for Sending {
    type Error = io::Error;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.rest.len() as u64)
    }

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        if Instant::now() >= self.deadline {
            self.cut = true;
            self.page.write_timed_out();
            // An error ends the connection: the rest is never sent.
            return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::TimedOut, "--write-timeout passed"))));
        }
        let n = SLICE_BYTES.min(self.rest.len());
        // A slice of the shared page: no copy.
        Poll::Ready(Some(Ok(self.rest.split_to(n))))
    }
}

impl Drop for Sending {
    /// A connection the kernel cut for not reading ends here, unfinished.
    fn drop(&mut self) {
        if !self.cut && !self.rest.is_empty() && Instant::now() >= self.deadline {
            self.page.write_timed_out();
        }
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
