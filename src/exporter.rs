//! The exporter without its HTTP front: the ingest pipeline, the state it
//! records into, and the exposition of both. Tests and benchmarks drive it
//! directly; [`crate::http`] serves it.
use crate::cli::Config;
use crate::expose::metrics::ExporterMetrics;
use crate::expose::{Collector, Exposition};
use crate::ingest::dedup::Dedup;
use crate::ingest::pipeline::{Handled, Pipeline, Rejection};
use crate::ingest::signature::Verifier;
use crate::state::clock::Clock;
use crate::state::State;
use crate::status::{self, Bound, Listener, Snapshot, StateView, Status};
use std::net::IpAddr;
use std::sync::Arc;

pub struct Exporter {
    pipeline: Pipeline,
    state: Arc<State>,
    dedup: Arc<Dedup>,
    exposition: Exposition,
    clock: Arc<dyn Clock>,
    status: Arc<Status>,
}

impl Exporter {
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Self {
        let metrics = Arc::new(ExporterMetrics::new());
        let state = Arc::new(State::new(config));
        let dedup = Arc::new(Dedup::new(config.dedup_window.as_secs(), config.dedup_capacity));
        let verifier = Verifier::new(&config.callback_keys, config.max_clock_skew.as_secs());
        let status = Arc::new(Status::new(clock.now_secs()));
        let pipeline = Pipeline::new(
            metrics.clone(),
            state.clone(),
            dedup.clone(),
            verifier,
            clock.clone(),
            config.max_label_length,
            status.clone(),
        );
        let collectors: Vec<Arc<dyn Collector>> = vec![metrics, dedup.clone(), state.clone()];
        Self { pipeline, state, dedup, exposition: Exposition::new(collectors), clock, status }
    }

    pub fn authenticates(&self) -> bool {
        self.pipeline.authenticates()
    }

    /// Handles one callback body and counts its outcome.
    pub fn handle(&self, body: &[u8]) -> Handled {
        self.pipeline.handle(body)
    }

    /// Counts a body refused for its size before it was read.
    pub fn reject_too_large(&self, limit: usize) -> Handled {
        self.pipeline.reject_too_large(limit)
    }

    /// Remembers a refused callback for the status page, with the TCP peer
    /// that sent it.
    pub fn note_refused(&self, peer: Option<IpAddr>, event_type: &'static str, rejection: &Rejection) {
        self.status.refused(self.clock.now_secs(), peer, event_type, rejection);
    }

    /// What the status page shows; `listeners` are the addresses served.
    pub fn status(&self, listeners: Vec<Listener>) -> Snapshot {
        let view = StateView {
            listeners,
            authenticated: self.authenticates(),
            live_streams: status::live_streams(self.state.streams.live_per_app()),
            bounds: self.bounds(),
        };
        self.status.snapshot(self.clock.now_secs(), view)
    }

    /// How full each bounded structure is, one line per bound.
    fn bounds(&self) -> Vec<Bound> {
        let (streams, apps) = (&self.state.streams, &self.state.apps);
        vec![
            Bound::new("streams", "--max-streams", streams.tracked(), streams.max_streams()),
            Bound::new("(domain, app) pairs", "--max-apps", apps.len(), apps.max_apps()),
            Bound::new("de-duplication memory", "--dedup-capacity", self.dedup.len(), self.dedup.capacity()),
        ]
    }

    /// Drops expired streams, (domain, app) pairs and dedup entries. Runs on a timer.
    pub fn expire(&self) {
        let now = self.clock.now_secs();
        self.state.expire(now);
        self.dedup.expire(now);
    }

    /// The whole `/metrics` page.
    pub fn render(&self) -> String {
        self.exposition.render()
    }
}
