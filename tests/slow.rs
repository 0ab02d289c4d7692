//! Timing and soak tests against the real binary: what takes many seconds
//! or asserts wall-clock speed or resident memory, so it could fail on a
//! loaded machine for reasons that are not bugs. `#[ignore]`d: `.ci/run`
//! runs them (`--include-ignored`), or `cargo test --test slow -- --ignored`.
//! Their own target, one test at a time, so they measure the exporter and
//! not each other or the tool tests.
mod common;
use common::binary::Binary;
use common::helpers::{basic_auth, now_ms, push_lifecycle, report, web_config};
use common::raw_http::{get_from, post_json, request};
use css_push_exporter::state::journal;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// A page of about 17 MB: 370 streams of 99 error types with long names.
fn large_page(exporter: &Binary) -> u64 {
    let long = |c: char, i: usize| format!("{i:04}{}", c.to_string().repeat(124));
    for i in 0..370 {
        let mut body = report(&long('d', 0), &long('s', i), 1..=99, now_ms());
        body["path"] = long('a', 0).into();
        assert_eq!(post_json(&exporter.addr, &body).status, 200);
    }
    let page_kb = exporter.metrics().text.len() as u64 / 1024;
    assert!(page_kb > 16_000, "a large page: {page_kb} kB");
    page_kb
}

#[test]
#[ignore = "slow: 15 rounds of 16 concurrent plain scrapes of a 17 MB page, resident memory measured"]
fn after_a_storm_of_plain_scrapes_memory_comes_back() {
    let _alone = alone();
    let exporter = Binary::start_limited(&[], None);
    let page_kb = large_page(&exporter);
    std::thread::sleep(Duration::from_millis(500));
    let before = exporter.memory_kb("VmRSS");
    let started = Instant::now();
    for _ in 0..15 {
        let scrapers: Vec<_> = (0..16)
            .map(|_| {
                let addr = exporter.metrics_addr.clone();
                std::thread::spawn(move || request(&addr, "GET", "/metrics", "", Duration::from_secs(60)))
            })
            .collect();
        for s in scrapers {
            let answer = s.join().unwrap();
            assert_eq!(answer.status, 200);
            assert!(answer.body.len() as u64 / 1024 >= page_kb);
        }
        assert!(started.elapsed() < Duration::from_secs(300), "the storm took {:?}", started.elapsed());
    }
    let storm = started.elapsed();
    let peak = exporter.memory_kb("VmHWM");
    std::thread::sleep(Duration::from_secs(10));
    let after = exporter.memory_kb("VmRSS");
    eprintln!(
        "scrape storm: page {page_kb} kB, RSS {before} kB before, peak {peak} kB, {after} kB 10 s after \
         ({:+} kB, {:.2} pages); 240 scrapes in {storm:?}",
        after.cast_signed() - before.cast_signed(),
        (after as f64 - before as f64) / page_kb as f64
    );
    assert!(after < before + 3 * page_kb, "{after} kB 10 s after the storm, {before} kB before: more than 3 pages");
}

/// What a scraper saw during a wrong-password flood: when its first scrape
/// passed (from its first try), how many of 20 did, and the flood's answers.
struct Flooded {
    first_pass: Option<Duration>,
    passed: usize,
    flood_refused: u64,
    flood_throttled: u64,
}

/// A fresh exporter (basic auth, bcrypt cost 10, nothing cached) flooded
/// with wrong passwords for the scraper's user by 16 connections from
/// `flood_from` (the same password each time unless `vary`), and 20
/// scrapes with the right password from 127.0.0.1, one every 0.5 s.
fn scrapes_during_a_flood(flood_from: &[[u8; 4]], vary: bool) -> Flooded {
    let dir = tempfile::tempdir().unwrap();
    let config = web_config(dir.path(), &[("prometheus", "s3cret")], 10);
    let exporter = Binary::start(&["--web-config-file", &config, "--metrics-listen-address", "127.0.0.1:0"]);
    let addr = exporter.metrics_addr.clone();
    let stop = AtomicBool::new(false);
    let (refused, throttled) = (AtomicU64::new(0), AtomicU64::new(0));
    let started = Instant::now();
    let mut statuses = Vec::new();
    std::thread::scope(|s| {
        for i in 0..16 {
            let (source, addr, stop, refused, throttled) =
                (flood_from[i % flood_from.len()], &addr, &stop, &refused, &throttled);
            s.spawn(move || {
                for n in 0..100_000 {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(30) {
                        return;
                    }
                    let password = if vary { format!("guess-{i}-{n}") } else { "guess".to_owned() };
                    match get_from(source, addr, "/metrics", &basic_auth("prometheus", &password)) {
                        Ok(401) => refused.fetch_add(1, Ordering::Relaxed),
                        Ok(429) => throttled.fetch_add(1, Ordering::Relaxed),
                        other => panic!("a flood request got {other:?}"),
                    };
                }
            });
        }
        // The flood in full swing, then a scrape every half second.
        std::thread::sleep(Duration::from_millis(500));
        let first_try = Instant::now();
        for n in 0..20 {
            let due = first_try + Duration::from_millis(500) * n;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let status = get_from([127, 0, 0, 1], &addr, "/metrics", &basic_auth("prometheus", "s3cret"));
            statuses.push((first_try.elapsed(), status.unwrap()));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let m = exporter.log();
    assert!(m.contains("basic auth failed for user \"prometheus\""), "failures are logged: {m}");
    Flooded {
        first_pass: statuses.iter().find(|(_, s)| *s == 200).map(|(at, _)| *at),
        passed: statuses.iter().filter(|(_, s)| *s == 200).count(),
        flood_refused: refused.into_inner(),
        flood_throttled: throttled.into_inner(),
    }
}

#[test]
#[ignore = "slow: three 10 s floods of wrong passwords against a scraper's first logins (bcrypt cost 10)"]
fn a_correct_login_is_never_starved_by_failing_ones() {
    let _alone = alone();
    let others: Vec<[u8; 4]> = (1..=8).map(|n| [127, 0, 1, n]).collect();
    // Issue 28's floods: a repeated wrong password is checked once. A new
    // one each time is checked every time; the scraper's address waits its
    // turn behind at most one check of each flooding address.
    let cases = [
        ("one wrong password from 8 other addresses", others.clone(), false, 2),
        ("one wrong password from the scraper's own address", vec![[127, 0, 0, 1]], false, 2),
        ("a new wrong password each time from 8 other addresses", others, true, 5),
    ];
    for (name, from, vary, within) in cases {
        let f = scrapes_during_a_flood(&from, vary);
        eprintln!(
            "auth flood, {name}: first scrape passed after {:?}, {} of 20 passed; the flood got {} 401 and {} 429",
            f.first_pass, f.passed, f.flood_refused, f.flood_throttled
        );
        let first = f.first_pass.unwrap_or_else(|| panic!("{name}: no scrape passed"));
        assert!(first < Duration::from_secs(within), "{name}: the first scrape passed after {first:?}");
        assert!(f.passed >= 16, "{name}: {} of 20 scrapes passed", f.passed);
        assert!(f.flood_refused > 0, "{name}: the flood was checked");
    }
}

/// One callback after another on one keep-alive connection for `span`
/// (100 000 at most): the time each took to be answered, sorted.
fn callback_latencies(addr: &str, span: Duration, round: usize) -> Vec<Duration> {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut took = Vec::new();
    for n in 0..100_000 {
        if started.elapsed() >= span {
            break;
        }
        let body = report("lat.example.com", &format!("r{round}-{}", n % 500), 1..=3, now_ms() - n as i64).to_string();
        let request = format!("POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let sent = Instant::now();
        conn.write_all(request.as_bytes()).unwrap();
        assert_eq!(read_answer(&mut conn), 200);
        took.push(sent.elapsed());
    }
    took.sort();
    took
}

/// Reads one answer with a `Content-Length` off a keep-alive connection: its status.
fn read_answer(conn: &mut TcpStream) -> u16 {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length = head.lines().find_map(|l| l.strip_prefix("content-length:")).unwrap().trim().parse().unwrap();
    conn.read_exact(&mut vec![0; length]).unwrap();
    head[9..12].parse().unwrap()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

#[test]
#[ignore = "benchmark (timing, skipped by .ci/run): callback latency for 3 rounds of 3 s without and 3 s with 4 status page readers, 1000 apps"]
fn status_page_readers_do_not_slow_callbacks() {
    let _alone = alone();
    let exporter = Binary::start(&[]);
    // Something for every read to walk: 20 000 live streams in 1000 apps
    // (--max-apps), each app a row of the page.
    let starts: Vec<String> = (0..20_000)
        .map(|i| push_lifecycle("d.example.com", &format!("app{}", i % 1000), &format!("s{i}"), "q", None).to_string())
        .collect();
    post_all(&exporter.addr, &starts, 4);
    let (mut alone_p99, mut busy_p99, mut read_p50, mut reads) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for round in 0..3 {
        let quiet = callback_latencies(&exporter.addr, 3 * SECOND, 2 * round);
        let stop = AtomicBool::new(false);
        let (busy, mut read) = std::thread::scope(|s| {
            let readers: Vec<_> = (0..4)
                .map(|reader| {
                    let (addr, stop) = (&exporter.metrics_addr, &stop);
                    s.spawn(move || {
                        let path = if reader % 2 == 0 { "/" } else { "/api/v1/status" };
                        let mut took = Vec::new();
                        while took.len() < 100_000 && !stop.load(Ordering::Relaxed) {
                            let sent = Instant::now();
                            assert_eq!(request(addr, "GET", path, "", Duration::from_secs(10)).status, 200);
                            took.push(sent.elapsed());
                        }
                        took
                    })
                })
                .collect();
            let busy = callback_latencies(&exporter.addr, 3 * SECOND, 2 * round + 1);
            stop.store(true, Ordering::Relaxed);
            (busy, readers.into_iter().flat_map(|r| r.join().unwrap()).collect::<Vec<_>>())
        });
        read.sort();
        assert!(!read.is_empty(), "round {round}: no status page read was answered");
        eprintln!(
            "round {round}: callbacks alone p50 {:?} p99 {:?} ({} sent); with 4 readers p50 {:?} p99 {:?} ({} sent); reads p50 {:?} ({})",
            percentile(&quiet, 50),
            percentile(&quiet, 99),
            quiet.len(),
            percentile(&busy, 50),
            percentile(&busy, 99),
            busy.len(),
            percentile(&read, 50),
            read.len()
        );
        alone_p99.push(percentile(&quiet, 99));
        busy_p99.push(percentile(&busy, 99));
        read_p50.push(percentile(&read, 50));
        reads += read.len();
    }
    for figures in [&mut alone_p99, &mut busy_p99, &mut read_p50] {
        figures.sort();
    }
    let (alone, busy, read) = (alone_p99[1], busy_p99[1], read_p50[1]);
    eprintln!(
        "status page readers (medians of 3 rounds): callback p99 {alone:?} alone, {busy:?} with 4 readers ({:.2}x); a read takes {read:?}; {reads} reads",
        busy.as_secs_f64() / alone.as_secs_f64()
    );
    // A benchmark's target (issue 28), not a check for CI: on a shared
    // 2-core machine the readers' CPU alone moves the ratio (1.3x here, 3.4x
    // once on CI). That pages are made off the callback workers is held by
    // `expose::render_thread`'s own test.
    assert!(busy <= 3 * alone, "callback p99 {alone:?} alone, {busy:?} with 4 status page readers");
}

/// Posts `bodies` over `connections` keep-alive connections, each answered 200.
fn post_all(addr: &str, bodies: &[String], connections: usize) {
    std::thread::scope(|s| {
        for part in bodies.chunks(bodies.len().div_ceil(connections)) {
            s.spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                for body in part {
                    let request =
                        format!("POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    conn.write_all(request.as_bytes()).unwrap();
                    assert_eq!(read_answer(&mut conn), 200);
                }
            });
        }
    });
}

/// The exporter on `dir/state` while its directory cannot take snapshots
/// (`break_disk` after start, `mend_disk` before the restart): 10 streams
/// started before, 1000 streams started and ended 110 times each (220 000
/// starts and ends, more than bring a snapshot forward), then 200 starts,
/// 3 s before a SIGKILL. The restart shows every stream as it was. The log
/// of the run killed.
fn sigkill_while_snapshots_fail(dir: &Path, break_disk: impl FnOnce(), mend_disk: impl FnOnce()) -> String {
    let path = dir.join("state");
    let flags = ["--state-file", path.to_str().unwrap(), "--state-interval", "1h"];
    let start = |app: &str, stream: &str, sequence: &str| push_lifecycle("d.example.com", app, stream, sequence, None);
    let end = |app: &str, stream: &str, sequence: &str| {
        push_lifecycle("d.example.com", app, stream, sequence, Some((60_000, 0)))
    };
    let before = Binary::start(&flags);
    for i in 0..10 {
        assert_eq!(post_json(&before.addr, &start("old", &format!("o{i}"), "q")).status, 200);
    }
    assert!(before.terminate().0.success());

    let exporter = Binary::start(&flags);
    break_disk();
    let started = Instant::now();
    let flood: Vec<String> = (0..110)
        .flat_map(|session| (0..1000).map(move |s| (session, s)))
        .flat_map(|(session, s)| {
            let (stream, sequence) = (format!("f{s}"), format!("q{session}"));
            [start("flood", &stream, &sequence).to_string(), end("flood", &stream, &sequence).to_string()]
        })
        .collect();
    post_all(&exporter.addr, &flood, 4);
    let acked: Vec<String> = (0..200).map(|i| start("acked", &format!("a{i}"), "q").to_string()).collect();
    post_all(&exporter.addr, &acked, 1);
    eprintln!("{} starts and ends posted in {:?}", flood.len() + acked.len(), started.elapsed());
    std::thread::sleep(3 * SECOND);
    let records = journal::decode(&std::fs::read(dir.join("state.journal")).unwrap()).unwrap().0.len();
    let log = exporter.log();
    exporter.kill();
    let journal_bytes = std::fs::metadata(dir.join("state.journal")).unwrap().len();
    eprintln!("at the kill: the journal held {records} records, {journal_bytes} bytes");
    assert!(records < journal::MAX_RECORDS / 2, "{records} records in the journal:\n{log}");

    mend_disk();
    let after = Binary::start(&flags);
    let m = after.metrics();
    let live = |app| m.get("css_push_streams_live", &[("app", app)]);
    assert_eq!((live("old"), live("flood"), live("acked")), (Some(10.0), Some(0.0), Some(200.0)), "{}", after.log());
    for i in 0..200 {
        assert_eq!(m.get("css_push_stream_live", &[("stream", &format!("a{i}"))]), Some(1.0), "a{i}");
    }
    assert!(!after.log().contains("cut short or damaged"), "{}", after.log());
    log
}

#[test]
#[ignore = "slow: 220 000 starts and ends while every snapshot fails, then SIGKILL"]
fn acknowledged_starts_survive_sigkill_while_snapshots_fail() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let kept = std::cell::RefCell::new(Vec::new());
    // A directory that is not empty in the file's place: every rename over it fails.
    let break_disk = || {
        kept.replace(std::fs::read(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir_all(path.join("x")).unwrap();
    };
    // Then the file as the last good snapshot left it.
    let mend_disk = || {
        std::fs::remove_dir_all(&path).unwrap();
        std::fs::write(&path, kept.take()).unwrap();
    };
    let log = sigkill_while_snapshots_fail(dir.path(), break_disk, mend_disk);
    assert!(log.contains("cannot write the state file"), "{log}");
    assert!(log.contains("snapshots fail: compacted"), "{log}");
}

/// A tmpfs mounted at a new directory, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(options: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount -t tmpfs failed: this test needs root (or CAP_SYS_ADMIN)");
        Self(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("--lazy").arg(self.0.path()).status();
    }
}

#[test]
#[ignore = "needs root and mount: a tmpfs out of inodes (bash .ci/run runs it as root)"]
fn acknowledged_starts_survive_sigkill_in_a_directory_out_of_inodes() {
    let _alone = alone();
    let tmpfs = Tmpfs::mount("size=256m,nr_inodes=64,mode=0700");
    let dir = tmpfs.0.path();
    let fillers = dir.join("fillers");
    // Every inode left taken by empty files (the mount's root is one).
    let break_disk = || {
        std::fs::create_dir(&fillers).unwrap();
        let taken = (0..64).take_while(|i| std::fs::File::create(fillers.join(i.to_string())).is_ok()).count();
        assert!(taken < 64, "the inodes ran out");
        assert!(std::fs::File::create(dir.join("probe")).is_err());
    };
    let mend_disk = || std::fs::remove_dir_all(&fillers).unwrap();
    let log = sigkill_while_snapshots_fail(dir, break_disk, mend_disk);
    assert!(log.contains("written through"), "{log}");
}
