//! The per-callback cost in process: parse, verify, de-duplicate, record.
//! `cargo bench --bench hot_path`; figures in BENCHMARKS.md. For
//! `valgrind --tool=callgrind` it runs only a fixed workload, so
//! instructions per callback read off one profile: `HOT_PATH_CALLGRIND=1`
//! pushes joined to their sessions, `HOT_PATH_CALLGRIND=seed` the seed
//! callback of known streams, parsed, handled and retried,
//! `HOT_PATH_CALLGRIND=memory` new identities into a full duplicate memory
//! and new bodies into the retry table, at `--dedup-capacity` (for
//! `valgrind --tool=cachegrind --cache-sim=yes`: their cache misses).
use criterion::{criterion_group, BatchSize, Criterion};
use css_push_exporter::callback_body;
use css_push_exporter::clock::{Clock, ManualClock, SystemClock};
use css_push_exporter::ingest::outcome::Outcome;
use css_push_exporter::ingest::retries::{Remembered, Retries};
use css_push_exporter::ingest::wire;
use css_push_exporter::state::dedup::{Dedup, Seen};
use css_push_exporter::Config;
use css_push_exporter::Exporter;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts allocations, to report how many one callback costs, and the
/// bytes held, to report memory per push session.
struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static HELD: AtomicI64 = AtomicI64::new(0);

#[allow(unsafe_code, reason = "a global allocator is an unsafe trait; this one only counts, then delegates")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        HELD.fetch_add(layout.size().cast_signed() as i64, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size().cast_signed() as i64, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[path = "support/seed.rs"]
mod seed;
use seed::{seed_body, DATA_TIME_MS, KEY, SEED};

/// The seed callback as stream `n % 1000` at report `n`, signed. Built by
/// patching digits into a template, so making one costs next to nothing
/// beside handling it.
struct Bodies {
    template: Vec<u8>,
    time_at: usize,
    stream_at: usize,
}

impl Bodies {
    fn new() -> Self {
        // Valid for the whole run: --max-signature-validity is 14 minutes.
        let template = seed_body(SystemClock.now_secs().cast_signed() + 600);
        let find = |needle: &str| template.windows(needle.len()).position(|w| w == needle.as_bytes()).unwrap();
        let time_at = find(&DATA_TIME_MS.to_string());
        let stream_at = find("stream-000") + "stream-".len();
        Self { template, time_at, stream_at }
    }

    fn get(&self, n: u64) -> Vec<u8> {
        let mut body = self.template.clone();
        let time = format!("{}", DATA_TIME_MS + n.cast_signed());
        body[self.time_at..self.time_at + 13].copy_from_slice(time.as_bytes());
        let stream = format!("{:03}", n % 1000);
        body[self.stream_at..self.stream_at + 3].copy_from_slice(stream.as_bytes());
        body
    }
}

fn pipeline() -> Exporter {
    let config = Config::from_flags(["--callback-key", KEY]).unwrap();
    Exporter::new(&config, Arc::new(SystemClock) as Arc<dyn Clock>)
}

fn bench(c: &mut Criterion) {
    let bodies = Bodies::new();
    let body = bodies.get(0);
    c.bench_function("parse seed", |b| b.iter(|| wire::push_error_in_one_pass(&body).unwrap().abnormal_event.len()));

    let p = pipeline();
    each_new_body(c, "handle seed (parse, verify, dedup, record)", &bodies, |body| {
        assert_eq!(p.handle(&body, None).outcome, Outcome::Accepted);
    });

    let p = pipeline();
    p.handle(&body, None);
    c.bench_function("handle seed retry (duplicate)", |b| {
        b.iter(|| assert_eq!(p.handle(&body, None).outcome, Outcome::Duplicate))
    });

    let (memory, mut n) = (full_memory(), 0);
    c.bench_function("new identity into the full duplicate memory", |b| {
        b.iter(|| {
            n += 1;
            memory.check_and_insert(identity(n), T0)
        })
    });
    let retries = Retries::new(dedup_capacity());
    each_new_body(c, "new body into the retry table", &bodies, |body| retry_probes(&retries, &[body]));
}

/// Benches `f` on a new seed report each time (its body made outside the timing).
fn each_new_body(c: &mut Criterion, name: &str, bodies: &Bodies, mut f: impl FnMut(Vec<u8>)) {
    let mut n = 0;
    c.bench_function(name, |b| {
        b.iter_batched(
            || {
                n += 1;
                bodies.get(n)
            },
            &mut f,
            BatchSize::SmallInput,
        )
    });
}

/// `--dedup-capacity` as configured (`CSS_PUSH_DEDUP_CAPACITY` or its default).
fn dedup_capacity() -> usize {
    Config::from_flags(["--callback-key", KEY]).unwrap().dedup_capacity
}

/// The `n`th of distinct identities, spread as keyed hashes are.
fn identity(n: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64(&n.to_le_bytes())
}

/// A duplicate memory of `--dedup-capacity`, full: every new identity
/// evicts the oldest, as at a steady rate above capacity ÷ window.
fn full_memory() -> Dedup {
    let memory = Dedup::with_seed(900, dedup_capacity(), 1);
    // Not through `new_identities`, so that it counts the measured ones only.
    for n in 1u64 << 40..(1 << 40) + u64::try_from(memory.capacity()).unwrap() {
        memory.check_and_insert(identity(n), T0);
    }
    memory
}

/// Adds each identity, a new one.
#[inline(never)]
fn new_identities(memory: &Dedup, numbers: std::ops::Range<u64>) {
    for n in numbers {
        assert!(matches!(memory.check_and_insert(identity(n), T0), Seen::First { .. }));
    }
}

/// Looks each body up in the retry table, and remembers it.
#[inline(never)]
fn retry_probes(retries: &Retries, bodies: &[Vec<u8>]) {
    for body in bodies {
        let probe = retries.probe(body);
        assert_eq!(probe.found, None);
        retries.remember(&probe, Remembered { t: Some(1), identity: 1 });
    }
}

/// For cachegrind: 100 000 new identities into a full duplicate memory
/// and 100 000 new bodies into the retry table, at `--dedup-capacity`;
/// `new_identities` (after the fill) and `retry_probes` are the entry
/// points to read.
fn memory_callgrind() {
    let memory = full_memory();
    new_identities(&memory, 0..100_000);
    let retries = Retries::new(dedup_capacity());
    let template = Bodies::new();
    let bodies: Vec<_> = (1..=100_000).map(|n| template.get(n)).collect();
    retry_probes(&retries, &bodies);
}

/// Allocations of one accepted callback, once its stream and labels exist,
/// and of one retry.
fn allocations_per_callback() {
    let p = pipeline();
    let template = Bodies::new();
    let bodies: Vec<_> = (1..=2000).map(|n| template.get(n)).collect();
    known_streams(&p, &bodies[..1000]); // creates the 1000 streams and their series
    let counted = |f: &dyn Fn()| {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        f();
        (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / 1000.0
    };
    let accepted = counted(&|| known_streams(&p, &bodies[1000..]));
    let retried = counted(&|| retries(&p, &bodies[1000..]));
    println!("allocations per accepted seed callback (known stream): {accepted:.1}; per retry: {retried:.1}");
}

/// Handles each body, a new report of a stream seen before.
#[inline(never)]
fn known_streams(p: &Exporter, bodies: &[Vec<u8>]) {
    for body in bodies {
        assert_eq!(p.handle(body, None).outcome, Outcome::Accepted);
    }
}

/// Handles each body again.
#[inline(never)]
fn retries(p: &Exporter, bodies: &[Vec<u8>]) {
    for body in bodies {
        assert_eq!(p.handle(body, None).outcome, Outcome::Duplicate);
    }
}

/// Parses each body, and nothing else.
#[inline(never)]
fn parses(bodies: &[Vec<u8>]) {
    for body in bodies {
        assert_eq!(wire::push_error_in_one_pass(body).map(|p| p.abnormal_event.len()), Some(2));
    }
}

/// For callgrind: 10 000 parses, 10 000 accepted callbacks of known
/// streams, then 10 000 retries; `parses`, `known_streams` and `retries`
/// are the entry points to read.
fn callgrind() {
    let p = pipeline();
    let template = Bodies::new();
    let bodies: Vec<_> = (1..=11_000).map(|n| template.get(n)).collect();
    // Not through `known_streams`, so that it counts known streams only.
    for body in &bodies[..1000] {
        p.handle(body, None); // creates the 1000 streams and their series
    }
    parses(&bodies[1000..]);
    known_streams(&p, &bodies[1000..]);
    retries(&p, &bodies[1000..]);
}

const T0: u64 = 1_764_000_000;

/// Streams pushing through `nodes` CSS access nodes (set_id 2), each with
/// one session, on a manual clock; their push error reports (the seed's
/// late video and audio frames, bad for the SLO) name that session.
struct Sessions {
    exporter: Exporter,
    clock: Arc<ManualClock>,
    streams: u64,
    report: serde_json::Value,
    n: u64,
}

impl Sessions {
    fn start(streams: u64, nodes: u64, flags: &[&str]) -> Self {
        let config = Config::from_flags(["--callback-key", KEY].iter().chain(flags).copied()).unwrap();
        let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
        let exporter = Exporter::new(&config, clock.clone() as Arc<dyn Clock>);
        let t = (T0 + 600).cast_signed();
        for s in 0..streams {
            let mut start = serde_json::json!({"event_type": 1, "app": "d", "appname": "live",
                "stream_id": format!("s{s}"), "sequence": format!("q{s}"), "event_time": T0, "set_id": 2,
                "node": format!("198.51.{}.{}", (s % nodes) / 256, (s % nodes) % 256), "user_ip": "192.0.2.1"});
            callback_body::sign_json(&mut start, KEY, t);
            assert_eq!(exporter.handle(start.to_string().as_bytes(), None).outcome, Outcome::Accepted);
        }
        let mut report: serde_json::Value = serde_json::from_str(SEED).unwrap();
        report["domain"] = "d".into();
        report["path"] = "live".into();
        callback_body::sign_json(&mut report, KEY, t);
        Self { exporter, clock, streams, report, n: 0 }
    }

    /// The next report: every stream in turn, each 5 s of the clock after its last.
    fn next(&mut self) -> Vec<u8> {
        let (s, round) = (self.n % self.streams, self.n / self.streams);
        if s == 0 {
            self.clock.advance(Duration::from_secs(5));
        }
        self.n += 1;
        self.report["stream_id"] = format!("s{s}").into();
        self.report["sequence"] = format!("q{s}").into();
        self.report["data_time"] = ((T0 + 5 * (round + 1)) * 1000).into();
        self.report.to_string().into_bytes()
    }
}

/// Bytes the exporter holds per push session (its lifecycle record, the
/// stream's liveness, any node breakdown and its stream history), pushing
/// through 100 nodes; and without stream histories, to tell their share.
fn memory_per_sessions(sessions: u64) {
    for (flags, what) in [(&[][..], "with stream histories"), (&["--timeline-max-bytes", "0"][..], "without")] {
        let before = HELD.load(Ordering::Relaxed);
        let pushing = Sessions::start(sessions, 100, flags);
        let held = HELD.load(Ordering::Relaxed) - before;
        println!(
            "memory of {sessions} push sessions on 100 nodes, {what}: {:.1} MB, {} bytes per session",
            held as f64 / 1e6,
            held / sessions.cast_signed()
        );
        drop(pushing);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}

fn main() {
    // Under callgrind: a fixed workload and nothing else, so the instruction
    // counts of Exporter::handle (and of each observer) read off one profile.
    match std::env::var("HOT_PATH_CALLGRIND").as_deref() {
        Ok("seed") => return callgrind(),
        Ok("memory") => return memory_callgrind(),
        Ok(_) => {
            let mut pushing = Sessions::start(1000, 50, &[]);
            for _ in 0..20_000 {
                let body = pushing.next();
                assert_eq!(pushing.exporter.handle(&body, None).outcome, Outcome::Accepted);
            }
            return;
        }
        Err(_) => {}
    }
    allocations_per_callback();
    memory_per_sessions(100_000);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
