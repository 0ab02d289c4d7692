//! Which streams are pushing: every stream's push start/end state, kept apart
//! from the per-stream series so `css_push_streams_live` counts every live
//! stream whatever `--max-streams` is and however many error-only streams
//! there are. It has its own bound, `--max-live-streams`.
//!
//! Sharded like the stream registry; a shard's lock is held for one update,
//! or while a scrape or a snapshot reads that shard.
use super::journal::{Sink, Transition};
use super::sharded::{Shard, Sharded};
use super::streams::{app_labels_len, stream_key, StreamId};
use super::OVERFLOW;
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use crate::text::push_labels;
use hashbrown::hash_map::EntryRef;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub struct Lifecycles {
    /// Keyed by the stream's label set, as in the stream registry.
    shards: Sharded<Shard<Tracked>>,
    max: usize,
    max_label_bytes: usize,
    tracked: AtomicUsize,
    /// Starts and ends of new streams refused because `max` was reached.
    overflowed: AtomicU64,
    /// `domain="__overflow__",app="__overflow__"`, where folded pairs count.
    overflow_labels: Box<str>,
    /// With `--state-file`: where each start and end goes, numbered.
    journal: Option<Sink>,
}

pub(super) struct Tracked {
    pub(super) lifecycle: Lifecycle,
    /// Length of the `domain="..",app=".."` part of the key.
    app_labels_len: usize,
}

/// One stream's push sessions: what makes starts and ends idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub live: bool,
    /// Hash of the `sequence` of the session that made the stream live.
    pub session: u64,
    /// Hash of the last session that ended, so a start retried after its
    /// own end does not resurrect the stream.
    pub ended_session: Option<u64>,
    /// Clock seconds of the last start or end (for a live stream, when it
    /// started); drives expiry.
    pub last_seen: u64,
    /// Its (domain, app) pair is past `--max-apps`: counted under "__overflow__".
    pub folded: bool,
}

impl Lifecycles {
    pub fn new(max: usize, max_label_bytes: usize, journal: Option<Sink>) -> Self {
        let mut overflow_labels = String::new();
        push_labels(&mut overflow_labels, &[("domain", OVERFLOW), ("app", OVERFLOW)]);
        Self {
            shards: Sharded::default(),
            max,
            max_label_bytes,
            tracked: AtomicUsize::new(0),
            overflowed: AtomicU64::new(0),
            overflow_labels: overflow_labels.into(),
            journal,
        }
    }

    pub(super) fn journal(&self) -> Option<&Sink> {
        self.journal.as_ref()
    }

    pub(super) fn shards(&self) -> &Sharded<Shard<Tracked>> {
        &self.shards
    }

    /// Streams whose lifecycle is remembered.
    /// The `--max-live-streams` bound.
    pub fn max(&self) -> usize {
        self.max
    }

    pub fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    /// A push session (the hash of its `sequence`) started. A start after a
    /// missed end replaces the session: still one live stream. `then` gets
    /// the stream's liveness under the shard's lock, so the per-stream
    /// series follows in the same order; it is not called past the bound.
    pub fn start(&self, id: StreamId, folded: bool, session: u64, now_secs: u64, then: impl FnOnce(bool)) {
        let change = Change { start: true, folded, session, at: now_secs };
        self.update(id, change, self.journal.as_ref(), then);
    }

    /// A push session ended. The end of an older session, arriving after a
    /// newer one started, leaves the stream live.
    pub fn end(&self, id: StreamId, folded: bool, session: u64, now_secs: u64, then: impl FnOnce(bool)) {
        let change = Change { start: false, folded, session, at: now_secs };
        self.update(id, change, self.journal.as_ref(), then);
    }

    /// Applies a journalled transition again at start, to the stream `id`
    /// (its key read back and checked), without journalling it twice.
    pub fn replay(&self, id: StreamId, t: &Transition, folded: bool, then: impl FnOnce(bool)) {
        self.update(id, Change { start: t.start, folded, session: t.session, at: t.at }, None, then);
    }

    fn update(&self, id: StreamId, c: Change, journal: Option<&Sink>, then: impl FnOnce(bool)) {
        let (folded, now_secs) = (c.folded, c.at);
        let key = stream_key(id, self.max_label_bytes);
        let mut shard = self.shards.shard(&key);
        let tracked = match shard.entry_ref(key.as_str()) {
            EntryRef::Occupied(t) => t.into_mut(),
            EntryRef::Vacant(v) => {
                if self.tracked.fetch_add(1, Ordering::Relaxed) >= self.max {
                    self.tracked.fetch_sub(1, Ordering::Relaxed);
                    self.overflowed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let new = Lifecycle { live: false, session: 0, ended_session: None, last_seen: now_secs, folded };
                v.insert_with_key(key.as_str().into(), Tracked::new(&key, new))
            }
        };
        let l = &mut tracked.lifecycle;
        l.last_seen = now_secs;
        l.folded = folded;
        if c.start {
            if l.ended_session != Some(c.session) {
                l.live = true;
                l.session = c.session;
            }
        } else {
            if !l.live || l.session == c.session {
                l.live = false;
            }
            l.ended_session = Some(c.session);
        }
        if let Some(journal) = journal {
            journal.send(c.start, folded, c.session, now_secs, &key);
        }
        then(l.live);
    }

    /// Forgets streams not seen since `now - ttl` (`now - live_ttl` for a
    /// live one); `forgotten` gets the key of each.
    pub fn expire(&self, now_secs: u64, ttl_secs: u64, live_ttl_secs: u64, mut forgotten: impl FnMut(&str)) {
        let cutoff = now_secs.saturating_sub(ttl_secs);
        let live_cutoff = now_secs.saturating_sub(live_ttl_secs);
        let mut removed = 0;
        for mut shard in self.shards.each() {
            shard.retain(|key, t| {
                let l = &t.lifecycle;
                let keep = l.last_seen > if l.live { live_cutoff } else { cutoff };
                if !keep {
                    removed += 1;
                    // Live or ended, the stream's gauge no longer has a
                    // lifecycle behind it: a restored exporter would not show it.
                    forgotten(key);
                }
                keep
            });
        }
        self.tracked.fetch_sub(removed, Ordering::Relaxed);
    }

    /// The lifecycle of the stream keyed `key`.
    pub fn get(&self, key: &str) -> Option<Lifecycle> {
        self.shards.shard(key).get(key).map(|t| t.lifecycle)
    }

    /// Calls `f` with every stream's key and lifecycle, a shard at a time.
    pub fn for_each(&self, mut f: impl FnMut(&str, &Lifecycle)) {
        for shard in self.shards.each() {
            for (key, t) in shard.iter() {
                f(key, &t.lifecycle);
            }
        }
    }

    /// Puts back a stream from a snapshot, its key built again from `id`
    /// under today's `--max-label-length`; false past the bound or if the
    /// key is taken already.
    pub fn restore(&self, id: StreamId, lifecycle: Lifecycle) -> bool {
        let key = stream_key(id, self.max_label_bytes);
        let mut shard = self.shards.shard(&key);
        if shard.contains_key(key.as_str()) || self.tracked.load(Ordering::Relaxed) >= self.max {
            return false;
        }
        self.tracked.fetch_add(1, Ordering::Relaxed);
        let tracked = Tracked::new(&key, lifecycle);
        shard.insert(key.into_boxed_str(), tracked);
        true
    }
}

/// A start or an end, as [`Lifecycles::update`] applies it.
#[derive(Clone, Copy)]
struct Change {
    start: bool,
    folded: bool,
    session: u64,
    at: u64,
}

impl Tracked {
    fn new(key: &str, lifecycle: Lifecycle) -> Self {
        Self { lifecycle, app_labels_len: app_labels_len(key) }
    }
}

impl Lifecycles {
    /// Live streams per `domain="..",app=".."` label set (0 for a pair whose
    /// streams all ended), as `css_push_streams_live` shows them.
    pub fn live_per_app(&self) -> hashbrown::HashMap<String, u64> {
        let mut live_per_app: hashbrown::HashMap<String, u64> = hashbrown::HashMap::new();
        for shard in self.shards.each() {
            for (key, t) in shard.iter() {
                let live = u64::from(t.lifecycle.live);
                let app_labels = if t.lifecycle.folded { &self.overflow_labels } else { &key[..t.app_labels_len] };
                match live_per_app.get_mut(app_labels) {
                    Some(n) => *n += live,
                    None => {
                        live_per_app.insert(app_labels.to_owned(), live);
                    }
                }
            }
        }
        live_per_app
    }
}

impl Collector for Lifecycles {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.family(&f::STREAMS_LIVE);
        for (labels, n) in &self.live_per_app() {
            enc.sample(&f::STREAMS_LIVE, labels, &[], Value::Int(*n));
        }
        enc.single(&f::LIVE_STREAMS_TRACKED, Value::Int(self.tracked() as u64));
        enc.single(&f::LIVE_STREAMS_LIMIT, Value::Int(self.max as u64));
        enc.single(&f::LIVE_STREAM_OVERFLOW, Value::Int(self.overflowed.load(Ordering::Relaxed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(stream: &str) -> StreamId<'_> {
        StreamId { domain: "d", app: "live", stream }
    }

    fn rendered(l: &Lifecycles) -> String {
        let mut s = String::new();
        l.encode(&mut Encoder::new(&mut s));
        s
    }

    #[test]
    fn sessions_count_each_stream_once() {
        let l = Lifecycles::new(10, 64, None);
        let tricky = StreamId { domain: "d", app: "x\",stream=\"", stream: "s" };
        let mut shown = Vec::new();
        l.start(id("a"), false, 1, 0, |live| shown.push(live));
        // A start after a missed end: a new session, still one live stream.
        l.start(id("a"), false, 2, 0, |_| {});
        l.start(id("b"), false, 7, 0, |_| {});
        l.start(tricky, false, 1, 0, |_| {});
        // The old session's end arrives late: the new one goes on.
        l.end(id("a"), false, 1, 0, |live| shown.push(live));
        assert_eq!(shown, [true, true], "the per-stream series follows");
        let out = rendered(&l);
        assert!(out.contains("css_push_streams_live{domain=\"d\",app=\"live\"} 2\n"), "{out}");
        assert!(out.contains("css_push_streams_live{domain=\"d\",app=\"x\\\",stream=\\\"\"} 1\n"), "{out}");
        l.end(id("a"), false, 2, 0, |_| {});
        l.end(id("b"), false, 7, 0, |_| {});
        // A retried start of a session that already ended changes nothing.
        l.start(id("b"), false, 7, 0, |live| assert!(!live));
        assert!(rendered(&l).contains("css_push_streams_live{domain=\"d\",app=\"live\"} 0\n"));
    }

    #[test]
    fn the_bound_is_counted_and_folded_pairs_count_under_overflow() {
        let l = Lifecycles::new(2, 64, None);
        l.start(id("a"), false, 1, 0, |_| {});
        l.start(StreamId { domain: "e", app: "f", stream: "x" }, true, 1, 0, |_| {});
        l.start(id("c"), false, 1, 0, |_| panic!("past the bound nothing is shown"));
        let out = rendered(&l);
        assert!(out.contains("css_push_streams_live{domain=\"__overflow__\",app=\"__overflow__\"} 1\n"), "{out}");
        assert!(out.contains("css_push_live_streams_tracked 2\n"), "{out}");
        assert!(out.contains("css_push_live_streams_limit 2\n"), "{out}");
        assert!(out.contains("css_push_live_stream_overflow_total 1\n"), "{out}");
    }

    #[test]
    fn live_streams_expire_on_their_own_ttl() {
        let l = Lifecycles::new(10, 64, None);
        l.start(id("a"), false, 1, 1000, |_| {});
        l.end(id("b"), false, 1, 1000, |_| {});
        let mut removed = Vec::new();
        l.expire(1100, 60, 600, |k| removed.push(k.to_owned()));
        assert_eq!(l.tracked(), 1, "an ended stream goes after the error TTL");
        assert_eq!(removed, ["domain=\"d\",app=\"live\",stream=\"b\""]);
        l.expire(1600, 60, 600, |k| removed.push(k.to_owned()));
        assert_eq!(removed[1..], ["domain=\"d\",app=\"live\",stream=\"a\""], "a live one after the live TTL");
        assert_eq!(l.tracked(), 0);
    }
}
