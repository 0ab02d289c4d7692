//! The scrape path over loopback HTTP against the release binary, at 1k,
//! 10k and 100k streams: page sizes, scrape time plain and gzip, resident
//! memory added by 1 and by 32 concurrent scrapes, and ingest throughput
//! alone and during back-to-back gzip scrapes (Prometheus on its own
//! listener, as in production). Every phase is bounded in time.
//! `cargo bench --bench scrape_load`.
//!
//! `cargo bench --bench scrape_load -- worst-case` instead measures the
//! peak RSS at the default caps: every stream, series and dedup entry the
//! defaults allow, 128-byte labels, then 32 concurrent scrapes.
use css_push_exporter::callback_body::{event, frame_gap_detail, Lifecycle, PushError};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long each ingest phase runs, and how many rounds alternate.
const PHASE: Duration = Duration::from_secs(3);
const ROUNDS: usize = 3;
/// Connections posting at once: enough that the server never waits for a
/// client (on a VM, waking an idle CPU costs more than the request).
const CLIENTS: usize = 8;

struct Exporter {
    child: Child,
    addr: String,
    metrics_addr: String,
}

impl Exporter {
    fn start(flags: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_css-push-exporter"))
            .args(["--listen-address", "127.0.0.1:0", "--metrics-listen-address", "127.0.0.1:0"])
            .args(["--log-level", "info"])
            .args(flags)
            .env_remove("CSS_PUSH_CALLBACK_KEY")
            .stderr(Stdio::piped())
            .spawn()
            .expect("the release binary starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (addr, metrics_addr) = loop {
            let line = lines.next().expect("the binary logs where it listens").unwrap();
            if let Some(rest) = line.split("listening for callbacks on ").nth(1) {
                let (a, m) = rest.split_once(", serving /metrics on ").unwrap();
                break (a.to_owned(), m.to_owned());
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, addr, metrics_addr }
    }

    fn memory_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").unwrap();
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP/1.1 connection that reads answers by Content-Length.
struct Conn(BufReader<TcpStream>);

impl Conn {
    fn open(addr: &str) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.set_nodelay(true).unwrap();
        Self(BufReader::new(s))
    }

    fn call(&mut self, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\n\r\n", body.len())
                .into_bytes();
        request.extend_from_slice(body);
        self.0.get_mut().write_all(&request).unwrap();
        let mut status = 0;
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.0.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(code) = line.strip_prefix("HTTP/1.1 ") {
                status = code[..3].parse().unwrap();
            } else if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut out = vec![0; length];
        self.0.read_exact(&mut out).unwrap();
        (status, out)
    }
}

fn callback(stream: u64, data_time_ms: u64) -> Vec<u8> {
    let (domain, app, name) =
        (format!("d{}.example.com", stream % 4), format!("live{}", stream % 8), format!("room-{stream:06}"));
    PushError::new(&domain, &app, &name, data_time_ms.cast_signed())
        .events(json!([
            event(6, 3, vec![frame_gap_detail("video", 1000 + stream % 5000, None)]),
            event(7, 2, vec![frame_gap_detail("audio", 1200 + stream % 3000, None)]),
            event(3, 1, vec![]),
        ]))
        .body()
        .into_bytes()
}

/// Posts `body(i)` for i = 0, 1, ... from [`CLIENTS`] keep-alive
/// connections until `stop(i)`; returns how many were posted.
fn post_until(addr: &str, body: impl Fn(u64) -> Vec<u8> + Sync, stop: impl Fn(u64) -> bool + Sync) -> u64 {
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            let (next, body, stop) = (&next, &body, &stop);
            s.spawn(move || {
                let mut conn = Conn::open(addr);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if stop(i) {
                        break;
                    }
                    assert_eq!(conn.call("POST", "/callback", "", &body(i)).0, 200);
                }
            });
        }
    });
    // Each client's last index was not posted.
    next.into_inner() - CLIENTS as u64
}

/// Callbacks spread over `streams`, the i-th with `data_time` `first_time + i`.
fn ingest(addr: &str, streams: usize, first_time: u64, stop: impl Fn(u64) -> bool + Sync) -> u64 {
    post_until(addr, |i| callback(i % streams as u64, first_time + i), stop)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn scrape_ms(exporter: &Exporter, gzip: bool) -> (f64, usize) {
    let addr = &exporter.metrics_addr;
    let mut conn = Conn::open(addr);
    let headers = if gzip { "Accept-Encoding: gzip\r\n" } else { "" };
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let (status, body) = conn.call("GET", "/metrics", headers, b"");
        let took = t.elapsed();
        times.push(took.as_secs_f64() * 1000.0);
        assert_eq!(status, 200);
        size = body.len();
        // Past the time a slow render's page is reused: every scrape renders.
        std::thread::sleep(took * 2);
    }
    (median(times), size)
}

/// Peak RSS added (kB) by `n` concurrent scrapes (every other one gzipped).
fn peak_added_kb(exporter: &Exporter, n: usize) -> u64 {
    std::thread::sleep(Duration::from_millis(500));
    let base = exporter.memory_kb("VmRSS");
    exporter.reset_peak();
    std::thread::scope(|s| {
        for i in 0..n {
            let headers = if i % 2 == 1 { "Accept-Encoding: gzip\r\n" } else { "" };
            s.spawn(move || {
                assert_eq!(Conn::open(&exporter.metrics_addr).call("GET", "/metrics", headers, b"").0, 200)
            });
        }
    });
    exporter.memory_kb("VmHWM").saturating_sub(base)
}

/// A label value of exactly 128 bytes (the default --max-label-length).
fn label(prefix: &str, i: u64) -> String {
    format!("{prefix}{i:07}{}", "x".repeat(128 - prefix.len() - 7))
}

fn worst_case() {
    let exporter = Exporter::start(&[]);
    let t = Instant::now();
    // 50 000 streams (--max-streams) over 1000 pairs (--max-apps), each
    // with every error type: the series budget fills, the rest overflows.
    let gap = frame_gap_detail("video", 3046, None);
    let types: Vec<Value> = (0..=99).map(|t| event(t, 1, vec![gap.clone()])).collect();
    let report = |domain: u64, stream: u64, data_time: u64, events: &[Value]| {
        PushError::new(&label("d", domain), &label("a", domain), &label("s", stream), data_time.cast_signed())
            .events(Value::Array(events.to_vec()))
            .body()
            .into_bytes()
    };
    let full = |i: u64| report(i % 1000, i, 1_764_000_000_000 + i, &types);
    post_until(&exporter.addr, full, |i| i >= 50_000);
    // Then fill the dedup memory (--dedup-capacity, 2 000 000).
    let one_late_frame = [event(6, 1, vec![])];
    let small = |i: u64| report(i % 1000, i % 50_000, 1_800_000_000_000 + i, &one_late_frame);
    post_until(&exporter.addr, small, |i| i >= 1_850_000);
    // Push ends with every errcode label value (0-99, other) in every pair.
    let end = |i: u64| {
        let (domain, app, stream) = (label("d", i % 1000), label("a", i % 1000), label("s", i % 50_000));
        Lifecycle::start(&domain, &app, &stream, &i.to_string(), 1_764_000_000 + i)
            .end(60_000, (i / 1000).cast_signed(), "ok")
            .body()
            .into_bytes()
    };
    post_until(&exporter.addr, end, |i| i >= 101_000);
    let ingest_secs = t.elapsed().as_secs();
    let after_ingest = exporter.memory_kb("VmHWM");
    let mut conn = Conn::open(&exporter.metrics_addr);
    let (_, page) = conn.call("GET", "/metrics", "", b"");
    let text = String::from_utf8_lossy(&page);
    let gauge = |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap_or(name).to_owned();
    println!("ingest: {ingest_secs} s, peak RSS {} MB", after_ingest / 1024);
    println!(
        "page: {:.1} MB; {}; {}; {}",
        page.len() as f64 / 1e6,
        gauge("css_push_series "),
        gauge("css_push_streams "),
        gauge("css_push_dedup_entries ")
    );
    let added = peak_added_kb(&exporter, 32);
    println!(
        "RSS before 32 scrapes {} MB, peak during {} MB (+{} MB)",
        exporter.memory_kb("VmRSS") / 1024,
        exporter.memory_kb("VmHWM") / 1024,
        added / 1024
    );
    println!("worst-case peak RSS: {} MB", exporter.memory_kb("VmHWM").max(after_ingest) / 1024);
}

fn main() {
    // `cargo test --benches` runs benches once in test mode: nothing to do.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    if std::env::args().any(|a| a == "worst-case") {
        return worst_case();
    }
    let started = 1_764_000_000_000;
    println!("| streams | page | gzip page | scrape plain | scrape gzip | RSS +1 scrape | RSS +32 scrapes | ingest alone | during gzip scrapes | ratio |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for streams in [1_000, 10_000, 100_000] {
        let exporter = Exporter::start(&["--max-streams", "200000", "--max-series", "2000000", "--workers", "1"]);
        let n = streams as u64;
        ingest(&exporter.addr, streams, started, |done| done >= n);
        let (plain_ms, plain_size) = scrape_ms(&exporter, false);
        let (gzip_ms, gzip_size) = scrape_ms(&exporter, true);
        let one = peak_added_kb(&exporter, 1);
        let many = peak_added_kb(&exporter, 32);

        // Alternating rounds, medians: the machine is shared and noisy.
        let (mut alone, mut during, mut scrapes) = (Vec::new(), Vec::new(), 0);
        for round in 0..ROUNDS as u64 {
            let t = Instant::now();
            let first = started + (2 * round + 1) * 10_000_000;
            alone.push(ingest(&exporter.addr, streams, first, |_| t.elapsed() >= PHASE) as f64 / PHASE.as_secs_f64());
            let scraping = AtomicBool::new(true);
            let scraped = AtomicU64::new(0);
            during.push(std::thread::scope(|s| {
                s.spawn(|| {
                    let mut conn = Conn::open(&exporter.metrics_addr);
                    while scraping.load(Ordering::Relaxed) {
                        assert_eq!(conn.call("GET", "/metrics", "Accept-Encoding: gzip\r\n", b"").0, 200);
                        scraped.fetch_add(1, Ordering::Relaxed);
                    }
                });
                let t = Instant::now();
                let done = ingest(&exporter.addr, streams, first + 10_000_000, |_| t.elapsed() >= PHASE);
                scraping.store(false, Ordering::Relaxed);
                done as f64 / PHASE.as_secs_f64()
            }));
            scrapes += scraped.into_inner();
        }
        let (alone, during) = (median(alone), median(during));
        println!(
            "| {streams} | {:.1} MB | {:.2} MB | {plain_ms:.1} ms | {gzip_ms:.1} ms | {:.1} MB | {:.1} MB | {alone:.0}/s | {during:.0}/s ({} scrapes) | {:.2} |",
            plain_size as f64 / 1e6,
            gzip_size as f64 / 1e6,
            one as f64 / 1024.0,
            many as f64 / 1024.0,
            scrapes,
            during / alone
        );
    }
}
