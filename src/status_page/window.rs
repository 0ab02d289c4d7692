//! Each stream's push errors over the last [`WINDOW_MINUTES`] minutes, in
//! one-minute buckets: the window is a length of time whatever the load
//! (a ring of the last N reports covers seconds at a thousand reports a
//! second), and memory is bounded by [`MAX_TRACKED`] streams. Reports of
//! further streams are counted as dropped, and the page says so.
//!
//! Both HTTP workers count every accepted report here, so the streams are
//! kept in shards, each behind its own lock, found by the hash ingest has
//! already computed of the stream's key: a report of a known stream takes
//! one shard's lock and hashes nothing.
use crate::state::sharded::{table_hash, Sharded};
use crate::sync::lock;
use crate::text::quote::QUOTE_BYTES;
#[cfg(test)]
use hashbrown::Equivalent;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[cfg(test)]
mod plain;

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

    /// Whether a name may have been cut for show: a cut name is at least
    /// [`QUOTE_BYTES`] long (what is kept loses under a character, and the
    /// mark is one), and so are only names of that length. Decided by the
    /// names shown alone, as the shard they are found in must be.
    fn may_be_cut(&self) -> bool {
        [&self.domain, &self.app, &self.stream].iter().any(|name| name.len() >= QUOTE_BYTES)
    }

    #[cfg(test)]
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

#[cfg(test)]
impl Equivalent<StreamKey> for Names<'_> {
    fn equivalent(&self, key: &StreamKey) -> bool {
        *self == Names(&key.domain, &key.app, &key.stream)
    }
}

/// 32 bytes: in an [`Entry`], a report's minute is in one cache line.
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

/// What a report writes first (its times, the end of an [`Entry`]'s first
/// cache line), then its minutes, then what only the page reads.
#[repr(C)]
struct Tracked {
    last_secs: u64,
    last_error_secs: Option<u64>,
    minutes: Minutes,
    /// The stream's key (label set), as its first report had it.
    key_labels: Box<str>,
}

impl Tracked {
    fn new(at_secs: u64, key_labels: Box<str>) -> Self {
        Self { minutes: Minutes::default(), last_secs: at_secs, last_error_secs: None, key_labels }
    }

    /// The stream as the window ending at `now_secs` shows it, counted in
    /// `recent_errors` by its (domain, app) if it had errors since `recent_since`.
    fn shown(
        &self,
        key: StreamKey,
        now_secs: u64,
        recent_since: u64,
        recent_errors: &mut HashMap<(String, String), u64>,
    ) -> StreamTotals {
        if self.last_error_secs.is_some_and(|e| e >= recent_since) {
            *recent_errors.entry((key.domain.clone(), key.app.clone())).or_default() += 1;
        }
        StreamTotals {
            key,
            key_labels: self.key_labels.clone(),
            totals: self.minutes.totals(now_secs),
            last_secs: self.last_secs,
        }
    }

    fn add(&mut self, at_secs: u64, errors: u64) {
        self.minutes.add(at_secs, errors);
        self.last_secs = self.last_secs.max(at_secs);
        if errors > 0 {
            self.last_error_secs = Some(self.last_error_secs.map_or(at_secs, |t| t.max(at_secs)));
        }
    }
}

/// A tracked stream, with the hash its shard's table finds it by. A report
/// of a known stream reads the first cache line (the hash, compared before
/// the names; where the names are; the stream's times), its names (one
/// allocation) and its minute's line: no more, over HTTP each is a miss.
#[repr(C, align(64))]
struct Entry {
    hash: u64,
    names: Joined,
    tracked: Tracked,
}

/// A stream's three names shown, in one allocation: one line to compare,
/// not three.
struct Joined {
    text: Box<str>,
    /// Where the domain and the app end in `text`.
    ends: [usize; 2],
}

impl Joined {
    fn new(names: &Names<'_>) -> Self {
        let Names(domain, app, stream) = *names;
        Self { text: [domain, app, stream].concat().into(), ends: [domain.len(), domain.len() + app.len()] }
    }

    fn parts(&self) -> (&[u8], &[u8], &[u8]) {
        let [domain, app] = self.ends;
        let text = self.text.as_bytes();
        (&text[..domain], &text[domain..app], &text[app..])
    }

    fn is(&self, names: &Names<'_>) -> bool {
        let Names(domain, app, stream) = *names;
        self.parts() == (domain.as_bytes(), app.as_bytes(), stream.as_bytes())
    }

    fn key(&self) -> StreamKey {
        let [domain, app] = self.ends;
        let part = |range: std::ops::Range<usize>| self.text[range].to_owned();
        StreamKey { domain: part(0..domain), app: part(domain..app), stream: part(app..self.text.len()) }
    }
}

/// Shards of the window: enough that two workers seldom meet in one.
const SHARDS: usize = 16;

/// What only a report of a stream not tracked yet needs.
#[derive(Default)]
struct Full {
    /// Reports of streams past the cap.
    dropped: Minutes,
    last_prune_secs: u64,
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

pub struct StreamWindows {
    shards: Sharded<HashTable<Entry>>,
    /// Streams tracked in all shards: the cap holds in total.
    tracked: AtomicUsize,
    cap: usize,
    /// Taken after a shard's lock is let go, never while one is held.
    full: Mutex<Full>,
    /// Hashes the names of a stream that may have been cut for show.
    names_hasher: DefaultHashBuilder,
}

impl Default for StreamWindows {
    fn default() -> Self {
        Self::with_cap(MAX_TRACKED)
    }
}

impl StreamWindows {
    fn with_cap(cap: usize) -> Self {
        Self {
            shards: Sharded::new(SHARDS),
            tracked: AtomicUsize::new(0),
            cap,
            full: Mutex::default(),
            names_hasher: DefaultHashBuilder::default(),
        }
    }

    /// [`record_key`](Self::record_key) of names with no key's hash.
    #[cfg(test)]
    pub fn record<'a>(&self, key: impl Into<Shown<'a>>, at_secs: u64, errors: u64, labels: impl FnOnce() -> Box<str>) {
        let key = key.into();
        let hash = self.names_hasher.hash_one(key.names());
        self.record_hashed(key, hash, at_secs, errors, labels);
    }

    /// Counts one report of `key` with `errors` errors; the key is copied
    /// only when the stream is new, and `labels` gives it its label set.
    /// `key_hash` is the [`shard_hash`](crate::state::key::StreamKey::shard_hash)
    /// ingest computed of the stream's key (the names as sent, cut to the
    /// label length): the same for the same names. Unless a name may have
    /// been cut for show, the names shown are the names sent, so that hash
    /// finds them; else one of the names shown is taken.
    pub fn record_key<'a>(
        &self,
        key: Shown<'a>,
        key_hash: u64,
        at_secs: u64,
        errors: u64,
        labels: impl FnOnce() -> Box<str>,
    ) {
        let hash = if key.may_be_cut() { self.names_hasher.hash_one(key.names()) } else { key_hash };
        self.record_hashed(key, hash, at_secs, errors, labels);
    }

    /// Counts a report of `key`, found by `hash`: the same for the same
    /// names. Mixed with the process's key, so that a sender cannot aim
    /// streams at one shard or one bucket.
    fn record_hashed(&self, key: Shown<'_>, hash: u64, at_secs: u64, errors: u64, labels: impl FnOnce() -> Box<str>) {
        let hash = table_hash(hash);
        // The table's buckets take the low bits, its tags the top seven.
        let shard_of = hash >> 32;
        let names = key.names();
        let same = |e: &Entry| e.hash == hash && e.names.is(&names);
        {
            let mut shard = self.shards.at(shard_of);
            if let Some(entry) = shard.find_mut(hash, same) {
                entry.tracked.add(at_secs, errors);
                return;
            }
            if self.reserve() {
                return insert(&mut shard, key, hash, Tracked::new(at_secs, labels()), at_secs, errors);
            }
        }
        // Full: make room from streams gone quiet, at most once a second
        // (a flood of new streams would otherwise walk the map each time).
        let mut full = lock(&self.full);
        if full.last_prune_secs != at_secs {
            self.prune(&mut full, at_secs);
        }
        let mut shard = self.shards.at(shard_of);
        if let Some(entry) = shard.find_mut(hash, same) {
            // Counted in by another worker meanwhile.
            entry.tracked.add(at_secs, errors);
        } else if self.reserve() {
            insert(&mut shard, key, hash, Tracked::new(at_secs, labels()), at_secs, errors);
        } else {
            full.dropped.add(at_secs, errors);
        }
    }

    /// Room for one more stream, taken if there is.
    fn reserve(&self) -> bool {
        self.tracked.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < self.cap).then_some(n + 1)).is_ok()
    }

    /// Forgets streams with no report in the window, shard by shard.
    fn prune(&self, full: &mut Full, now_secs: u64) {
        for mut shard in self.shards.each() {
            self.prune_shard(&mut shard, now_secs);
        }
        full.last_prune_secs = now_secs;
    }

    fn prune_shard(&self, shard: &mut HashTable<Entry>, now_secs: u64) {
        let since = window_start(now_secs);
        let before = shard.len();
        shard.retain(|e| e.tracked.last_secs >= since);
        self.tracked.fetch_sub(before - shard.len(), Ordering::Relaxed);
    }

    pub fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    /// The window ending at `now_secs`; streams that left it are forgotten.
    pub fn view(&self, now_secs: u64) -> WindowView {
        let mut full = lock(&self.full);
        let recent_since = now_secs.saturating_sub(RECENT_SECS);
        let mut recent_errors: HashMap<(String, String), u64> = HashMap::new();
        let mut streams = Vec::with_capacity(self.tracked());
        for mut shard in self.shards.each() {
            self.prune_shard(&mut shard, now_secs);
            for Entry { names, tracked, .. } in shard.iter() {
                streams.push(tracked.shown(names.key(), now_secs, recent_since, &mut recent_errors));
            }
        }
        full.last_prune_secs = now_secs;
        WindowView { streams, recent_errors, dropped: full.dropped.totals(now_secs) }
    }
}

/// The first second of the window ending at `now_secs`: streams with no
/// report since are forgotten.
fn window_start(now_secs: u64) -> u64 {
    (now_secs / 60).saturating_sub(WINDOW_MINUTES - 1) * 60
}

/// Adds a stream not in `shard`, with its first report.
fn insert(shard: &mut HashTable<Entry>, key: Shown<'_>, hash: u64, mut tracked: Tracked, at_secs: u64, errors: u64) {
    tracked.add(at_secs, errors);
    shard.insert_unique(hash, Entry { hash, names: Joined::new(&key.names()), tracked }, |e| e.hash);
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
    fn workers_counting_at_once_lose_no_report_and_keep_the_cap() {
        let w = StreamWindows::with_cap(30);
        std::thread::scope(|scope| {
            for worker in 0..4 {
                let w = &w;
                scope.spawn(move || {
                    for i in 0..2000u64 {
                        w.record(key(&format!("s{}", (i * 7 + worker) % 50)), 60, 1, Box::default);
                    }
                });
            }
        });
        let view = w.view(60);
        let counted: u64 = view.streams.iter().map(|s| s.totals.reports).sum();
        assert_eq!((view.streams.len(), w.tracked()), (30, 30));
        assert_eq!((counted + view.dropped.reports, view.dropped.errors), (8000, view.dropped.reports));
    }

    /// Names that show alike with keys apart (cut for show past 64
    /// bytes; a 65-byte name cut at a character to 61 bytes and a mark,
    /// and the 64 bytes it shows as, sent so), and keys alike with names
    /// apart (at a label length of 4).
    fn names() -> Vec<String> {
        let x = "x".repeat(61);
        vec![
            "a".into(),
            "b".into(),
            "abcd1".into(),
            "abcd2".into(),
            "y".repeat(64),
            format!("{x}yyy1"),
            format!("{x}yyy2"),
            format!("{x}\u{1f600}"),
            format!("{x}\u{2026}"),
        ]
    }

    /// What a page shows of a window, in an order of its own.
    type Page = (Vec<(StreamKey, Box<str>, Totals, u64)>, Vec<((String, String), u64)>, Totals);

    fn page(view: WindowView) -> Page {
        let mut streams: Vec<_> =
            view.streams.into_iter().map(|s| (s.key, s.key_labels, s.totals, s.last_secs)).collect();
        streams.sort_by(|a, b| {
            a.0.domain.cmp(&b.0.domain).then_with(|| (&a.0.app, &a.0.stream).cmp(&(&b.0.app, &b.0.stream)))
        });
        let mut recent: Vec<_> = view.recent_errors.into_iter().collect();
        recent.sort();
        (streams, recent, view.dropped)
    }

    proptest::proptest! {
        /// The sharded windows, fed as ingest feeds them (names cut for
        /// show, the key's hash), show what the one map behind one lock
        /// showed, whatever the reports, the cap and the label length.
        #[test]
        fn sharded_windows_show_what_the_plain_one_shows(
            cap in 1usize..10,
            max_label in proptest::sample::select(vec![4usize, 64, 128]),
            steps in proptest::collection::vec((0usize..9, 0usize..3, 0usize..9, 0u64..200, 0u64..3, (0u64..3, 0u64..4)), 1..150),
        ) {
            use crate::state::key::{StreamId, StreamKey as Key};
            use crate::status_page::sections::cut;
            let names = names();
            let sharded = StreamWindows::with_cap(cap);
            let mut plain = plain::Plain::new(cap);
            let mut now = 0;
            for (domain, app, stream, later, errors, (back, action)) in steps {
                now += later;
                let sent = StreamId { domain: &names[domain], app: &names[app], stream: &names[stream] };
                let key = Key::new(sent, max_label);
                let show = || Shown { domain: cut(sent.domain), app: cut(sent.app), stream: cut(sent.stream) };
                // Reports come in about in order.
                let at = now.saturating_sub(back);
                if action == 0 {
                    proptest::prop_assert_eq!(page(sharded.view(now)), page(plain.view(now)));
                } else {
                    sharded.record_key(show(), key.shard_hash(), at, errors, || key.as_str().into());
                    plain.record(show(), at, errors, || key.as_str().into());
                }
                proptest::prop_assert_eq!(sharded.tracked(), plain.tracked());
            }
            proptest::prop_assert_eq!(page(sharded.view(now)), page(plain.view(now)));
        }
    }

    #[test]
    fn a_known_streams_report_reads_one_line_of_its_entry_and_its_minute() {
        assert_eq!(align_of::<Entry>(), 64);
        assert!(std::mem::offset_of!(Entry, tracked.last_error_secs) + size_of::<Option<u64>>() <= 64);
        assert_eq!((std::mem::offset_of!(Entry, tracked.minutes) % 32, size_of::<Minute>()), (0, 32));
    }

    proptest::proptest! {
        /// Names joined in one text are the same names as three apart:
        /// where one ends counts, not only what they spell together.
        #[test]
        fn joined_names_are_the_names(
            stored in proptest::array::uniform3("[ab\u{e9}]{0,3}"),
            sent in proptest::array::uniform3("[ab\u{e9}]{0,3}"),
        ) {
            fn names(n: &[String; 3]) -> Names<'_> {
                Names(&n[0], &n[1], &n[2])
            }
            let joined = Joined::new(&names(&stored));
            proptest::prop_assert_eq!(joined.is(&names(&sent)), stored == sent);
            let key = joined.key();
            proptest::prop_assert_eq!([key.domain, key.app, key.stream], stored);
        }
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
