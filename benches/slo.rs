//! What the push-health SLO accounting costs: per callback on the ingest
//! path (criterion, or instruction counts under callgrind), and memory per
//! stream with recent bad reports. `cargo bench --bench slo`; figures in
//! BENCHMARKS.md.
use criterion::Criterion;
use css_push_exporter::clock::{Clock, ManualClock};
use css_push_exporter::ingest::event::{Effect, Matched, Observer, ReportAccepted, StreamId, StreamKey, Transition};
use css_push_exporter::ingest::outcome::Outcome;
use css_push_exporter::ingest::signature;
use css_push_exporter::slo::{Slo, SloAccounting};
use css_push_exporter::state::budget::SeriesBudget;
use css_push_exporter::{Config, Exporter};
use std::sync::Arc;
use std::time::Duration;

#[path = "support/held.rs"]
mod held;

#[global_allocator]
static GLOBAL: held::Counting = held::Counting;

const KEY: &str = "bench-key";
const T0: u64 = 1_764_000_000;
const STREAMS: u64 = 1000;
/// Each body is signed to expire this long after the clock's now, as CSS
/// signs them (within --max-signature-validity).
const SIGNED_FOR: u64 = 600;

/// Signed seed-like callbacks (types 6 and 7: bad) of streams that
/// started pushing, every stream reporting every 5 s, as CSS does.
struct Traffic {
    exporter: Exporter,
    clock: Arc<ManualClock>,
    n: u64,
}

impl Traffic {
    fn new() -> Self {
        let config = Config::from_flags(["--callback-key", KEY]).unwrap();
        let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
        let exporter = Exporter::new(&config, clock.clone() as Arc<dyn Clock>);
        for s in 0..STREAMS {
            let start = serde_json::json!({"event_type": 1, "app": "d", "appname": "live", "stream_id": format!("s{s}"),
                "sequence": "q", "event_time": T0, "t": T0 + SIGNED_FOR, "sign": signature::sign(KEY, (T0 + SIGNED_FOR).cast_signed())});
            assert_eq!(exporter.handle(start.to_string().as_bytes(), None).outcome, Outcome::Accepted);
        }
        Self { exporter, clock, n: 0 }
    }

    /// The next report; every `STREAMS` reports the clock moves 5 s.
    fn next(&mut self) -> Vec<u8> {
        let (stream, round) = (self.n % STREAMS, self.n / STREAMS);
        if stream == 0 {
            self.clock.advance(Duration::from_secs(5));
        }
        self.n += 1;
        let t = self.clock.now_secs() + SIGNED_FOR;
        serde_json::json!({"event_type": 321, "domain": "d", "path": "live", "stream_id": format!("s{stream}"),
            "sequence": "q", "data_time": (T0 + 5 * round) * 1000, "report_interval": 5000, "t": t,
            "sign": signature::sign(KEY, t.cast_signed()),
            "abnormal_event": [{"type": 6, "count": 2}, {"type": 7, "count": 2}]})
        .to_string()
        .into_bytes()
    }

    fn handle(&self, body: &[u8]) {
        assert_eq!(self.exporter.handle(body, None).outcome, Outcome::Accepted);
    }
}

/// Bytes the accounting holds per stream with a session and recent bad reports.
fn memory(streams: u64) {
    let config = Config::from_flags::<_, &str>([]).unwrap();
    let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
    let before = held::held();
    let budget = Arc::new(SeriesBudget::new(u64::MAX));
    let slo = SloAccounting::new(vec![Slo::push_health()], &config.limits(), budget, clock.clone() as Arc<dyn Clock>);
    // Sessions start as counting begins; reports come 5 s later.
    let (at_ms, region) = (T0 * 1000, Default::default());
    clock.advance(Duration::from_secs(5));
    for s in 0..streams {
        let name = format!("stream-{s:06}");
        let id = StreamId { domain: "d", app: "live", stream: &name };
        let key = StreamKey::new(id, config.max_label_length);
        slo.transition(&Transition {
            stream: id,
            sent: id,
            key: &key,
            folded: false,
            session: 1,
            sequence: "q",
            start: true,
            event_time: T0.cast_signed(),
            node: None,
            region,
            errcode: None,
            cause: None,
            duration_ms: None,
            effect: Some(Effect { opened: Some(at_ms), ..Effect::default() }),
            at_secs: T0,
            at_ms,
        });
        let matched = Matched { session: 1, node: None, region, start_ms: at_ms, end_ms: None, folded: false };
        slo.report(&ReportAccepted {
            sent: id,
            stream: id,
            key: &key,
            data_time_ms: (at_ms + 5000).cast_signed(),
            report_interval_ms: Some(5000),
            errors: &[(6, 2)],
            frame_max: [None; 2],
            delay_secs: 0.0,
            future_data_time: false,
            unparsed_details: &[],
            sequence: "q",
            session: Some(1),
            node: None,
            region,
            matched: Some(matched),
            at_secs: T0 + 5,
            at_ms: at_ms + 5000,
        });
    }
    let held = held::held() - before;
    println!(
        "SLO accounting memory at {streams} streams with recent bad reports: {:.1} MB, {} bytes per stream",
        held as f64 / 1e6,
        held / streams.cast_signed()
    );
    drop(slo);
}

fn main() {
    // Under callgrind: a fixed number of callbacks, nothing else, so the
    // instruction counts of Exporter::handle and of the accounting's
    // observer calls can be read off one profile.
    if std::env::var_os("SLO_BENCH_CALLGRIND").is_some() {
        let mut traffic = Traffic::new();
        for _ in 0..20_000 {
            let body = traffic.next();
            traffic.handle(&body);
        }
        return;
    }
    memory(50_000);
    let mut c = Criterion::default().measurement_time(Duration::from_secs(3)).configure_from_args();
    let traffic = std::cell::RefCell::new(Traffic::new());
    c.bench_function("handle bad report of a live stream (with SLO accounting)", |b| {
        b.iter_batched(
            || traffic.borrow_mut().next(),
            |body| traffic.borrow().handle(&body),
            criterion::BatchSize::SmallInput,
        )
    });
    c.final_summary();
}
