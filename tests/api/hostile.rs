//! Hostile or unlucky load against the real binary: slow senders, scrape
//! storms, series floods, echoes and log floods, odd times, broken bodies.
use crate::binary::Binary;
use crate::helpers::{now_ms, Metrics};
use crate::raw_http::{exchange, post, request, Answer};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

fn scrape(exporter: &Binary) -> Metrics {
    let answer = request(&exporter.metrics_addr, "GET", "/metrics", "", Duration::from_secs(10));
    assert_eq!(answer.status, 200, "{}", answer.head);
    Metrics::parse(std::str::from_utf8(&answer.body).unwrap())
}

fn post_json(addr: &str, body: &Value) -> Answer {
    post(addr, body.to_string().as_bytes())
}

/// A push error of `stream` in `domain` with one of each of `types`.
fn report(domain: &str, stream: &str, types: std::ops::RangeInclusive<u64>, data_time_ms: i64) -> Value {
    let events: Vec<Value> = types.map(|t| json!({"type": t, "count": 1})).collect();
    json!({"event_type": 321, "domain": domain, "path": "live", "stream_id": stream, "sequence": "1",
           "data_time": data_time_ms, "abnormal_event": events})
}

#[test]
fn slow_senders_are_cut_at_the_deadline_while_metrics_keeps_answering() {
    let flags = ["--metrics-listen-address", "127.0.0.1:0", "--read-timeout", "2s"];
    let exporter = Binary::start_limited(&flags, Some(256));
    assert!(exporter.log().contains("open-files limit: 256"), "{}", exporter.log());
    let addr = exporter.addr.clone();
    let started = Instant::now();
    // More trickling senders than descriptors would allow: complete
    // headers, then a byte of body every half second.
    let senders: Vec<_> = (0..200)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || -> Option<(Duration, String)> {
                let mut conn = TcpStream::connect(&addr).ok()?;
                let head = format!("POST /callback HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000\r\n\r\n{{");
                conn.write_all(head.as_bytes()).ok()?;
                conn.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
                let mut answer = Vec::new();
                let mut buf = [0u8; 512];
                while started.elapsed() < Duration::from_secs(15) {
                    match conn.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => answer.extend_from_slice(&buf[..n]),
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => break,
                    }
                    if conn.write_all(b" ").is_err() && answer.is_empty() {
                        break;
                    }
                }
                Some((started.elapsed(), String::from_utf8_lossy(&answer).into_owned()))
            })
        })
        .collect();
    // Meanwhile, /metrics on its own listener answers within a second.
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(5) {
        let t = Instant::now();
        let answer = request(&exporter.metrics_addr, "GET", "/metrics", "", SECOND);
        assert_eq!(answer.status, 200);
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(slowest < SECOND, "a scrape took {slowest:?} during the attack");
    let ends: Vec<_> = senders.into_iter().map(|s| s.join().unwrap().expect("connected")).collect();
    for (elapsed, answer) in &ends {
        assert!(*elapsed < Duration::from_secs(14), "a trickling connection lived {elapsed:?}: {answer}");
        assert!(answer.starts_with("HTTP/1.1 408"), "after {elapsed:?}: {answer}");
    }
    let first_round =
        ends.iter().filter(|(e, _)| *e >= Duration::from_millis(1900) && *e < Duration::from_millis(3500));
    assert!(first_round.count() >= 50, "the first connections are cut at the 2 s deadline");
    let m = scrape(&exporter);
    let timeouts = m.get("css_push_callbacks_total", &[("event_type", "unknown"), ("outcome", "timeout")]);
    assert_eq!(timeouts, Some(200.0));
}

#[test]
fn concurrent_scrapes_share_renders_and_add_less_than_two_pages() {
    let exporter = Binary::start_limited(&[], None);
    let long = |c: char, i: usize| format!("{i:04}{}", c.to_string().repeat(124));
    for i in 0..400 {
        let mut body = report(&long('d', 0), &long('s', i), 1..=99, now_ms());
        body["path"] = long('a', 0).into();
        assert_eq!(post_json(&exporter.addr, &body).status, 200);
    }
    let page = scrape(&exporter);
    let page_kb = page.text.len() as u64 / 1024;
    assert!(page_kb > 15_000, "a large page: {page_kb} kB");
    let renders_before = page.get("css_push_scrape_renders_total", &[]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let baseline = exporter.memory_kb("VmRSS");
    exporter.reset_peak_memory();
    let scrapers: Vec<_> = (0..32)
        .map(|i| {
            let addr = exporter.metrics_addr.clone();
            let gzip = if i % 2 == 0 { "Accept-Encoding: gzip\r\n" } else { "" };
            std::thread::spawn(move || request(&addr, "GET", "/metrics", gzip, Duration::from_secs(30)))
        })
        .collect();
    for s in scrapers {
        assert_eq!(s.join().unwrap().status, 200);
    }
    let added = exporter.memory_kb("VmHWM").saturating_sub(baseline);
    assert!(added < 2 * page_kb, "32 scrapes of a {page_kb} kB page added {added} kB at peak");
    let renders = scrape(&exporter).get("css_push_scrape_renders_total", &[]).unwrap() - renders_before - 1.0;
    assert!(renders <= 4.0, "32 concurrent scrapes took {renders} renders");
}

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
fn a_series_flood_stays_within_max_series_with_exact_domain_totals() {
    let exporter = Binary::start_limited(&["--max-series", "100000"], None);
    let started = Instant::now();
    // 4 000 new streams with 99 error types each: over 400 000 series asked for.
    for i in 0..4000 {
        let domain = if i % 2 == 0 { "even.example.com" } else { "odd.example.com" };
        assert_eq!(post_json(&exporter.addr, &report(domain, &format!("s{i}"), 1..=99, now_ms())).status, 200);
    }
    let m = scrape(&exporter);
    assert!(started.elapsed() < Duration::from_secs(20), "the flood took {:?}", started.elapsed());
    let held = m.get("css_push_series", &[]).unwrap();
    assert!(held <= 100_000.0, "{held} series held");
    assert_eq!(m.get("css_push_series_limit", &[]), Some(100_000.0));
    assert!(m.count("css_push_errors_total") <= 100_000, "{} error series", m.count("css_push_errors_total"));
    for domain in ["even.example.com", "odd.example.com"] {
        assert_eq!(m.sum("css_push_errors_total", &[("domain", domain)]), 2000.0 * 99.0, "{domain}");
        assert!(m.sum("css_push_errors_total", &[("domain", domain), ("stream", "__overflow__")]) > 0.0);
    }
    assert!(m.get("css_push_series_overflow_total", &[]).unwrap() > 1000.0);
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
    std::thread::sleep(Duration::from_millis(200));
    let log = exporter.log();
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
    let m = scrape(&exporter);
    assert_eq!(m.get("css_push_callbacks_total", &[("event_type", "321"), ("outcome", "unauthorized")]), Some(3000.0));
    std::thread::sleep(Duration::from_millis(200));
    let lines = exporter.log().lines().filter(|l| l.contains("rejected callback")).count();
    // One per 10 s (the flood lasts a second or two here).
    assert!(lines >= 1 && lines as u64 <= intervals, "{lines} log lines for 3000 rejections");
}

#[test]
fn future_data_time_is_recorded_at_the_receive_time_and_non_positive_is_refused() {
    let exporter = Binary::start_limited(&[], None);
    let ten_days_ms = 10 * 86_400_000;
    let answer = post_json(&exporter.addr, &report("d", "future", 6..=6, now_ms() + ten_days_ms));
    assert_eq!(answer.status, 200);
    let m = scrape(&exporter);
    let last = m.get("css_push_last_error_timestamp_seconds", &[("stream", "future")]).unwrap();
    let now = now_ms() as f64 / 1000.0;
    assert!((now - 60.0..=now + 1.0).contains(&last), "last error at {last}, now {now}");
    assert_eq!(m.get("css_push_future_data_time_total", &[]), Some(1.0));
    // A little ahead (clocks differ) is believed.
    post_json(&exporter.addr, &report("d", "ahead", 6..=6, now_ms() + 60_000));
    let m = scrape(&exporter);
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
    let m = scrape(&exporter);
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
