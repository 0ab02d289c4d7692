//! The exporter-level metrics that are not part of any state, from accepted
//! reports: delivery delay, unreadable details, future `data_time`; and the
//! build and the process. Held in the prometheus crate's registry, which
//! also brings the standard `process_*` collector.
use crate::catalog::{self, Media};
use crate::expose::families::{self as f, Family};
use crate::expose::{Collector, Encoder};
use crate::ingest::event::{Observer, ReportAccepted};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Delivery delay buckets, seconds: retries arrive minutes late.
pub const DELAY_BUCKETS: [f64; 12] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

pub struct ExporterMetrics {
    registry: Registry,
    callback_delay: Histogram,
    unparsed_details: IntCounterVec,
    future_data_time: IntCounter,
}

fn opts(family: &Family) -> Opts {
    Opts::new(family.name, family.help)
}

impl ExporterMetrics {
    pub fn new() -> Self {
        // Names and label sets are constants: these cannot fail.
        let build_info =
            IntGaugeVec::new(opts(&f::BUILD_INFO), &["version", "revision", "rustversion"]).expect("valid metric");
        let build = [env!("CARGO_PKG_VERSION"), env!("CSS_PUSH_REVISION"), env!("CSS_PUSH_RUSTC_VERSION")];
        build_info.with_label_values(&build).set(1);
        let delay = HistogramOpts::new(f::CALLBACK_DELAY.name, f::CALLBACK_DELAY.help).buckets(DELAY_BUCKETS.to_vec());
        let callback_delay = Histogram::with_opts(delay).expect("valid metric");
        let unparsed_details = IntCounterVec::new(opts(&f::UNPARSED_DETAILS), &["error_type"]).expect("valid metric");
        // Only frame-gap details are read: their types exist from the start,
        // so panels read 0 rather than "No data".
        for media in Media::ALL {
            unparsed_details.with_label_values(&[catalog::error_type_label(media.error_code())]);
        }
        let future_data_time = IntCounter::with_opts(opts(&f::FUTURE_DATA_TIME)).expect("valid metric");
        let registry = Registry::new();
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(build_info),
            Box::new(callback_delay.clone()),
            Box::new(unparsed_details.clone()),
            Box::new(future_data_time.clone()),
            #[cfg(target_os = "linux")]
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ];
        for c in collectors {
            registry.register(c).expect("metric names are unique");
        }
        Self { registry, callback_delay, unparsed_details, future_data_time }
    }
}

impl Observer for ExporterMetrics {
    fn report(&self, report: &ReportAccepted<'_>) {
        self.callback_delay.observe(report.delay_secs.max(0.0));
        if report.future_data_time {
            self.future_data_time.inc();
        }
        for &code in report.unparsed_details {
            self.unparsed_details.with_label_values(&[catalog::error_type_label(code)]).inc();
        }
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
