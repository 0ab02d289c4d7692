//! [`Recent`], the observer of ingest's events that keeps what the page
//! shows of the last minutes, and how it builds the page from them.
use super::content::{CallbackTally, ErrorCount, PageInputs, ReportView, StatusPage};
use super::refusals::Refusals;
use super::ring::Ring;
use super::sections::{apps, cut, nodes, page, top_streams};
use super::slo;
use super::window::{Shown, StreamWindows};
use crate::catalog;
use crate::ingest::event::{CallbackSeen, Observer, ReportAccepted, Transition};
use crate::ingest::outcome::Outcome;
use crate::observe::callbacks::CallbackTallies;
use crate::state::streams::{add_count, Errors};
use crate::text::quote::{push_capped, shorten, QUOTE_BYTES};
use crate::text::url;
use std::sync::Arc;

/// Accepted push error reports shown, newest first.
pub const REPORTS_SHOWN: usize = 20;
/// A refusal's reason is cut to a few lines, whatever it quotes.
const MAX_REASON_BYTES: usize = 240;

#[derive(Default)]
#[cfg_attr(test, derive(Clone))]
struct Report {
    at_secs: u64,
    domain: String,
    app: String,
    stream: String,
    /// (error code, count), one per code, sorted by code.
    errors: Errors,
    worst_gap_secs: Option<f64>,
    /// Only when a name was cut for show: the stream's key (its label set,
    /// capped as labels are), its page's link built from it when the page
    /// is read; else the names shown are the ones to link.
    key: String,
}

/// What the ingest path fills, read with the callback tallies.
pub struct Recent {
    started_secs: u64,
    tallies: Arc<CallbackTallies>,
    refused: Refusals,
    reports: Ring<Report>,
    windows: StreamWindows,
    end_causes: slo::EndCauses,
}

impl Recent {
    pub fn new(now_secs: u64, tallies: Arc<CallbackTallies>) -> Self {
        Self {
            started_secs: now_secs,
            tallies,
            refused: Refusals::default(),
            reports: Ring::new(REPORTS_SHOWN),
            windows: StreamWindows::default(),
            end_causes: slo::EndCauses::default(),
        }
    }

    /// Everything the page shows; `inputs` is what only the exporter knows.
    pub fn page(&self, now_secs: u64, inputs: PageInputs) -> StatusPage {
        let (refused, refused_groups_evicted) = self.refused.view(now_secs);
        let window = self.windows.view(now_secs);
        StatusPage {
            version: env!("CARGO_PKG_VERSION"),
            now: now_secs,
            uptime_seconds: now_secs.saturating_sub(self.started_secs),
            listeners: inputs.listeners,
            callbacks_authenticated: inputs.authenticated,
            callbacks: self.callbacks(now_secs),
            apps: apps(inputs.live_streams, &inputs.slo_health, &window),
            refused,
            refused_groups_evicted,
            reports: self.reports.latest(|items| items.iter().rev().map(|r| r.view(now_secs)).collect()),
            top_streams: top_streams(window, now_secs),
            bounds: inputs.bounds,
            state_file: inputs.state_file,
            slo: slo::view(&inputs.slo_saturation, inputs.slo_top_streams, &self.end_causes),
            nodes: nodes(inputs.nodes, now_secs),
        }
    }

    fn callbacks(&self, now_secs: u64) -> Vec<CallbackTally> {
        let rows = self.tallies.rows().into_iter();
        rows.map(|row| CallbackTally {
            event_type: row.event_type,
            event: row.event_type.description(),
            outcome: row.outcome,
            count: row.count,
            last_seen: row.last_secs,
            seconds_ago: now_secs.saturating_sub(row.last_secs),
        })
        .collect()
    }
}

impl Observer for Recent {
    /// Counts a refused callback into its group: who sent it (as the HTTP
    /// layer names the peer) and why, quoted values cut short.
    fn callback(&self, seen: &CallbackSeen<'_>) {
        let Outcome::Rejected(rejection) = seen.outcome else { return };
        let mut reason = String::new();
        push_capped(&mut reason, &shorten(&rejection.to_string()), MAX_REASON_BYTES);
        self.refused.record(seen.at_secs, seen.peer, seen.event_type, rejection.kind(), &reason);
    }

    /// Counts push ends by cause.
    fn transition(&self, t: &Transition<'_>) {
        self.end_causes.count(t);
    }

    /// Remembers an accepted push error report and counts it into its
    /// stream's window; names as sent, cut short.
    fn report(&self, report: &ReportAccepted<'_>) {
        let worst_gap_secs = report.frame_max.into_iter().flatten().reduce(f64::max);
        let id = &report.sent;
        let total = total(report.errors);
        let key = Shown { domain: cut(id.domain), app: cut(id.app), stream: cut(id.stream) };
        self.reports.push(|r| {
            r.at_secs = report.at_secs;
            for (field, value) in [(&mut r.domain, &key.domain), (&mut r.app, &key.app), (&mut r.stream, &key.stream)] {
                field.clear();
                field.push_str(value);
            }
            r.errors.clear();
            for &(code, count) in report.errors {
                add_count(&mut r.errors, code, count);
            }
            r.worst_gap_secs = worst_gap_secs;
            r.key.clear();
            if [id.domain, id.app, id.stream].iter().any(|name| name.len() > QUOTE_BYTES) {
                r.key.push_str(report.key.as_str());
            }
        });
        self.windows.record_key(key, report.key.shard_hash(), report.at_secs, total, || report.key.as_str().into());
    }
}

impl Report {
    fn view(&self, now_secs: u64) -> ReportView {
        ReportView {
            time: self.at_secs,
            seconds_ago: now_secs.saturating_sub(self.at_secs),
            domain: self.domain.clone(),
            app: self.app.clone(),
            stream: self.stream.clone(),
            errors: self
                .errors
                .iter()
                .map(|&(code, count)| ErrorCount {
                    error_type: catalog::error_type_label(code),
                    error: catalog::error_name(code),
                    count,
                })
                .collect(),
            total_errors: total(&self.errors),
            worst_frame_gap_seconds: self.worst_gap_secs,
            page: if self.key.is_empty() {
                url::stream_page(&self.domain, &self.app, &self.stream)
            } else {
                page(&self.key)
            },
        }
    }
}

/// The errors of (error code, count) pairs.
fn total(errors: &[(u8, u64)]) -> u64 {
    errors.iter().fold(0u64, |n, e| n.saturating_add(e.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::EventType;
    use crate::ingest::outcome::Rejection;
    use crate::ingest::wire::{ParseError, ParseErrorKind};
    use crate::state::streams::StreamId;
    use crate::status_page::tests::{id, inputs, recent, report};
    use std::collections::VecDeque;

    fn refuse(r: &Recent, at_secs: u64, rejection: Rejection) {
        let outcome = Outcome::Rejected(rejection);
        r.callback(&CallbackSeen { event_type: EventType::PushError, outcome: &outcome, peer: None, at_secs });
    }

    #[test]
    fn the_ring_keeps_the_latest_reports_newest_first() {
        let s = recent(0);
        for i in 0..100u64 {
            report(&s, i, id(&format!("s{i}")), &[(6, 1), (7, 2), (6, 3)], [Some(1.5), Some(2.5)]);
        }
        assert_eq!(s.reports.read(VecDeque::len), REPORTS_SHOWN);
        let page = s.page(99, inputs());
        assert_eq!(page.reports.len(), REPORTS_SHOWN);
        let newest = &page.reports[0];
        assert_eq!(newest.stream, "s99");
        let errors: Vec<_> = newest.errors.iter().map(|e| (e.error_type, e.count)).collect();
        assert_eq!(errors, [("6", 4), ("7", 2)]);
        assert_eq!((newest.total_errors, newest.worst_frame_gap_seconds), (6, Some(2.5)));
        assert_eq!(newest.page, "streams/d/live/s99");
    }

    #[test]
    fn refusals_are_grouped() {
        let s = recent(0);
        for i in 0..1000 {
            refuse(&s, i, Rejection::Expired);
        }
        let page = s.page(1000, inputs());
        assert_eq!(page.refused.len(), 1);
        assert_eq!((page.refused[0].count, page.refused[0].first_seen, page.refused[0].last_seen), (1000, 0, 999));
    }

    #[test]
    fn names_and_reasons_are_cut_short() {
        let s = recent(0);
        let long = "x".repeat(1000);
        report(&s, 0, StreamId { domain: &long, app: "a", stream: "s" }, &[], [None, None]);
        let quoted =
            ParseError { kind: ParseErrorKind::Invalid, path: Some("t".into()), reason: format!("bad \"{long}\"") };
        refuse(&s, 0, Rejection::Malformed(quoted));
        let page = s.page(0, inputs());
        assert_eq!(page.reports[0].domain, format!("{}…", &long[..64]));
        // Linked by the key (capped as labels are, 64 bytes here), not the name shown.
        assert_eq!(page.reports[0].page, format!("streams/{}/a/s", &long[..64]));
        assert_eq!(page.refused[0].reason, format!("t: bad \"{}…\"", &long[..64]));
    }
}
