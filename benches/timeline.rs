//! What each stream's history (issue 26) costs: memory at 50 000 streams
//! with busy histories (a counting allocator, against the store's own
//! estimate), and under callgrind (`TIMELINE_BENCH_CALLGRIND=steady` or
//! `flapping`, with `TIMELINE_BENCH_HISTORIES=off` the same without
//! histories) the callbacks of a fleet whose reports extend their bad
//! intervals, or each open a new one while streams reconnect; with
//! `TIMELINE_BENCH_FLOOD=300000`, the rate of reports of never-started streams
//! with histories on, under a small cap and off. `cargo bench --bench timeline`;
//! figures in BENCHMARKS.md.
use css_push_exporter::clock::{Clock, ManualClock};
use css_push_exporter::ingest::event::{Effect, Matched, Observer, ReportAccepted, StreamId, StreamKey, Transition};
use css_push_exporter::ingest::outcome::Outcome;
use css_push_exporter::ingest::signature;
use css_push_exporter::state::limits::TimelineLimits;
use css_push_exporter::timeline::Timelines;
use css_push_exporter::{Config, Exporter};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/held.rs"]
mod held;

#[global_allocator]
static GLOBAL: held::Counting = held::Counting;

const T0: u64 = 1_764_000_000;
const KEY: &str = "bench-key";

/// One stream's busy day, told to `t` as ingest would: `sessions` push
/// sessions an hour apart, each cut off by the network after 50 minutes,
/// with `intervals` bad spells of three merged reports (types 6 and 7, a
/// frame gap) a minute apart.
fn busy_stream(t: &Timelines, name: &str, sessions: u64, intervals: u64) {
    let id = StreamId { domain: "push.example.com", app: "live", stream: name };
    let key = StreamKey::new(id, 128);
    let node = "198.51.100.20".parse().ok();
    let region = Default::default();
    for n in 0..sessions {
        let start_ms = T0 * 1000 + n * 3_600_000;
        let sequence = format!("{}{n:04}", 2_397_382_934_793_120_000u64);
        let transition = |start: bool, at_ms: u64, effect: Effect| Transition {
            stream: id,
            sent: id,
            key: &key,
            folded: false,
            session: n,
            sequence: &sequence,
            start,
            event_time: (at_ms / 1000).cast_signed(),
            node,
            region,
            errcode: (!start).then_some(13),
            cause: None,
            duration_ms: (!start).then_some(3_000_000),
            effect: Some(effect),
            at_secs: at_ms / 1000,
            at_ms,
        };
        t.transition(&transition(true, start_ms, Effect { opened: Some(start_ms), ..Effect::default() }));
        let matched = Matched { session: n, node, region, start_ms, end_ms: None, folded: false };
        for i in 0..intervals {
            for r in 0..3 {
                let at_ms = start_ms + 60_000 + i * 60_000 + r * 5000;
                report(t, id, &key, at_ms, &sequence, Some(matched));
            }
        }
        let end_ms = start_ms + 3_000_000;
        t.transition(&transition(false, end_ms, Effect { closed: Some((start_ms, end_ms)), ..Effect::default() }));
    }
}

/// A report of types 6 and 7 (a frame gap) at `at_ms` of the stream `key`,
/// in the session `matched` (none: a stream never seen to start).
fn report(t: &Timelines, id: StreamId<'_>, key: &StreamKey, at_ms: u64, sequence: &str, matched: Option<Matched>) {
    t.report(&ReportAccepted {
        sent: id,
        stream: id,
        key,
        data_time_ms: at_ms.cast_signed(),
        report_interval_ms: Some(5000),
        errors: &[(6, 2), (7, 1)],
        frame_max: [Some(3.046), None],
        delay_secs: 0.0,
        future_data_time: false,
        unparsed_details: &[],
        sequence,
        session: matched.map(|m| m.session),
        node: matched.and_then(|m| m.node),
        region: matched.map(|m| m.region).unwrap_or_default(),
        matched,
        at_secs: at_ms / 1000,
        at_ms,
    });
}

/// Bytes held per stream with such histories (`sessions` 0: one report
/// of a stream never seen to start), measured and estimated.
fn memory(streams: u64, sessions: u64, intervals: u64, max_bytes: u64) {
    let limits =
        TimelineLimits { max_sessions: 64, max_intervals: 512, max_age: Duration::from_secs(7 * 86_400), max_bytes };
    let before = held::held();
    let t = Timelines::new(&limits, 7 * 86_400);
    let started = Instant::now();
    for s in 0..streams {
        let name = format!("stream-{s:06}");
        if sessions == 0 {
            let id = StreamId { domain: "push.example.com", app: "live", stream: &name };
            report(&t, id, &StreamKey::new(id, 128), T0 * 1000 + s, "", None);
        } else {
            busy_stream(&t, &name, sessions, intervals);
        }
    }
    let elapsed = started.elapsed();
    // As the expiry timer would, once the last event is in: over the cap,
    // one oldest-first pass over every stream.
    let timer = Instant::now();
    t.expire((T0 + sessions * 3600) * 1000);
    let pass = timer.elapsed();
    let held = held::held() - before;
    let (estimate, _) = t.bytes();
    let callbacks = (streams * sessions * (2 + 3 * intervals)).max(streams);
    let mut page = String::new();
    css_push_exporter::expose::Collector::encode(&t, &mut css_push_exporter::expose::Encoder::new(&mut page));
    let dropped: Vec<&str> =
        page.lines().filter(|l| l.starts_with("css_push_timeline_dropped_total{bound=\"memory\"")).collect();
    println!(
        "{streams} streams x {sessions} sessions x {intervals} intervals (cap {max_bytes}): {} streams kept, \
         held {:.1} MB ({} bytes per stream), estimated {:.1} MB ({:.2} of held); {callbacks} events in {:.2} s, \
         then the timer's pass {:.0} ms; {dropped:?}",
        t.streams(),
        held as f64 / 1e6,
        held / streams.cast_signed(),
        estimate as f64 / 1e6,
        estimate as f64 / held as f64,
        elapsed.as_secs_f64(),
        pass.as_secs_f64() * 1000.0,
    );
}

/// Signed callbacks of 1000 live streams through the whole exporter, each
/// stream reporting every `every` seconds of a manual clock (types 6 and 7:
/// every 5 s, each report extends the stream's bad interval; every 30 s,
/// each opens a new one), and with `reconnects`, every tenth round each
/// stream cut off and pushing again (an end and a start).
struct Traffic {
    exporter: Exporter,
    clock: Arc<ManualClock>,
    every: u64,
    reconnects: bool,
    round: u64,
    /// Callbacks handled.
    handled: u64,
}

const STREAMS: u64 = 1000;

/// An exporter that checks [`KEY`]'s signatures, with `flags` besides.
fn exporter(clock: &Arc<ManualClock>, flags: &[&str]) -> Exporter {
    let config = Config::from_flags(["--callback-key", KEY].iter().chain(flags)).unwrap();
    Exporter::new(&config, clock.clone() as Arc<dyn Clock>)
}

/// Signed as CSS signs: valid for 10 minutes from `now_secs`.
fn signed(mut body: serde_json::Value, now_secs: u64) -> serde_json::Value {
    let t = (now_secs + 600).cast_signed();
    (body["t"], body["sign"]) = (t.into(), signature::sign(KEY, t).into());
    body
}

impl Traffic {
    fn new(every: u64, reconnects: bool, flags: &[&str]) -> Self {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
        let exporter = exporter(&clock, flags);
        let mut traffic = Self { exporter, clock, every, reconnects, round: 0, handled: 0 };
        for s in 0..STREAMS {
            traffic.handle(&traffic.lifecycle(1, s, 0));
        }
        traffic
    }

    fn signed(&self, body: serde_json::Value) -> serde_json::Value {
        signed(body, self.clock.now_secs())
    }

    fn lifecycle(&self, event_type: u8, stream: u64, session: u64) -> serde_json::Value {
        self.signed(serde_json::json!({"event_type": event_type, "app": "d", "appname": "live",
            "stream_id": format!("s{stream}"), "sequence": format!("q{session}"), "event_time": self.clock.now_secs(),
            "node": "198.51.100.20", "set_id": 2, "errcode": 13, "push_duration": "300000"}))
    }

    fn handle(&mut self, body: &serde_json::Value) {
        assert_eq!(self.exporter.handle(body.to_string().as_bytes(), None).outcome, Outcome::Accepted);
        self.handled += 1;
    }

    /// The next round: every stream's report, after a reconnect every tenth.
    fn round(&mut self) {
        self.clock.advance(Duration::from_secs(self.every));
        self.round += 1;
        let session = if self.reconnects { self.round / 10 } else { 0 };
        for s in 0..STREAMS {
            if self.reconnects && self.round.is_multiple_of(10) {
                self.handle(&self.lifecycle(0, s, session - 1));
                self.handle(&self.lifecycle(1, s, session));
            }
            let report = self.signed(serde_json::json!({"event_type": 321, "domain": "d", "path": "live",
                "stream_id": format!("s{s}"), "sequence": format!("q{session}"),
                "data_time": self.clock.now_secs() * 1000, "report_interval": 5000,
                "abnormal_event": [{"type": 6, "count": 2}, {"type": 7, "count": 2}]}));
            self.handle(&report);
        }
    }
}

/// Reports of never-started streams, each stream new, through the whole
/// exporter: the median rate, reports/s, of `runs` runs per setting, the
/// settings in turn (so drift hits each alike). The expiry timer's pass
/// runs every 1 000 reports, as a 20 ms timer would at 50 000/s.
fn flood(reports: usize, runs: usize) {
    const SETTINGS: [(&str, &[&str]); 3] = [
        ("histories on (default cap)", &[]),
        ("histories on, a 16 MiB cap", &["--timeline-max-bytes", "16777216"]),
        ("histories off", &["--timeline-max-bytes", "0"]),
    ];
    let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
    let bodies: Vec<String> = (0..reports)
        .map(|i| {
            let body = serde_json::json!({"event_type": 321, "domain": "d", "path": "live",
                "stream_id": format!("ghost-{i}"), "sequence": "never-started",
                "data_time": T0 * 1000 + i as u64, "report_interval": 5000,
                "abnormal_event": [{"type": 6, "count": 1}]});
            signed(body, T0).to_string()
        })
        .collect();
    let mut rates = vec![Vec::new(); SETTINGS.len()];
    let mut passes = vec![(Duration::ZERO, 0u32); SETTINGS.len()];
    for _ in 0..runs {
        for (i, (_, flags)) in SETTINGS.iter().enumerate() {
            let exporter = exporter(&clock, &[&["--dedup-capacity", "1000000"], *flags].concat());
            let started = Instant::now();
            for (n, body) in bodies.iter().enumerate() {
                assert_eq!(exporter.handle(body.as_bytes(), None).outcome, Outcome::Accepted);
                if n % 1000 == 999 {
                    let pass = Instant::now();
                    exporter.expire();
                    passes[i] = (passes[i].0 + pass.elapsed(), passes[i].1 + 1);
                }
            }
            rates[i].push(reports as f64 / started.elapsed().as_secs_f64());
        }
    }
    for ((name, _), (mut r, pass)) in SETTINGS.iter().zip(rates.into_iter().zip(passes)) {
        r.sort_by(f64::total_cmp);
        println!(
            "{reports} reports of never-started streams, {name}: median {:.0}/s (of {runs}: {:.0} to {:.0}); \
             the timer's pass {:.2} ms on average",
            r[r.len() / 2],
            r[0],
            r[r.len() - 1],
            pass.0.as_secs_f64() * 1000.0 / f64::from(pass.1.max(1)),
        );
    }
}

fn main() {
    if let Ok(reports) = std::env::var("TIMELINE_BENCH_FLOOD") {
        flood(reports.parse().unwrap_or(300_000), 3);
        return;
    }
    // Under callgrind: a fixed traffic, nothing else, so the instruction
    // counts of Exporter::handle and of the observer's calls can be read
    // off one profile.
    if let Some(traffic) = std::env::var_os("TIMELINE_BENCH_CALLGRIND") {
        let off: &[&str] = match std::env::var("TIMELINE_BENCH_HISTORIES").as_deref() {
            Ok("off") => &["--timeline-max-bytes", "0"],
            _ => &[],
        };
        let mut t = match traffic.to_str() {
            Some("steady") => Traffic::new(5, false, off),
            Some("flapping") => Traffic::new(30, true, off),
            _ => panic!("TIMELINE_BENCH_CALLGRIND=steady or flapping"),
        };
        for _ in 0..20 {
            t.round();
        }
        eprintln!("{} callbacks handled", t.handled);
        return;
    }
    // A busy day each: 8 sessions, 64 bad intervals of 192 reports.
    memory(50_000, 8, 8, u64::MAX);
    // The same under half the default cap: the oldest go.
    memory(50_000, 8, 8, css_push_exporter::cli::DEFAULT_TIMELINE_MAX_BYTES / 2);
    // Streams at the per-stream bounds: 64 sessions, 512 intervals.
    memory(1000, 64, 8, u64::MAX);
    // A flood's: one report each of streams never seen to start.
    memory(300_000, 0, 0, u64::MAX);
}
