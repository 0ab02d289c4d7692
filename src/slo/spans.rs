//! One stream's recent bad time for one SLO: the union of the bad reports'
//! intervals, in milliseconds, as a few disjoint spans, so overlapping,
//! repeated and out-of-order reports add only the time not already bad.
//! What lies before its floor (older than [`HORIZON_MS`], or given up to
//! stay small) is no longer held: the caller clips to [`Spans::floor`].

/// How far back a report may still mark time, ms: longer than CSS's retries.
pub const HORIZON_MS: u64 = 1_024_000;
/// Spans held at most; past this the oldest is given up (the floor rises),
/// so a sender of scattered intervals cannot grow a stream without bound.
const MAX_SPANS: usize = 32;

#[derive(Debug, Clone, Default)]
pub struct Spans {
    /// Sorted, disjoint, not touching: `[from, to)` ms.
    spans: Vec<(u64, u64)>,
    /// Nothing before this is held.
    floor: u64,
}

impl Spans {
    /// The oldest time a report may still mark at `now_ms`.
    pub fn floor(&self, now_ms: u64) -> u64 {
        self.floor.max(horizon(now_ms))
    }

    /// Marks `[from, to)` bad; returns how many ms were not yet. The caller
    /// clips `from` to [`Self::floor`] first.
    pub fn mark(&mut self, from: u64, to: u64, now_ms: u64) -> u64 {
        self.forget_before(horizon(now_ms));
        let from = from.max(self.floor);
        if from >= to {
            return 0;
        }
        // The spans that overlap or touch [from, to) are merged into one.
        let first = self.spans.partition_point(|&(_, b)| b < from);
        let last = self.spans.partition_point(|&(a, _)| a <= to);
        let covered: u64 = self.spans[first..last].iter().map(|&(a, b)| b.min(to).saturating_sub(a.max(from))).sum();
        let merged = match self.spans[first..last] {
            [] => (from, to),
            ref touching => (from.min(touching[0].0), to.max(touching[touching.len() - 1].1)),
        };
        self.spans.splice(first..last, [merged]);
        if self.spans.len() > MAX_SPANS {
            let (_, end) = self.spans.remove(0);
            self.floor = end;
        }
        (to - from) - covered
    }

    /// Bad ms within `[from, to)` still held.
    pub fn count(&self, from: u64, to: u64) -> u64 {
        self.spans.iter().map(|&(a, b)| b.min(to).saturating_sub(a.max(from))).sum()
    }

    /// Nothing it holds is after the horizon: it can be freed.
    pub fn stale(&self, now_ms: u64) -> bool {
        self.spans.last().is_none_or(|&(_, b)| b <= horizon(now_ms))
    }

    fn forget_before(&mut self, at: u64) {
        if at <= self.floor {
            return;
        }
        self.floor = at;
        let gone = self.spans.partition_point(|&(_, b)| b <= at);
        self.spans.drain(..gone);
        if let Some(first) = self.spans.first_mut() {
            first.0 = first.0.max(at);
        }
    }
}

/// The oldest time a report may still mark at `now_ms`.
pub fn horizon(now_ms: u64) -> u64 {
    now_ms.saturating_sub(HORIZON_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_500_000;

    #[test]
    fn counts_each_millisecond_once() {
        let mut s = Spans::default();
        assert_eq!(s.mark(995_000, 1_000_000, NOW), 5000);
        assert_eq!(s.mark(995_000, 1_000_000, NOW), 0, "a duplicate");
        assert_eq!(s.mark(997_500, 1_003_000, NOW), 3000, "an overlap adds only what is new");
        assert_eq!(s.mark(990_000, 995_000, NOW), 5000, "out of order, touching");
        assert_eq!(s.mark(980_000, 1_010_000, NOW), 17_000, "covering all: the holes around it");
        assert_eq!(s.count(0, u64::MAX), 30_000);
        assert_eq!(s.count(996_000, 1_001_000), 5000);
        assert_eq!(s.mark(2_000_000, 2_000_001, NOW), 1, "a millisecond");
    }

    #[test]
    fn the_floor_rises_with_the_horizon_and_the_span_cap() {
        let mut s = Spans::default();
        let now = 5_000_000;
        assert_eq!(s.mark(now - 2_000_000, now, now), HORIZON_MS, "older than the horizon is not held");
        assert_eq!(s.floor(now), horizon(now));
        assert!(!s.stale(now) && s.stale(now + HORIZON_MS));
        let mut s = Spans::default();
        for i in 0..MAX_SPANS as u64 + 1 {
            assert_eq!(s.mark(now - 500_000 + 10 * i, now - 500_000 + 10 * i + 5, now), 5);
        }
        assert_eq!(s.spans.len(), MAX_SPANS);
        assert_eq!(s.floor(now), now - 500_000 + 5, "the oldest span was given up");
        assert_eq!(s.mark(now - 500_000, now - 500_000 + 5, now), 0, "and is not counted again");
    }
}
