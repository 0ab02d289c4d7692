//! What the status page shows: what reached the exporter lately, kept in
//! fixed-size rings that the ingest path fills at the cost of one short
//! lock (entries are recycled, so a full ring allocates nothing), and the
//! [`Snapshot`] built from them and from the state on each request.
pub(crate) mod html;

use crate::catalog;
use crate::expose::metrics::OUTCOMES;
use crate::expose::text::parse_labels;
use crate::ingest::pipeline::Rejection;
use crate::ingest::quote::{push_capped, shorten, QUOTE_BYTES};
use crate::state::persist::StateFileStatus;
use crate::state::streams::{add_count, StreamId};
use serde::Serialize;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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

/// Every `event_type` label value a callback is counted under (as
/// `catalog::event_type_label` and "unknown" for an unreadable body), and
/// what it is.
pub const EVENT_TYPES: [(&str, &str); 16] = [
    ("321", "push error"),
    ("1", "push start"),
    ("0", "push end"),
    ("100", "recording file"),
    ("200", "screenshot"),
    ("314", "relay"),
    ("315", "audio audit"),
    ("317", "image audit"),
    ("328", "stream monitoring"),
    ("332", "recording status"),
    ("341", "abnormal recording"),
    ("343", "quality control"),
    ("344", "evaluation threshold"),
    ("349", "smart highlight"),
    ("other", "other event type"),
    ("unknown", "unreadable body"),
];

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
        let mut items = crate::sync::lock(&self.items);
        let mut entry = if items.len() >= self.capacity { items.pop_front().unwrap_or_default() } else { T::default() };
        fill(&mut entry);
        items.push_back(entry);
    }

    /// `f` of the entries, oldest first.
    fn read<R>(&self, f: impl FnOnce(&VecDeque<T>) -> R) -> R {
        f(&crate::sync::lock(&self.items))
    }
}

#[derive(Default)]
struct Refusal {
    at_secs: u64,
    peer: Option<IpAddr>,
    event_type: &'static str,
    outcome: &'static str,
    reason: String,
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

/// How many callbacks of one event type had one outcome, and when the last.
#[derive(Default)]
struct Tally {
    count: AtomicU64,
    last_secs: AtomicU64,
}

/// The rings and tallies the ingest path fills.
pub struct Status {
    started_secs: u64,
    /// [`EVENT_TYPES`] × [`OUTCOMES`].
    tallies: Box<[Tally]>,
    refused: Ring<Refusal>,
    reports: Ring<Report>,
}

impl Status {
    pub fn new(now_secs: u64) -> Self {
        Self {
            started_secs: now_secs,
            tallies: (0..EVENT_TYPES.len() * OUTCOMES.len()).map(|_| Tally::default()).collect(),
            refused: Ring::new(REFUSED_KEPT),
            reports: Ring::new(REPORTS_KEPT),
        }
    }

    /// Counts a callback under its `event_type` and `outcome` labels.
    pub fn count(&self, event_type: &str, outcome: &str, now_secs: u64) {
        let event = EVENT_TYPES.iter().position(|e| e.0 == event_type);
        let outcome = OUTCOMES.iter().position(|&o| o == outcome);
        if let (Some(e), Some(o)) = (event, outcome) {
            let tally = &self.tallies[e * OUTCOMES.len() + o];
            tally.count.fetch_add(1, Ordering::Relaxed);
            tally.last_secs.store(now_secs, Ordering::Relaxed);
        }
    }

    /// Remembers a refused callback: who sent it (the TCP peer, never a
    /// header) and why, quoted values cut short.
    pub fn refused(&self, now_secs: u64, peer: Option<IpAddr>, event_type: &'static str, rejection: &Rejection) {
        let reason = rejection.to_string();
        let reason = shorten(&reason);
        self.refused.push(|r| {
            (r.at_secs, r.peer, r.event_type, r.outcome) = (now_secs, peer, event_type, rejection.label());
            r.reason.clear();
            push_capped(&mut r.reason, &reason, MAX_REASON_BYTES);
        });
    }

    /// Remembers an accepted push error report; names as sent, cut short.
    pub fn report(&self, now_secs: u64, id: StreamId, errors: &[(u8, u64)], frame_max: [Option<f64>; 2]) {
        let worst_gap_secs = frame_max.into_iter().flatten().reduce(f64::max);
        self.reports.push(|r| {
            r.at_secs = now_secs;
            for (field, value) in [(&mut r.domain, id.domain), (&mut r.app, id.app), (&mut r.stream, id.stream)] {
                field.clear();
                push_capped(field, value, QUOTE_BYTES);
            }
            r.errors.clear();
            for &(code, count) in errors {
                add_count(&mut r.errors, code, count);
            }
            r.worst_gap_secs = worst_gap_secs;
        });
    }

    /// Everything the page shows; `state` is what only the exporter knows.
    pub fn snapshot(&self, now_secs: u64, state: StateView) -> Snapshot {
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            now: now_secs,
            uptime_seconds: now_secs.saturating_sub(self.started_secs),
            listeners: state.listeners,
            callbacks_authenticated: state.authenticated,
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
            live_streams: state.live_streams,
            bounds: state.bounds,
            state_file: state.state_file,
        }
    }

    fn callbacks(&self, now_secs: u64) -> Vec<CallbackTally> {
        let mut out = Vec::new();
        for (e, &(event_type, event)) in EVENT_TYPES.iter().enumerate() {
            for (o, &outcome) in OUTCOMES.iter().enumerate() {
                let tally = &self.tallies[e * OUTCOMES.len() + o];
                let count = tally.count.load(Ordering::Relaxed);
                if count > 0 {
                    let last_seen = tally.last_secs.load(Ordering::Relaxed);
                    let seconds_ago = now_secs.saturating_sub(last_seen);
                    out.push(CallbackTally { event_type, event, outcome, count, last_seen, seconds_ago });
                }
            }
        }
        out
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

/// What the snapshot needs from outside the rings.
pub struct StateView {
    pub listeners: Vec<Listener>,
    pub authenticated: bool,
    pub live_streams: Vec<LiveStreams>,
    pub bounds: Vec<Bound>,
    pub state_file: Option<StateFileStatus>,
}

/// The status page's content; `GET /api/v1/status` serves it as JSON.
/// Times are Unix seconds by the exporter's clock.
#[derive(Debug, Serialize)]
pub struct Snapshot {
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
    pub event_type: &'static str,
    /// What the event type is.
    pub event: &'static str,
    pub outcome: &'static str,
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
    pub event_type: &'static str,
    pub outcome: &'static str,
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
    use crate::ingest::pipeline::Outcome;
    use crate::ingest::wire::{ParseError, ParseErrorKind};

    fn id(stream: &str) -> StreamId<'_> {
        StreamId { domain: "d", app: "live", stream }
    }

    fn view() -> StateView {
        StateView {
            listeners: Vec::new(),
            authenticated: true,
            live_streams: Vec::new(),
            bounds: Vec::new(),
            state_file: None,
        }
    }

    #[test]
    fn every_label_a_callback_is_counted_under_has_a_tally() {
        for event_type in (-2..=1000).chain([i64::MIN, i64::MAX]) {
            let label = catalog::event_type_label(event_type);
            assert!(EVENT_TYPES.iter().any(|e| e.0 == label), "{label}");
        }
        let parse = ParseError { kind: ParseErrorKind::Syntax, path: None, reason: String::new() };
        for outcome in [
            Outcome::Accepted,
            Outcome::Duplicate,
            Outcome::Ignored,
            Outcome::Rejected(Rejection::Malformed(parse)),
            Outcome::Rejected(Rejection::Unauthorized("x")),
            Outcome::Rejected(Rejection::Expired),
            Outcome::Rejected(Rejection::TooLarge { limit: 1 }),
        ] {
            assert!(OUTCOMES.contains(&outcome.label()), "{outcome:?}");
        }
    }

    #[test]
    fn tallies_count_and_remember_the_last_time() {
        let s = Status::new(100);
        s.count("321", "accepted", 110);
        s.count("321", "accepted", 120);
        s.count("unknown", "malformed", 115);
        let snap = s.snapshot(130, view());
        assert_eq!(snap.uptime_seconds, 30);
        let got: Vec<_> = snap.callbacks.iter().map(|c| (c.event_type, c.outcome, c.count, c.seconds_ago)).collect();
        assert_eq!(got, [("321", "accepted", 2, 10), ("unknown", "malformed", 1, 15)]);
    }

    #[test]
    fn rings_keep_the_latest_entries_newest_first() {
        let s = Status::new(0);
        for i in 0..REPORTS_KEPT as u64 + 50 {
            s.report(i, id(&format!("s{i}")), &[(6, 1), (7, 2), (6, 3)], [Some(1.5), Some(2.5)]);
            s.refused(i, None, "321", &Rejection::Expired);
        }
        assert_eq!(s.reports.read(VecDeque::len), REPORTS_KEPT);
        let snap = s.snapshot(REPORTS_KEPT as u64 + 49, view());
        assert_eq!(snap.refused.len(), REFUSED_KEPT);
        assert_eq!(snap.refused[0].time, REPORTS_KEPT as u64 + 49);
        assert_eq!(snap.reports.len(), REPORTS_SHOWN);
        let newest = &snap.reports[0];
        assert_eq!(newest.stream, format!("s{}", REPORTS_KEPT + 49));
        let errors: Vec<_> = newest.errors.iter().map(|e| (e.error_type, e.count)).collect();
        assert_eq!(errors, [("6", 4), ("7", 2)]);
        assert_eq!((newest.total_errors, newest.worst_frame_gap_seconds), (6, Some(2.5)));
    }

    #[test]
    fn top_streams_count_the_window_only() {
        let s = Status::new(0);
        s.report(0, id("old-and-loud"), &[(6, 1000)], [None, None]);
        for (t, stream, n) in [(1000, "a", 5), (1001, "b", 7), (1002, "a", 5), (1003, "c", 1)] {
            s.report(t, id(stream), &[(1, n)], [None, None]);
        }
        let top = s.snapshot(1000 + 60, view()).top_streams;
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
        let s = Status::new(0);
        let long = "x".repeat(1000);
        s.report(0, StreamId { domain: &long, app: "a", stream: "s" }, &[], [None, None]);
        let quoted =
            ParseError { kind: ParseErrorKind::Invalid, path: Some("t".into()), reason: format!("bad \"{long}\"") };
        s.refused(0, None, "321", &Rejection::Malformed(quoted));
        let snap = s.snapshot(0, view());
        assert_eq!(snap.reports[0].domain, format!("{}…", &long[..64]));
        assert_eq!(snap.refused[0].reason, format!("t: bad \"{}…\"", &long[..64]));
    }
}
