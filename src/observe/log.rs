//! The log lines ingest's events make: refused callbacks as warnings,
//! rate-limited per outcome (a flood of bad callbacks must not become a flood
//! of log lines), and push starts and ends at debug level.
use super::ratelog::{RateLimitedLog, LOG_INTERVAL};
use crate::ingest::event::{CallbackSeen, Observer, Transition};
use crate::ingest::outcome::Outcome;
use crate::text::quote::{prefix, QUOTE_BYTES};

pub struct EventLog {
    refusals: RateLimitedLog,
}

impl EventLog {
    pub fn new() -> Self {
        Self { refusals: RateLimitedLog::new(LOG_INTERVAL) }
    }
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for EventLog {
    fn callback(&self, seen: &CallbackSeen<'_>) {
        let Outcome::Rejected(rejection) = seen.outcome else { return };
        self.refusals.warn(rejection.label(), || {
            let peer = seen.peer.map(|p| p.to_string()).unwrap_or_default();
            format!(
                "rejected callback from {peer} (event_type {}, {}): {rejection}",
                seen.event_type.label(),
                rejection.label()
            )
        });
    }

    fn transition(&self, t: &Transition<'_>) {
        if log::log_enabled!(log::Level::Debug) {
            let what = if t.start { "push start" } else { "push end" };
            let s = &t.stream;
            let name = |v| prefix(v, QUOTE_BYTES);
            log::debug!("{what}: {}/{}/{}", name(s.domain), name(s.app), name(s.stream));
        }
    }
}
