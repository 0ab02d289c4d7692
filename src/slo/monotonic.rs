//! A clock that never steps back: the latest of every time it was shown, so
//! a wall clock stepped back (NTP, a VM restored) never lowers a counter
//! computed from it.
use crate::state::clock::Clock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct Monotonic {
    clock: Arc<dyn Clock>,
    latest: AtomicU64,
}

impl Monotonic {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let latest = AtomicU64::new(millis(&*clock));
        Self { clock, latest }
    }

    /// Now, Unix ms, never earlier than before.
    pub fn now(&self) -> u64 {
        self.at(millis(&*self.clock))
    }

    /// `ms` (an event's receive time), or a later time already seen.
    pub fn at(&self, ms: u64) -> u64 {
        // Most calls fall in a millisecond seen already: a load, where
        // fetch_max is a locked read-modify-write every time.
        match self.latest.load(Ordering::Relaxed) {
            latest if latest >= ms => latest,
            _ => self.latest.fetch_max(ms, Ordering::Relaxed).max(ms),
        }
    }
}

fn millis(clock: &dyn Clock) -> u64 {
    u64::try_from(clock.now().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::clock::ManualClock;
    use std::time::Duration;

    #[test]
    fn never_steps_back() {
        let clock = Arc::new(ManualClock::new(Duration::from_millis(100)));
        let m = Monotonic::new(clock.clone());
        assert_eq!(m.now(), 100);
        assert_eq!(m.at(90), 100, "an event stamped before a time already seen");
        assert_eq!(m.at(130), 130);
        assert_eq!(m.now(), 130, "the wall clock is behind");
        clock.advance(Duration::from_millis(40));
        assert_eq!(m.now(), 140);
    }
}
