//! The exporter without its HTTP front, and the composition root: the
//! ingest pipeline, the state it records into, the observers of what it
//! sees (callback tallies, exporter metrics, the status page, the log), and
//! the exposition of it all. Tests and benchmarks drive it directly; the
//! `http` module serves it.
use crate::cli::Config;
use crate::expose::render_thread;
use crate::expose::scrape::{Page, Scrapes, Text};
use crate::expose::{Collector, Exposition};
use crate::ingest::event::{Observer, Observers};
use crate::ingest::outcome::{Handled, Rejection};
use crate::ingest::pipeline::Pipeline;
use crate::ingest::retries::Retries;
use crate::ingest::signature::Verifier;
use crate::nodes::{self, NodeAccounting, NodeHealth};
use crate::observe::auth::AuthFailures;
use crate::observe::callbacks::CallbackTallies;
use crate::observe::log::EventLog;
use crate::observe::metrics::ExporterMetrics;
use crate::slo::{AppHealth, Slo, SloAccounting};
use crate::state::clock::Clock;
use crate::state::dedup::Dedup;
use crate::state::journal::Pending;
use crate::state::limits::Limits;
use crate::state::persist::{Loaded, SnapshotStats};
use crate::state::snapshot::{self, Encoded, Restored};
use crate::state::streams::StreamId;
use crate::state::State;
use crate::status_page::rendered::Rendered;
use crate::status_page::{self, Bound, Listener, PageInputs, Recent, StatusPage};
use crate::text::cap;
use crate::timeline::view::StreamHistory;
use crate::timeline::Timelines;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The streams with the most bad time the status page's node table looks
/// at, to name a few per node.
const STREAMS_RANKED: usize = 500;

pub struct Exporter {
    pipeline: Pipeline,
    state: Arc<State>,
    dedup: Arc<Dedup>,
    exposition: Arc<Exposition>,
    scrapes: Arc<Scrapes<Text>>,
    status_pages: Scrapes<Rendered>,
    auth_failures: Arc<AuthFailures>,
    clock: Arc<dyn Clock>,
    /// With `--state-file` only.
    snapshot_stats: Option<Arc<SnapshotStats>>,
    /// Size of the last snapshot, so the next is allocated once at its size.
    last_snapshot_len: AtomicUsize,
    recent: Arc<Recent>,
    slo: Arc<SloAccounting>,
    nodes: Arc<NodeAccounting>,
    timelines: Arc<Timelines>,
}

impl Exporter {
    /// The exporter accounting for the built-in push-health SLO.
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Self {
        Self::with_slos(config, vec![Slo::push_health()], clock)
    }

    /// The exporter accounting for `slos` (as the SLO file, read once, defines them).
    pub fn with_slos(config: &Config, slos: Vec<Slo>, clock: Arc<dyn Clock>) -> Self {
        let limits = config.limits();
        let dedup = Dedup::new(limits.dedup_window.as_secs(), limits.dedup_capacity);
        Self::build(config, &limits, slos, clock, dedup)
    }

    /// The exporter with the state the state file and its journal held,
    /// less what has expired since.
    pub fn restored(config: &Config, slos: Vec<Slo>, clock: Arc<dyn Clock>, loaded: Loaded) -> (Self, Restored) {
        let Loaded { mut snapshot, journal, moved_aside } = loaded;
        let limits = config.limits();
        let dedup = Dedup::with_seed(limits.dedup_window.as_secs(), limits.dedup_capacity, snapshot.dedup_seed());
        let exporter = Self::build(config, &limits, slos, clock, dedup);
        let histories = snapshot.take_timelines();
        // The histories share nothing with the rest of the state (nor the
        // SLO accounting, told of the live sessions): restored beside it.
        let (mut restored, timelines) = std::thread::scope(|scope| {
            let timelines =
                scope.spawn(|| exporter.timelines.restore(&histories, exporter.now_ms(), limits.max_label_bytes));
            let restored = snapshot.restore(&exporter.state, &exporter.dedup, exporter.clock.now_secs(), &journal);
            exporter.state.lifecycles.for_each(|_, pair, l| {
                if l.live {
                    exporter.slo.restored_live(pair, l);
                    exporter.nodes.restored_live(l);
                }
            });
            (restored, timelines.join().expect("the histories' restore does not panic"))
        });
        restored.histories = timelines.streams;
        restored.invalid += timelines.invalid;
        restored.over_bounds += usize::try_from(timelines.over_bounds).unwrap_or(usize::MAX);
        if let Some(stats) = &exporter.snapshot_stats {
            stats.restored(restored.streams, moved_aside);
        }
        (exporter, restored)
    }

    fn build(config: &Config, limits: &Limits, slos: Vec<Slo>, clock: Arc<dyn Clock>, dedup: Dedup) -> Self {
        let state = Arc::new(State::new(limits));
        let dedup = Arc::new(dedup);
        let verifier = Verifier::new(
            &config.callback_keys,
            config.max_clock_skew.as_secs(),
            config.max_signature_validity.as_secs(),
        );
        // What ingest observes goes to each consumer: a new one is one more entry.
        let metrics = Arc::new(ExporterMetrics::new());
        let tallies = Arc::new(CallbackTallies::new());
        let recent = Arc::new(Recent::new(clock.now_secs(), tallies.clone()));
        // The node breakdown gets the SLO accounting's bad time as it is counted.
        let slo_names = slos.iter().map(|s| s.name.clone()).collect();
        let nodes = Arc::new(NodeAccounting::new(slo_names, limits, state.budget.clone(), clock.clone()));
        let slo = Arc::new(
            SloAccounting::new(slos, limits, state.budget.clone(), clock.clone()).with_bad_time(nodes.clone()),
        );
        let timelines = Arc::new(Timelines::new(&limits.timeline, limits.live_stream_ttl.as_secs()));
        let observers: Vec<Arc<dyn Observer>> = vec![
            tallies.clone(),
            metrics.clone(),
            recent.clone(),
            Arc::new(EventLog::new()),
            slo.clone(),
            nodes.clone(),
            timelines.clone(),
        ];
        let pipeline = Pipeline {
            state: state.clone(),
            dedup: dedup.clone(),
            verifier,
            retries: Retries::new(limits.dedup_capacity),
            clock: clock.clone(),
            max_label_bytes: limits.max_label_bytes,
            observer: Arc::new(Observers(observers)),
        };
        let scrapes = Arc::new(Scrapes::default());
        let auth_failures = Arc::new(AuthFailures::default());
        let mut collectors: Vec<Arc<dyn Collector>> = vec![
            metrics,
            tallies,
            scrapes.clone(),
            auth_failures.clone(),
            dedup.clone(),
            state.clone(),
            slo.clone(),
            nodes.clone(),
            timelines.clone(),
        ];
        let snapshot_stats =
            config.state_file.as_deref().map(|path| Arc::new(SnapshotStats::new(path, config.state_interval)));
        if let Some(stats) = &snapshot_stats {
            collectors.push(stats.clone());
        }
        Self {
            pipeline,
            state,
            dedup,
            exposition: Arc::new(Exposition::new(collectors)),
            clock,
            snapshot_stats,
            last_snapshot_len: AtomicUsize::new(0),
            recent,
            scrapes,
            status_pages: Scrapes::default(),
            auth_failures,
            slo,
            nodes,
            timelines,
        }
    }

    pub fn authenticates(&self) -> bool {
        self.pipeline.authenticates()
    }

    /// Handles one callback body sent by `peer` (as the HTTP layer names the
    /// sender); its outcome is counted, kept and logged by the observers.
    pub fn handle(&self, body: &[u8], peer: Option<IpAddr>) -> Handled {
        self.pipeline.handle(body, peer)
    }

    /// A body refused before it could be parsed, observed like any other.
    pub fn reject(&self, rejection: Rejection, peer: Option<IpAddr>) -> Handled {
        self.pipeline.reject(rejection, peer)
    }

    /// The status page for a read, shared with concurrent reads as a
    /// scrape is; `listeners` are the addresses served.
    pub fn status(self: &Arc<Self>, listeners: Vec<Listener>) -> Arc<Page<Rendered>> {
        let exporter = self.clone();
        self.status_pages.page(|| render_thread::run(move || Rendered::from(exporter.status_page(listeners))))
    }

    /// What the status page shows; `listeners` are the addresses served.
    pub fn status_page(&self, listeners: Vec<Listener>) -> StatusPage {
        let inputs = PageInputs {
            listeners,
            authenticated: self.authenticates(),
            live_streams: status_page::live_streams(self.state.lifecycles.live_per_app()),
            slo_health: self.slo_health(status_page::SLO_SPAN_SECS),
            slo_saturation: self.slo.saturation(),
            slo_top_streams: self.slo.top_bad_streams(status_page::SLO_SPAN_SECS, status_page::slo::TOP_BAD_STREAMS),
            bounds: self.bounds(),
            state_file: self.snapshot_stats.as_ref().map(|s| s.status()),
            nodes: self.node_health(),
        };
        self.recent.page(self.clock.now_secs(), inputs)
    }

    /// Per access node over the status page's span, with the streams on it
    /// with the most bad time (the first SLO's, as the page shows).
    fn node_health(&self) -> Vec<NodeHealth> {
        let mut health = self.nodes.recent_health(status_page::SLO_SPAN_SECS * 1000);
        let first = &self.slo.slos()[0].name;
        let bad = self.slo.top_bad_streams(status_page::SLO_SPAN_SECS, STREAMS_RANKED).into_iter();
        let on_node = bad.filter(|b| &b.slo == first).filter_map(|b| {
            let record = self.state.lifecycles.get(&b.labels)?.record;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "whole seconds shown")]
            let secs = b.bad_secs as u64;
            Some((b.labels, record.node, record.region, secs))
        });
        nodes::attach_streams(&mut health, on_node);
        health
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
            Bound::new("CSS access nodes", "--max-nodes", self.nodes.tracked(), self.nodes.max()),
            Bound::new(
                "stream histories, bytes",
                "--timeline-max-bytes",
                self.timelines.bytes().0,
                self.timelines.bytes().1,
            ),
        ]
    }

    /// The recent history of the stream `id` (names as a callback would
    /// send them, capped here as labels are), if one is kept.
    pub fn stream_history(&self, id: StreamId<'_>) -> Option<StreamHistory> {
        let max = self.pipeline.max_label_bytes;
        let capped = StreamId { domain: cap(id.domain, max), app: cap(id.app, max), stream: cap(id.stream, max) };
        self.timelines.view(capped, &self.state.key(id), self.now_ms())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now().as_millis()).unwrap_or(u64::MAX)
    }

    /// Drops expired streams, (domain, app) pairs and dedup entries. Runs on a timer.
    pub fn expire(&self) {
        let now = self.clock.now_secs();
        self.state.expire(now, |key, pair, l| {
            self.slo.forgotten(key, pair, l);
            self.nodes.forgotten(l);
        });
        self.dedup.expire(now);
        self.slo.expire();
        self.nodes.expire();
        self.timelines.expire(self.now_ms());
    }

    /// Per (domain, app): live streams now, and live and bad seconds per
    /// SLO over the last `span_secs` (at most 1024), from memory; for the
    /// status page.
    pub fn slo_health(&self, span_secs: u64) -> Vec<AppHealth> {
        self.slo.recent_health(span_secs)
    }

    /// The state a restart should find again, as the bytes of a state file.
    pub fn snapshot(&self) -> Encoded {
        let last = self.last_snapshot_len.load(Ordering::Relaxed);
        let capacity = 4096 + last + last / 8;
        let encoded = snapshot::encode_with(&self.state, &self.dedup, self.clock.now_secs(), capacity, |out| {
            self.timelines.encode(out);
        });
        self.last_snapshot_len.store(encoded.bytes.len(), Ordering::Relaxed);
        encoded
    }

    /// With `--state-file`: its metrics, to count writes in, and the clock
    /// they are timed by.
    pub fn snapshot_stats(&self) -> Option<(Arc<SnapshotStats>, Arc<dyn Clock>)> {
        self.snapshot_stats.clone().map(|stats| (stats, self.clock.clone()))
    }

    /// With `--state-file`: the journalled starts and ends, for the one
    /// thread that writes them (`None` once taken).
    pub fn take_journal(&self) -> Option<Pending> {
        self.state.take_journal()
    }

    /// The whole `/metrics` page, rendered now.
    pub fn render(&self) -> String {
        self.exposition.render()
    }

    /// Where the HTTP front counts refused logins.
    pub fn auth_failures(&self) -> &AuthFailures {
        &self.auth_failures
    }

    /// The `/metrics` page for a scrape, shared with concurrent scrapes,
    /// made on the render thread.
    pub fn scrape(&self) -> Arc<Page<Text>> {
        let exposition = self.exposition.clone();
        self.scrapes.page(|| Text::from(render_thread::run(move || exposition.render())))
    }
}
