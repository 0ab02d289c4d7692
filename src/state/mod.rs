//! What the exporter remembers between callbacks: the streams and their
//! per-stream series, their push lifecycles, the (domain, app) pairs and
//! their series, the series budget they share, the clock that ages them all,
//! the memory of recent callbacks, and the state file that keeps what
//! matters across restarts.
//!
//! Nothing here knows about ingest, the exporter or the status page: they
//! call in; the state file is read and written through plain data.
pub(crate) mod apps;
pub(crate) mod budget;
pub mod clock;
pub mod codec;
pub(crate) mod compaction;
pub mod dedup;
pub mod journal;
pub(crate) mod lifecycle;
pub mod persist;
pub(crate) mod sharded;
pub mod snapshot;
pub(crate) mod streams;

use crate::cli::Config;
use crate::expose::{Collector, Encoder};
use apps::DomainApps;
use budget::SeriesBudget;
use journal::Pending;
use lifecycle::Lifecycles;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streams::StreamRegistry;

/// The label value that streams past `--max-streams`, and (domain, app)
/// pairs past `--max-apps`, fold into.
pub const OVERFLOW: &str = "__overflow__";

/// How far ahead of the receive time a push error's `data_time` is still
/// believed; later ones are taken as received now.
pub const FUTURE_TOLERANCE: Duration = Duration::from_secs(600);

/// The stream registry and the (domain, app) pairs, with their TTLs.
pub struct State {
    pub streams: StreamRegistry,
    pub apps: DomainApps,
    pub lifecycles: Lifecycles,
    pub budget: Arc<SeriesBudget>,
    stream_ttl_secs: u64,
    live_stream_ttl_secs: u64,
    max_label_bytes: usize,
    /// With `--state-file`: the lifecycle journal's receiving end, until
    /// the persister takes it.
    journal: Mutex<Option<Pending>>,
}

impl State {
    pub fn new(config: &Config) -> Self {
        let budget = Arc::new(SeriesBudget::new(config.max_series));
        let (sink, rx) = match config.state_file {
            Some(_) => {
                let (sink, rx) = journal::channel();
                (Some(sink), Some(rx))
            }
            None => (None, None),
        };
        Self {
            streams: StreamRegistry::new(config.max_streams, config.max_label_length, budget.clone()),
            apps: DomainApps::new(config.max_apps, budget.clone()),
            lifecycles: Lifecycles::new(config.max_live_streams, config.max_label_length, sink),
            budget,
            stream_ttl_secs: config.stream_ttl.as_secs(),
            live_stream_ttl_secs: config.live_stream_ttl.as_secs(),
            max_label_bytes: config.max_label_length,
            journal: Mutex::new(rx),
        }
    }

    /// The transitions journalled from now on, for the persister thread;
    /// `None` without `--state-file` or once taken.
    pub fn take_journal(&self) -> Option<Pending> {
        crate::sync::lock(&self.journal).take()
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
