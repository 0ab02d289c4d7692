//! The exporter-level metric set, held in the prometheus crate's registry.
//! Per-stream series live in [`crate::streams`] instead.
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Frame gap buckets, seconds (CSS reports gaps above about 1 s).
pub const FRAME_INTERVAL_BUCKETS: [f64; 11] = [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0];
/// Push session length buckets, seconds: 10 s to a day.
pub const SESSION_BUCKETS: [f64; 11] =
    [10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0];
/// Delivery delay buckets, seconds: retries arrive minutes late.
pub const DELAY_BUCKETS: [f64; 12] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

pub struct Metrics {
    pub registry: Registry,
    pub callbacks: IntCounterVec,
    pub callback_delay: Histogram,
    pub frame_interval: HistogramVec,
    pub unparsed_details: IntCounterVec,
    pub streams: IntGauge,
    pub streams_limit: IntGauge,
    pub streams_expired: IntCounter,
    pub stream_overflow: IntCounter,
    pub dedup_entries: IntGauge,
    pub dedup_evicted: IntCounter,
    pub stream_starts: IntCounterVec,
    pub stream_ends: IntCounterVec,
    pub session_duration: HistogramVec,
}

/// Every outcome a callback can have; all are pre-created at zero for the
/// push error event so rates and alerts work before the first reject.
pub const OUTCOMES: [&str; 7] =
    ["accepted", "duplicate", "ignored", "malformed", "unauthorized", "expired", "too_large"];

impl Metrics {
    pub fn new(max_streams: usize) -> Self {
        let registry = Registry::new();
        let m = Self {
            callbacks: IntCounterVec::new(
                Opts::new("css_push_callbacks_total", "Callbacks received, by event type and outcome."),
                &["event_type", "outcome"],
            )
            .unwrap(),
            callback_delay: Histogram::with_opts(
                HistogramOpts::new(
                    "css_push_callback_delay_seconds",
                    "Receive time minus the callback's data_time (clamped at 0): how late CSS delivers.",
                )
                .buckets(DELAY_BUCKETS.to_vec()),
            )
            .unwrap(),
            frame_interval: HistogramVec::new(
                HistogramOpts::new(
                    "css_push_frame_interval_seconds",
                    "Frame arrival gaps reported in push error details (types 6 and 7).",
                )
                .buckets(FRAME_INTERVAL_BUCKETS.to_vec()),
                &["domain", "app", "media"],
            )
            .unwrap(),
            unparsed_details: IntCounterVec::new(
                Opts::new(
                    "css_push_unparsed_details_total",
                    "Frame gap details whose desc carried no readable interval.",
                ),
                &["error_type"],
            )
            .unwrap(),
            streams: IntGauge::new("css_push_streams", "Streams currently holding per-stream series.").unwrap(),
            streams_limit: IntGauge::new(
                "css_push_streams_limit",
                "The --max-streams cap; streams past it fold into stream=\"__overflow__\".",
            )
            .unwrap(),
            streams_expired: IntCounter::new(
                "css_push_streams_expired_total",
                "Streams whose series were removed after --stream-ttl without a callback.",
            )
            .unwrap(),
            stream_overflow: IntCounter::new(
                "css_push_stream_overflow_total",
                "Callbacks folded into stream=\"__overflow__\" because --max-streams was reached.",
            )
            .unwrap(),
            dedup_entries: IntGauge::new(
                "css_push_dedup_entries",
                "Callback identities remembered to recognise CSS retries.",
            )
            .unwrap(),
            dedup_evicted: IntCounter::new(
                "css_push_dedup_evicted_total",
                "Identities dropped before --dedup-window ended because --dedup-capacity was full.",
            )
            .unwrap(),
            stream_starts: IntCounterVec::new(
                Opts::new("css_push_stream_starts_total", "Push start callbacks (event_type 1) accepted."),
                &["domain", "app"],
            )
            .unwrap(),
            stream_ends: IntCounterVec::new(
                Opts::new(
                    "css_push_stream_ends_total",
                    "Push end callbacks (event_type 0) accepted, by errcode (0-99, else \"other\").",
                ),
                &["domain", "app", "errcode"],
            )
            .unwrap(),
            session_duration: HistogramVec::new(
                HistogramOpts::new(
                    "css_push_session_duration_seconds",
                    "Push session length from push end callbacks (push_duration).",
                )
                .buckets(SESSION_BUCKETS.to_vec()),
                &["domain", "app"],
            )
            .unwrap(),
            registry,
        };
        let build_info = IntGaugeVec::new(
            Opts::new("css_push_exporter_build_info", "Always 1; the version label says which build runs."),
            &["version"],
        )
        .unwrap();
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        m.streams_limit.set(max_streams as i64);
        for outcome in OUTCOMES {
            m.callbacks.with_label_values(&["321", outcome]);
        }
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(build_info),
            Box::new(m.callbacks.clone()),
            Box::new(m.callback_delay.clone()),
            Box::new(m.frame_interval.clone()),
            Box::new(m.unparsed_details.clone()),
            Box::new(m.streams.clone()),
            Box::new(m.streams_limit.clone()),
            Box::new(m.streams_expired.clone()),
            Box::new(m.stream_overflow.clone()),
            Box::new(m.dedup_entries.clone()),
            Box::new(m.dedup_evicted.clone()),
            Box::new(m.stream_starts.clone()),
            Box::new(m.stream_ends.clone()),
            Box::new(m.session_duration.clone()),
            #[cfg(target_os = "linux")]
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ];
        for c in collectors {
            m.registry.register(c).expect("metric names are unique");
        }
        m
    }

    /// Removes the series of a (domain, app) pair that went quiet.
    pub fn forget_app(&self, domain: &str, app: &str) {
        // Removing a series that was never created is not an error worth reporting.
        for media in crate::catalog::Media::ALL {
            let _ = self.frame_interval.remove_label_values(&[domain, app, media.label()]);
        }
        let _ = self.stream_starts.remove_label_values(&[domain, app]);
        let _ = self.session_duration.remove_label_values(&[domain, app]);
        let errcodes = (0..=crate::catalog::MAX_LABELLED_CODE as i64).chain([-1]);
        for errcode in errcodes.map(crate::catalog::errcode_label) {
            let _ = self.stream_ends.remove_label_values(&[domain, app, &errcode]);
        }
    }

    pub fn count(&self, event_type: &str, outcome: &str) {
        self.callbacks.with_label_values(&[event_type, outcome]).inc();
    }

    /// Renders the registry in text format onto `out`.
    pub fn render(&self, out: &mut String) {
        let families = self.registry.gather();
        // Encoding into a String cannot fail: the families come from our own registry.
        let _ = prometheus::TextEncoder::new().encode_utf8(&families, out);
    }
}
