//! What happens to one callback body: parse, verify, de-duplicate, record.
//! Transport-free, so the HTTP route, the benchmarks and the property tests
//! all drive the same code.
use crate::apps::{self, AppSet};
use crate::catalog::{self, Media};
use crate::clock::Clock;
use crate::config::Config;
use crate::dedup::{Dedup, EventKey, Seen};
use crate::exposition;
use crate::metrics::Metrics;
use crate::signature::{Verdict, Verifier};
use crate::streams::{Placement, Report, StreamId, StreamRegistry};
use crate::wire::{self, Head, ParseError, PushError, PushLifecycle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Duplicate,
    Ignored,
    Malformed(ParseError),
    Unauthorized(&'static str),
    Expired,
    TooLarge,
}

impl Outcome {
    /// The `outcome` label value.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Malformed(_) => "malformed",
            Outcome::Unauthorized(_) => "unauthorized",
            Outcome::Expired => "expired",
            Outcome::TooLarge => "too_large",
        }
    }
}

/// A callback's outcome and the `event_type` label it was counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub event_type: &'static str,
    pub outcome: Outcome,
}

pub struct Pipeline {
    pub metrics: Metrics,
    pub streams: StreamRegistry,
    apps: AppSet,
    dedup: Dedup,
    verifier: Verifier,
    clock: Arc<dyn Clock>,
    stream_ttl_secs: u64,
    live_stream_ttl_secs: u64,
    /// Length of the last /metrics page.
    last_render_len: AtomicUsize,
}

impl Pipeline {
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Self {
        Self {
            metrics: Metrics::new(config.max_streams),
            streams: StreamRegistry::new(config.max_streams, config.max_label_length),
            apps: AppSet::new(config.max_apps),
            dedup: Dedup::new(config.dedup_window.as_secs(), config.dedup_capacity),
            verifier: Verifier::new(&config.callback_keys, config.max_clock_skew.as_secs()),
            clock,
            stream_ttl_secs: config.stream_ttl.as_secs(),
            live_stream_ttl_secs: config.live_stream_ttl.as_secs(),
            last_render_len: AtomicUsize::new(0),
        }
    }

    pub fn authenticates(&self) -> bool {
        self.verifier.enabled()
    }

    /// Handles one callback body and counts its outcome.
    pub fn handle(&self, body: &[u8]) -> Handled {
        let handled = self.process(body);
        self.metrics.count(handled.event_type, handled.outcome.label());
        handled
    }

    /// Counts a body refused for its size before it was read.
    pub fn reject_too_large(&self) -> Handled {
        let handled = Handled { event_type: "unknown", outcome: Outcome::TooLarge };
        self.metrics.count(handled.event_type, handled.outcome.label());
        handled
    }

    fn process(&self, body: &[u8]) -> Handled {
        let now = self.clock.now();
        if let Some(p) = wire::push_error_in_one_pass(body) {
            let outcome = self.verified(p.t, p.sign.as_deref(), now, || self.push_error(&p, now));
            return Handled { event_type: catalog::event_type_label(wire::EVENT_PUSH_ERROR), outcome };
        }
        let head: Head = match wire::parse(body) {
            Ok(h) => h,
            Err(e) => return Handled { event_type: "unknown", outcome: Outcome::Malformed(e) },
        };
        let outcome = self.verified(head.t, head.sign.as_deref(), now, || match head.event_type {
            wire::EVENT_PUSH_ERROR => match wire::parse::<PushError>(body) {
                Ok(p) => self.push_error(&p, now),
                Err(e) => Outcome::Malformed(e),
            },
            wire::EVENT_PUSH_START | wire::EVENT_PUSH_END => self.lifecycle(head.event_type, body, now),
            _ => Outcome::Ignored,
        });
        Handled { event_type: catalog::event_type_label(head.event_type), outcome }
    }

    /// Runs `then` only for a callback whose signature passes.
    fn verified(&self, t: Option<i64>, sign: Option<&str>, now: Duration, then: impl FnOnce() -> Outcome) -> Outcome {
        match self.verifier.verify(t, sign, now.as_secs()) {
            Verdict::Unauthorized(why) => Outcome::Unauthorized(why),
            Verdict::Expired => Outcome::Expired,
            Verdict::Valid | Verdict::Unchecked => then(),
        }
    }

    fn push_error(&self, p: &PushError, now: Duration) -> Outcome {
        let key = EventKey {
            event_type: wire::EVENT_PUSH_ERROR,
            appid: p.appid.unwrap_or(0),
            domain: &p.domain,
            app: &p.path,
            stream: &p.stream_id,
            sequence: &p.sequence,
            time: p.data_time,
        };
        if self.seen_before(&key, now) {
            return Outcome::Duplicate;
        }
        self.record(p, now);
        Outcome::Accepted
    }

    /// Remembers the event; true if it was already remembered.
    fn seen_before(&self, key: &EventKey, now: Duration) -> bool {
        match self.dedup.check_and_insert(self.dedup.identity(key), now.as_secs()) {
            Seen::Again => true,
            Seen::First { evicted_early } => {
                if evicted_early {
                    self.metrics.dedup_evicted.inc();
                }
                false
            }
        }
    }

    fn lifecycle(&self, event_type: i64, body: &[u8], now: Duration) -> Outcome {
        let e: PushLifecycle = match wire::parse(body) {
            Ok(e) => e,
            Err(e) => return Outcome::Malformed(e),
        };
        let key = EventKey {
            event_type,
            appid: e.appid.unwrap_or(0),
            domain: &e.app,
            app: &e.appname,
            stream: &e.stream_id,
            sequence: &e.sequence,
            time: e.event_time,
        };
        if self.seen_before(&key, now) {
            return Outcome::Duplicate;
        }
        let stream = self.admit(StreamId { domain: &e.app, app: &e.appname, stream: &e.stream_id }, now);
        let (domain, app) = (stream.domain, stream.app);
        let session = xxhash_rust::xxh3::xxh3_64(e.sequence.as_bytes());
        let placement = if event_type == wire::EVENT_PUSH_START {
            self.metrics.stream_starts.with_label_values(&[domain, app]).inc();
            self.streams.start_session(stream, session, now.as_secs())
        } else {
            let errcode = catalog::errcode_label(e.errcode.unwrap_or(0));
            self.metrics.stream_ends.with_label_values(&[domain, app, &errcode]).inc();
            if let Some(ms) = e.push_duration {
                self.metrics.session_duration.with_label_values(&[domain, app]).observe(ms as f64 / 1000.0);
            }
            self.streams.end_session(stream, session, now.as_secs())
        };
        if placement == Placement::Overflow {
            self.metrics.stream_overflow.inc();
        }
        Outcome::Accepted
    }

    fn record(&self, p: &PushError, now: Duration) {
        let data_time_secs = p.data_time as f64 / 1000.0;
        self.metrics.callback_delay.observe((now.as_secs_f64() - data_time_secs).max(0.0));

        let id = self.admit(StreamId { domain: &p.domain, app: &p.path, stream: &p.stream_id }, now);
        let (domain, app) = (id.domain, id.app);
        let mut errors = Vec::with_capacity(p.abnormal_event.len());
        let mut frame_max = [None; 2];
        for ev in &p.abnormal_event {
            let code = catalog::error_code(ev.kind);
            errors.push((code, ev.count));
            let Some(media) = Media::of_error(ev.kind) else { continue };
            let histogram = self.metrics.frame_interval.with_label_values(&[domain, app, media.label()]);
            for d in &ev.detail {
                match catalog::parse_interval_ms(&d.desc) {
                    Some(ms) => {
                        let secs = ms / 1000.0;
                        histogram.observe(secs);
                        let max: &mut Option<f64> = &mut frame_max[media as usize];
                        *max = Some(max.map_or(secs, |m| m.max(secs)));
                    }
                    None => self.metrics.unparsed_details.with_label_values(&[&catalog::error_type_label(code)]).inc(),
                }
            }
        }
        let report = Report { errors: &errors, frame_max, data_time_secs };
        if self.streams.record_report(id, &report, now.as_secs()) == Placement::Overflow {
            self.metrics.stream_overflow.inc();
        }
    }

    /// The stream's labels, capped; all "__overflow__" past --max-apps.
    fn admit<'a>(&self, id: StreamId<'a>, now: Duration) -> StreamId<'a> {
        let max_label = self.streams.max_label_bytes();
        let (domain, app) = (exposition::cap(id.domain, max_label), exposition::cap(id.app, max_label));
        if self.apps.admit(domain, app, now.as_secs()) {
            StreamId { domain, app, stream: id.stream }
        } else {
            StreamId { domain: apps::OVERFLOW, app: apps::OVERFLOW, stream: apps::OVERFLOW }
        }
    }

    /// Drops expired streams, apps and dedup entries. Runs on a timer.
    pub fn expire(&self) {
        let now = self.clock.now_secs();
        let removed = self.streams.expire(now, self.stream_ttl_secs, self.live_stream_ttl_secs);
        self.metrics.streams_expired.inc_by(removed as u64);
        let app_cutoff = now.saturating_sub(self.stream_ttl_secs.max(self.live_stream_ttl_secs));
        for (domain, app) in self.apps.expire(app_cutoff) {
            self.metrics.forget_app(&domain, &app);
        }
        self.dedup.expire(now);
    }

    /// The whole `/metrics` page.
    pub fn render(&self) -> String {
        self.metrics.streams.set(self.streams.tracked() as i64);
        self.metrics.dedup_entries.set(self.dedup.len() as i64);
        // Sized from the last page, so a large page is not copied as it grows.
        let last = self.last_render_len.load(Ordering::Relaxed);
        let mut out = String::with_capacity(64 * 1024 + last + last / 16);
        self.metrics.render(&mut out);
        self.streams.render(&mut out);
        self.last_render_len.store(out.len(), Ordering::Relaxed);
        out
    }
}
