//! A histogram of plain numbers, for series whose owner holds a lock when
//! it observes: one lock for all of a report's observations, where the
//! prometheus crate's histogram takes 3-4 atomic read-modify-writes for
//! each. It counts as that histogram does (an observation goes to the
//! first bucket whose upper bound is not below it, the sum adds each in
//! turn), so its samples are the ones that histogram would show.

/// Upper bounds (ascending, +Inf implied) and what was observed into them.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram<const N: usize> {
    bounds: &'static [f64; N],
    /// Observations per bucket, not cumulative; those above the last bound
    /// (and NaN) are only in `count`.
    counts: [u64; N],
    count: u64,
    sum: f64,
}

impl<const N: usize> Histogram<N> {
    pub const fn new(bounds: &'static [f64; N]) -> Self {
        Self { bounds, counts: [0; N], count: 0, sum: 0.0 }
    }

    pub fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| v <= b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

/// A histogram as the exposition reads it.
pub trait Observed {
    /// Calls `bucket` with the upper bound and cumulative count of each
    /// bucket but +Inf, in order; returns the count and the sum, of the
    /// same moment.
    fn buckets(&self, bucket: &mut dyn FnMut(f64, u64)) -> (u64, f64);
}

impl<const N: usize> Observed for Histogram<N> {
    fn buckets(&self, bucket: &mut dyn FnMut(f64, u64)) -> (u64, f64) {
        let mut total = 0;
        for (&bound, &n) in self.bounds.iter().zip(&self.counts) {
            total += n;
            bucket(bound, total);
        }
        (self.count, self.sum)
    }
}

/// For tests that hold a histogram to the prometheus crate's.
#[cfg(test)]
impl Observed for prometheus::Histogram {
    fn buckets(&self, bucket: &mut dyn FnMut(f64, u64)) -> (u64, f64) {
        use prometheus::core::Metric;
        let metric = self.metric();
        let h = metric.get_histogram();
        for b in h.get_bucket() {
            bucket(b.upper_bound(), b.cumulative_count());
        }
        (h.get_sample_count(), h.get_sample_sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BOUNDS: [f64; 4] = [1.0, 1.5, 7.5, 60.0];

    proptest! {
        /// Whatever is observed, the buckets, sum and count are those the
        /// prometheus crate's histogram reports.
        #[test]
        fn counts_as_the_prometheus_histogram_does(
            values in prop::collection::vec(prop_oneof![
                -1.0f64..100.0,
                prop::sample::select(vec![1.0, 1.5, 7.5, 60.0, 0.0, f64::NAN, f64::INFINITY]),
            ], 0..40),
        ) {
            let theirs = prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new("h", "h").buckets(BOUNDS.to_vec()),
            ).unwrap();
            let mut ours = Histogram::new(&BOUNDS);
            for &v in &values {
                theirs.observe(v);
                ours.observe(v);
            }
            let read = |h: &dyn Observed| {
                let mut buckets = Vec::new();
                let (count, sum) = h.buckets(&mut |bound, n| buckets.push((bound, n)));
                (buckets, count, sum.to_bits())
            };
            prop_assert_eq!(read(&ours), read(&theirs));
        }
    }
}
