//! `css-push-exporter simulate`: posts realistic CSS callbacks to an
//! exporter, as a demo (watch the dashboards fill) and as a load generator.
//! Like CSS, each stream reports at most once per report interval, so the
//! rate a demo reaches (and alert thresholds tuned on it) is one CSS could.
mod args;

use crate::callback_body::{event, frame_gap_detail, Lifecycle, PushError};
use crate::state::clock::{Clock, SystemClock};
pub use args::{Profile, SimulateArgs};
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::io::{self, Write};
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

/// Draws per slot looking for a stream that may report again.
const DRAWS: usize = 8;

struct Stream {
    app: String,
    name: String,
    sequence: String,
    /// Of its last report; 0 before the first.
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
    interval_ms: i64,
    /// Push error callbacks made.
    issued: u64,
    /// Slots in which no drawn stream was due.
    not_due: u64,
}

/// One body to post, and for a push error the errors it reports (the sum
/// of its `count`s).
pub struct Job {
    pub body: String,
    pub errors: Option<u64>,
}

/// A push error to post, or none yet: the streams drawn reported within
/// the report interval; the soonest of them may report at `due_ms`.
pub enum Draw {
    Post(Job),
    NotDue { due_ms: i64 },
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
        Self {
            rng,
            mix,
            domain: args.domain.clone(),
            streams,
            key: args.callback_key.clone(),
            profile: args.profile,
            interval_ms: i64::try_from(args.report_interval.as_millis()).unwrap_or(i64::MAX),
            issued: 0,
            not_due: 0,
        }
    }

    /// A push error callback for one stream, drawn as the profile says
    /// among those that have not reported within the report interval.
    pub fn push_error(&mut self, now_ms: i64) -> Draw {
        let n = self.streams.len();
        let troubled = (n / 200).max(1);
        // A one-off glitch: one error of a uniformly drawn type.
        let glitch = self.profile == Profile::Calm && n > troubled && self.rng.random_bool(0.05);
        let mut due_ms = i64::MAX;
        let mut drawn = None;
        for _ in 0..DRAWS {
            let i = match (self.profile, glitch) {
                (Profile::Busy, _) => usize::try_from(whole(self.rng.random::<f64>().powi(3) * n as f64)).unwrap_or(n),
                (Profile::Calm, true) => self.rng.random_range(troubled..n),
                (Profile::Calm, false) => self.rng.random_range(0..troubled),
            };
            let i = i.min(n - 1);
            let last = self.streams[i].last_data_time;
            let due = if last == 0 { now_ms } else { last.saturating_add(self.interval_ms) };
            if due <= now_ms {
                drawn = Some(i);
                break;
            }
            due_ms = due_ms.min(due);
        }
        let Some(i) = drawn else {
            self.not_due += 1;
            return Draw::NotDue { due_ms };
        };
        self.issued += 1;
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
            .report_interval(u32::try_from(self.interval_ms).unwrap_or(u32::MAX))
            .pusher(STREAM_PARAM, USER_IP);
        if let Some(key) = &self.key {
            body = body.signed(key, expiry());
        }
        Draw::Post(Job { body: body.body(), errors: Some(errors) })
    }

    /// Push start (`end` false) or end of stream `i`.
    pub fn lifecycle(&mut self, i: usize, end: bool, elapsed: Duration) -> Job {
        let s = &self.streams[i];
        let mut body = Lifecycle::start(&self.domain, &s.app, &s.name, &s.sequence, SystemClock.now_secs())
            .pusher(STREAM_PARAM, USER_IP);
        if end {
            let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            // Most pushes end because the encoder stopped (errcode 1-4);
            // some are cut off (12-17: the pusher's network).
            body = if self.rng.random_bool(0.1) {
                body.end(duration_ms, 13, "push network error")
            } else {
                body.end(duration_ms, 1, "recv rtmp deleteStream")
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

    pub fn issued(&self) -> u64 {
        self.issued
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
    /// Slots in which every stream drawn had reported within the report
    /// interval, so nothing was posted.
    pub not_due: u64,
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

    /// Prints the summary; a reader that went away (`simulate | head`) is
    /// not an error, as a pipeline's reader may stop whenever it likes.
    pub fn print_summary(&self, args: &SimulateArgs) -> io::Result<()> {
        let mut out = io::stdout().lock();
        match writeln!(out, "{}", self.summary(args)).and_then(|()| out.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            result => result,
        }
    }

    pub fn summary(&self, args: &SimulateArgs) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let ms = |q| self.latency(q).as_secs_f64() * 1000.0;
        format!(
            "posted to {}: {} push error callbacks ({} errors) from {} streams, {} push start/end\n\
             achieved {:.1} push error callbacks/s over {:.1} s; {} refused, {} failed\n\
             {} slots had no stream due (each reports at most once per {})\n\
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
            self.not_due,
            humantime::format_duration(args.report_interval),
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
            let i = usize::try_from(i).ok().filter(|&i| i < streams);
            i.map_or(Next::Done, |i| Next::Post(generator.borrow_mut().lifecycle(i, end, elapsed)))
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
        .pump(pace, Some(deadline), |_| {
            let mut generator = generator.borrow_mut();
            if Instant::now() >= deadline || args.count.is_some_and(|n| generator.issued() >= n) {
                return Next::Done;
            }
            let now_ms = unix_millis();
            match generator.push_error(now_ms) {
                Draw::Post(job) => Next::Post(job),
                Draw::NotDue { due_ms } => {
                    let wait = u64::try_from(due_ms.saturating_sub(now_ms)).unwrap_or(0);
                    Next::Wait(Instant::now() + Duration::from_millis(wait))
                }
            }
        })
        .await;
    report.borrow_mut().elapsed = errors_started.elapsed();
    report.borrow_mut().not_due = generator.borrow().not_due;
    if args.lifecycle {
        lifecycle(true, started.elapsed()).await;
    }
    let mut report = report.into_inner();
    report.latencies_us.sort_unstable();
    report
}

/// What a worker does next.
enum Next {
    Post(Job),
    /// Nothing to post before this.
    Wait(Instant),
    Done,
}

struct Poster<'a> {
    client: &'a awc::Client,
    target: &'a str,
    concurrency: u32,
    report: &'a RefCell<RunReport>,
}

impl Poster<'_> {
    /// Posts what `next(0)`, `next(1)`, ... give until one is `Done`, from
    /// `concurrency` workers; with `pace`, slot k waits for k / pace seconds
    /// after the start, so the rate holds whatever the latency, and slots
    /// whose time is past `deadline` are not waited for. A `Wait` lets a
    /// paced slot pass unused; unpaced, the worker sleeps until then.
    async fn pump(&self, pace: Option<f64>, deadline: Option<Instant>, next: impl Fn(u64) -> Next) {
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
                match next(k) {
                    Next::Post(job) => self.post(job).await,
                    Next::Wait(until) if pace.is_none() => {
                        let until = deadline.map_or(until, |d| d.min(until));
                        actix_web::rt::time::sleep_until(until.into()).await;
                    }
                    Next::Wait(_) => {}
                    Next::Done => break,
                }
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
