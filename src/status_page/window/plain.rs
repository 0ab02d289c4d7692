//! The window as it was before it was sharded: one map of streams behind
//! one lock, found by a hash of their names. Kept as the reference the
//! sharded [`StreamWindows`](super::StreamWindows) is held equal to.
use super::{Minutes, Shown, StreamKey, Tracked, WindowView, RECENT_SECS};
use hashbrown::HashMap;

pub struct Plain {
    streams: HashMap<StreamKey, Tracked>,
    cap: usize,
    dropped: Minutes,
    last_prune_secs: u64,
}

impl Plain {
    pub fn new(cap: usize) -> Self {
        Self { streams: HashMap::new(), cap, dropped: Minutes::default(), last_prune_secs: 0 }
    }

    fn prune(&mut self, now_secs: u64) {
        let since = super::window_start(now_secs);
        self.streams.retain(|_, t| t.last_secs >= since);
        self.last_prune_secs = now_secs;
    }

    pub fn record(&mut self, key: Shown<'_>, at_secs: u64, errors: u64, labels: impl FnOnce() -> Box<str>) {
        if let Some(tracked) = self.streams.get_mut(&key.names()) {
            tracked.add(at_secs, errors);
            return;
        }
        if self.streams.len() >= self.cap {
            if self.last_prune_secs != at_secs {
                self.prune(at_secs);
            }
            if self.streams.len() >= self.cap {
                self.dropped.add(at_secs, errors);
                return;
            }
        }
        let tracked = Tracked::new(at_secs, labels());
        self.streams.entry(key.into_key()).or_insert(tracked).add(at_secs, errors);
    }

    pub fn tracked(&self) -> usize {
        self.streams.len()
    }

    pub fn view(&mut self, now_secs: u64) -> WindowView {
        self.prune(now_secs);
        let recent_since = now_secs.saturating_sub(RECENT_SECS);
        let mut recent_errors: HashMap<(String, String), u64> = HashMap::new();
        let mut streams = Vec::with_capacity(self.streams.len());
        for (key, tracked) in &self.streams {
            streams.push(tracked.shown(key.clone(), now_secs, recent_since, &mut recent_errors));
        }
        WindowView { streams, recent_errors, dropped: self.dropped.totals(now_secs) }
    }
}
