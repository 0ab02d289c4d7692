//! Timing and soak tests against the real binary: what takes many seconds
//! or asserts wall-clock speed or resident memory, so it could fail on a
//! loaded machine for reasons that are not bugs. `#[ignore]`d: `.ci/run`
//! runs them (`--include-ignored`), or `cargo test --test slow -- --ignored`.
//! Their own target, one test at a time, so they measure the exporter and
//! not each other or the tool tests.
mod common;
use common::binary::Binary;
use common::helpers::{now_ms, push_lifecycle, report};
use common::raw_http::{post_json, request};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

/// Held for the whole of each test: they run one at a time.
fn alone() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    // A failed test poisons the lock; the next still runs alone.
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
#[ignore = "slow: 200 trickling senders for about 10 s, with scrape times asserted"]
fn slow_senders_are_cut_at_the_deadline_while_metrics_keeps_answering() {
    let _alone = alone();
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
    let m = exporter.metrics();
    let timeouts = m.get("css_push_callbacks_total", &[("event_type", "unknown"), ("outcome", "timeout")]);
    assert_eq!(timeouts, Some(200.0));
}

#[test]
#[ignore = "slow: resident memory of 32 concurrent scrapes of a 15 MB page"]
fn concurrent_scrapes_share_renders_and_add_less_than_two_pages() {
    let _alone = alone();
    let exporter = Binary::start_limited(&[], None);
    let long = |c: char, i: usize| format!("{i:04}{}", c.to_string().repeat(124));
    for i in 0..400 {
        let mut body = report(&long('d', 0), &long('s', i), 1..=99, now_ms());
        body["path"] = long('a', 0).into();
        assert_eq!(post_json(&exporter.addr, &body).status, 200);
    }
    let page = exporter.metrics();
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
    let renders = exporter.metrics().get("css_push_scrape_renders_total", &[]).unwrap() - renders_before - 1.0;
    assert!(renders <= 4.0, "32 concurrent scrapes took {renders} renders");
}

#[test]
#[ignore = "slow: 4000 callbacks of 99 error types each, with their time asserted"]
fn a_series_flood_stays_within_max_series_with_exact_domain_totals() {
    let _alone = alone();
    let exporter = Binary::start_limited(&["--max-series", "100000"], None);
    let started = Instant::now();
    // 4 000 new streams with 99 error types each: over 400 000 series asked for.
    for i in 0..4000 {
        let domain = if i % 2 == 0 { "even.example.com" } else { "odd.example.com" };
        assert_eq!(post_json(&exporter.addr, &report(domain, &format!("s{i}"), 1..=99, now_ms())).status, 200);
    }
    let m = exporter.metrics();
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

/// Starts and ends pour in from several senders while snapshots are
/// written back to back; a SIGKILL at a varying moment; the restart must
/// show a state the exporter had: as many streams live by their lifecycle
/// (`css_push_streams_live`) as show `css_push_stream_live` 1.
#[test]
#[ignore = "slow: 20 rounds of ingest and snapshots cut short by SIGKILL"]
fn restored_state_is_consistent_after_sigkill_during_ingest() {
    const ROUNDS: usize = 20;
    const SENDERS: usize = 4;
    const STREAMS: usize = 500;
    const PER_SENDER: usize = 2_000;
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let flags = ["--state-file", path.to_str().unwrap(), "--state-interval", "10ms"];
    let mut inconsistent = 0;
    for round in 0..ROUNDS {
        let app = Binary::start(&flags);
        let deadline = Instant::now() + Duration::from_millis(300 + 50 * (round as u64 % 8));
        std::thread::scope(|scope| {
            for sender in 0..SENDERS {
                let app = &app;
                scope.spawn(move || {
                    for n in 0..PER_SENDER {
                        if Instant::now() >= deadline {
                            return;
                        }
                        let stream = format!("s{}", (sender * STREAMS / SENDERS) + n % (STREAMS / SENDERS));
                        let sequence = format!("q{round}-{}", n / (STREAMS / SENDERS) / 2);
                        let starting = (n / (STREAMS / SENDERS)).is_multiple_of(2);
                        let end = (!starting).then_some((60_000, 0));
                        let body = push_lifecycle("d.example.com", "live", &stream, &sequence, end);
                        assert_eq!(app.post(&body), 200);
                    }
                });
            }
        });
        app.kill();
        let back = Binary::start(&flags);
        let m = back.metrics();
        let live_gauges =
            m.text.lines().filter(|l| l.starts_with("css_push_stream_live{") && l.ends_with(" 1")).count();
        let live = m.sum("css_push_streams_live", &[]);
        if (live_gauges as f64 - live).abs() > 0.5 {
            inconsistent += 1;
            eprintln!("round {round}: {live} live by lifecycle, {live_gauges} by css_push_stream_live");
        }
        back.kill();
    }
    eprintln!("{ROUNDS} SIGKILL rounds: {inconsistent} inconsistent");
    assert_eq!(inconsistent, 0);
}
