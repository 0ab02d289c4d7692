//! What ingest observes, as typed events, and the [`Observer`] trait their
//! consumers implement. Ingest writes to one observer (the exporter composes
//! the callback tallies, the status page, the rejection log and any new
//! consumer into one with [`Observers`]); it knows none of them.
use crate::catalog::EventType;
use crate::ingest::outcome::Outcome;
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
    pub at_secs: u64,
}

/// A push start or end (`event_type` 1 or 0), after it was recorded.
pub struct Transition<'a> {
    /// Labels as recorded: cut, or `__overflow__` past `--max-apps`.
    pub stream: StreamId<'a>,
    /// Names as sent, uncut.
    pub sent: StreamId<'a>,
    /// Hash of the session's `sequence`.
    pub session: u64,
    pub start: bool,
    /// `event_time` as sent, Unix seconds.
    pub event_time: i64,
    pub at_secs: u64,
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
