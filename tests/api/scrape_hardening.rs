//! The serving side under attack: scrapers that never read cannot pin
//! pages, pages in memory stay bounded, idle connections give way at the
//! connection cap, and the pages a browser renders cannot be framed,
//! sniffed, or spoofed with invisible characters.
use crate::helpers::*;
use serde_json::{json, Value};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const PAGES: &str = "css_push_scrape_pages";
const WRITE_TIMEOUTS: &str = "css_push_scrape_write_timeouts_total";

/// Every error type once, so each stream shows many series.
fn every_error() -> Value {
    Value::Array((1..=16).map(|t| json!({"type": t, "count": 1})).collect())
}

/// Streams with 1000-byte names until the page is over `bytes`: more than
/// the kernel buffers of a connection can hold.
async fn grow_page(app: &TestApp, bytes: usize) -> usize {
    let long = "x".repeat(1000);
    for i in 0.. {
        if i % 100 == 0 {
            let len = app.metrics().await.text.len();
            if len > bytes {
                return len;
            }
            assert!(i < 5000, "the page stays at {len} bytes");
        }
        let body = push_error(&long, &long, &format!("{i:05}{long}"), NOW_SECS.cast_signed() * 1000, every_error());
        assert_eq!(app.post(body.to_string()).await.0, 200);
    }
    unreachable!()
}

/// Sends `GET /metrics` with a tiny receive buffer and never reads.
fn stalled_scrape(addr: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.parse::<SocketAddr>().unwrap().into()).unwrap();
    let mut conn: TcpStream = socket.into();
    write!(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    conn
}

/// Scrapes until `done` holds, at most 30 s (the pages are large).
async fn scrape_until(app: &TestApp, done: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = app.metrics().await;
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "not reached in 30 s: {PAGES} {:?}", m.get(PAGES, &[]));
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn scrapers_that_do_not_read_are_cut_and_hold_at_most_two_pages() {
    // Short, but not so short that this test's own client, slowed by a busy
    // machine, is cut as a staller.
    let app = spawn_app(&["--max-label-length", "1024", "--write-timeout", "3s"]).await;
    let addr = app.metrics_base.trim_start_matches("http://").to_owned();
    let page = grow_page(&app, 8 << 20).await;
    let mut stalled = Vec::new();
    for n in 1..=6 {
        // A callback between scrapes: each would want a page of its own.
        let body = push_error("d", "live", &format!("s{n}"), NOW_SECS.cast_signed() * 1000, every_error());
        app.post(body.to_string()).await;
        stalled.push(stalled_scrape(&addr));
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let held = app.metrics().await.get(PAGES, &[]).unwrap();
    assert!(held <= 2.0, "{held} pages of {page} bytes in memory");
    // The kernel cuts each after 3 s without progress, and its page goes.
    let m = scrape_until(&app, |m| m.get(WRITE_TIMEOUTS, &[]) == Some(6.0)).await;
    assert_eq!(m.get(PAGES, &[]), Some(1.0), "only the latest page is kept");
    for conn in &stalled {
        // Closed: whatever was buffered ends in an error or the end of the stream.
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut drained = Vec::new();
        let end = std::io::Read::read_to_end(&mut &*conn, &mut drained);
        assert!(drained.len() < page, "a cut answer is not whole ({end:?})");
    }
    app.stop().await;
}

#[actix_web::test]
async fn pages_cannot_be_framed_sniffed_or_spoofed() {
    let app = spawn_app(&[]).await;
    let spoof = "live\u{202E}4pm.exe\u{200B}";
    let body = push_error("d.example.com", "live", spoof, NOW_SECS.cast_signed() * 1000, every_error());
    assert_eq!(app.post(body.to_string()).await.0, 200);
    for path in ["/", "/api/v1/status", "/metrics"] {
        let res = app.client.get(format!("{}{path}", app.metrics_base)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let header = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let csp = header("content-security-policy");
        for rule in ["default-src 'none'", "frame-ancestors 'none'"] {
            assert!(csp.contains(rule), "{path}: {csp:?}");
        }
        assert!(!csp.contains("script-src"), "{path}: no script may run: {csp:?}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
    }
    let page = app.client.get(format!("{}/", app.metrics_base)).send().await.unwrap().body().await.unwrap();
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert!(page.contains("live\\u{202E}4pm.exe\\u{200B}"), "shown escaped");
    assert!(!page.contains('\u{202E}') && !page.contains('\u{200B}'), "never raw");
    app.stop().await;
}

#[test]
fn at_the_connection_cap_idle_keep_alive_connections_give_way() {
    let exporter = crate::binary::Binary::start(&["--max-connections", "4", "--workers", "1"]);
    let addr = exporter.addr.clone();
    // Four clients take every place, each keeping its connection after an answer.
    let _idle: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut conn = TcpStream::connect(&addr).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            write!(conn, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut answer = Vec::new();
            while !answer.ends_with(b"Healthy\n") {
                let mut buf = [0u8; 1024];
                let n = std::io::Read::read(&mut conn, &mut buf).unwrap();
                assert!(n > 0, "closed before the answer");
                answer.extend_from_slice(&buf[..n]);
            }
            conn
        })
        .collect();
    // A fifth is answered at once, not after the idle ones' keep-alive ends.
    let started = Instant::now();
    assert_eq!(crate::raw_http::request(&addr, "GET", "/-/healthy", "", Duration::from_secs(10)).status, 200);
    assert!(started.elapsed() < Duration::from_secs(2), "waited {:?}", started.elapsed());
}
