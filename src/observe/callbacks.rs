//! Callbacks by (event type × outcome), counted once: `/metrics` shows them
//! as `css_push_callbacks_total` and the status page as its callbacks table,
//! both from these tallies.
use crate::catalog::EventType;
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use crate::ingest::event::{CallbackSeen, Observer};
use crate::ingest::outcome::OutcomeKind;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many callbacks of one event type had one outcome, and when the last.
#[derive(Default)]
struct Tally {
    count: AtomicU64,
    last_secs: AtomicU64,
}

/// One row of the matrix, for the status page.
pub struct TallyRow {
    pub event_type: EventType,
    pub outcome: OutcomeKind,
    pub count: u64,
    pub last_secs: u64,
}

pub struct CallbackTallies {
    /// [`EventType::ALL`] × [`OutcomeKind::ALL`].
    tallies: Box<[Tally]>,
}

impl CallbackTallies {
    pub fn new() -> Self {
        let cells = EventType::ALL.len() * OutcomeKind::ALL.len();
        Self { tallies: (0..cells).map(|_| Tally::default()).collect() }
    }

    fn tally(&self, event_type: EventType, outcome: OutcomeKind) -> &Tally {
        &self.tallies[event_type.index() * OutcomeKind::ALL.len() + outcome.index()]
    }

    /// Every (event type, outcome) seen at least once, in vocabulary order.
    pub fn rows(&self) -> Vec<TallyRow> {
        let mut out = Vec::new();
        for event_type in EventType::ALL {
            for outcome in OutcomeKind::ALL {
                let tally = self.tally(event_type, outcome);
                let count = tally.count.load(Ordering::Relaxed);
                if count > 0 {
                    out.push(TallyRow {
                        event_type,
                        outcome,
                        count,
                        last_secs: tally.last_secs.load(Ordering::Relaxed),
                    });
                }
            }
        }
        out
    }
}

impl Default for CallbackTallies {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for CallbackTallies {
    fn callback(&self, seen: &CallbackSeen<'_>) {
        let tally = self.tally(seen.event_type, seen.outcome.kind());
        tally.count.fetch_add(1, Ordering::Relaxed);
        tally.last_secs.store(seen.at_secs, Ordering::Relaxed);
    }
}

impl Collector for CallbackTallies {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.family(&f::CALLBACKS);
        for event_type in EventType::ALL {
            for outcome in OutcomeKind::ALL {
                let count = self.tally(event_type, outcome).count.load(Ordering::Relaxed);
                // Every outcome of push errors exists from the start, so
                // rates and alerts work before the first refusal.
                if count > 0 || event_type == EventType::PushError {
                    let labels = [("event_type", event_type.label()), ("outcome", outcome.label())];
                    enc.sample(&f::CALLBACKS, "", &labels, Value::Int(count));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::outcome::{Outcome, Rejection};

    fn seen(tallies: &CallbackTallies, event_type: EventType, outcome: Outcome, at_secs: u64) {
        tallies.callback(&CallbackSeen { event_type, outcome: &outcome, peer: None, at_secs });
    }

    #[test]
    fn counted_once_read_by_both_the_page_and_the_rows() {
        let t = CallbackTallies::new();
        seen(&t, EventType::PushError, Outcome::Accepted, 110);
        seen(&t, EventType::PushError, Outcome::Accepted, 120);
        seen(&t, EventType::Unknown, Outcome::Rejected(Rejection::Expired), 115);
        let rows: Vec<_> =
            t.rows().iter().map(|r| (r.event_type.label(), r.outcome.label(), r.count, r.last_secs)).collect();
        assert_eq!(rows, [("321", "accepted", 2, 120), ("unknown", "expired", 1, 115)]);
        let mut page = String::new();
        t.encode(&mut Encoder::new(&mut page));
        assert!(page.contains("css_push_callbacks_total{event_type=\"321\",outcome=\"accepted\"} 2\n"), "{page}");
        assert!(page.contains("css_push_callbacks_total{event_type=\"unknown\",outcome=\"expired\"} 1\n"), "{page}");
        for outcome in OutcomeKind::ALL {
            let born = format!("css_push_callbacks_total{{event_type=\"321\",outcome=\"{}\"}}", outcome.label());
            assert!(page.contains(&born), "{born} is born at 0");
        }
    }
}
