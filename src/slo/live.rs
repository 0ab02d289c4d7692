//! Running sums from which the live time of a set of push sessions (a
//! pair's, a node's) at any `now` follows, in O(1) per start, end and read.
//! Times are Unix ms.
#[derive(Debug, Default)]
pub struct Live {
    /// Sessions open now.
    pub open: i64,
    open_starts: i128,
    closed: u64,
}

impl Live {
    /// Live ms of every session so far, the open ones up to `now`.
    pub fn at(&self, now: u64) -> u64 {
        let total = i128::from(self.closed) + i128::from(self.open) * i128::from(now) - self.open_starts;
        u64::try_from(total.max(0)).unwrap_or(u64::MAX)
    }

    pub fn open(&mut self, start: u64) {
        self.open += 1;
        self.open_starts += i128::from(start);
    }

    pub fn close(&mut self, start: u64, end: u64) {
        self.open -= 1;
        self.open_starts -= i128::from(start);
        self.closed += end.saturating_sub(start);
    }
}
