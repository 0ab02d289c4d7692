//! The exporter-level metrics that are not part of any state: callback
//! outcomes, delivery delay, unreadable details, the build and the process.
//! Held in the prometheus crate's registry, which also brings the standard
//! `process_*` collector.
use super::families::{self as f, Family};
use super::{Collector, Encoder};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Delivery delay buckets, seconds: retries arrive minutes late.
pub const DELAY_BUCKETS: [f64; 12] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

/// Every outcome a callback can have; all are pre-created at zero for the
/// push error event so rates and alerts work before the first reject.
pub const OUTCOMES: [&str; 8] =
    ["accepted", "duplicate", "ignored", "malformed", "unauthorized", "expired", "too_large", "timeout"];

pub struct ExporterMetrics {
    registry: Registry,
    callbacks: IntCounterVec,
    pub callback_delay: Histogram,
    unparsed_details: IntCounterVec,
    pub future_data_time: IntCounter,
}

fn opts(family: &Family) -> Opts {
    Opts::new(family.name, family.help)
}

impl ExporterMetrics {
    pub fn new() -> Self {
        // Names and label sets are constants: these cannot fail.
        let build_info = IntGaugeVec::new(opts(&f::BUILD_INFO), &["version"]).expect("valid metric");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let callbacks = IntCounterVec::new(opts(&f::CALLBACKS), &["event_type", "outcome"]).expect("valid metric");
        for outcome in OUTCOMES {
            callbacks.with_label_values(&["321", outcome]);
        }
        let delay = HistogramOpts::new(f::CALLBACK_DELAY.name, f::CALLBACK_DELAY.help).buckets(DELAY_BUCKETS.to_vec());
        let callback_delay = Histogram::with_opts(delay).expect("valid metric");
        let unparsed_details = IntCounterVec::new(opts(&f::UNPARSED_DETAILS), &["error_type"]).expect("valid metric");
        let future_data_time = IntCounter::with_opts(opts(&f::FUTURE_DATA_TIME)).expect("valid metric");
        let registry = Registry::new();
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(build_info),
            Box::new(callbacks.clone()),
            Box::new(callback_delay.clone()),
            Box::new(unparsed_details.clone()),
            Box::new(future_data_time.clone()),
            #[cfg(target_os = "linux")]
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ];
        for c in collectors {
            registry.register(c).expect("metric names are unique");
        }
        Self { registry, callbacks, callback_delay, unparsed_details, future_data_time }
    }

    /// Counts one callback under its event type and outcome labels.
    pub fn count(&self, event_type: &str, outcome: &str) {
        self.callbacks.with_label_values(&[event_type, outcome]).inc();
    }

    pub fn unparsed_detail(&self, error_type: &str) {
        self.unparsed_details.with_label_values(&[error_type]).inc();
    }
}

impl Default for ExporterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector for ExporterMetrics {
    fn encode(&self, enc: &mut Encoder<'_>) {
        // Encoding our own registry's families into a String cannot fail.
        let _ = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), enc.raw());
    }
}
