//! The series budget: one count of the series that streams and (domain, app)
//! pairs hold, against `--max-series`. `--max-streams` and `--max-apps`
//! bound label sets, not series: a stream can hold a series per error type.
//! Series are taken where they are created and given back when their owner
//! expires; the count is one atomic, so the hot path takes no extra lock.
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct SeriesBudget {
    limit: u64,
    held: AtomicU64,
    /// Callbacks folded into an `__overflow__` series because the budget was spent.
    overflowed: AtomicU64,
}

impl SeriesBudget {
    pub fn new(limit: u64) -> Self {
        Self { limit, held: AtomicU64::new(0), overflowed: AtomicU64::new(0) }
    }

    /// Takes `n` series if the budget allows; false (nothing taken) if not.
    pub fn try_take(&self, n: usize) -> bool {
        let n = n as u64;
        if self.held.fetch_add(n, Ordering::Relaxed) + n > self.limit {
            self.held.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Takes `n` series whatever the budget: for the `__overflow__` series,
    /// which must exist so no count is lost (they are bounded by the caps).
    pub fn force(&self, n: usize) {
        self.held.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn release(&self, n: usize) {
        self.held.fetch_sub(n as u64, Ordering::Relaxed);
    }

    /// Counts a callback folded into `__overflow__` for want of budget.
    pub fn note_overflow(&self) {
        self.overflowed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl Collector for SeriesBudget {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.single(&f::SERIES, Value::Int(self.held()));
        enc.single(&f::SERIES_LIMIT, Value::Int(self.limit));
        enc.single(&f::SERIES_OVERFLOW, Value::Int(self.overflowed.load(Ordering::Relaxed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_limit_and_gives_back() {
        let b = SeriesBudget::new(10);
        assert!(b.try_take(6));
        assert!(!b.try_take(5), "6 + 5 > 10");
        assert!(b.try_take(4));
        assert!(!b.try_take(1));
        b.force(3);
        assert_eq!(b.held(), 13);
        b.release(8);
        assert!(b.try_take(5));
        assert_eq!(b.held(), 10);
    }
}
