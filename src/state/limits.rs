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
}
