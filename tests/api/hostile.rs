//! Hostile or unlucky input against the real binary: echoes and log floods,
//! odd times, broken bodies, gzip and HEAD (slow senders, scrape storms and
//! series floods, which take time: `tests/slow.rs`).
use crate::binary::Binary;
use crate::helpers::{now_ms, report};
use crate::raw_http::{exchange, post_json, request};
use serde_json::{json, Value};
use std::io::Read;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn gzip_decodes_to_the_same_page_and_head_answers_without_a_body() {
    let exporter = Binary::start_limited(&[], None);
    assert_eq!(post_json(&exporter.addr, &report("d", "s", 1..=3, now_ms())).status, 200);
    let addr = &exporter.metrics_addr;
    // Two scrapes at once share one render, so their pages are equal.
    let (plain, gzipped) = std::thread::scope(|s| {
        let plain = s.spawn(|| request(addr, "GET", "/metrics", "", SECOND * 5));
        let gzip = s.spawn(|| request(addr, "GET", "/metrics", "Accept-Encoding: gzip\r\n", SECOND * 5));
        (plain.join().unwrap(), gzip.join().unwrap())
    });
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&gzipped.body[..]).read_to_string(&mut decoded).unwrap();
    let without_scrape_counts = |page: &str| -> String {
        page.lines().filter(|l| !l.starts_with("css_push_scrape") && !l.starts_with("process_")).collect()
    };
    assert_eq!(without_scrape_counts(&decoded), without_scrape_counts(std::str::from_utf8(&plain.body).unwrap()));
    assert!(gzipped.body.len() * 3 < plain.body.len(), "{} vs {}", gzipped.body.len(), plain.body.len());

    for path in ["/metrics", "/", "/-/healthy", "/-/ready"] {
        let head = request(addr, "HEAD", path, "", SECOND * 5);
        assert_eq!(head.status, 200, "HEAD {path}: {}", head.head);
        assert!(head.body.is_empty(), "HEAD {path} has a body");
        let length: usize = head.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        assert!(length > 0, "HEAD {path} says how long the page is: {}", head.head);
    }
}

#[test]
fn a_megabyte_value_is_not_echoed_in_the_answer_or_the_log() {
    let exporter = Binary::start_limited(&["--max-body-bytes", "2097152"], None);
    let value = "v".repeat(1 << 20);
    let body = json!({"event_type": 321, "stream_id": "s", "data_time": 1, "abnormal_event": value});
    let answer = post_json(&exporter.addr, &body);
    assert_eq!(answer.status, 400);
    assert!(answer.body.len() < 1024, "a {} byte answer", answer.body.len());
    let error: Value = serde_json::from_slice(&answer.body).unwrap();
    assert!(error["error"].as_str().unwrap().starts_with("abnormal_event: invalid type: string \"vvv"), "{error}");
    let log = exporter.wait_log(|log| log.contains("rejected callback"));
    let line = log.lines().find(|l| l.contains("rejected callback")).expect("logged");
    assert!(line.len() < 1024, "a {} byte log line", line.len());
}

#[test]
fn a_flood_of_unsigned_callbacks_is_counted_but_logged_once() {
    let exporter = Binary::start_limited(&["--callback-key", "k"], None);
    let body = report("d", "s", 1..=1, now_ms());
    let started = Instant::now();
    for _ in 0..3000 {
        assert_eq!(post_json(&exporter.addr, &body).status, 401);
    }
    let intervals = started.elapsed().as_secs() / 10 + 1;
    let m = exporter.metrics();
    assert_eq!(m.get("css_push_callbacks_total", &[("event_type", "321"), ("outcome", "unauthorized")]), Some(3000.0));
    let lines = exporter
        .wait_log(|log| log.contains("rejected callback"))
        .lines()
        .filter(|l| l.contains("rejected callback"))
        .count();
    // One per 10 s (the flood lasts a second or two here).
    assert!(lines >= 1 && lines as u64 <= intervals, "{lines} log lines for 3000 rejections");
}

#[test]
fn future_data_time_is_recorded_at_the_receive_time_and_non_positive_is_refused() {
    let exporter = Binary::start_limited(&[], None);
    let ten_days_ms = 10 * 86_400_000;
    let answer = post_json(&exporter.addr, &report("d", "future", 6..=6, now_ms() + ten_days_ms));
    assert_eq!(answer.status, 200);
    let m = exporter.metrics();
    let last = m.get("css_push_last_error_timestamp_seconds", &[("stream", "future")]).unwrap();
    let now = now_ms() as f64 / 1000.0;
    assert!((now - 60.0..=now + 1.0).contains(&last), "last error at {last}, now {now}");
    assert_eq!(m.get("css_push_future_data_time_total", &[]), Some(1.0));
    // A little ahead (clocks differ) is believed.
    post_json(&exporter.addr, &report("d", "ahead", 6..=6, now_ms() + 60_000));
    let m = exporter.metrics();
    assert!(m.get("css_push_last_error_timestamp_seconds", &[("stream", "ahead")]).unwrap() > now + 30.0);
    assert_eq!(m.get("css_push_future_data_time_total", &[]), Some(1.0));

    for bad in [-5, 0] {
        let answer = post_json(&exporter.addr, &report("d", "s", 6..=6, bad));
        assert_eq!(answer.status, 400, "data_time {bad}");
        let error: Value = serde_json::from_slice(&answer.body).unwrap();
        assert!(error["error"].as_str().unwrap().starts_with("data_time: must be positive"), "{error}");
    }
}

#[test]
fn a_broken_chunked_body_is_counted_as_malformed() {
    let exporter = Binary::start_limited(&[], None);
    let addr = &exporter.addr;
    let req = format!(
        "POST /callback HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n"
    );
    let answer = exchange(addr, req.as_bytes(), SECOND * 5).unwrap();
    assert_eq!(answer.status, 400, "{}", answer.head);
    let m = exporter.metrics();
    assert_eq!(m.get("css_push_callbacks_total", &[("event_type", "unknown"), ("outcome", "malformed")]), Some(1.0));
}

#[test]
fn zero_ttls_and_intervals_are_refused_at_start() {
    for (flag, value) in [("--stream-ttl", "0s"), ("--expiry-interval", "0s"), ("--read-timeout", "0s")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_css-push-exporter"))
            .args(["--listen-address", "127.0.0.1:0", flag, value])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} {value} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag) && stderr.contains("must be at least"), "{stderr}");
    }
}

/// Everything `request` gets back until the server closes the connection.
fn raw_exchange(addr: &str, request: &[u8]) -> String {
    use std::io::Write;
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(SECOND * 10)).unwrap();
    conn.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn the_servers_own_answers_carry_the_security_headers_too() {
    let exporter = Binary::start(&["--read-timeout", "1s"]);
    let stamped = |answer: &str, status: &str| {
        let at = answer.find(&format!("HTTP/1.1 {status}")).unwrap_or_else(|| panic!("no {status} in {answer:?}"));
        let head = answer[at..].split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
        for header in
            ["content-security-policy: default-src 'none'", "x-content-type-options: nosniff", "x-frame-options: deny"]
        {
            assert!(head.contains(header), "{status} without {header}: {head}");
        }
    };
    // Kept alive: a HEAD answer (its length, no body), a page, then a
    // request that does not parse: the server's own 400, and the close.
    let pipelined = "HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n";
    let answer = raw_exchange(&exporter.addr, pipelined.as_bytes());
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    stamped(&answer, "400");
    assert_eq!(answer.matches("content-security-policy").count(), 3, "the app's answers unchanged: {answer}");
    // Headers that never end: 408 at --read-timeout.
    stamped(&raw_exchange(&exporter.addr, b"GET / HTTP/1.1\r\nHost: x\r\n"), "408");
    // Too many headers: 431.
    let many: String = (0..100).map(|i| format!("X-H{i}: a\r\n")).collect();
    stamped(&raw_exchange(&exporter.addr, format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes()), "431");
}
