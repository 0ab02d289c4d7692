//! Each stream's push errors over the last [`WINDOW_MINUTES`] minutes, in
//! one-minute buckets: the window is a length of time whatever the load
//! (a ring of the last N reports covers seconds at a thousand reports a
//! second), and memory is bounded by [`MAX_TRACKED`] streams. Reports of
//! further streams are counted as dropped, and the page says so.
use hashbrown::{Equivalent, HashMap};
use std::borrow::Cow;
use std::sync::Mutex;

/// One counting slot per minute of the window.
const SLOTS: usize = 15;
pub const WINDOW_MINUTES: u64 = SLOTS as u64;
pub const WINDOW_SECS: u64 = WINDOW_MINUTES * 60;
/// "Had errors lately", for the incident summary.
pub const RECENT_SECS: u64 = 5 * 60;
/// Streams tracked at once: a few hundred bytes each.
pub const MAX_TRACKED: usize = 4096;

/// A stream's names as shown (cut short).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub domain: String,
    pub app: String,
    pub stream: String,
}

/// A report's stream names as shown, borrowed unless they had to be cut:
/// copied into a [`StreamKey`] only when the stream is new.
pub struct Shown<'a> {
    pub domain: Cow<'a, str>,
    pub app: Cow<'a, str>,
    pub stream: Cow<'a, str>,
}

impl Shown<'_> {
    fn names(&self) -> Names<'_> {
        Names(&self.domain, &self.app, &self.stream)
    }

    fn into_key(self) -> StreamKey {
        StreamKey { domain: self.domain.into_owned(), app: self.app.into_owned(), stream: self.stream.into_owned() }
    }
}

impl From<StreamKey> for Shown<'static> {
    fn from(key: StreamKey) -> Self {
        Shown { domain: Cow::Owned(key.domain), app: Cow::Owned(key.app), stream: Cow::Owned(key.stream) }
    }
}

/// Names to find a [`StreamKey`] by without allocating: hashed as the key
/// hashes its own.
#[derive(Hash, PartialEq)]
struct Names<'a>(&'a str, &'a str, &'a str);

impl Equivalent<StreamKey> for Names<'_> {
    fn equivalent(&self, key: &StreamKey) -> bool {
        *self == Names(&key.domain, &key.app, &key.stream)
    }
}

#[derive(Clone, Copy, Default)]
struct Minute {
    minute: u64,
    first_secs: u64,
    errors: u64,
    reports: u64,
}

/// One slot per minute of the window (minute number modulo its length);
/// a slot holding an older minute is reused.
#[derive(Default)]
struct Minutes([Minute; SLOTS]);

/// What some minutes add up to.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub struct Totals {
    pub errors: u64,
    pub reports: u64,
    /// The first report counted.
    pub first_secs: Option<u64>,
}

impl Minutes {
    fn add(&mut self, at_secs: u64, errors: u64) {
        let minute = at_secs / 60;
        let slot = &mut self.0[usize::try_from(minute % WINDOW_MINUTES).unwrap_or(0)];
        if minute > slot.minute || slot.reports == 0 {
            *slot = Minute { minute, first_secs: at_secs, errors: 0, reports: 0 };
        }
        slot.errors = slot.errors.saturating_add(errors);
        slot.reports += 1;
    }

    /// The minutes of the window that ends now: this one and the 14 before.
    fn totals(&self, now_secs: u64) -> Totals {
        let now = now_secs / 60;
        let since = now.saturating_sub(WINDOW_MINUTES - 1);
        let mut t = Totals::default();
        for m in self.0.iter().filter(|m| m.reports > 0 && (since..=now).contains(&m.minute)) {
            t.errors = t.errors.saturating_add(m.errors);
            t.reports += m.reports;
            t.first_secs = Some(t.first_secs.map_or(m.first_secs, |f| f.min(m.first_secs)));
        }
        t
    }
}

struct Tracked {
    minutes: Minutes,
    last_secs: u64,
    last_error_secs: Option<u64>,
    /// The stream's key (label set), as its first report had it.
    key_labels: Box<str>,
}

impl Tracked {
    fn add(&mut self, at_secs: u64, errors: u64) {
        self.minutes.add(at_secs, errors);
        self.last_secs = self.last_secs.max(at_secs);
        if errors > 0 {
            self.last_error_secs = Some(self.last_error_secs.map_or(at_secs, |t| t.max(at_secs)));
        }
    }
}

#[derive(Default)]
struct Inner {
    streams: HashMap<StreamKey, Tracked>,
    /// Reports of streams past [`MAX_TRACKED`].
    dropped: Minutes,
    last_prune_secs: u64,
}

impl Inner {
    /// Forgets streams with no report in the window.
    fn prune(&mut self, now_secs: u64) {
        let since = (now_secs / 60).saturating_sub(WINDOW_MINUTES - 1) * 60;
        self.streams.retain(|_, t| t.last_secs >= since);
        self.last_prune_secs = now_secs;
    }
}

/// One stream's counts in the window.
#[derive(Debug)]
pub struct StreamTotals {
    pub key: StreamKey,
    /// Its label set, capped as labels are (`key` is cut short for show).
    pub key_labels: Box<str>,
    pub totals: Totals,
    pub last_secs: u64,
}

/// The window as the page reads it.
#[derive(Debug)]
pub struct WindowView {
    /// Every tracked stream with reports in the window.
    pub streams: Vec<StreamTotals>,
    /// Per (domain, app): streams with errors in the last [`RECENT_SECS`].
    pub recent_errors: HashMap<(String, String), u64>,
    pub dropped: Totals,
}

#[derive(Default)]
pub struct StreamWindows(Mutex<Inner>);

impl StreamWindows {
    /// Counts one report of `key` with `errors` errors; the key is copied
    /// only when the stream is new, and `labels` gives it its label set.
    pub fn record<'a>(&self, key: impl Into<Shown<'a>>, at_secs: u64, errors: u64, labels: impl FnOnce() -> Box<str>) {
        let key = key.into();
        let mut inner = crate::sync::lock(&self.0);
        let inner = &mut *inner;
        if let Some(tracked) = inner.streams.get_mut(&key.names()) {
            tracked.add(at_secs, errors);
            return;
        }
        if inner.streams.len() >= MAX_TRACKED {
            // Full: make room from streams gone quiet, at most once a second
            // (a flood of new streams would otherwise walk the map each time).
            if inner.last_prune_secs != at_secs {
                inner.prune(at_secs);
            }
            if inner.streams.len() >= MAX_TRACKED {
                inner.dropped.add(at_secs, errors);
                return;
            }
        }
        let tracked =
            Tracked { minutes: Minutes::default(), last_secs: at_secs, last_error_secs: None, key_labels: labels() };
        inner.streams.entry(key.into_key()).or_insert(tracked).add(at_secs, errors);
    }

    pub fn tracked(&self) -> usize {
        crate::sync::lock(&self.0).streams.len()
    }

    /// The window ending at `now_secs`; streams that left it are forgotten.
    pub fn view(&self, now_secs: u64) -> WindowView {
        let mut inner = crate::sync::lock(&self.0);
        inner.prune(now_secs);
        let recent_since = now_secs.saturating_sub(RECENT_SECS);
        let mut recent_errors: HashMap<(String, String), u64> = HashMap::new();
        let mut streams = Vec::with_capacity(inner.streams.len());
        for (key, t) in &inner.streams {
            if t.last_error_secs.is_some_and(|e| e >= recent_since) {
                *recent_errors.entry((key.domain.clone(), key.app.clone())).or_default() += 1;
            }
            let key_labels = t.key_labels.clone();
            streams.push(StreamTotals {
                key: key.clone(),
                key_labels,
                totals: t.minutes.totals(now_secs),
                last_secs: t.last_secs,
            });
        }
        WindowView { streams, recent_errors, dropped: inner.dropped.totals(now_secs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(stream: &str) -> StreamKey {
        StreamKey { domain: "d".into(), app: "live".into(), stream: stream.into() }
    }

    fn totals(view: &WindowView, stream: &str) -> Option<(u64, u64, Option<u64>)> {
        let s = view.streams.iter().find(|s| s.key.stream == stream)?;
        Some((s.totals.errors, s.totals.reports, s.totals.first_secs))
    }

    #[test]
    fn the_window_is_fifteen_minutes_of_time_whatever_the_load() {
        let w = StreamWindows::default();
        // A thousand reports a second for ten seconds, then one an hour later.
        for i in 0..10_000 {
            w.record(key(&format!("s{}", i % 10)), 600 + i / 1000, 2, Box::default);
        }
        let view = w.view(1200);
        assert_eq!(totals(&view, "s3"), Some((2000, 1000, Some(600))));
        // 600 s is minute 10; 14 minutes after minute 10 it is still in...
        assert_eq!(totals(&w.view(24 * 60 + 59), "s3"), Some((2000, 1000, Some(600))));
        // ...and a minute later it has left, and so has the stream.
        let view = w.view(25 * 60);
        assert_eq!((totals(&view, "s3"), w.tracked()), (None, 0));
    }

    #[test]
    fn old_minutes_leave_the_window_and_recent_errors_are_per_app() {
        let w = StreamWindows::default();
        w.record(key("a"), 0, 100, Box::default);
        w.record(key("a"), 14 * 60, 5, Box::default);
        w.record(key("b"), 14 * 60, 0, Box::default);
        w.record(StreamKey { app: "other".into(), ..key("c") }, 13 * 60, 1, Box::default);
        let view = w.view(15 * 60 + 10);
        assert_eq!(totals(&view, "a"), Some((5, 1, Some(14 * 60))), "minute 0 has left");
        assert_eq!(totals(&view, "b"), Some((0, 1, Some(14 * 60))));
        let recent = |app: &str| view.recent_errors.get(&("d".to_owned(), app.to_owned())).copied();
        // b reported no errors; c's are 2 min 10 s old, inside 5 min.
        assert_eq!((recent("live"), recent("other")), (Some(1), Some(1)));
        let later = w.view(18 * 60 + 1);
        assert_eq!(later.recent_errors.get(&("d".to_owned(), "live".to_owned())), Some(&1), "a's are 4 min old");
        assert_eq!(later.recent_errors.get(&("d".to_owned(), "other".to_owned())), None, "c's are 5 min old");
    }

    #[test]
    fn past_the_cap_new_streams_are_dropped_and_counted_until_old_ones_leave() {
        let w = StreamWindows::default();
        for i in 0..MAX_TRACKED {
            w.record(key(&format!("s{i}")), 0, 1, Box::default);
        }
        w.record(key("s0"), 10, 1, Box::default);
        w.record(key("late"), 10, 7, Box::default);
        w.record(key("late"), 11, 3, Box::default);
        let view = w.view(11);
        assert_eq!((view.streams.len(), totals(&view, "s0")), (MAX_TRACKED, Some((2, 2, Some(0)))));
        assert_eq!((view.dropped.errors, view.dropped.reports), (10, 2));
        // 15 minutes on every stream has left the window: the newcomer fits.
        w.record(key("later"), 15 * 60, 1, Box::default);
        let view = w.view(15 * 60);
        assert_eq!(view.streams.len(), 1);
        assert_eq!(totals(&view, "later"), Some((1, 1, Some(15 * 60))));
        assert_eq!(view.dropped.reports, 0, "the dropped reports left the window too");
    }
}
