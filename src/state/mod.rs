//! What the exporter remembers between callbacks: the streams and their
//! per-stream series, their push lifecycles, the (domain, app) pairs and
//! their series, the series budget they share, the clock that ages them all,
//! and the state file that keeps what matters across restarts.
pub(crate) mod apps;
pub(crate) mod budget;
pub mod clock;
pub(crate) mod lifecycle;
pub mod persist;
pub(crate) mod sharded;
pub mod snapshot;
pub(crate) mod streams;

use crate::cli::Config;
use crate::expose::{Collector, Encoder};
use apps::DomainApps;
use budget::SeriesBudget;
use lifecycle::Lifecycles;
use std::sync::Arc;
use streams::StreamRegistry;

/// The label value that streams past `--max-streams`, and (domain, app)
/// pairs past `--max-apps`, fold into.
pub const OVERFLOW: &str = "__overflow__";

/// The stream registry and the (domain, app) pairs, with their TTLs.
pub struct State {
    pub streams: StreamRegistry,
    pub apps: DomainApps,
    pub lifecycles: Lifecycles,
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
            lifecycles: Lifecycles::new(config.max_live_streams, config.max_label_length),
            budget,
            stream_ttl_secs: config.stream_ttl.as_secs(),
            live_stream_ttl_secs: config.live_stream_ttl.as_secs(),
        }
    }

    /// Drops streams and (domain, app) pairs whose TTL passed, with their series.
    pub fn expire(&self, now_secs: u64) {
        // A stream whose lifecycle is forgotten is no longer shown as live,
        // and then ages as any other.
        let (ttl, live_ttl) = (self.stream_ttl_secs, self.live_stream_ttl_secs);
        self.lifecycles.expire(now_secs, ttl, live_ttl, |key| self.streams.clear_live(key));
        self.streams.expire(now_secs, ttl, live_ttl);
        self.apps.expire(now_secs.saturating_sub(self.stream_ttl_secs.max(self.live_stream_ttl_secs)));
    }
}

impl Collector for State {
    fn encode(&self, enc: &mut Encoder<'_>) {
        self.apps.encode(enc);
        self.streams.encode(enc);
        self.lifecycles.encode(enc);
        self.budget.encode(enc);
    }
}
