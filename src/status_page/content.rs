//! What the page shows, as data: the content `GET /api/v1/status` serves
//! as JSON and the HTML is written from, and what it needs from outside
//! the rings.
use super::refusals::RefusedCallback;
use super::slo::SloView;
use crate::catalog::EventType;
use crate::ingest::outcome::OutcomeKind;
use crate::nodes::NodeHealth;
use crate::slo::{AppHealth, BadStream, Saturation};
use crate::state::persist::StateFileStatus;
use serde::Serialize;
use std::net::SocketAddr;

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
    /// [`GROUPS_KEPT`](super::refusals::GROUPS_KEPT) are kept).
    pub refused_groups_evicted: u64,
    /// The latest accepted push error reports, newest first.
    pub reports: Vec<ReportView>,
    pub top_streams: TopStreams,
    pub bounds: Vec<Bound>,
    /// With `--state-file` only.
    pub state_file: Option<StateFileStatus>,
    /// The SLO accounting: its rooms, push ends by cause, the streams with the most bad time.
    pub slo: SloView,
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
    /// Tracked streams with errors in the window (at most [`TOP_STREAMS`](super::TOP_STREAMS)
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
