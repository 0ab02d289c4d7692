//! What ingest observes, as typed events, and the [`Observer`] trait their
//! consumers implement. Ingest writes to one observer (the exporter composes
//! the callback tallies, the status page, the rejection log and any new
//! consumer into one with [`Observers`]); it knows none of them.
use crate::catalog::{EndCause, EventType, Region};
use crate::ingest::outcome::Outcome;
pub use crate::state::key::StreamKey;
pub use crate::state::lifecycle::{Effect, Gap, Matched};
pub use crate::state::streams::StreamId;
use std::net::IpAddr;
use std::sync::Arc;

/// Every callback, once, whatever became of it.
pub struct CallbackSeen<'a> {
    pub event_type: EventType,
    pub outcome: &'a Outcome,
    /// The sender, when the callback came over the network: the TCP peer,
    /// or behind a `--trusted-proxy` the client it forwarded for.
    pub peer: Option<IpAddr>,
    pub at_secs: u64,
}

/// An accepted push error report (`event_type` 321), after it was recorded.
pub struct ReportAccepted<'a> {
    /// Names as sent, uncut: a consumer that shows them cuts them itself.
    pub sent: StreamId<'a>,
    /// Labels as recorded: cut, or `__overflow__` past `--max-apps`.
    pub stream: StreamId<'a>,
    /// The key of the names as sent, cut to `--max-label-length`: the one
    /// every store keyed by stream uses.
    pub key: &'a StreamKey,
    /// `data_time` as recorded (the receive time when too far ahead), Unix ms.
    pub data_time_ms: i64,
    /// `report_interval` as sent, ms.
    pub report_interval_ms: Option<i64>,
    /// (error code, count) per `abnormal_event` item, in the order sent.
    pub errors: &'a [(u8, u64)],
    /// The largest frame gap per medium (video, audio), seconds.
    pub frame_max: [Option<f64>; 2],
    /// Receive time minus `data_time`, seconds (negative when ahead).
    pub delay_secs: f64,
    /// `data_time` was too far ahead and was recorded at the receive time.
    pub future_data_time: bool,
    /// Error codes of the type 6/7 details whose gap could not be read, one
    /// per such detail.
    pub unparsed_details: &'a [u8],
    /// `sequence` as sent: the push session the report is about.
    pub sequence: &'a str,
    /// Hash of the `sequence` of the push session it was matched to by
    /// (domain, app, stream, sequence); `None` when that session's start
    /// was never seen (or is forgotten).
    pub session: Option<u64>,
    /// That session's access node and region.
    pub node: Option<IpAddr>,
    pub region: Region,
    /// That session as the lifecycle store holds it: its span and pair.
    pub matched: Option<Matched>,
    pub at_secs: u64,
    /// Receive time, Unix ms.
    pub at_ms: u64,
}

/// A report of `errors` from `sent` (its key `key`), no session matched, the rest empty: for tests.
#[cfg(test)]
impl<'a> ReportAccepted<'a> {
    pub fn for_test(sent: StreamId<'a>, key: &'a StreamKey, errors: &'a [(u8, u64)], at_secs: u64) -> Self {
        Self {
            sent,
            stream: sent,
            key,
            data_time_ms: 1,
            report_interval_ms: None,
            errors,
            frame_max: [None; 2],
            delay_secs: 0.0,
            future_data_time: false,
            unparsed_details: &[],
            sequence: "",
            session: None,
            node: None,
            region: Region::Unknown,
            matched: None,
            at_secs,
            at_ms: at_secs * 1000,
        }
    }
}

/// A push start or end (`event_type` 1 or 0), after it was recorded.
pub struct Transition<'a> {
    /// Labels as recorded: cut, or `__overflow__` past `--max-apps`.
    pub stream: StreamId<'a>,
    /// Names as sent, uncut.
    pub sent: StreamId<'a>,
    /// The key of the names as sent, cut to `--max-label-length`.
    pub key: &'a StreamKey,
    /// Its (domain, app) is past `--max-apps`: counted under `__overflow__`.
    pub folded: bool,
    /// Hash of the session's `sequence`.
    pub session: u64,
    /// `sequence` as sent.
    pub sequence: &'a str,
    pub start: bool,
    /// `event_time` as sent, Unix seconds.
    pub event_time: i64,
    /// The access node, when `node` is an IP address.
    pub node: Option<IpAddr>,
    pub region: Region,
    /// On ends: `errcode` as sent and its cause.
    pub errcode: Option<i64>,
    pub cause: Option<EndCause>,
    /// On ends: `push_duration` as sent, ms.
    pub duration_ms: Option<u64>,
    /// What it changed in the stream's push sessions; `None` when the
    /// lifecycle store had no room for the stream (`--max-live-streams`).
    pub effect: Option<Effect>,
    pub at_secs: u64,
    /// Receive time, Unix ms.
    pub at_ms: u64,
}

/// A consumer of what ingest observes. Called on the ingest path: keep each
/// call short and non-blocking (a counter, a ring slot, a rate-limited log).
pub trait Observer: Send + Sync {
    fn callback(&self, _seen: &CallbackSeen<'_>) {}
    fn report(&self, _report: &ReportAccepted<'_>) {}
    fn transition(&self, _transition: &Transition<'_>) {}
}

/// Several observers as one, each told every event in order.
pub struct Observers(pub Vec<Arc<dyn Observer>>);

impl Observer for Observers {
    fn callback(&self, seen: &CallbackSeen<'_>) {
        self.0.iter().for_each(|o| o.callback(seen));
    }

    fn report(&self, report: &ReportAccepted<'_>) {
        self.0.iter().for_each(|o| o.report(report));
    }

    fn transition(&self, transition: &Transition<'_>) {
        self.0.iter().for_each(|o| o.transition(transition));
    }
}
