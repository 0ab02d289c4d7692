//! What the lifecycle journal costs ingest: push starts and ends handled in
//! process with `--state-file` (each numbered and handed to the journal's
//! channel, drained by a thread as the persister's is) and without.
//! `cargo bench --bench journal`; figures in BENCHMARKS.md. Bounded: a
//! fixed number of callbacks and rounds, no disk, no network.
use css_push_exporter::callback_body::Lifecycle;
use css_push_exporter::clock::{Clock, ManualClock};
use css_push_exporter::ingest::outcome::Outcome;
use css_push_exporter::{Config, Exporter};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOW_SECS: u64 = 1_764_000_000;
const STREAMS: u64 = 10_000;
/// Callbacks per round: a start and an end per session.
const CALLBACKS: u64 = 200_000;
const ROUNDS: usize = 11;

/// Callback `n`: session `n / 2` of stream `n / 2 % STREAMS`, started or ended.
fn lifecycle(n: u64) -> String {
    let session = n / 2;
    let stream = format!("room-{:05}", session % STREAMS);
    let start = Lifecycle::start("d.example.com", "live", &stream, &session.to_string(), NOW_SECS);
    if n.is_multiple_of(2) { start } else { start.end(60_000, 0, "ok") }.body()
}

/// Nanoseconds per callback in one round with `flags`.
fn per_callback(flags: &[&str], bodies: &[String]) -> f64 {
    let config = Config::from_flags(flags.iter().copied()).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Duration::from_secs(NOW_SECS)));
    let exporter = Exporter::new(&config, clock);
    let pending = exporter.take_journal();
    let running = AtomicBool::new(true);
    let took = std::thread::scope(|scope| {
        if let Some(pending) = pending {
            let running = &running;
            scope.spawn(move || {
                while running.load(Ordering::Relaxed) {
                    pending.drain(usize::MAX);
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        }
        let started = Instant::now();
        for body in bodies {
            assert_eq!(exporter.handle(body.as_bytes(), None).outcome, Outcome::Accepted);
        }
        let took = started.elapsed();
        running.store(false, Ordering::Relaxed);
        took
    });
    took.as_secs_f64() * 1e9 / bodies.len() as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let bodies: Vec<String> = (0..CALLBACKS).map(lifecycle).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let journalled = ["--state-file", path.to_str().unwrap()];
    // Alternating, so the machine's moods fall on both alike.
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            without.push(per_callback(&[], &bodies));
            with.push(per_callback(&journalled, &bodies));
        } else {
            with.push(per_callback(&journalled, &bodies));
            without.push(per_callback(&[], &bodies));
        }
    }
    let (without, with) = (median(without), median(with));
    println!("push start/end, no --state-file:   {without:.0} ns per callback (median of {ROUNDS})");
    println!("push start/end, journalled:         {with:.0} ns per callback (median of {ROUNDS})");
    println!("journal cost:                       {:+.0} ns per callback", with - without);
}
