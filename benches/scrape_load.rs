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
//!
//! Under attack, at 50 000 streams: `-- storms` (32 rounds of 32 concurrent
//! scrapes: peak RSS, and RSS after 30 s of quiet), `-- stalled` (40
//! scrapers that never read: RSS while they hang on, after the write
//! deadline, and how long SIGTERM then takes), `-- auth-flood` (64 clients
//! sending wrong basic-auth passwords for 10 s: callback latency on the
//! callback listener, CPU, threads, and a login that was never cached).
//! `CSS_PUSH_EXPORTER_BIN=path` measures another build instead, to compare.
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
        let binary = std::env::var("CSS_PUSH_EXPORTER_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_css-push-exporter").to_owned());
        let mut child = Command::new(binary)
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

    /// CPU seconds used so far (user and system).
    fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0
    }

    /// SIGTERM, then how long the process took to exit (at most 60 s).
    fn terminate(&mut self) -> Duration {
        let t = Instant::now();
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        while self.child.try_wait().unwrap().is_none() && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
        t.elapsed()
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
        Self::ready(TcpStream::connect(addr).unwrap())
    }

    /// A connection from `source`, one of the loopback addresses (all of
    /// 127/8 is local on Linux), so one process can be many clients.
    fn open_from(addr: &str, source: [u8; 4]) -> Self {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&std::net::SocketAddr::from((source, 0)).into()).unwrap();
        socket.connect(&addr.parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
        Self::ready(socket.into())
    }

    fn ready(s: TcpStream) -> Self {
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

const STREAMS: usize = 50_000;
const STARTED: u64 = 1_764_000_000_000;

/// An exporter holding 50 000 streams (a page of about 19 MB).
fn full_exporter(flags: &[&str]) -> Exporter {
    let exporter = Exporter::start(flags);
    ingest(&exporter.addr, STREAMS, STARTED, |i| i >= STREAMS as u64);
    exporter
}

/// One more callback, so the next scrape renders a page of its own.
fn touch(exporter: &Exporter, i: u64) {
    let mut conn = Conn::open(&exporter.addr);
    assert_eq!(conn.call("POST", "/callback", "", &callback(0, STARTED + 1_000_000 + i)).0, 200);
}

fn mb(kb: u64) -> u64 {
    kb / 1024
}

fn storms() {
    let exporter = full_exporter(&[]);
    let page = Conn::open(&exporter.metrics_addr).call("GET", "/metrics", "", b"").1.len();
    std::thread::sleep(Duration::from_secs(1));
    let before = exporter.memory_kb("VmRSS");
    exporter.reset_peak();
    for round in 0..32 {
        touch(&exporter, round);
        std::thread::scope(|s| {
            for _ in 0..32 {
                s.spawn(|| assert_eq!(Conn::open(&exporter.metrics_addr).call("GET", "/metrics", "", b"").0, 200));
            }
        });
    }
    let (peak, after) = (exporter.memory_kb("VmHWM"), exporter.memory_kb("VmRSS"));
    std::thread::sleep(Duration::from_secs(30));
    println!(
        "storms: page {:.1} MB; RSS before {} MB, peak {} MB, after 32 rounds of 32 scrapes {} MB, after 30 s quiet {} MB",
        page as f64 / 1e6,
        mb(before),
        mb(peak),
        mb(after),
        mb(exporter.memory_kb("VmRSS"))
    );
}

fn stalled() {
    let mut exporter = full_exporter(&[]);
    std::thread::sleep(Duration::from_secs(1));
    let before = exporter.memory_kb("VmRSS");
    exporter.reset_peak();
    let stalled: Vec<TcpStream> = (0..40)
        .map(|i| {
            touch(&exporter, i);
            // A tiny receive buffer, and never a read.
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket.connect(&exporter.metrics_addr.parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
            let mut conn: TcpStream = socket.into();
            conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            std::thread::sleep(Duration::from_millis(300));
            conn
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    let held = exporter.memory_kb("VmRSS");
    // Past the default --write-timeout (30 s) and the kernel's probes.
    std::thread::sleep(Duration::from_secs(45));
    let after = exporter.memory_kb("VmRSS");
    let closed = stalled
        .iter()
        .filter(|&conn| {
            conn.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
            let mut sink = Vec::new();
            let mut conn = conn;
            let end = conn.read_to_end(&mut sink);
            !matches!(end, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
        })
        .count();
    let peak = exporter.memory_kb("VmHWM");
    let stop = exporter.terminate();
    println!(
        "stalled: RSS before {} MB, peak {} MB, 5 s after 40 stalled scrapes {} MB, 50 s after {} MB; {closed}/40 connections closed; SIGTERM took {:.1} s",
        mb(before),
        mb(peak),
        mb(held),
        mb(after),
        stop.as_secs_f64()
    );
}

fn auth_flood() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let hash = |password| bcrypt::hash(password, 10).unwrap();
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  prometheus: '{}'\n  grafana: '{}'\n", hash("s3cret"), hash("other")),
    )
    .unwrap();
    let exporter = Exporter::start(&["--web-config-file", web.to_str().unwrap()]);
    ingest(&exporter.addr, 1000, STARTED, |i| i >= 1000);
    // Callback latency on the callback listener, one at a time.
    let latencies = |for_how_long: Duration, first: u64| {
        let mut conn = Conn::open(&exporter.addr);
        let (t, mut ms) = (Instant::now(), Vec::new());
        while t.elapsed() < for_how_long {
            let sent = Instant::now();
            assert_eq!(
                conn.call("POST", "/callback", "", &callback(ms.len() as u64 % 1000, first + ms.len() as u64)).0,
                200
            );
            ms.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
        ms
    };
    let p99 = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() * 99 / 100]
    };
    let quiet = latencies(Duration::from_secs(5), STARTED + 10_000_000);
    let threads = |e: &Exporter| e.memory_kb("Threads");
    let threads_before = threads(&exporter);
    let cpu_before = exporter.cpu_secs();
    let flooding = AtomicBool::new(true);
    let (checked, throttled, max_threads) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let flood_for = Duration::from_secs(10);
    let (during, second_login) = std::thread::scope(|s| {
        for i in 0..64u8 {
            let (flooding, checked, throttled, addr) = (&flooding, &checked, &throttled, &exporter.metrics_addr);
            s.spawn(move || {
                let wrong = "Authorization: Basic cHJvbWV0aGV1czp3cm9uZw==\r\n"; // prometheus:wrong
                let mut conn = Conn::open_from(addr, [127, 0, 1, i]);
                while flooding.load(Ordering::Relaxed) {
                    match conn.call("GET", "/metrics", wrong, b"").0 {
                        401 => checked.fetch_add(1, Ordering::Relaxed),
                        429 => throttled.fetch_add(1, Ordering::Relaxed),
                        other => panic!("{other}"),
                    };
                }
            });
        }
        s.spawn(|| {
            while flooding.load(Ordering::Relaxed) {
                max_threads.fetch_max(threads(&exporter), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let second = s.spawn(|| {
            std::thread::sleep(Duration::from_secs(3));
            let t = Instant::now();
            let grafana = "Authorization: Basic Z3JhZmFuYTpvdGhlcg==\r\n"; // grafana:other
            let mut status = 0;
            // A throttled login is retried, as a client told Retry-After would.
            while status != 200 && t.elapsed() < Duration::from_secs(30) {
                status = Conn::open(&exporter.metrics_addr).call("GET", "/metrics", grafana, b"").0;
            }
            (status, t.elapsed())
        });
        let during = latencies(flood_for, STARTED + 20_000_000);
        flooding.store(false, Ordering::Relaxed);
        (during, second.join().unwrap())
    });
    let cpu = (exporter.cpu_secs() - cpu_before) / flood_for.as_secs_f64();
    let secs = flood_for.as_secs_f64();
    println!(
        "auth-flood: callback latency quiet median {:.2} ms (p99 {:.2}), during the flood median {:.2} ms (p99 {:.2}); \
         {:.0} checks/s, {:.0} throttled/s; {cpu:.2} CPU-s/s; threads {threads_before} -> {}; \
         an uncached login: {} after {:.2} s",
        median(quiet.clone()),
        p99(quiet),
        median(during.clone()),
        p99(during),
        checked.into_inner() as f64 / secs,
        throttled.into_inner() as f64 / secs,
        max_threads.into_inner(),
        second_login.0,
        second_login.1.as_secs_f64()
    );
}

fn main() {
    // `cargo test --benches` runs benches once in test mode: nothing to do.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let modes: [(&str, fn()); 4] =
        [("worst-case", worst_case), ("storms", storms), ("stalled", stalled), ("auth-flood", auth_flood)];
    if let Some((_, run)) = modes.iter().find(|(name, _)| std::env::args().any(|a| a == *name)) {
        return run();
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
