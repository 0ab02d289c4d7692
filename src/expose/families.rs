//! The one table of every metric family this exporter shows: its name, type
//! and help text. Collectors encode families from here only, and a test
//! checks the table against the rendered page and `docs/metrics.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn family(name: &'static str, kind: Kind, help: &'static str) -> Family {
    Family { name, kind, help }
}

use Kind::{Counter, Gauge, Histogram};

// The exporter itself.
pub const BUILD_INFO: Family = family(
    "css_push_exporter_build_info",
    Gauge,
    "Always 1; the version, git revision and rustc version of the build that runs.",
);
pub const CALLBACKS: Family =
    family("css_push_callbacks_total", Counter, "Callbacks received, by event type and outcome.");
pub const CALLBACK_DELAY: Family = family(
    "css_push_callback_delay_seconds",
    Histogram,
    "Receive time minus the callback's data_time (clamped at 0): how late CSS delivers.",
);
pub const UNPARSED_DETAILS: Family =
    family("css_push_unparsed_details_total", Counter, "Frame gap details whose desc carried no readable interval.");
pub const FUTURE_DATA_TIME: Family = family(
    "css_push_future_data_time_total",
    Counter,
    "Push error reports whose data_time was more than 10 minutes ahead; recorded at the receive time instead.",
);
pub const SCRAPES: Family = family("css_push_scrapes_total", Counter, "/metrics requests answered with a page.");
pub const SCRAPE_RENDERS: Family = family(
    "css_push_scrape_renders_total",
    Counter,
    "Pages rendered for /metrics; concurrent scrapes share one, so fewer than scrapes under load.",
);
pub const SCRAPE_PAGES: Family = family(
    "css_push_scrape_pages",
    Gauge,
    "Rendered /metrics pages in memory: the latest and any still being sent (at most 2).",
);
pub const SCRAPE_WRITE_TIMEOUTS: Family = family(
    "css_push_scrape_write_timeouts_total",
    Counter,
    "/metrics answers cut off because the scraper did not read them within --write-timeout.",
);
pub const HTTP_AUTH_FAILURES: Family = family(
    "css_push_http_auth_failures_total",
    Counter,
    "Requests refused by basic auth, by reason: missing, invalid (wrong user or password), throttled (not checked: too many checks waiting).",
);
pub const DEDUP_ENTRIES: Family =
    family("css_push_dedup_entries", Gauge, "Callback identities remembered to recognise CSS retries.");
pub const DEDUP_EVICTED: Family = family(
    "css_push_dedup_evicted_total",
    Counter,
    "Identities dropped before --dedup-window ended because --dedup-capacity was full.",
);

// Per (domain, app).
pub const FRAME_INTERVAL: Family = family(
    "css_push_frame_interval_seconds",
    Histogram,
    "Frame arrival gaps reported in push error details (types 6 and 7).",
);
pub const STREAM_STARTS: Family =
    family("css_push_stream_starts_total", Counter, "Push start callbacks (event_type 1) accepted.");
pub const STREAM_ENDS: Family = family(
    "css_push_stream_ends_total",
    Counter,
    "Push end callbacks (event_type 0) accepted, by errcode (0-99, else \"other\") and its cause.",
);
pub const SESSION_DURATION: Family = family(
    "css_push_session_duration_seconds",
    Histogram,
    "Push session length from push end callbacks (push_duration).",
);

// Per stream, and the stream registry's own state.
pub const ERRORS: Family = family(
    "css_push_errors_total",
    Counter,
    "Push errors CSS reported, by stream and error type (the count field, summed).",
);
pub const FRAME_MAX: Family = family(
    "css_push_frame_interval_max_seconds",
    Gauge,
    "Largest frame arrival gap in the stream's latest push error report.",
);
pub const LAST_ERROR: Family = family(
    "css_push_last_error_timestamp_seconds",
    Gauge,
    "data_time of the stream's latest push error report, Unix seconds.",
);
/// One series per stream; not to be confused with [`STREAMS_LIVE`], the count per (domain, app).
pub const STREAM_LIVE: Family = family(
    "css_push_stream_live",
    Gauge,
    "Per stream: 1 while it is pushing (after a push start), 0 after a push end.",
);
/// The count per (domain, app); not to be confused with [`STREAM_LIVE`], one series per stream.
pub const STREAMS_LIVE: Family = family(
    "css_push_streams_live",
    Gauge,
    "Per (domain, app): how many streams are pushing now (push start seen, no end yet).",
);
pub const STREAMS: Family = family("css_push_streams", Gauge, "Streams currently holding per-stream series.");
pub const STREAMS_LIMIT: Family = family(
    "css_push_streams_limit",
    Gauge,
    "The --max-streams cap; streams past it fold into stream=\"__overflow__\".",
);
pub const STREAMS_EXPIRED: Family = family(
    "css_push_streams_expired_total",
    Counter,
    "Streams whose series were removed after --stream-ttl without a callback.",
);
pub const STREAM_OVERFLOW: Family = family(
    "css_push_stream_overflow_total",
    Counter,
    "Callbacks folded into stream=\"__overflow__\" because --max-streams was reached.",
);
pub const LIVE_STREAMS_TRACKED: Family = family(
    "css_push_live_streams_tracked",
    Gauge,
    "Streams whose push start/end state is remembered (live or ended), whatever --max-streams is.",
);
pub const LIVE_STREAMS_LIMIT: Family =
    family("css_push_live_streams_limit", Gauge, "The --max-live-streams bound on css_push_live_streams_tracked.");
pub const LIVE_STREAM_OVERFLOW: Family = family(
    "css_push_live_stream_overflow_total",
    Counter,
    "Push starts and ends of new streams not tracked because --max-live-streams was reached.",
);

// The state file, only with --state-file.
pub const STATE_SNAPSHOTS: Family =
    family("css_push_state_snapshots_total", Counter, "State file writes, by result (ok, error).");
pub const STATE_LAST_SNAPSHOT: Family = family(
    "css_push_state_last_snapshot_timestamp_seconds",
    Gauge,
    "When the state file was last written successfully, Unix seconds.",
);
pub const STATE_INTERVAL: Family =
    family("css_push_state_snapshot_interval_seconds", Gauge, "The --state-interval between state file writes.");
pub const STATE_DURATION: Family = family(
    "css_push_state_snapshot_duration_seconds",
    Gauge,
    "How long the last state file write took, copying the state included.",
);
pub const STATE_BYTES: Family = family("css_push_state_snapshot_bytes", Gauge, "Size of the last state file written.");
pub const STATE_RESTORED: Family =
    family("css_push_state_restored_streams", Gauge, "Streams restored from the state file at start.");
pub const STATE_CORRUPT: Family = family(
    "css_push_state_corrupt_files_total",
    Counter,
    "State files found unreadable at start and moved aside to PATH.corrupt-<unix seconds>.",
);
pub const SERIES: Family =
    family("css_push_series", Gauge, "Series held by streams and (domain, app) pairs, counted against --max-series.");
pub const SERIES_LIMIT: Family = family("css_push_series_limit", Gauge, "The --max-series budget.");
pub const SERIES_OVERFLOW: Family = family(
    "css_push_series_overflow_total",
    Counter,
    "Callbacks folded into an __overflow__ series because --max-series was reached.",
);

// The push-health SLOs (issue 19), per (domain, app) and SLO.
pub const SLO_INFO: Family = family(
    "css_push_slo_info",
    Gauge,
    "Always 1 per SLO the exporter accounts for, with its objective, window and bad error types as labels.",
);
pub const LIVE_SECONDS: Family = family(
    "css_push_live_seconds_total",
    Counter,
    "Stream-seconds pushed (push start to end) per (domain, app) and SLO, plus outage gaps within the SLO's reconnect window.",
);
pub const BAD_SECONDS: Family = family(
    "css_push_bad_seconds_total",
    Counter,
    "Live stream-seconds covered by push error reports of a type the SLO counts bad, each once, plus outage gaps.",
);
pub const SLO_UNATTRIBUTED: Family = family(
    "css_push_slo_unattributed_seconds_total",
    Counter,
    "Bad stream-seconds of reports naming no known push session (no push start seen): in neither side of the SLI.",
);
pub const OUTAGE_SECONDS: Family = family(
    "css_push_outage_seconds_total",
    Counter,
    "Stream-seconds between an abnormal push end and the same stream's next start within the reconnect window.",
);
pub const STREAM_BAD_SECONDS: Family = family(
    "css_push_stream_bad_seconds_total",
    Counter,
    "Per stream and SLO: its bad seconds (reports and outage gaps), from its first bad second while it is remembered.",
);
pub const SLO_STREAMS_TRACKED: Family = family(
    "css_push_slo_streams_tracked",
    Gauge,
    "Streams the SLO accounting holds bad time for, by kind: started (a known push session) or report_only.",
);
pub const SLO_STREAMS_LIMIT: Family = family(
    "css_push_slo_streams_limit",
    Gauge,
    "The bound on css_push_slo_streams_tracked per kind: --max-live-streams, and a tenth of it for report_only.",
);
pub const SLO_DROPPED_REPORTS: Family = family(
    "css_push_slo_dropped_reports_total",
    Counter,
    "Bad push error reports the SLO accounting had no room for, by kind: their time is not in the SLI.",
);
pub const SLO_LATE_REPORTS: Family = family(
    "css_push_slo_late_reports_total",
    Counter,
    "Bad push error reports covering time older than the SLO accounting holds (1024 s); that time is not counted.",
);

// Per CSS access node and region (issue 25).
pub const NODE_LIVE_SECONDS: Family = family(
    "css_push_node_live_seconds_total",
    Counter,
    "Stream-seconds pushed (push start to end) per CSS access node (the push start's node) and region.",
);
pub const NODE_BAD_SECONDS: Family = family(
    "css_push_node_bad_seconds_total",
    Counter,
    "Per access node, region and SLO: live stream-seconds covered by bad push error reports, each once (outage gaps excluded).",
);
pub const NODE_STREAMS_LIVE: Family = family(
    "css_push_node_streams_live",
    Gauge,
    "Per access node and region: streams pushing through it now (push start seen, no end yet).",
);
pub const NODE_STREAM_ENDS: Family = family(
    "css_push_node_stream_ends_total",
    Counter,
    "Push ends per access node and region of their session, by cause; node=\"unknown\" when its start was not seen.",
);
pub const NODE_REPORTS: Family = family(
    "css_push_node_reports_total",
    Counter,
    "Push error reports per access node and region of their session; node=\"unknown\" when its start was not seen.",
);
pub const NODES_TRACKED: Family =
    family("css_push_nodes_tracked", Gauge, "Access nodes with series of their own (unknown and other not counted).");
pub const NODES_LIMIT: Family =
    family("css_push_nodes_limit", Gauge, "The --max-nodes bound on css_push_nodes_tracked.");
pub const NODE_OVERFLOW: Family = family(
    "css_push_node_overflow_total",
    Counter,
    "Push sessions counted under node=\"other\" because --max-nodes or --max-series was reached.",
);
// Each stream's story (issue 26): GET /streams/{domain}/{app}/{stream}.
pub const TIMELINE_STREAMS: Family = family(
    "css_push_timeline_streams",
    Gauge,
    "Streams with a history (push sessions, bad intervals) kept for their stream page.",
);
pub const TIMELINE_BYTES: Family =
    family("css_push_timeline_bytes", Gauge, "Memory the streams' histories hold, as estimated per update, bytes.");
pub const TIMELINE_BYTES_LIMIT: Family =
    family("css_push_timeline_bytes_limit", Gauge, "The --timeline-max-bytes cap on css_push_timeline_bytes.");
pub const TIMELINE_DROPPED: Family = family(
    "css_push_timeline_dropped_total",
    Counter,
    "History dropped before --timeline-max-age to keep a bound, oldest first, by bound (sessions, intervals: per stream; memory: all streams) and item.",
);

/// Every family, in page order.
pub const ALL: &[&Family] = &[
    &BUILD_INFO,
    &CALLBACKS,
    &CALLBACK_DELAY,
    &UNPARSED_DETAILS,
    &FUTURE_DATA_TIME,
    &SCRAPES,
    &SCRAPE_RENDERS,
    &SCRAPE_PAGES,
    &SCRAPE_WRITE_TIMEOUTS,
    &HTTP_AUTH_FAILURES,
    &DEDUP_ENTRIES,
    &DEDUP_EVICTED,
    &FRAME_INTERVAL,
    &STREAM_STARTS,
    &STREAM_ENDS,
    &SESSION_DURATION,
    &ERRORS,
    &FRAME_MAX,
    &LAST_ERROR,
    &STREAM_LIVE,
    &STREAMS,
    &STREAMS_LIMIT,
    &STREAMS_EXPIRED,
    &STREAM_OVERFLOW,
    &STREAMS_LIVE,
    &LIVE_STREAMS_TRACKED,
    &LIVE_STREAMS_LIMIT,
    &LIVE_STREAM_OVERFLOW,
    &STATE_SNAPSHOTS,
    &STATE_LAST_SNAPSHOT,
    &STATE_INTERVAL,
    &STATE_DURATION,
    &STATE_BYTES,
    &STATE_RESTORED,
    &STATE_CORRUPT,
    &SERIES,
    &SERIES_LIMIT,
    &SERIES_OVERFLOW,
    &SLO_INFO,
    &LIVE_SECONDS,
    &BAD_SECONDS,
    &SLO_UNATTRIBUTED,
    &OUTAGE_SECONDS,
    &STREAM_BAD_SECONDS,
    &SLO_STREAMS_TRACKED,
    &SLO_STREAMS_LIMIT,
    &SLO_DROPPED_REPORTS,
    &SLO_LATE_REPORTS,
    &NODE_LIVE_SECONDS,
    &NODE_BAD_SECONDS,
    &NODE_STREAMS_LIVE,
    &NODE_STREAM_ENDS,
    &NODE_REPORTS,
    &NODES_TRACKED,
    &NODES_LIMIT,
    &NODE_OVERFLOW,
    &TIMELINE_STREAMS,
    &TIMELINE_BYTES,
    &TIMELINE_BYTES_LIMIT,
    &TIMELINE_DROPPED,
];

/// Families of the standard process collector, which shows them itself.
pub const PROCESS_PREFIX: &str = "process_";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_follow_the_conventions() {
        let mut names: Vec<_> = ALL.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a family appears twice");
        for f in ALL {
            assert!(f.name.starts_with("css_push_"), "{}", f.name);
            assert_eq!(f.name.ends_with("_total"), f.kind == Kind::Counter, "_total on counters only: {}", f.name);
            assert!(!f.help.is_empty() && !f.help.contains('\n'), "{}", f.name);
        }
    }
}
