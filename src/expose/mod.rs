//! What `/metrics` shows. Every part of the exporter that holds metrics
//! implements [`Collector`]; a scrape asks each in turn to encode its
//! families. Names, types and help text come from one table, [`families`].
pub mod families;
pub mod histogram;
pub mod render_thread;
pub mod scrape;
pub mod text;

pub use families::{Family, Kind};
pub use text::{Around, Encoder, Labels, Value, CONTENT_TYPE};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A part of the exporter that shows metrics: it encodes whole families,
/// computing gauges that describe its state at the time of the scrape.
pub trait Collector: Send + Sync {
    fn encode(&self, enc: &mut Encoder<'_>);
}

/// The collectors behind `/metrics`, in page order.
pub struct Exposition {
    collectors: Vec<Arc<dyn Collector>>,
    /// Length of the last page, so the next is allocated once at its size.
    last_len: AtomicUsize,
}

impl Exposition {
    pub fn new(collectors: Vec<Arc<dyn Collector>>) -> Self {
        Self { collectors, last_len: AtomicUsize::new(0) }
    }

    /// The whole page.
    pub fn render(&self) -> String {
        let last = self.last_len.load(Ordering::Relaxed);
        let mut out = String::with_capacity(64 * 1024 + last + last / 16);
        let mut enc = Encoder::new(&mut out);
        for c in &self.collectors {
            c.encode(&mut enc);
        }
        self.last_len.store(out.len(), Ordering::Relaxed);
        out
    }
}
