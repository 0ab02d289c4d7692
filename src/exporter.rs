//! The exporter without its HTTP front: the ingest pipeline, the state it
//! records into, and the exposition of both. Tests and benchmarks drive it
//! directly; the `http` module serves it.
use crate::cli::Config;
use crate::expose::metrics::ExporterMetrics;
use crate::expose::scrape::{Page, Scrapes};
use crate::expose::{Collector, Exposition};
use crate::http::basic_auth::AuthFailures;
use crate::ingest::dedup::Dedup;
use crate::ingest::pipeline::{Handled, Pipeline, Rejection};
use crate::ingest::signature::Verifier;
use crate::state::clock::Clock;
use crate::state::persist::SnapshotStats;
use crate::state::snapshot::{self, Restored, Snapshot};
use crate::state::State;
use crate::status::{self, Bound, Listener, Snapshot as StatusSnapshot, StateView, Status};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub struct Exporter {
    pipeline: Pipeline,
    state: Arc<State>,
    dedup: Arc<Dedup>,
    exposition: Exposition,
    scrapes: Arc<Scrapes>,
    auth_failures: Arc<AuthFailures>,
    clock: Arc<dyn Clock>,
    /// With `--state-file` only.
    snapshot_stats: Option<Arc<SnapshotStats>>,
    /// Size of the last snapshot, so the next is allocated once at its size.
    last_snapshot_len: AtomicUsize,
    status: Arc<Status>,
}

impl Exporter {
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Self {
        Self::with_dedup(config, clock, Dedup::new(config.dedup_window.as_secs(), config.dedup_capacity))
    }

    /// The exporter with the state `snapshot` held, less what has expired since.
    pub fn restored(config: &Config, clock: Arc<dyn Clock>, snapshot: Snapshot) -> (Self, Restored) {
        let dedup = Dedup::with_seed(config.dedup_window.as_secs(), config.dedup_capacity, snapshot.dedup_seed());
        let exporter = Self::with_dedup(config, clock, dedup);
        let restored = snapshot.restore(&exporter.state, &exporter.dedup, exporter.clock.now_secs());
        if let Some(stats) = &exporter.snapshot_stats {
            stats.restored(restored.streams);
        }
        (exporter, restored)
    }

    fn with_dedup(config: &Config, clock: Arc<dyn Clock>, dedup: Dedup) -> Self {
        let metrics = Arc::new(ExporterMetrics::new());
        let state = Arc::new(State::new(config));
        let dedup = Arc::new(dedup);
        let verifier = Verifier::new(
            &config.callback_keys,
            config.max_clock_skew.as_secs(),
            config.max_signature_validity.as_secs(),
        );
        let status = Arc::new(Status::new(clock.now_secs()));
        let pipeline = Pipeline {
            metrics: metrics.clone(),
            state: state.clone(),
            dedup: dedup.clone(),
            verifier,
            clock: clock.clone(),
            max_label_bytes: config.max_label_length,
            status: status.clone(),
        };
        let scrapes = Arc::new(Scrapes::default());
        let auth_failures = Arc::new(AuthFailures::default());
        let mut collectors: Vec<Arc<dyn Collector>> =
            vec![metrics, scrapes.clone(), auth_failures.clone(), dedup.clone(), state.clone()];
        let snapshot_stats =
            config.state_file.as_deref().map(|path| Arc::new(SnapshotStats::new(path, config.state_interval)));
        if let Some(stats) = &snapshot_stats {
            collectors.push(stats.clone());
        }
        Self {
            pipeline,
            state,
            dedup,
            exposition: Exposition::new(collectors),
            clock,
            snapshot_stats,
            last_snapshot_len: AtomicUsize::new(0),
            status,
            scrapes,
            auth_failures,
        }
    }

    pub fn authenticates(&self) -> bool {
        self.pipeline.authenticates()
    }

    /// Handles one callback body and counts its outcome.
    pub fn handle(&self, body: &[u8]) -> Handled {
        self.pipeline.handle(body)
    }

    /// Counts a body refused before it could be parsed.
    pub fn reject(&self, rejection: Rejection) -> Handled {
        self.pipeline.reject(rejection)
    }

    /// Remembers a refused callback for the status page, with the TCP peer
    /// that sent it.
    pub fn note_refused(&self, peer: Option<IpAddr>, event_type: &'static str, rejection: &Rejection) {
        self.status.refused(self.clock.now_secs(), peer, event_type, rejection);
    }

    /// What the status page shows; `listeners` are the addresses served.
    pub fn status(&self, listeners: Vec<Listener>) -> StatusSnapshot {
        let view = StateView {
            listeners,
            authenticated: self.authenticates(),
            live_streams: status::live_streams(self.state.lifecycles.live_per_app()),
            bounds: self.bounds(),
            state_file: self.snapshot_stats.as_ref().map(|s| s.status()),
        };
        self.status.snapshot(self.clock.now_secs(), view)
    }

    /// How full each bounded structure is, one line per bound.
    fn bounds(&self) -> Vec<Bound> {
        let (streams, apps) = (&self.state.streams, &self.state.apps);
        vec![
            Bound::new("streams", "--max-streams", streams.tracked(), streams.max_streams()),
            Bound {
                name: "series",
                flag: "--max-series",
                used: self.state.budget.held(),
                limit: self.state.budget.limit(),
            },
            Bound::new("(domain, app) pairs", "--max-apps", apps.len(), apps.max_apps()),
            Bound::new(
                "live streams tracked",
                "--max-live-streams",
                self.state.lifecycles.tracked(),
                self.state.lifecycles.max(),
            ),
            Bound::new("de-duplication memory", "--dedup-capacity", self.dedup.len(), self.dedup.capacity()),
        ]
    }

    /// Drops expired streams, (domain, app) pairs and dedup entries. Runs on a timer.
    pub fn expire(&self) {
        let now = self.clock.now_secs();
        self.state.expire(now);
        self.dedup.expire(now);
    }

    /// The state a restart should find again, as the bytes of a state file.
    pub fn snapshot(&self) -> Vec<u8> {
        let last = self.last_snapshot_len.load(Ordering::Relaxed);
        let bytes = snapshot::encode(&self.state, &self.dedup, self.clock.now_secs(), 4096 + last + last / 8);
        self.last_snapshot_len.store(bytes.len(), Ordering::Relaxed);
        bytes
    }

    /// Takes a snapshot and hands it to `write`, counting the result in
    /// the `css_push_state_*` metrics; returns the bytes written.
    pub fn write_snapshot(&self, write: impl FnOnce(&[u8]) -> io::Result<()>) -> io::Result<usize> {
        let started = Instant::now();
        let bytes = self.snapshot();
        let result = write(&bytes);
        if let Some(stats) = &self.snapshot_stats {
            match &result {
                Ok(()) => stats.written(bytes.len(), started.elapsed(), self.clock.now()),
                Err(_) => stats.failed(),
            }
        }
        result.map(|()| bytes.len())
    }

    pub fn snapshot_stats(&self) -> Option<&SnapshotStats> {
        self.snapshot_stats.as_deref()
    }

    /// The whole `/metrics` page, rendered now.
    pub fn render(&self) -> String {
        self.exposition.render()
    }

    /// Where the HTTP front counts refused logins.
    pub fn auth_failures(&self) -> &AuthFailures {
        &self.auth_failures
    }

    /// The `/metrics` page for a scrape, shared with concurrent scrapes.
    pub fn scrape(&self) -> Arc<Page> {
        self.scrapes.page(|| self.exposition.render())
    }
}
