//! One stream's recent bad seconds for one SLO: a ring of 1-second slots, a
//! bit each, so overlapping, repeated and out-of-order reports add only the
//! seconds not already bad. 1024 slots (about 17 minutes, longer than CSS's
//! retries) in 128 bytes.

/// Seconds a ring remembers.
pub const RING_SECS: u64 = 1024;
const WORDS: usize = (RING_SECS / 64) as usize;

#[derive(Debug, Clone)]
pub struct Ring {
    bits: [u64; WORDS],
    /// The latest second the ring covers: it holds `(head - RING_SECS, head]`.
    head: u64,
}

impl Ring {
    pub fn new(head: u64) -> Self {
        Self { bits: [0; WORDS], head }
    }

    /// Marks the seconds `[from, to)` bad; returns how many were not yet.
    /// Seconds before the ring's span are the caller's to refuse (it
    /// clips to [`horizon`]); the ring moves forward to cover `to - 1`.
    pub fn mark(&mut self, from: u64, to: u64) -> u64 {
        if from >= to {
            return 0;
        }
        self.advance(to - 1);
        let oldest = (self.head + 1).saturating_sub(RING_SECS);
        let mut added = 0;
        for second in from.max(oldest)..to {
            let (word, bit) = slot(second);
            if self.bits[word] & bit == 0 {
                self.bits[word] |= bit;
                added += 1;
            }
        }
        added
    }

    /// Bad seconds within `[from, to)` still held.
    pub fn count(&self, from: u64, to: u64) -> u64 {
        let oldest = (self.head + 1).saturating_sub(RING_SECS);
        let to = to.min(self.head + 1);
        (from.max(oldest)..to).map(slot).filter(|&(word, bit)| self.bits[word] & bit != 0).count() as u64
    }

    /// Nothing it holds is at or after `horizon(now)`: it can be freed.
    pub fn stale(&self, now: u64) -> bool {
        self.head < horizon(now)
    }

    /// Moves the head to `second`, clearing the slots it passes.
    fn advance(&mut self, second: u64) {
        if second <= self.head {
            return;
        }
        if second - self.head >= RING_SECS {
            self.bits = [0; WORDS];
        } else {
            for s in self.head + 1..=second {
                let (word, bit) = slot(s);
                self.bits[word] &= !bit;
            }
        }
        self.head = second;
    }
}

/// The oldest second a report may still mark at `now`: a ring whose head
/// is `now` holds `[now + 1 - RING_SECS, now]`.
pub fn horizon(now: u64) -> u64 {
    (now + 1).saturating_sub(RING_SECS)
}

#[allow(clippy::cast_possible_truncation, reason = "below RING_SECS")]
fn slot(second: u64) -> (usize, u64) {
    let i = (second % RING_SECS) as usize;
    (i / 64, 1 << (i % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_second_once() {
        let mut r = Ring::new(1000);
        assert_eq!(r.mark(995, 1000), 5);
        assert_eq!(r.mark(995, 1000), 0, "a duplicate");
        assert_eq!(r.mark(997, 1003), 3, "an overlap adds only what is new");
        assert_eq!(r.mark(990, 996), 5, "out of order");
        assert_eq!(r.count(0, 2000), 13);
        assert_eq!(r.count(996, 1001), 5);
    }

    #[test]
    fn moving_forward_forgets_what_fell_out() {
        let mut r = Ring::new(100);
        assert_eq!(r.mark(90, 100), 10);
        // The same slots, one lap later, are new seconds.
        assert_eq!(r.mark(90 + RING_SECS, 100 + RING_SECS), 10);
        assert_eq!(r.count(0, 100 + RING_SECS), 10);
        assert_eq!(r.mark(50, 60), 0, "older than the ring: the caller clips these");
        assert_eq!(r.mark(5000, 5000 + 3 * RING_SECS), RING_SECS, "at most a ring's worth at once");
        assert!(!r.stale(5000 + 3 * RING_SECS) && r.stale(5000 + 5 * RING_SECS));
    }
}
