//! `css-push-exporter simulate`: posts realistic CSS callbacks to an
//! exporter, as a demo (watch the dashboards fill) and as a load generator.
use crate::callback_body::{event, frame_gap_detail, Lifecycle, PushError};
use crate::cli::{Profile, SimulateArgs};
use crate::state::clock::{Clock, SystemClock};
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

/// Error types and how often CSS reports them, roughly: late frames and
/// timestamp trouble dominate; codec problems are rare.
const ERROR_MIX: [(u64, u32); 16] = [
    (6, 300),
    (7, 250),
    (3, 80),
    (4, 80),
    (12, 80),
    (15, 50),
    (1, 40),
    (2, 40),
    (16, 30),
    (5, 10),
    (8, 10),
    (9, 10),
    (10, 8),
    (11, 8),
    (13, 2),
    (14, 2),
];

struct Stream {
    app: String,
    name: String,
    sequence: String,
    last_data_time: i64,
}

/// The whole part of a non-negative `x` (0 for NaN; saturating).
fn whole(x: f64) -> u64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "dropping the fraction is the point")]
    let w = x as u64;
    w
}

fn unix_millis() -> i64 {
    i64::try_from(SystemClock.now().as_millis()).unwrap_or(i64::MAX)
}

/// Where a signature expires: 10 minutes from now, as CSS signs.
fn expiry() -> i64 {
    unix_millis() / 1000 + 600
}

/// The pusher's secrets in simulated bodies: made up, and marked so.
const STREAM_PARAM: &str = "txSecret=simulated&txTime=0";
const USER_IP: &str = "192.0.2.1";

/// Makes the callback bodies.
pub struct Generator {
    rng: SmallRng,
    mix: WeightedIndex<u32>,
    domain: String,
    streams: Vec<Stream>,
    key: Option<String>,
    profile: Profile,
}

/// One body to post, and for a push error the errors it reports (the sum
/// of its `count`s).
pub struct Job {
    pub body: String,
    pub errors: Option<u64>,
}

impl Generator {
    pub fn new(args: &SimulateArgs) -> Self {
        let mut rng = SmallRng::seed_from_u64(args.seed);
        let streams = (0..args.streams)
            .map(|i| Stream {
                app: format!("live{}", i % args.apps),
                name: format!("room-{i:05}"),
                sequence: rng.random::<u64>().to_string(),
                last_data_time: 0,
            })
            .collect();
        let mix = WeightedIndex::new(ERROR_MIX.iter().map(|e| e.1)).expect("weights are positive");
        Self { rng, mix, domain: args.domain.clone(), streams, key: args.callback_key.clone(), profile: args.profile }
    }

    /// A push error callback for one stream, picked as the profile says.
    pub fn push_error(&mut self, now_ms: i64) -> Job {
        let n = self.streams.len();
        let troubled = (n / 200).max(1);
        // (stream, a one-off glitch: one error of a uniformly drawn type)
        let (i, glitch) = match self.profile {
            Profile::Busy => (usize::try_from(whole(self.rng.random::<f64>().powi(3) * n as f64)).unwrap_or(n), false),
            Profile::Calm if n > troubled && self.rng.random_bool(0.05) => (self.rng.random_range(troubled..n), true),
            Profile::Calm => (self.rng.random_range(0..troubled), false),
        };
        let i = i.min(n - 1);
        // data_time identifies the report; two reports of a stream never share it.
        let data_time = now_ms.max(self.streams[i].last_data_time + 1);
        self.streams[i].last_data_time = data_time;
        let mut errors = 0;
        let n_events = if self.profile == Profile::Busy { self.rng.random_range(1..=3) } else { 1 };
        let events: Vec<Value> = (0..n_events)
            .map(|_| {
                let kind = match (self.profile, glitch) {
                    (_, true) => self.rng.random_range(1..=16),
                    (Profile::Calm, false) => 6,
                    (Profile::Busy, false) => ERROR_MIX[self.mix.sample(&mut self.rng)].0,
                };
                let count = if glitch { 1 } else { 1 + whole(self.exponential(1.5).min(50.0)) };
                errors += count;
                event(kind, count, self.details(kind, count, data_time))
            })
            .collect();
        let s = &self.streams[i];
        let mut body = PushError::new(&self.domain, &s.app, &s.name, data_time)
            .sequence(&s.sequence)
            .events(Value::Array(events))
            .pusher(STREAM_PARAM, USER_IP);
        if let Some(key) = &self.key {
            body = body.signed(key, expiry());
        }
        Job { body: body.body(), errors: Some(errors) }
    }

    /// Push start (`end` false) or end of stream `i`.
    pub fn lifecycle(&mut self, i: usize, end: bool, elapsed: Duration) -> Job {
        let s = &self.streams[i];
        let mut body = Lifecycle::start(&self.domain, &s.app, &s.name, &s.sequence, SystemClock.now_secs())
            .pusher(STREAM_PARAM, USER_IP);
        if end {
            let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            // Most pushes end because the encoder stopped; some do not.
            body = if self.rng.random_bool(0.1) {
                body.end(duration_ms, 3, "push timeout")
            } else {
                body.end(duration_ms, 0, "ok")
            };
        }
        if let Some(key) = &self.key {
            body = body.signed(key, expiry());
        }
        Job { body: body.body(), errors: None }
    }

    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Late-frame entries carry the gap CSS measured; others a plain text.
    fn details(&mut self, kind: u64, count: u64, data_time: i64) -> Vec<Value> {
        let media = match kind {
            6 => "video",
            7 => "audio",
            _ => return vec![json!({"desc": format!("simulated error type {kind}"), "occur_time": data_time - 1000})],
        };
        (0..count.min(5))
            .map(|_| {
                // At least the 1 s threshold, then an exponential tail (mean 1.5 s).
                let ms = 1000 + whole(self.exponential(1500.0).min(59_000.0));
                frame_gap_detail(media, ms, Some(data_time - self.rng.random_range(0..5000)))
            })
            .collect()
    }

    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.rng.random::<f64>()).ln()
    }
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Push error callbacks answered 200.
    pub push_errors: u64,
    /// Push start/end callbacks answered 200.
    pub lifecycle: u64,
    /// Answered with another status.
    pub refused: u64,
    /// No answer (connection refused, timeout).
    pub failed: u64,
    /// Sum of the `count`s of push errors answered 200.
    pub errors: u64,
    /// Time spent posting push errors.
    pub elapsed: Duration,
    /// Round trip of every request, in microseconds; sorted once the run ends.
    pub latencies_us: Vec<u64>,
}

impl RunReport {
    /// The `q` quantile (0..=1) of the latencies.
    pub fn latency(&self, q: f64) -> Duration {
        let last = self.latencies_us.len().saturating_sub(1);
        let i = usize::try_from(whole((last as f64 * q).round())).unwrap_or(last);
        Duration::from_micros(self.latencies_us.get(i).copied().unwrap_or(0))
    }

    pub fn summary(&self, args: &SimulateArgs) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let ms = |q| self.latency(q).as_secs_f64() * 1000.0;
        format!(
            "posted to {}: {} push error callbacks ({} errors) from {} streams, {} push start/end\n\
             achieved {:.1} push error callbacks/s over {:.1} s; {} refused, {} failed\n\
             latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            args.target,
            self.push_errors,
            self.errors,
            args.streams,
            self.lifecycle,
            self.push_errors as f64 / secs,
            secs,
            self.refused,
            self.failed,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(1.0),
        )
    }
}

/// Posts callbacks as `args` say; returns when --duration or --count is reached.
pub async fn run(args: &SimulateArgs) -> RunReport {
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let generator = &RefCell::new(Generator::new(args));
    let report = RefCell::new(RunReport::default());
    let poster = Poster { client: &client, target: &args.target, concurrency: args.concurrency, report: &report };
    let streams = generator.borrow().streams();
    // Push start (`end` false) or end for every stream, as fast as answered.
    let lifecycle = |end: bool, elapsed: Duration| {
        poster.pump(None, None, move |i| {
            usize::try_from(i).ok().filter(|&i| i < streams).map(|i| generator.borrow_mut().lifecycle(i, end, elapsed))
        })
    };
    let started = Instant::now();
    if args.lifecycle {
        lifecycle(false, Duration::ZERO).await;
    }
    let errors_started = Instant::now();
    let deadline = errors_started + args.duration;
    let pace = (args.rate > 0.0).then_some(args.rate);
    poster
        .pump(pace, Some(deadline), |i| {
            let more = Instant::now() < deadline && args.count.is_none_or(|n| i < n);
            more.then(|| generator.borrow_mut().push_error(unix_millis()))
        })
        .await;
    report.borrow_mut().elapsed = errors_started.elapsed();
    if args.lifecycle {
        lifecycle(true, started.elapsed()).await;
    }
    let mut report = report.into_inner();
    report.latencies_us.sort_unstable();
    report
}

struct Poster<'a> {
    client: &'a awc::Client,
    target: &'a str,
    concurrency: u32,
    report: &'a RefCell<RunReport>,
}

impl Poster<'_> {
    /// Posts `next(0)`, `next(1)`, ... until it gives `None`, from
    /// `concurrency` workers; with `pace`, job k waits for k / pace seconds
    /// after the start, so the rate holds whatever the latency, and jobs
    /// whose time is past `deadline` are not waited for.
    async fn pump(&self, pace: Option<f64>, deadline: Option<Instant>, next: impl Fn(u64) -> Option<Job>) {
        let counter = Cell::new(0u64);
        let start = Instant::now();
        let worker = || async {
            loop {
                let k = counter.get();
                counter.set(k + 1);
                if let Some(rate) = pace {
                    let slot = start + Duration::from_secs_f64(k as f64 / rate);
                    if deadline.is_some_and(|d| slot >= d) {
                        break;
                    }
                    actix_web::rt::time::sleep_until(slot.into()).await;
                }
                let Some(job) = next(k) else { break };
                self.post(job).await;
            }
        };
        futures_util::future::join_all((0..self.concurrency).map(|_| worker())).await;
    }

    async fn post(&self, job: Job) {
        let sent = Instant::now();
        let result = self.client.post(self.target).content_type("application/json").send_body(job.body).await;
        let mut report = self.report.borrow_mut();
        report.latencies_us.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
        match result {
            Ok(res) if res.status().is_success() => match job.errors {
                Some(errors) => {
                    report.push_errors += 1;
                    report.errors += errors;
                }
                None => report.lifecycle += 1,
            },
            Ok(res) => {
                report.refused += 1;
                log::warn!("{} answered {}", self.target, res.status());
            }
            Err(e) => {
                report.failed += 1;
                log::warn!("posting to {} failed: {e}", self.target);
            }
        }
    }
}
