//! What the status page shows: what reached the exporter lately, kept by
//! [`Recent`] (an observer of ingest's events) in fixed-size rings filled
//! at the cost of one short lock (entries are recycled, so a full ring
//! allocates nothing), and the [`StatusPage`] built from them, the callback
//! tallies and the exporter's state on each request.
pub(crate) mod html;

use crate::catalog::{self, EventType};
use crate::ingest::event::{CallbackSeen, Observer, ReportAccepted};
use crate::ingest::outcome::{Outcome, OutcomeKind};
use crate::observe::callbacks::CallbackTallies;
use crate::state::persist::StateFileStatus;
use crate::state::streams::add_count;
use crate::text::parse_labels;
use crate::text::quote::{push_capped, shorten, QUOTE_BYTES};
use serde::Serialize;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// Refused callbacks kept, all shown.
pub const REFUSED_KEPT: usize = 20;
/// Accepted push error reports shown, newest first.
pub const REPORTS_SHOWN: usize = 20;
/// Accepted push error reports kept to find the streams with the most
/// errors: at most this many entries of three short names and at most one
/// count per error type each (a few hundred bytes typically).
pub const REPORTS_KEPT: usize = 4096;
/// Streams listed by errors, and the window they are counted over.
pub const TOP_STREAMS: usize = 10;
pub const TOP_WINDOW_SECS: u64 = 15 * 60;
/// A refusal's reason is cut to a few lines, whatever it quotes.
const MAX_REASON_BYTES: usize = 240;

/// A fixed number of the latest entries, oldest out first.
struct Ring<T> {
    capacity: usize,
    items: Mutex<VecDeque<T>>,
}

impl<T: Default> Ring<T> {
    fn new(capacity: usize) -> Self {
        Self { capacity, items: Mutex::new(VecDeque::new()) }
    }

    /// Appends an entry written by `fill`; once full, into the oldest
    /// entry's memory, so strings keep their buffers.
    fn push(&self, fill: impl FnOnce(&mut T)) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let mut entry = if items.len() >= self.capacity { items.pop_front().unwrap_or_default() } else { T::default() };
        fill(&mut entry);
        items.push_back(entry);
    }

    /// `f` of the entries, oldest first.
    fn read<R>(&self, f: impl FnOnce(&VecDeque<T>) -> R) -> R {
        f(&self.items.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct Refusal {
    at_secs: u64,
    peer: Option<IpAddr>,
    event_type: EventType,
    outcome: OutcomeKind,
    reason: String,
}

impl Default for Refusal {
    fn default() -> Self {
        Self {
            at_secs: 0,
            peer: None,
            event_type: EventType::Unknown,
            outcome: OutcomeKind::Malformed,
            reason: String::new(),
        }
    }
}

#[derive(Default)]
struct Report {
    at_secs: u64,
    domain: String,
    app: String,
    stream: String,
    /// (error code, count), one per code, sorted by code.
    errors: Vec<(u8, u64)>,
    worst_gap_secs: Option<f64>,
}

impl Report {
    fn total(&self) -> u64 {
        self.errors.iter().fold(0u64, |n, e| n.saturating_add(e.1))
    }
}

/// The rings the ingest path fills, read with the callback tallies.
pub struct Recent {
    started_secs: u64,
    tallies: Arc<CallbackTallies>,
    refused: Ring<Refusal>,
    reports: Ring<Report>,
}

impl Recent {
    pub fn new(now_secs: u64, tallies: Arc<CallbackTallies>) -> Self {
        Self { started_secs: now_secs, tallies, refused: Ring::new(REFUSED_KEPT), reports: Ring::new(REPORTS_KEPT) }
    }

    /// Everything the page shows; `inputs` is what only the exporter knows.
    pub fn page(&self, now_secs: u64, inputs: PageInputs) -> StatusPage {
        StatusPage {
            version: env!("CARGO_PKG_VERSION"),
            now: now_secs,
            uptime_seconds: now_secs.saturating_sub(self.started_secs),
            listeners: inputs.listeners,
            callbacks_authenticated: inputs.authenticated,
            callbacks: self.callbacks(now_secs),
            refused: self.refused.read(|items| {
                items
                    .iter()
                    .rev()
                    .map(|r| RefusedCallback {
                        time: r.at_secs,
                        seconds_ago: now_secs.saturating_sub(r.at_secs),
                        peer: r.peer,
                        event_type: r.event_type,
                        outcome: r.outcome,
                        reason: r.reason.clone(),
                    })
                    .collect()
            }),
            reports: self
                .reports
                .read(|items| items.iter().rev().take(REPORTS_SHOWN).map(|r| r.view(now_secs)).collect()),
            top_streams: self.reports.read(|items| top_streams(items, now_secs)),
            live_streams: inputs.live_streams,
            bounds: inputs.bounds,
            state_file: inputs.state_file,
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
    /// Remembers a refused callback: who sent it (the TCP peer, never a
    /// header) and why, quoted values cut short.
    fn callback(&self, seen: &CallbackSeen<'_>) {
        let Outcome::Rejected(rejection) = seen.outcome else { return };
        let reason = rejection.to_string();
        let reason = shorten(&reason);
        self.refused.push(|r| {
            (r.at_secs, r.peer, r.event_type, r.outcome) = (seen.at_secs, seen.peer, seen.event_type, rejection.kind());
            r.reason.clear();
            push_capped(&mut r.reason, &reason, MAX_REASON_BYTES);
        });
    }

    /// Remembers an accepted push error report; names as sent, cut short.
    fn report(&self, report: &ReportAccepted<'_>) {
        let worst_gap_secs = report.frame_max.into_iter().flatten().reduce(f64::max);
        let id = &report.sent;
        self.reports.push(|r| {
            r.at_secs = report.at_secs;
            for (field, value) in [(&mut r.domain, id.domain), (&mut r.app, id.app), (&mut r.stream, id.stream)] {
                field.clear();
                push_capped(field, value, QUOTE_BYTES);
            }
            r.errors.clear();
            for &(code, count) in report.errors {
                add_count(&mut r.errors, code, count);
            }
            r.worst_gap_secs = worst_gap_secs;
        });
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
            total_errors: self.total(),
            worst_frame_gap_seconds: self.worst_gap_secs,
        }
    }
}

/// The streams with the most errors in the reports of the last
/// [`TOP_WINDOW_SECS`] still in the ring.
fn top_streams(items: &VecDeque<Report>, now_secs: u64) -> TopStreams {
    let since = now_secs.saturating_sub(TOP_WINDOW_SECS);
    let mut per_stream: hashbrown::HashMap<(&str, &str, &str), (u64, u64)> = hashbrown::HashMap::new();
    let mut considered = 0;
    let mut oldest = now_secs;
    for r in items.iter().filter(|r| r.at_secs >= since) {
        considered += 1;
        oldest = oldest.min(r.at_secs);
        let entry = per_stream.entry((&r.domain, &r.app, &r.stream)).or_default();
        entry.0 = entry.0.saturating_add(r.total());
        entry.1 += 1;
    }
    let mut streams: Vec<StreamErrors> = per_stream
        .into_iter()
        .map(|((domain, app, stream), (errors, reports))| StreamErrors {
            domain: domain.to_owned(),
            app: app.to_owned(),
            stream: stream.to_owned(),
            errors,
            reports,
        })
        .collect();
    streams.sort_by(|a, b| {
        b.errors.cmp(&a.errors).then_with(|| (&a.domain, &a.app, &a.stream).cmp(&(&b.domain, &b.app, &b.stream)))
    });
    streams.truncate(TOP_STREAMS);
    TopStreams {
        window_seconds: TOP_WINDOW_SECS,
        covers_seconds: if considered == 0 { 0 } else { now_secs - oldest },
        reports_considered: considered,
        reports_kept: REPORTS_KEPT,
        streams,
    }
}

/// Live streams per (domain, app) from `domain="..",app=".."` label sets,
/// most live first.
pub fn live_streams(per_app: hashbrown::HashMap<String, u64>) -> Vec<LiveStreams> {
    let mut out: Vec<LiveStreams> = per_app
        .into_iter()
        .map(|(labels, live)| {
            let mut values = parse_labels(&labels).into_iter().map(|(_, value)| value);
            let domain = values.next().unwrap_or_default();
            LiveStreams { domain, app: values.next().unwrap_or_default(), live }
        })
        .collect();
    out.sort_by(|a, b| b.live.cmp(&a.live).then_with(|| (&a.domain, &a.app).cmp(&(&b.domain, &b.app))));
    out
}

/// What the page needs from outside the rings.
pub struct PageInputs {
    pub listeners: Vec<Listener>,
    pub authenticated: bool,
    pub live_streams: Vec<LiveStreams>,
    pub bounds: Vec<Bound>,
    pub state_file: Option<StateFileStatus>,
}

/// The status page's content; `GET /api/v1/status` serves it as JSON.
/// Times are Unix seconds by the exporter's clock.
#[derive(Debug, Serialize)]
pub struct StatusPage {
    pub version: &'static str,
    pub now: u64,
    pub uptime_seconds: u64,
    pub listeners: Vec<Listener>,
    pub callbacks_authenticated: bool,
    /// Per event type and outcome seen since start.
    pub callbacks: Vec<CallbackTally>,
    /// The latest refused callbacks, newest first.
    pub refused: Vec<RefusedCallback>,
    /// The latest accepted push error reports, newest first.
    pub reports: Vec<ReportView>,
    pub top_streams: TopStreams,
    pub live_streams: Vec<LiveStreams>,
    pub bounds: Vec<Bound>,
    /// With `--state-file` only.
    pub state_file: Option<StateFileStatus>,
}

/// One listening address and the paths it serves.
#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    pub address: SocketAddr,
    pub serves: Vec<&'static str>,
    pub tls: bool,
    pub basic_auth: bool,
}

#[derive(Debug, Serialize)]
pub struct CallbackTally {
    pub event_type: EventType,
    /// What the event type is.
    pub event: &'static str,
    pub outcome: OutcomeKind,
    pub count: u64,
    pub last_seen: u64,
    pub seconds_ago: u64,
}

#[derive(Debug, Serialize)]
pub struct RefusedCallback {
    pub time: u64,
    pub seconds_ago: u64,
    /// The TCP peer: CSS's server, a proxy in front, or whoever else.
    pub peer: Option<IpAddr>,
    pub event_type: EventType,
    pub outcome: OutcomeKind,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct ReportView {
    pub time: u64,
    pub seconds_ago: u64,
    pub domain: String,
    pub app: String,
    pub stream: String,
    pub errors: Vec<ErrorCount>,
    pub total_errors: u64,
    /// The longest frame gap the report describes, video or audio.
    pub worst_frame_gap_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ErrorCount {
    pub error_type: &'static str,
    pub error: &'static str,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct TopStreams {
    pub window_seconds: u64,
    /// How far back the reports counted go: less than the window when the
    /// ring holds fewer minutes than that.
    pub covers_seconds: u64,
    pub reports_considered: usize,
    pub reports_kept: usize,
    pub streams: Vec<StreamErrors>,
}

#[derive(Debug, Serialize)]
pub struct StreamErrors {
    pub domain: String,
    pub app: String,
    pub stream: String,
    pub errors: u64,
    pub reports: u64,
}

/// Live streams (push started, not ended) of one (domain, app).
#[derive(Debug, Serialize)]
pub struct LiveStreams {
    pub domain: String,
    pub app: String,
    pub live: u64,
}

/// How full one bounded structure is.
#[derive(Debug, Serialize)]
pub struct Bound {
    pub name: &'static str,
    /// The flag that sets the limit.
    pub flag: &'static str,
    pub used: u64,
    pub limit: u64,
}

impl Bound {
    pub fn new(name: &'static str, flag: &'static str, used: usize, limit: usize) -> Self {
        Self { name, flag, used: used as u64, limit: limit as u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::outcome::Rejection;
    use crate::ingest::wire::{ParseError, ParseErrorKind};
    use crate::state::streams::StreamId;

    fn inputs() -> PageInputs {
        PageInputs {
            listeners: Vec::new(),
            authenticated: true,
            live_streams: Vec::new(),
            bounds: Vec::new(),
            state_file: None,
        }
    }

    fn recent(now_secs: u64) -> Recent {
        Recent::new(now_secs, Arc::new(CallbackTallies::new()))
    }

    fn report(r: &Recent, at_secs: u64, sent: StreamId<'_>, errors: &[(u8, u64)], frame_max: [Option<f64>; 2]) {
        let unparsed_details = &[];
        let future_data_time = false;
        r.report(&ReportAccepted {
            sent,
            stream: sent,
            data_time_ms: 1,
            report_interval_ms: None,
            errors,
            frame_max,
            delay_secs: 0.0,
            future_data_time,
            unparsed_details,
            at_secs,
        });
    }

    fn refuse(r: &Recent, at_secs: u64, rejection: Rejection) {
        let outcome = Outcome::Rejected(rejection);
        r.callback(&CallbackSeen { event_type: EventType::PushError, outcome: &outcome, peer: None, at_secs });
    }

    fn id(stream: &str) -> StreamId<'_> {
        StreamId { domain: "d", app: "live", stream }
    }

    #[test]
    fn rings_keep_the_latest_entries_newest_first() {
        let s = recent(0);
        for i in 0..REPORTS_KEPT as u64 + 50 {
            report(&s, i, id(&format!("s{i}")), &[(6, 1), (7, 2), (6, 3)], [Some(1.5), Some(2.5)]);
            refuse(&s, i, Rejection::Expired);
        }
        assert_eq!(s.reports.read(VecDeque::len), REPORTS_KEPT);
        let page = s.page(REPORTS_KEPT as u64 + 49, inputs());
        assert_eq!(page.refused.len(), REFUSED_KEPT);
        assert_eq!(page.refused[0].time, REPORTS_KEPT as u64 + 49);
        assert_eq!(page.reports.len(), REPORTS_SHOWN);
        let newest = &page.reports[0];
        assert_eq!(newest.stream, format!("s{}", REPORTS_KEPT + 49));
        let errors: Vec<_> = newest.errors.iter().map(|e| (e.error_type, e.count)).collect();
        assert_eq!(errors, [("6", 4), ("7", 2)]);
        assert_eq!((newest.total_errors, newest.worst_frame_gap_seconds), (6, Some(2.5)));
    }

    #[test]
    fn top_streams_count_the_window_only() {
        let s = recent(0);
        report(&s, 0, id("old-and-loud"), &[(6, 1000)], [None, None]);
        for (t, stream, n) in [(1000, "a", 5), (1001, "b", 7), (1002, "a", 5), (1003, "c", 1)] {
            report(&s, t, id(stream), &[(1, n)], [None, None]);
        }
        let top = s.page(1000 + 60, inputs()).top_streams;
        let got: Vec<_> = top.streams.iter().map(|t| (t.stream.as_str(), t.errors, t.reports)).collect();
        assert_eq!(got, [("a", 10, 2), ("b", 7, 1), ("c", 1, 1)]);
        assert_eq!((top.reports_considered, top.covers_seconds), (4, 60));
    }

    #[test]
    fn live_streams_are_read_back_from_label_sets() {
        let mut per_app = hashbrown::HashMap::new();
        per_app.insert(r#"domain="d",app="x\",stream=\"\\n""#.to_owned(), 2);
        per_app.insert(r#"domain="d",app="live""#.to_owned(), 5);
        let got: Vec<_> = live_streams(per_app).into_iter().map(|l| (l.domain, l.app, l.live)).collect();
        assert_eq!(got, [("d".into(), "live".into(), 5), ("d".into(), "x\",stream=\"\\n".into(), 2)]);
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
        assert_eq!(page.refused[0].reason, format!("t: bad \"{}…\"", &long[..64]));
    }
}
