//! What happens to one callback body: parse, verify, de-duplicate, record.
//! Transport-free, so the HTTP route, the benchmarks and the property tests
//! all drive the same code.
use crate::catalog::{self, EndCause, EventType, Media, Region};
use crate::ingest::event::{CallbackSeen, Observer, ReportAccepted, Transition};
use crate::ingest::outcome::{Handled, Outcome, Rejection};
use crate::ingest::retries::{Probe, Remembered, Retries};
use crate::ingest::signature::{Verdict, Verifier};
use crate::ingest::wire::{self, Head, ParseError, PushError, PushLifecycle};
use crate::state::apps::AppSeries;
use crate::state::clock::Clock;
use crate::state::dedup::{Dedup, EventKey, Seen};
use crate::state::lifecycle::Change;
use crate::state::streams::{ErrorReport, StreamId};
use crate::state::{State, OVERFLOW};
use crate::text::cap;
use smallvec::SmallVec;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::state::FUTURE_TOLERANCE;

/// The stages a callback passes, what they record into, and the observer
/// told what happened.
pub struct Pipeline {
    pub(crate) state: Arc<State>,
    pub(crate) dedup: Arc<Dedup>,
    pub(crate) verifier: Verifier,
    /// Push errors seen before, by their bytes: a retry is told without a parse.
    pub(crate) retries: Retries,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_label_bytes: usize,
    pub(crate) observer: Arc<dyn Observer>,
}

impl Pipeline {
    pub fn authenticates(&self) -> bool {
        self.verifier.enabled()
    }

    /// Handles one callback body sent by `peer`, and tells the observer.
    pub fn handle(&self, body: &[u8], peer: Option<IpAddr>) -> Handled {
        let now = self.clock.now();
        self.observed(self.process(body, now), peer, now)
    }

    /// A body refused before it could be parsed (too large, too slow,
    /// unreadable), told to the observer like any other.
    pub fn reject(&self, rejection: Rejection, peer: Option<IpAddr>) -> Handled {
        let handled = Handled { event_type: EventType::Unknown, outcome: Outcome::Rejected(rejection) };
        self.observed(handled, peer, self.clock.now())
    }

    fn observed(&self, handled: Handled, peer: Option<IpAddr>, now: Duration) -> Handled {
        let seen =
            CallbackSeen { event_type: handled.event_type, outcome: &handled.outcome, peer, at_secs: now.as_secs() };
        self.observer.callback(&seen);
        handled
    }

    fn process(&self, body: &[u8], now: Duration) -> Handled {
        let probe = self.retries.probe(body);
        if let Some(outcome) = probe.found.and_then(|body| self.retried(body, now)) {
            return Handled { event_type: EventType::PushError, outcome };
        }
        if let Some(p) = wire::push_error_in_one_pass(body) {
            let outcome = self.verified(p.t, p.sign.as_deref(), now, || self.push_error(&p, now, Some(&probe)));
            return Handled { event_type: EventType::PushError, outcome };
        }
        let head: Head = match wire::parse(body) {
            Ok(h) => h,
            Err(e) => return Handled { event_type: EventType::Unknown, outcome: malformed(e) },
        };
        let event_type = EventType::of(head.event_type);
        let outcome = self.verified(head.t, head.sign.as_deref(), now, || match event_type {
            EventType::PushError => match wire::parse::<PushError>(body) {
                Ok(p) => self.push_error(&p, now, None),
                Err(e) => malformed(e),
            },
            EventType::PushStart | EventType::PushEnd => self.lifecycle(head.event_type, body, now),
            _ => Outcome::Ignored,
        });
        Handled { event_type, outcome }
    }

    /// Runs `then` only for a callback whose signature passes.
    fn verified(&self, t: Option<i64>, sign: Option<&str>, now: Duration, then: impl FnOnce() -> Outcome) -> Outcome {
        refusal(self.verifier.verify(t, sign, now.as_secs())).unwrap_or_else(then)
    }

    /// The outcome of a body seen before ([`Retries`]), as the full path
    /// would find it, or `None` to run the full path: its `t` checked again,
    /// then a duplicate if its event is still remembered.
    fn retried(&self, body: Remembered, now: Duration) -> Option<Outcome> {
        refusal(self.verifier.verify_again(body.t, now.as_secs()))
            .or_else(|| self.dedup.holds(body.identity, now.as_secs()).then_some(Outcome::Duplicate))
    }

    /// A push error whose signature passed; remembered in `probe`'s slot
    /// once its identity is known, if it was read in one pass.
    fn push_error(&self, p: &PushError, now: Duration, probe: Option<&Probe>) -> Outcome {
        let names = [&*p.domain, &p.path, &p.stream_id, &p.sequence];
        let identity = self.dedup.identity(&EventKey::new(wire::EVENT_PUSH_ERROR, p.appid, names, p.data_time));
        let again = self.dedup.check_and_insert(identity, now.as_secs()) == Seen::Again;
        if let Some(probe) = probe {
            self.retries.remember(probe, Remembered { t: p.t, identity });
        }
        if again {
            return Outcome::Duplicate;
        }
        self.record(p, now);
        Outcome::Accepted
    }

    /// Remembers the event; true if it was already remembered.
    fn seen_before(&self, key: &EventKey, now: Duration) -> bool {
        self.dedup.check_and_insert(self.dedup.identity(key), now.as_secs()) == Seen::Again
    }

    fn lifecycle(&self, event_type: i64, body: &[u8], now: Duration) -> Outcome {
        let e: PushLifecycle = match wire::parse(body) {
            Ok(e) => e,
            Err(e) => return malformed(e),
        };
        let names = [&*e.app, &e.appname, &e.stream_id, &e.sequence];
        if self.seen_before(&EventKey::new(event_type, e.appid, names, e.event_time), now) {
            return Outcome::Duplicate;
        }
        let own = StreamId { domain: &e.app, app: &e.appname, stream: &e.stream_id };
        let start = event_type == wire::EVENT_PUSH_START;
        let errcode = (!start).then(|| e.errcode.unwrap_or(0));
        let cause = errcode.map(EndCause::of);
        // Liveness is tracked per stream even past --max-apps, counted under "__overflow__" then.
        let (stream, folded) = self.admit(own, now, |stream, series, folded| {
            if start {
                series.count_start();
            } else if let (Some(errcode), Some(cause)) = (errcode, cause) {
                let duration = e.push_duration.map(|ms| Duration::from_millis(ms).as_secs_f64());
                series.count_end(&catalog::errcode_label(errcode), cause, duration);
            }
            (stream, folded)
        });
        let key = self.state.key(own);
        let session = xxhash_rust::xxh3::xxh3_64(e.sequence.as_bytes());
        let now_secs = now.as_secs();
        let change = Change {
            start,
            folded,
            session,
            at_ms: millis(now),
            event_time: e.event_time,
            node: e.node.parse().ok(),
            region: Region::of_set_id(e.set_id),
            errcode,
        };
        let effect = self.state.lifecycles.apply(&key, &change, |live| {
            // Past --max-apps the stream has no series of its own: refused, and counted so.
            let overflow;
            let shown = if folded {
                overflow = self.state.key(stream);
                &overflow
            } else {
                &key
            };
            self.state.streams.set_live(shown, live, now_secs);
        });
        let transition = Transition {
            stream,
            sent: own,
            key: &key,
            folded,
            session,
            sequence: &e.sequence,
            start,
            event_time: e.event_time,
            node: change.node,
            region: change.region,
            errcode,
            cause,
            duration_ms: e.push_duration,
            effect,
            at_secs: now_secs,
            at_ms: change.at_ms,
        };
        self.observer.transition(&transition);
        Outcome::Accepted
    }

    fn record(&self, p: &PushError, now: Duration) {
        let mut data_time_secs = p.data_time as f64 / 1000.0;
        let delay_secs = now.as_secs_f64() - data_time_secs;
        // A sender's clock far ahead must not pin timestamp gauges in the
        // future, nor freeze the latest-report gauges until then.
        let future_data_time = data_time_secs > (now + FUTURE_TOLERANCE).as_secs_f64();
        let mut data_time_ms = p.data_time;
        if future_data_time {
            data_time_secs = now.as_secs_f64();
            data_time_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
        }

        let sent = StreamId { domain: &p.domain, app: &p.path, stream: &p.stream_id };
        // On the stack: CSS reports a few error types, and few unreadable details.
        let mut errors = SmallVec::<[(u8, u64); 8]>::new();
        let mut unparsed_details = SmallVec::<[u8; 4]>::new();
        let mut gaps = SmallVec::<[(Media, f64); 8]>::new();
        let mut frame_max = [None; 2];
        for ev in &p.abnormal_event {
            let code = catalog::error_code(ev.kind);
            errors.push((code, ev.count));
            let Some(media) = Media::of_error(ev.kind) else { continue };
            for d in &ev.detail {
                match catalog::parse_interval_ms(&d.desc) {
                    Some(ms) => {
                        let secs = ms / 1000.0;
                        gaps.push((media, secs));
                        let max: &mut Option<f64> = &mut frame_max[media as usize];
                        *max = Some(max.map_or(secs, |m| m.max(secs)));
                    }
                    None => unparsed_details.push(code),
                }
            }
        }
        let (id, folded) = self.admit(sent, now, |id, series, folded| {
            if !gaps.is_empty() {
                series.observe_frame_intervals(&gaps);
            }
            (id, folded)
        });
        let key = self.state.key(sent);
        let report = ErrorReport { errors: &errors, frame_max, data_time_secs };
        // Past --max-apps the report counts in the overflow pair's bucket.
        let overflow;
        let recorded = if folded {
            overflow = self.state.key(id);
            &overflow
        } else {
            &key
        };
        self.state.streams.record_report(recorded, &report, now.as_secs());
        let matched = self.state.lifecycles.session(&key, xxhash_rust::xxh3::xxh3_64(p.sequence.as_bytes()));
        self.observer.report(&ReportAccepted {
            sent,
            stream: id,
            key: &key,
            data_time_ms,
            report_interval_ms: p.report_interval,
            errors: &errors,
            frame_max,
            delay_secs,
            future_data_time,
            unparsed_details: &unparsed_details,
            sequence: &p.sequence,
            session: matched.map(|m| m.session),
            node: matched.and_then(|m| m.node),
            region: matched.map_or(Region::Unknown, |m| m.region),
            matched,
            at_secs: now.as_secs(),
            at_ms: millis(now),
        });
    }

    /// `f` of the stream's labels, capped, its (domain, app)'s series, and
    /// whether the pair is past --max-apps (all "__overflow__" then).
    fn admit<'a, R>(&self, id: StreamId<'a>, now: Duration, f: impl FnOnce(StreamId<'a>, &AppSeries, bool) -> R) -> R {
        let (domain, app) = (cap(id.domain, self.max_label_bytes), cap(id.app, self.max_label_bytes));
        self.state.apps.admitting(domain, app, now.as_secs(), |series| match series {
            Some(series) => f(StreamId { domain, app, stream: id.stream }, series, false),
            None => f(StreamId { domain: OVERFLOW, app: OVERFLOW, stream: OVERFLOW }, self.state.apps.overflow(), true),
        })
    }
}

fn millis(now: Duration) -> u64 {
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

/// The outcome of a callback `verdict` refuses; `None` if it passes.
fn refusal(verdict: Verdict) -> Option<Outcome> {
    match verdict {
        Verdict::Unauthorized(why) => Some(Outcome::Rejected(Rejection::Unauthorized(why))),
        Verdict::Expired => Some(Outcome::Rejected(Rejection::Expired)),
        Verdict::Valid | Verdict::Unchecked => None,
    }
}

fn malformed(e: ParseError) -> Outcome {
    Outcome::Rejected(Rejection::Malformed(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback_body;
    use crate::clock::ManualClock;
    use crate::ingest::event::Observers;
    use crate::Config;
    use proptest::prelude::*;

    const T0: u64 = 1_764_000_000;

    /// A pipeline checking signatures with key "k", with or without the
    /// table of bodies seen before.
    fn pipeline(clock: &Arc<ManualClock>, retry_slots: usize) -> Pipeline {
        let config = Config::from_flags(["--callback-key", "k"]).unwrap();
        let limits = config.limits();
        Pipeline {
            state: Arc::new(State::new(&limits)),
            // A short window and a small memory, so that both forget often.
            dedup: Arc::new(Dedup::new(60, 8)),
            verifier: Verifier::new(&config.callback_keys, 30, 900),
            retries: Retries::new(retry_slots),
            clock: clock.clone(),
            max_label_bytes: limits.max_label_bytes,
            observer: Arc::new(Observers(Vec::new())),
        }
    }

    /// One of a few push errors: `data_time` tells them apart, and `t`
    /// (or a wrong key) whether they pass; the same fields spaced out
    /// are another body of the same event.
    fn body(n: u8) -> Vec<u8> {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/push-error-seed.json")).expect("the seed is JSON");
        v["data_time"] = (1 + i64::from(n % 12)).into();
        let key = if n % 7 == 6 { "wrong" } else { "k" };
        callback_body::sign_json(&mut v, key, (T0 + u64::from(n % 3) * 200).cast_signed());
        let text = if n % 5 == 4 { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) };
        text.expect("a Value prints").into_bytes()
    }

    proptest! {
        /// The table of bodies seen before changes no outcome: a pipeline
        /// with it and one without answer every callback alike, as the
        /// clock moves past windows and the duplicate memory (8 events)
        /// forgets.
        #[test]
        fn a_retry_told_by_its_bytes_is_what_the_full_path_finds(
            steps in prop::collection::vec((0u8..40, 0u64..100), 1..120),
        ) {
            let clock = Arc::new(ManualClock::new(Duration::from_secs(T0)));
            let (with, without) = (pipeline(&clock, 4), pipeline(&clock, 0));
            for (n, advance) in steps {
                clock.advance(Duration::from_secs(advance / 10));
                let body = body(n);
                let outcome = with.handle(&body, None).outcome;
                prop_assert_eq!(&outcome, &without.handle(&body, None).outcome, "body {}", n);
            }
        }
    }
}
