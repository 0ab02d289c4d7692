//! The exporter without its HTTP front: the ingest pipeline, the state it
//! records into, and the exposition of both. Tests and benchmarks drive it
//! directly; [`crate::http`] serves it.
use crate::cli::Config;
use crate::expose::metrics::ExporterMetrics;
use crate::expose::scrape::{Page, Scrapes};
use crate::expose::{Collector, Exposition};
use crate::ingest::dedup::Dedup;
use crate::ingest::pipeline::{Handled, Pipeline, Rejection};
use crate::ingest::signature::Verifier;
use crate::state::clock::Clock;
use crate::state::State;
use std::sync::Arc;

pub struct Exporter {
    pipeline: Pipeline,
    state: Arc<State>,
    dedup: Arc<Dedup>,
    exposition: Exposition,
    scrapes: Arc<Scrapes>,
    clock: Arc<dyn Clock>,
}

impl Exporter {
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Self {
        let metrics = Arc::new(ExporterMetrics::new());
        let state = Arc::new(State::new(config));
        let dedup = Arc::new(Dedup::new(config.dedup_window.as_secs(), config.dedup_capacity));
        let verifier = Verifier::new(&config.callback_keys, config.max_clock_skew.as_secs());
        let pipeline = Pipeline::new(
            metrics.clone(),
            state.clone(),
            dedup.clone(),
            verifier,
            clock.clone(),
            config.max_label_length,
        );
        let scrapes = Arc::new(Scrapes::default());
        let collectors: Vec<Arc<dyn Collector>> = vec![metrics, scrapes.clone(), dedup.clone(), state.clone()];
        Self { pipeline, state, dedup, exposition: Exposition::new(collectors), scrapes, clock }
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

    /// Drops expired streams, (domain, app) pairs and dedup entries. Runs on a timer.
    pub fn expire(&self) {
        let now = self.clock.now_secs();
        self.state.expire(now);
        self.dedup.expire(now);
    }

    /// The whole `/metrics` page, rendered now.
    pub fn render(&self) -> String {
        self.exposition.render()
    }

    /// The `/metrics` page for a scrape, shared with concurrent scrapes.
    pub fn scrape(&self) -> Arc<Page> {
        self.scrapes.page(|| self.exposition.render())
    }
}
