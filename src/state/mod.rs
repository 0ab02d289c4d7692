//! What the exporter remembers between callbacks: the streams and their
//! per-stream series, the (domain, app) pairs and theirs, and the clock that
//! ages both.
pub mod apps;
pub mod budget;
pub mod clock;
pub mod streams;

use crate::cli::Config;
use crate::expose::{Collector, Encoder};
use apps::DomainApps;
use budget::SeriesBudget;
use std::sync::Arc;
use streams::StreamRegistry;

/// The label value that streams past `--max-streams`, and (domain, app)
/// pairs past `--max-apps`, fold into.
pub const OVERFLOW: &str = "__overflow__";

/// The stream registry and the (domain, app) pairs, with their TTLs.
pub struct State {
    pub streams: StreamRegistry,
    pub apps: DomainApps,
    pub budget: Arc<SeriesBudget>,
    stream_ttl_secs: u64,
    live_stream_ttl_secs: u64,
}

impl State {
    pub fn new(config: &Config) -> Self {
        let budget = Arc::new(SeriesBudget::new(config.max_series));
        Self {
            streams: StreamRegistry::new(config.max_streams, config.max_label_length, budget.clone()),
            apps: DomainApps::new(config.max_apps, budget.clone()),
            budget,
            stream_ttl_secs: config.stream_ttl.as_secs(),
            live_stream_ttl_secs: config.live_stream_ttl.as_secs(),
        }
    }

    /// Drops streams and (domain, app) pairs whose TTL passed, with their series.
    pub fn expire(&self, now_secs: u64) {
        self.streams.expire(now_secs, self.stream_ttl_secs, self.live_stream_ttl_secs);
        self.apps.expire(now_secs.saturating_sub(self.stream_ttl_secs.max(self.live_stream_ttl_secs)));
    }
}

impl Collector for State {
    fn encode(&self, enc: &mut Encoder<'_>) {
        self.apps.encode(enc);
        self.streams.encode(enc);
        self.budget.encode(enc);
    }
}
