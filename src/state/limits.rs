//! The bounds and ages the stores keep to, as one value the composition
//! root builds from the command line: `state` and `slo` take this, not the
//! flags, so neither depends on `cli`.
use std::time::Duration;

/// The longest `--max-label-length` allowed: what the state file's and the
/// journal's size checks assume at most.
pub const MAX_LABEL_LENGTH: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `--max-streams`: streams holding per-stream series.
    pub max_streams: usize,
    /// `--max-apps`: (domain, app) pairs with labels of their own.
    pub max_apps: usize,
    /// `--max-series`.
    pub max_series: u64,
    /// `--max-live-streams`: streams whose push sessions are remembered.
    pub max_live_streams: usize,
    /// `--max-label-length`, bytes.
    pub max_label_bytes: usize,
    /// `--stream-ttl`.
    pub stream_ttl: Duration,
    /// `--live-stream-ttl`.
    pub live_stream_ttl: Duration,
    /// `--dedup-window`: also how far back a push start's own time is believed.
    pub dedup_window: Duration,
    /// `--dedup-capacity`.
    pub dedup_capacity: usize,
    /// With `--state-file`: starts and ends are journalled.
    pub journal: bool,
    /// `--max-nodes`: CSS access nodes with series of their own.
    pub max_nodes: usize,
    /// The per-stream history's bounds (`--timeline-*`).
    pub timeline: TimelineLimits,
}

/// How much of each stream's story is kept: per stream, and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineLimits {
    /// `--timeline-max-sessions`: push sessions per stream.
    pub max_sessions: usize,
    /// `--timeline-max-intervals`: merged bad intervals per stream.
    pub max_intervals: usize,
    /// `--timeline-max-age`: how far back.
    pub max_age: Duration,
    /// `--timeline-max-bytes`: all streams' histories together; 0 keeps none.
    pub max_bytes: u64,
}
