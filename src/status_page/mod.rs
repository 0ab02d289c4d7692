//! What the status page shows: what reached the exporter lately, kept by
//! [`Recent`] (an observer of ingest's events) at the cost of one short
//! lock per event: refusals grouped by sender and reason ([`refusals`]),
//! each stream's errors over the last 15 minutes ([`window`]), and the
//! latest reports in a fixed-size ring (entries are recycled). The
//! [`StatusPage`] is built from them, the callback tallies and the
//! exporter's state on each request.
pub(crate) mod html;
pub mod refusals;
pub mod rendered;
pub mod slo;
pub mod window;

use crate::catalog::{self, EventType};
use crate::ingest::event::{CallbackSeen, Observer, ReportAccepted, Transition};
use crate::ingest::outcome::{Outcome, OutcomeKind};
use crate::nodes::NodeHealth;
use crate::observe::callbacks::CallbackTallies;
use crate::slo::{AppHealth, BadStream, Saturation};
use crate::state::persist::StateFileStatus;
use crate::state::streams::add_count;
use crate::text::quote::{push_capped, shorten, QUOTE_BYTES};
use crate::text::{parse_labels, url};
use refusals::{Refusals, RefusedCallback};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use window::{Shown, StreamWindows, WindowView};

/// Accepted push error reports shown, newest first.
pub const REPORTS_SHOWN: usize = 20;
/// Streams listed by errors over [`window::WINDOW_SECS`].
pub const TOP_STREAMS: usize = 10;
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
struct Report {
    at_secs: u64,
    domain: String,
    app: String,
    stream: String,
    /// (error code, count), one per code, sorted by code.
    errors: Vec<(u8, u64)>,
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
            reports: self.reports.read(|items| items.iter().rev().map(|r| r.view(now_secs)).collect()),
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

    /// Remembers an accepted push error report and counts it into its
    /// stream's window; names as sent, cut short.
    /// Counts push ends by cause.
    fn transition(&self, t: &Transition<'_>) {
        self.end_causes.count(t);
    }

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
        self.windows.record(key, report.at_secs, total, || report.key.as_str().into());
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

/// The page of the stream keyed `labels` (`domain="..",app="..",stream=".."`).
fn page(labels: &str) -> String {
    let values: Vec<String> = parse_labels(labels).into_iter().map(|(_, v)| v).collect();
    match &values[..] {
        [domain, app, stream] => url::stream_page(domain, app, stream),
        _ => String::new(),
    }
}

/// A name as shown: cut short, borrowed unless it had to be cut.
fn cut(value: &str) -> Cow<'_, str> {
    if value.len() <= QUOTE_BYTES {
        return Cow::Borrowed(value);
    }
    let mut out = String::new();
    push_capped(&mut out, value, QUOTE_BYTES);
    Cow::Owned(out)
}

/// The errors of (error code, count) pairs.
fn total(errors: &[(u8, u64)]) -> u64 {
    errors.iter().fold(0u64, |n, e| n.saturating_add(e.1))
}

/// The streams with the most errors in the window.
fn top_streams(window: WindowView, now_secs: u64) -> TopStreams {
    let tracked = window.streams.len();
    let mut streams: Vec<StreamErrors> = window
        .streams
        .into_iter()
        .filter(|s| s.totals.errors > 0)
        .map(|s| StreamErrors {
            first_seen: s.totals.first_secs.unwrap_or(s.last_secs),
            last_seen: s.last_secs,
            seconds_ago: now_secs.saturating_sub(s.last_secs),
            domain: s.key.domain,
            app: s.key.app,
            stream: s.key.stream,
            errors: s.totals.errors,
            reports: s.totals.reports,
            page: page(&s.key_labels),
        })
        .collect();
    streams.sort_by(|a, b| {
        b.errors.cmp(&a.errors).then_with(|| (&a.domain, &a.app, &a.stream).cmp(&(&b.domain, &b.app, &b.stream)))
    });
    let streams_with_errors = streams.len();
    streams.truncate(TOP_STREAMS);
    TopStreams {
        window_seconds: window::WINDOW_SECS,
        streams_tracked: tracked,
        streams_tracked_limit: window::MAX_TRACKED,
        streams_with_errors,
        dropped_reports: window.dropped.reports,
        dropped_errors: window.dropped.errors,
        streams,
    }
}

/// Per (domain, app): its live streams and those with recent errors, the
/// pairs with the most streams in trouble first.
fn apps(live: Vec<LiveStreams>, health: &[AppHealth], window: &WindowView) -> Vec<AppSummary> {
    let mut recent = window.recent_errors.clone();
    let slo = |domain: &str, app: &str| {
        let h = health.iter().find(|h| h.domain == domain && h.app == app)?;
        let &(_, bad, live) = h.slos.first()?;
        Some(SloSummary {
            bad_seconds: bad,
            live_seconds: live,
            outage_seconds: h.outage_secs,
            error_free: h.error_free(0),
        })
    };
    let mut out: Vec<AppSummary> = live
        .into_iter()
        .map(|l| {
            let streams_with_errors = recent.remove(&(l.domain.clone(), l.app.clone())).unwrap_or(0);
            let slo = slo(&l.domain, &l.app);
            AppSummary { domain: l.domain, app: l.app, live: l.live, lifecycle_seen: true, streams_with_errors, slo }
        })
        .collect();
    // Pairs with errors and no push start or end remembered.
    out.extend(recent.into_iter().map(|((domain, app), n)| {
        let slo = slo(&domain, &app);
        AppSummary { domain, app, live: 0, lifecycle_seen: false, streams_with_errors: n, slo }
    }));
    out.sort_by(|a, b| {
        (b.streams_with_errors, b.live)
            .cmp(&(a.streams_with_errors, a.live))
            .then_with(|| (&a.domain, &a.app).cmp(&(&b.domain, &b.app)))
    });
    out
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
#[derive(Default)]
pub struct PageInputs {
    pub listeners: Vec<Listener>,
    pub authenticated: bool,
    pub live_streams: Vec<LiveStreams>,
    /// Per (domain, app): the first SLO's bad and live seconds over the last
    /// [`SLO_SPAN_SECS`], from the SLO accounting's memory.
    pub slo_health: Vec<AppHealth>,
    /// How full the SLO accounting's rooms are.
    pub slo_saturation: Vec<Saturation>,
    /// The streams with the most bad time over [`SLO_SPAN_SECS`].
    pub slo_top_streams: Vec<BadStream>,
    pub bounds: Vec<Bound>,
    pub state_file: Option<StateFileStatus>,
    /// Per CSS access node: live streams, the first SLO's bad and live
    /// seconds over the last [`SLO_SPAN_SECS`], the worst share first.
    pub nodes: Vec<NodeHealth>,
}

/// How far back the page's error-free share looks.
pub const SLO_SPAN_SECS: u64 = 15 * 60;

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
    /// Per (domain, app): live streams, and how many streams had errors
    /// in the last 5 minutes; the most troubled first.
    pub apps: Vec<AppSummary>,
    /// Refused callbacks grouped by (peer, outcome, reason), the most
    /// recently seen first.
    pub refused: Vec<RefusedCallback>,
    /// Groups replaced by newer ones since start (at most
    /// [`refusals::GROUPS_KEPT`] are kept).
    pub refused_groups_evicted: u64,
    /// The latest accepted push error reports, newest first.
    pub reports: Vec<ReportView>,
    pub top_streams: TopStreams,
    pub bounds: Vec<Bound>,
    /// With `--state-file` only.
    pub state_file: Option<StateFileStatus>,
    /// The SLO accounting: its rooms, push ends by cause, the streams with the most bad time.
    pub slo: slo::SloView,
    /// Per CSS access node (and region) of the push sessions: the worst
    /// bad share over [`SLO_SPAN_SECS`] first.
    pub nodes: Vec<NodeSummary>,
}

/// One CSS access node's recent health; `node` is "unknown" for sessions
/// whose start was not seen (or named no IP), "other" past `--max-nodes`.
#[derive(Debug, Serialize)]
pub struct NodeSummary {
    pub node: String,
    pub region: &'static str,
    pub live_streams: u64,
    /// The first SLO's bad and live seconds over [`SLO_SPAN_SECS`].
    pub bad_seconds: u64,
    pub live_seconds: u64,
    /// Bad over live; `None` without live time.
    pub bad_share: Option<f64>,
    /// The end of the last report that made time bad, Unix seconds.
    pub last_bad: Option<u64>,
    pub last_bad_seconds_ago: Option<u64>,
    /// The streams now on it with the most bad seconds over the span,
    /// most first (a few), names cut short.
    pub streams: Vec<NodeStream>,
}

#[derive(Debug, Serialize)]
pub struct NodeStream {
    pub domain: String,
    pub app: String,
    pub stream: String,
    pub bad_seconds: u64,
    /// The stream's page, relative to this one.
    pub page: String,
}

/// The nodes as the page shows them.
fn nodes(health: Vec<NodeHealth>, now_secs: u64) -> Vec<NodeSummary> {
    health
        .into_iter()
        .map(|h| NodeSummary {
            bad_share: h.bad_share(),
            last_bad_seconds_ago: h.last_bad_secs.map(|t| now_secs.saturating_sub(t)),
            last_bad: h.last_bad_secs,
            node: h.node,
            region: h.region,
            live_streams: h.live_streams,
            bad_seconds: h.bad_secs,
            live_seconds: h.live_secs,
            streams: h.streams.into_iter().map(|(labels, bad_seconds)| node_stream(&labels, bad_seconds)).collect(),
        })
        .collect()
}

/// A stream of a node, from its label set.
fn node_stream(labels: &str, bad_seconds: u64) -> NodeStream {
    let mut values = parse_labels(labels).into_iter().map(|(_, value)| value);
    let mut next = || values.next().unwrap_or_default();
    let (domain, app, stream) = (next(), next(), next());
    // The page is named by the whole label values; the table shows them cut.
    let page = url::stream_page(&domain, &app, &stream);
    let cut = |value: &str| {
        let mut cut = String::new();
        push_capped(&mut cut, value, QUOTE_BYTES);
        cut
    };
    NodeStream { domain: cut(&domain), app: cut(&app), stream: cut(&stream), bad_seconds, page }
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
    /// The stream's page (its history), relative to the status page.
    pub page: String,
}

#[derive(Debug, Serialize)]
pub struct ErrorCount {
    pub error_type: &'static str,
    pub error: &'static str,
    pub count: u64,
}

/// The streams with the most errors over the window.
#[derive(Debug, Serialize)]
pub struct TopStreams {
    pub window_seconds: u64,
    /// Streams with reports in the window, tracked one by one.
    pub streams_tracked: usize,
    pub streams_tracked_limit: usize,
    /// Tracked streams with errors in the window (at most [`TOP_STREAMS`]
    /// are listed).
    pub streams_with_errors: usize,
    /// Reports in the window of streams past the limit, not counted above.
    pub dropped_reports: u64,
    pub dropped_errors: u64,
    pub streams: Vec<StreamErrors>,
}

#[derive(Debug, Serialize)]
pub struct StreamErrors {
    pub domain: String,
    pub app: String,
    pub stream: String,
    pub errors: u64,
    pub reports: u64,
    /// The first and the last report in the window.
    pub first_seen: u64,
    pub last_seen: u64,
    pub seconds_ago: u64,
    /// The stream's page (its history), relative to the status page.
    pub page: String,
}

/// One (domain, app): "N of M live streams had errors in the last 5 minutes".
#[derive(Debug, Serialize)]
pub struct AppSummary {
    pub domain: String,
    pub app: String,
    /// Push started and not ended (0 without push start callbacks).
    pub live: u64,
    /// Push starts or ends of the pair's streams are remembered: with
    /// `live` 0, every push ended; without, no lifecycle callback came
    /// (their URLs are not in the callback template) or it was forgotten.
    pub lifecycle_seen: bool,
    /// Streams with errors reported in the last 5 minutes.
    pub streams_with_errors: u64,
    /// The first SLO over the last [`SLO_SPAN_SECS`]; `None` before the
    /// pair has live time the accounting knows of.
    pub slo: Option<SloSummary>,
}

/// Error-free push time of one (domain, app), from memory (no series).
#[derive(Debug, Serialize)]
pub struct SloSummary {
    pub bad_seconds: u64,
    pub live_seconds: u64,
    /// Of those, outage gaps (an abnormal end, then a start within the reconnect window).
    pub outage_seconds: u64,
    /// 1 − bad / live; `None` without live time (no data, never "100 %").
    pub error_free: Option<f64>,
}

/// Live streams (push started, not ended) of one (domain, app).
#[derive(Debug)]
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

    pub(super) fn inputs() -> PageInputs {
        PageInputs { authenticated: true, ..PageInputs::default() }
    }

    #[test]
    fn each_pair_shows_its_error_free_share_or_no_data() {
        let health = |app: &str, bad, live| AppHealth {
            domain: "d".into(),
            app: app.into(),
            live_streams: 1,
            slos: vec![("push-health".into(), bad, live)],
            outage_secs: 0,
        };
        let live = |app: &str| LiveStreams { domain: "d".into(), app: app.into(), live: 1 };
        let page = recent(0).page(
            0,
            PageInputs {
                live_streams: vec![live("live"), live("new")],
                slo_health: vec![health("live", 90, 900), health("new", 0, 0)],
                ..inputs()
            },
        );
        let got: Vec<_> =
            page.apps.iter().map(|a| (a.app.as_str(), a.slo.as_ref().map(|s| (s.bad_seconds, s.error_free)))).collect();
        assert_eq!(got, [("live", Some((90, Some(0.9)))), ("new", Some((0, None)))]);
    }

    pub(super) fn recent(now_secs: u64) -> Recent {
        Recent::new(now_secs, Arc::new(CallbackTallies::new()))
    }

    fn report(r: &Recent, at_secs: u64, sent: StreamId<'_>, errors: &[(u8, u64)], frame_max: [Option<f64>; 2]) {
        let key = crate::state::key::StreamKey::new(sent, 64);
        r.report(&ReportAccepted { frame_max, ..ReportAccepted::for_test(sent, &key, errors, at_secs) });
    }

    fn refuse(r: &Recent, at_secs: u64, rejection: Rejection) {
        let outcome = Outcome::Rejected(rejection);
        r.callback(&CallbackSeen { event_type: EventType::PushError, outcome: &outcome, peer: None, at_secs });
    }

    fn id(stream: &str) -> StreamId<'_> {
        StreamId { domain: "d", app: "live", stream }
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
    fn top_streams_count_the_window_only() {
        let s = recent(0);
        report(&s, 0, id("old-and-loud"), &[(6, 1000)], [None, None]);
        for (t, stream, n) in [(1000, "a", 5), (1001, "b", 7), (1002, "a", 5), (1003, "c", 1), (1004, "d", 0)] {
            report(&s, t, id(stream), &[(1, n)], [None, None]);
        }
        let top = s.page(1000 + 60, inputs()).top_streams;
        let got: Vec<_> = top.streams.iter().map(|t| (t.stream.as_str(), t.errors, t.reports, t.first_seen)).collect();
        assert_eq!(got, [("a", 10, 2, 1000), ("b", 7, 1, 1001), ("c", 1, 1, 1003)]);
        assert_eq!((top.streams_tracked, top.streams_with_errors, top.dropped_reports), (4, 3, 0));
    }

    #[test]
    fn apps_say_how_many_streams_had_errors_lately() {
        let s = recent(0);
        for stream in ["a", "b"] {
            report(&s, 100, id(stream), &[(6, 1)], [None, None]);
        }
        report(&s, 100, StreamId { domain: "d", app: "no-lifecycle", stream: "x" }, &[(6, 1)], [None, None]);
        let live = |app: &str, live| LiveStreams { domain: "d".into(), app: app.into(), live };
        let page = s.page(120, PageInputs { live_streams: vec![live("quiet", 9), live("live", 40)], ..inputs() });
        let got: Vec<_> = page.apps.iter().map(|a| (a.app.as_str(), a.streams_with_errors, a.live)).collect();
        assert_eq!(got, [("live", 2, 40), ("no-lifecycle", 1, 0), ("quiet", 0, 9)]);
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
        // Linked by the key (capped as labels are, 64 bytes here), not the name shown.
        assert_eq!(page.reports[0].page, format!("streams/{}/a/s", &long[..64]));
        assert_eq!(page.refused[0].reason, format!("t: bad \"{}…\"", &long[..64]));
    }
}
