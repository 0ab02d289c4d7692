//! The state file at fleet size: 100 000 live streams (each with per-stream
//! gauges) and 1 000 000 remembered callbacks. Prints the snapshot write
//! time, the load time, the file size, and ingest latency (p50/p99) with
//! and without a snapshot being written at the same time.
//! The load is timed twice: the file as written, and the same state without
//! the streams' histories (section 6 emptied). `cargo bench --bench snapshot
//! -- load` stops after the load figures. Figures in BENCHMARKS.md. Bounded: a fixed
//! number of callbacks and rounds, a temporary directory, no network.
use css_push_exporter::callback_body::{event, frame_gap_detail, Lifecycle, PushError};
use css_push_exporter::clock::{Clock, ManualClock};
use css_push_exporter::ingest::outcome::Outcome;
use css_push_exporter::state::persist::{write_atomic, Loaded};
use css_push_exporter::state::snapshot::StateSnapshot;
use css_push_exporter::{Config, Exporter};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOW_SECS: u64 = 1_764_000_000;
const STREAMS: u64 = 100_000;
const REMEMBERED: u64 = 1_000_000;
/// Callbacks timed per ingest round.
const INGEST: u64 = 100_000;
const ROUNDS: usize = 5;

fn push_start(i: u64) -> String {
    let (domain, app, stream) = names(i);
    Lifecycle::start(&domain, &app, &stream, &(i * 7919).to_string(), NOW_SECS).body()
}

/// Report `n` of stream `n % STREAMS`: a video frame gap.
fn push_error(n: u64) -> String {
    let (domain, app, stream) = names(n % STREAMS);
    let gap = frame_gap_detail("video", 1000 + n % 5000, None);
    PushError::new(&domain, &app, &stream, (NOW_SECS * 1000 + n).cast_signed())
        .sequence("1")
        .events(serde_json::json!([event(6, 2, vec![gap])]))
        .body()
}

/// Domain, app and stream of stream `i`.
fn names(i: u64) -> (String, String, String) {
    (format!("d{}.example.com", i % 4), format!("live{}", i % 25), format!("room-{i:06}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Handles `INGEST` new push errors from `first` on; each one's latency, sorted.
fn ingest(exporter: &Exporter, first: u64) -> Vec<Duration> {
    let mut took = Vec::new();
    for n in first..first + INGEST {
        let body = push_error(n);
        let started = Instant::now();
        let handled = exporter.handle(body.as_bytes(), None);
        took.push(started.elapsed());
        assert_eq!(handled.outcome, Outcome::Accepted);
    }
    took.sort();
    took
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "an index into a short vector")]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// CPU seconds the process has used, all its threads (user and system),
/// to the kernel's clock tick (10 ms here).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // After the command's closing parenthesis: utime and stime are the 12th and 13th fields.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11..13].iter().map(|f| f.parse::<f64>().unwrap()).sum();
    ticks / 100.0
}

/// `ROUNDS` loads of the file at `path` (read, check, restore): each one's
/// wall and CPU seconds (all threads: the machine is shared, so wall time
/// waits for cores), and how many callbacks came back remembered.
fn load(config: &Config, clock: &Arc<dyn Clock>, path: &Path, histories: u64) -> (Vec<f64>, Vec<f64>, usize) {
    let (mut loads, mut cpu) = (Vec::new(), Vec::new());
    let mut remembered = 0;
    for _ in 0..ROUNDS {
        let cpu_before = cpu_secs();
        let started = Instant::now();
        let bytes = std::fs::read(path).unwrap();
        let loaded = Loaded { snapshot: StateSnapshot::decode(&bytes).unwrap(), journal: Vec::new(), moved_aside: 0 };
        let slos = vec![css_push_exporter::slo::Slo::push_health()];
        let (restored, r) = Exporter::restored(config, slos, clock.clone(), loaded);
        loads.push(started.elapsed().as_secs_f64());
        cpu.push(cpu_secs() - cpu_before);
        assert_eq!((r.streams as u64, r.live as u64, r.histories as u64), (STREAMS, STREAMS, histories));
        remembered = r.dedup_entries;
        assert_eq!(remembered as u64, REMEMBERED);
        // Freeing a million entries is not part of loading.
        std::mem::forget(restored);
    }
    (loads, cpu, remembered)
}

/// Copies the state file at `from` to `to` with its last section (the
/// streams' histories) emptied and the checksum written again; its size.
fn write_without_histories(from: &Path, to: &Path) -> usize {
    let bytes = std::fs::read(from).unwrap();
    // Magic, version, written at; then five sections of tag, length, payload.
    let mut at = 8 + 4 + 8;
    for _ in 0..5 {
        let len = u64::from_le_bytes(bytes[at + 1..at + 9].try_into().unwrap());
        at += 9 + usize::try_from(len).unwrap();
    }
    assert_eq!(bytes[at], 6, "the histories come sixth");
    let mut out = bytes[..at].to_vec();
    out.push(6);
    out.extend_from_slice(&0u64.to_le_bytes());
    let checksum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    write_atomic(to, &out).expect("written");
    out.len()
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("state");
    let path_flag = path.to_str().unwrap().to_owned();
    let config = Config::from_flags([
        "--max-streams",
        "100000",
        "--dedup-capacity",
        "2000000",
        "--max-apps",
        "1000",
        "--state-file",
        &path_flag,
    ])
    .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Duration::from_secs(NOW_SECS)));
    let exporter = Exporter::new(&config, clock.clone());
    let filling = Instant::now();
    for i in 0..STREAMS {
        assert_eq!(exporter.handle(push_start(i).as_bytes(), None).outcome, Outcome::Accepted);
    }
    for n in 0..REMEMBERED - STREAMS {
        assert_eq!(exporter.handle(push_error(n).as_bytes(), None).outcome, Outcome::Accepted);
    }
    eprintln!("filled in {:.1} s", filling.elapsed().as_secs_f64());

    let mut writes = Vec::new();
    let mut captures = Vec::new();
    let mut size = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let bytes = exporter.snapshot();
        captures.push(started.elapsed().as_secs_f64());
        drop(bytes);
        let started = Instant::now();
        let bytes = exporter.snapshot().bytes;
        write_atomic(&path, &bytes).expect("written");
        size = bytes.len();
        writes.push(started.elapsed().as_secs_f64());
    }

    let bare = dir.path().join("state-without-histories");
    let bare_size = write_without_histories(&path, &bare);
    let (loads, cpu, remembered) = load(&config, &clock, &path, STREAMS);
    let (bare_loads, bare_cpu, _) = load(&config, &clock, &bare, 0);
    println!("state file: {STREAMS} live streams, {remembered} remembered callbacks");
    println!("  file size            {:.1} MB ({size} bytes)", size as f64 / 1e6);
    println!("  copy into bytes      median {:.0} ms", median(captures) * 1e3);
    println!("  write (copy, fsync, rename) median {:.0} ms", median(writes) * 1e3);
    println!("  load (read, check, restore) median {:.0} ms ({:.0} ms CPU)", median(loads) * 1e3, median(cpu) * 1e3);
    println!(
        "  without histories: file {:.1} MB, load median {:.0} ms ({:.0} ms CPU)",
        bare_size as f64 / 1e6,
        median(bare_loads) * 1e3,
        median(bare_cpu) * 1e3
    );
    if std::env::args().any(|a| a == "load") {
        return;
    }

    // Ingest alone, then with snapshots written back to back, alternating
    // (each round adds new callbacks: the memory grows toward 2 000 000).
    let mut next = REMEMBERED;
    let (mut quiet, mut busy) = (Vec::new(), Vec::new());
    let (mut quiet_p50, mut busy_p50) = (Vec::new(), Vec::new());
    let (mut quiet_max, mut busy_max) = (Vec::new(), Vec::new());
    let mut written_meanwhile = 0;
    for _ in 0..ROUNDS {
        let took = ingest(&exporter, next);
        next += INGEST;
        quiet.push(percentile(&took, 0.99));
        quiet_p50.push(percentile(&took, 0.5));
        quiet_max.push(percentile(&took, 1.0));

        let writing = AtomicBool::new(true);
        let took = std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                let mut n = 0;
                while writing.load(Ordering::Relaxed) {
                    write_atomic(&path, &exporter.snapshot().bytes).expect("written");
                    n += 1;
                }
                n
            });
            let took = ingest(&exporter, next);
            writing.store(false, Ordering::Relaxed);
            written_meanwhile += writer.join().unwrap();
            took
        });
        next += INGEST;
        busy.push(percentile(&took, 0.99));
        busy_p50.push(percentile(&took, 0.5));
        busy_max.push(percentile(&took, 1.0));
    }

    let (q, b) = (median(quiet), median(busy));
    println!(
        "  ingest p50 / p99 / max alone          {:.1} / {:.1} / {:.0} us",
        median(quiet_p50),
        q,
        median(quiet_max)
    );
    println!(
        "  ingest p50 / p99 / max while writing  {:.1} / {:.1} / {:.0} us ({written_meanwhile} snapshots in {ROUNDS} rounds)",
        median(busy_p50),
        b,
        median(busy_max)
    );
    println!("  p99 ratio while writing / alone: {:.2}", b / q);
}
