//! The (domain, app) pairs allowed their own label values. Series labelled
//! by domain and app (histograms, lifecycle counters, overflow buckets) are
//! bounded only if the pairs are: past `--max-apps`, a new pair's callbacks
//! are counted under domain, app and stream "__overflow__".
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

pub const OVERFLOW: &str = "__overflow__";

pub struct AppSet {
    max_apps: usize,
    /// (domain, app) → clock seconds of its last callback.
    seen: RwLock<hashbrown::HashMap<Pair, AtomicU64>>,
}

#[derive(PartialEq, Eq)]
struct Pair(Box<str>, Box<str>);

impl Hash for Pair {
    fn hash<H: Hasher>(&self, h: &mut H) {
        PairRef(&self.0, &self.1).hash(h)
    }
}

/// A borrowed [`Pair`], for lookups without allocating.
#[derive(Hash)]
struct PairRef<'a>(&'a str, &'a str);

impl hashbrown::Equivalent<Pair> for PairRef<'_> {
    fn equivalent(&self, key: &Pair) -> bool {
        *self.0 == *key.0 && *self.1 == *key.1
    }
}

impl AppSet {
    pub fn new(max_apps: usize) -> Self {
        Self { max_apps, seen: RwLock::default() }
    }

    /// Whether (domain, app) may have its own labels; remembers it if so.
    pub fn admit(&self, domain: &str, app: &str, now_secs: u64) -> bool {
        let key = PairRef(domain, app);
        if let Some(last) = self.seen.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            // Written once a second at most, so the workers do not fight
            // over the cache line on every callback.
            if last.load(Ordering::Relaxed) != now_secs {
                last.store(now_secs, Ordering::Relaxed);
            }
            return true;
        }
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = seen.get(&key) {
            last.store(now_secs, Ordering::Relaxed);
            return true;
        }
        if seen.len() >= self.max_apps {
            return false;
        }
        seen.insert(Pair(domain.into(), app.into()), AtomicU64::new(now_secs));
        true
    }

    /// Forgets pairs without a callback since `cutoff`; returns them.
    pub fn expire(&self, cutoff_secs: u64) -> Vec<(Box<str>, Box<str>)> {
        let mut removed = Vec::new();
        self.seen.write().unwrap_or_else(|e| e.into_inner()).retain(|pair, last| {
            let keep = last.load(Ordering::Relaxed) > cutoff_secs;
            if !keep {
                removed.push((pair.0.clone(), pair.1.clone()));
            }
            keep
        });
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_cap_and_frees_on_expiry() {
        let apps = AppSet::new(2);
        assert!(apps.admit("d", "a", 10));
        assert!(apps.admit("d", "b", 10));
        assert!(apps.admit("d", "a", 20), "a known pair is always admitted");
        assert!(!apps.admit("e", "a", 20));
        let removed = apps.expire(15);
        assert_eq!(removed, vec![("d".into(), "b".into())]);
        assert!(apps.admit("e", "a", 30));
    }
}
