//! Rejection logs, rate-limited: a flood of bad callbacks must not become a
//! flood of log lines. At most one line per kind per interval; the next line
//! says how many were left out. The counters count every one regardless.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One line per kind at most this often.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

pub struct RateLimitedLog {
    interval: Duration,
    /// By kind: when the next line may be written, and how many were left out since the last.
    slots: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl RateLimitedLog {
    pub fn new(interval: Duration) -> Self {
        Self { interval, slots: Mutex::default() }
    }

    /// Logs `line()` as a warning unless a line of this `kind` was logged
    /// within the interval; `line` is only built when it is written.
    pub fn warn(&self, kind: &'static str, line: impl FnOnce() -> String) {
        let now = Instant::now();
        let left_out = {
            let mut slots = crate::sync::lock(&self.slots);
            let (next, left_out) = slots.entry(kind).or_insert((now, 0));
            if now < *next {
                *left_out += 1;
                return;
            }
            *next = now + self.interval;
            std::mem::take(left_out)
        };
        match left_out {
            0 => log::warn!("{}", line()),
            n => log::warn!("{} ({n} more like it in the last {}s not logged)", line(), self.interval.as_secs()),
        }
    }

    /// How many lines of `kind` are waiting to be reported as left out.
    #[cfg(test)]
    fn left_out(&self, kind: &'static str) -> u64 {
        self.slots.lock().unwrap().get(kind).map_or(0, |s| s.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_kind_per_interval() {
        let log = RateLimitedLog::new(Duration::from_millis(200));
        for _ in 0..1000 {
            log.warn("malformed", || String::from("x"));
        }
        assert_eq!(log.left_out("malformed"), 999, "the first is written, the rest left out");
        log.warn("unauthorized", || String::from("y"));
        assert_eq!(log.left_out("unauthorized"), 0, "kinds are limited apart");
        std::thread::sleep(Duration::from_millis(250));
        log.warn("malformed", || String::from("x"));
        assert_eq!(log.left_out("malformed"), 0, "the next line reports the rest");
    }
}
