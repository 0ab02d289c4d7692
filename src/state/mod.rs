//! What the exporter remembers between callbacks: the streams and their
//! per-stream series, their push lifecycles, the (domain, app) pairs and
//! their series, the series budget they share, the clock that ages them all,
//! the memory of recent callbacks, and the state file that keeps what
//! matters across restarts.
//!
//! Nothing here knows about ingest, the exporter or the status page: they
//! call in; the state file is read and written through plain data.
pub(crate) mod apps;
pub mod budget;
pub mod clock;
pub mod codec;
pub(crate) mod compaction;
pub mod dedup;
pub mod journal;
pub mod key;
pub(crate) mod lifecycle;
pub mod limits;
pub mod persist;
pub(crate) mod sharded;
pub mod snapshot;
pub(crate) mod streams;

use crate::expose::{Collector, Encoder};
use apps::DomainApps;
use budget::SeriesBudget;
use journal::Pending;
use key::StreamKey;
use lifecycle::Lifecycle;
use lifecycle::Lifecycles;
use limits::Limits;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streams::{StreamId, StreamRegistry};

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
    pub fn new(limits: &Limits) -> Self {
        let budget = Arc::new(SeriesBudget::new(limits.max_series));
        let (sink, rx) = if limits.journal {
            let (sink, rx) = journal::channel();
            (Some(sink), Some(rx))
        } else {
            (None, None)
        };
        let believed_ms = u64::try_from(limits.dedup_window.as_millis()).unwrap_or(u64::MAX);
        Self {
            streams: StreamRegistry::new(limits.max_streams, budget.clone()),
            apps: DomainApps::new(limits.max_apps, budget.clone()),
            lifecycles: Lifecycles::new(limits.max_live_streams, believed_ms, sink),
            budget,
            stream_ttl_secs: limits.stream_ttl.as_secs(),
            live_stream_ttl_secs: limits.live_stream_ttl.as_secs(),
            max_label_bytes: limits.max_label_bytes,
            journal: Mutex::new(rx),
        }
    }

    /// The key of the stream `id` under `--max-label-length`.
    pub fn key(&self, id: StreamId) -> StreamKey {
        StreamKey::new(id, self.max_label_bytes)
    }

    /// The transitions journalled from now on, for the persister thread;
    /// `None` without `--state-file` or once taken.
    pub fn take_journal(&self) -> Option<Pending> {
        crate::sync::lock(&self.journal).take()
    }

    /// Drops streams and (domain, app) pairs whose TTL passed, with their
    /// series; `forgotten` gets the key, pair labels and lifecycle of each
    /// stream whose push sessions are forgotten.
    pub fn expire(&self, now_secs: u64, mut forgotten: impl FnMut(&str, &str, &Lifecycle)) {
        // A stream whose lifecycle is forgotten is no longer shown as live,
        // and then ages as any other.
        let (ttl, live_ttl) = (self.stream_ttl_secs, self.live_stream_ttl_secs);
        self.lifecycles.expire(now_secs, ttl, live_ttl, |key, pair, l| {
            self.streams.clear_live(key);
            forgotten(key, pair, l);
        });
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
