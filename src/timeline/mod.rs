//! Each stream's story (issue 26): its recent push sessions (sequence,
//! start, end, errcode and cause, access node, region, duration) and, per
//! session, its bad intervals (consecutive push error reports merged, with
//! their error types and counts and the worst frame gap), for
//! `GET /api/v1/streams/{domain}/{app}/{stream}` and the stream page.
//!
//! An observer of ingest's events, keyed like every store by stream (the
//! names as sent, capped): the push sessions themselves are `state`'s; this
//! keeps what an engineer reads afterwards, and nothing reads it on the
//! ingest path. Bounded per stream ([`history::Bounds`]: sessions,
//! intervals, age) and in all (`--timeline-max-bytes`, an estimate kept
//! per update): past the cap the oldest history of any stream goes first,
//! in one pass over all streams that frees a tenth of the cap. The pass
//! runs on the expiry timer, off the callback workers; only an eighth past
//! the cap does ingest run it itself. What a bound drops is counted in
//! `css_push_timeline_dropped_total`. Kept across restarts in the state
//! file's sixth section ([`record`]).
pub mod counts;
pub mod history;
pub(crate) mod page;
pub mod record;
pub mod view;

use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use crate::ingest::event::{Observer, ReportAccepted, StreamKey, Transition};
use crate::state::limits::TimelineLimits;
use crate::state::sharded::{Sharded, STREAM_SHARDS};
use crate::state::snapshot::key_parts;
use crate::state::streams::StreamId;
use hashbrown::hash_table::Entry as Slot;
use hashbrown::HashTable;
use history::{Bad, Bounds, Dropped, Facts, History, Trimmed};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use view::StreamHistory;

/// Report interval assumed when a report does not say, ms (as the SLO
/// accounting assumes).
const DEFAULT_INTERVAL_MS: u64 = 5000;
/// A report's interval is believed within these bounds, ms.
const INTERVAL_MS: std::ops::RangeInclusive<u64> = 1000..=60_000;
/// Time slots of the memory cap's oldest-first pass over the age bound.
const EVICTION_SLOTS: u64 = 65_536;

/// Which bound dropped history, as `css_push_timeline_dropped_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Sessions = 0,
    Intervals = 1,
    Memory = 2,
}

const BOUNDS: [(Bound, &str); 3] =
    [(Bound::Sessions, "sessions"), (Bound::Intervals, "intervals"), (Bound::Memory, "memory")];

/// A stream's history under its key, in a table probed by the hash of the
/// key that picked its shard (computed once per callback, not again here).
struct Entry {
    key: Box<str>,
    hash: u64,
    history: History,
}

/// The bits of a key's hash a shard's table probes by: not the low ones,
/// which picked the shard and so are alike within it.
fn probe(hash: u64) -> u64 {
    hash.rotate_left(32)
}

pub struct Timelines {
    shards: Sharded<HashTable<Entry>>,
    bounds: Bounds,
    max_bytes: usize,
    /// The estimate of what all histories hold.
    bytes: AtomicUsize,
    streams: AtomicUsize,
    /// Per [`Bound`]: (sessions, intervals) dropped.
    dropped: [[AtomicU64; 2]; 3],
    /// One oldest-first pass at a time; others go on without waiting.
    evicting: Mutex<()>,
}

/// What the state file's histories gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    pub streams: usize,
    /// Sessions and streams that could not have been written by an exporter.
    pub invalid: usize,
    /// Sessions and intervals past today's bounds.
    pub over_bounds: u64,
}

impl Timelines {
    /// `live_ttl_secs`: how long a session with no end is believed live
    /// after its last callback (`--live-stream-ttl`).
    pub fn new(limits: &TimelineLimits, live_ttl_secs: u64) -> Self {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            shards: Sharded::new(STREAM_SHARDS),
            bounds: Bounds {
                max_sessions: limits.max_sessions,
                max_intervals: limits.max_intervals,
                max_age_ms: ms(limits.max_age),
                live_ttl_ms: live_ttl_secs.saturating_mul(1000),
            },
            max_bytes: usize::try_from(limits.max_bytes).unwrap_or(usize::MAX),
            bytes: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            dropped: Default::default(),
            evicting: Mutex::new(()),
        }
    }

    /// Streams with a history.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    /// The estimate of the memory all histories hold, and its cap.
    pub fn bytes(&self) -> (usize, usize) {
        (self.bytes.load(Ordering::Relaxed), self.max_bytes)
    }

    /// The stream `id`'s history (its names as a callback's are capped,
    /// in `key`), as of `now_ms`; `None` if none is kept.
    pub fn view(&self, id: StreamId<'_>, key: &StreamKey, now_ms: u64) -> Option<StreamHistory> {
        let shard = self.shards.at(key.shard_hash());
        let e = shard.find(probe(key.shard_hash()), |e| &*e.key == key.as_str())?;
        Some(view::build(id, &e.history, &self.bounds, now_ms))
    }

    /// Applies `f` to the history of `key` (made if there is none), then
    /// the bounds at `now_ms`.
    fn update(&self, key: &StreamKey, now_ms: u64, f: impl FnOnce(&mut History)) -> Trimmed {
        if self.max_bytes == 0 {
            return Trimmed::default();
        }
        let mut shard = self.shards.at(key.shard_hash());
        let slot = shard.entry(probe(key.shard_hash()), |e| &*e.key == key.as_str(), |e| probe(e.hash));
        let (mut entry, before) = match slot {
            Slot::Occupied(e) => {
                let before = e.get().history.bytes();
                (e, before)
            }
            Slot::Vacant(v) => {
                self.streams.fetch_add(1, Ordering::Relaxed);
                let history = History::new(key.as_str().len());
                (v.insert(Entry { key: key.as_str().into(), hash: key.shard_hash(), history }), 0)
            }
        };
        let h = &mut entry.get_mut().history;
        f(h);
        let trimmed = h.trim(&self.bounds, now_ms);
        let after = if h.is_empty() {
            entry.remove();
            self.streams.fetch_sub(1, Ordering::Relaxed);
            0
        } else {
            h.bytes()
        };
        drop(shard);
        if after >= before {
            self.bytes.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.bytes.fetch_sub(before - after, Ordering::Relaxed);
        }
        if self.bytes.load(Ordering::Relaxed) > self.max_bytes + self.max_bytes / 8 {
            self.evict(now_ms);
        }
        trimmed
    }

    fn count(&self, bound: Bound, d: Dropped) {
        let [sessions, intervals] = &self.dropped[bound as usize];
        sessions.fetch_add(d.sessions, Ordering::Relaxed);
        intervals.fetch_add(d.intervals, Ordering::Relaxed);
    }

    fn count_trimmed(&self, t: Trimmed) {
        if !t.sessions_bound.is_empty() {
            self.count(Bound::Sessions, t.sessions_bound);
        }
        if !t.intervals_bound.is_empty() {
            self.count(Bound::Intervals, t.intervals_bound);
        }
    }

    /// The memory cap: drops the oldest history of all streams (by when it
    /// was last seen) until a tenth of the cap is free. The time slots of
    /// one pass are the age bound cut in [`EVICTION_SLOTS`]; what is older
    /// (sessions with no end) falls in the first.
    fn evict(&self, now_ms: u64) {
        let Ok(_one) = self.evicting.try_lock() else { return };
        let used = self.bytes.load(Ordering::Relaxed);
        if used <= self.max_bytes {
            return;
        }
        let need = used - (self.max_bytes - self.max_bytes / 10);
        let oldest = now_ms.saturating_sub(self.bounds.max_age_ms);
        let width = (self.bounds.max_age_ms / EVICTION_SLOTS).max(1);
        let slot = |t: u64| usize::try_from((t.saturating_sub(oldest) / width).min(EVICTION_SLOTS)).unwrap_or(0);
        let mut slots = vec![0usize; slot(u64::MAX) + 1];
        for shard in self.shards.each() {
            for e in shard.iter() {
                e.history.parts(|t, bytes| slots[slot(t)] += bytes);
            }
        }
        let mut sum = 0;
        let last = slots.iter().position(|&b| {
            sum += b;
            sum >= need
        });
        // Everything last seen before the end of that slot goes.
        let cutoff = last.map_or(u64::MAX, |i| oldest.saturating_add((i as u64 + 1).saturating_mul(width)));
        let (mut dropped, mut freed, mut removed) = (Dropped::default(), 0, 0);
        for mut shard in self.shards.each() {
            shard.retain(|e| {
                let h = &mut e.history;
                let before = h.bytes();
                let d = h.evict_before(cutoff);
                dropped.sessions += d.sessions;
                dropped.intervals += d.intervals;
                let keep = !h.is_empty();
                freed += before - if keep { h.bytes() } else { 0 };
                removed += usize::from(!keep);
                keep
            });
        }
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
        self.streams.fetch_sub(removed, Ordering::Relaxed);
        self.count(Bound::Memory, dropped);
    }

    /// Drops what has aged out by `now_ms`, then the oldest past the
    /// memory cap. Runs on the expiry timer.
    pub fn expire(&self, now_ms: u64) {
        let (mut freed, mut removed, mut trimmed) = (0, 0, Vec::new());
        for mut shard in self.shards.each() {
            shard.retain(|e| {
                let h = &mut e.history;
                let before = h.bytes();
                trimmed.push(h.trim(&self.bounds, now_ms));
                let keep = !h.is_empty();
                freed += before - if keep { h.bytes() } else { 0 };
                removed += usize::from(!keep);
                keep
            });
        }
        trimmed.into_iter().for_each(|t| self.count_trimmed(t));
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
        self.streams.fetch_sub(removed, Ordering::Relaxed);
        if self.bytes.load(Ordering::Relaxed) > self.max_bytes {
            self.evict(now_ms);
        }
    }

    /// Every history as the state file's sixth section ([`record`]), one
    /// shard locked at a time.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for shard in self.shards.each() {
            for e in shard.iter() {
                record::push_history(out, &e.key, &e.history);
            }
        }
    }

    /// Puts back what a state file held ([`Self::encode`]), each record
    /// checked as the rest of the file is: keys built again under today's
    /// `--max-label-length`, times clamped to `now_ms`, today's bounds
    /// applied. A section that does not parse is dropped as a whole.
    pub fn restore(&self, bytes: &[u8], now_ms: u64, max_label_bytes: usize) -> Restored {
        let mut r = Restored::default();
        let histories = match record::decode(bytes) {
            Ok(h) => h,
            Err(e) => {
                log::warn!("the state file's stream histories are unreadable ({e}): starting without them");
                r.invalid += 1;
                return r;
            }
        };
        for (key, sessions) in histories {
            let Some(parts) = key_parts(&key) else {
                r.invalid += 1;
                continue;
            };
            let key = StreamKey::new(parts.id(), max_label_bytes);
            let known = |code: u8| u64::from(code) <= crate::catalog::MAX_LABELLED_CODE;
            let count = sessions.len();
            let sessions: Vec<_> = sessions.into_iter().filter_map(|s| s.checked(now_ms, known)).collect();
            r.invalid += count - sessions.len();
            if sessions.is_empty() {
                continue;
            }
            let t = self.update(&key, now_ms, |h| sessions.into_iter().for_each(|s| h.restore(s)));
            r.over_bounds += t.sessions_bound.sessions
                + t.sessions_bound.intervals
                + t.intervals_bound.sessions
                + t.intervals_bound.intervals;
        }
        r.streams = self.streams();
        r
    }
}

impl Observer for Timelines {
    fn transition(&self, t: &Transition<'_>) {
        let trimmed = if t.start {
            // Past --max-live-streams the lifecycle store says nothing: the start is believed.
            let (opened, closed) = t.effect.map_or((Some(t.at_ms), None), |e| (e.opened, e.closed.map(|c| c.1)));
            // A start already applied (or retried after its end) tells nothing new.
            let Some(start_ms) = opened else { return };
            self.update(t.key, t.at_ms, |h| h.start(t.session, t.sequence, start_ms, (t.node, t.region), closed))
        } else {
            let at_ms = t.effect.and_then(|e| e.closed).map_or(t.at_ms, |c| c.1);
            let errcode = t.errcode.unwrap_or(0);
            self.update(t.key, t.at_ms, |h| h.end(t.session, t.sequence, at_ms, errcode, t.duration_ms))
        };
        self.count_trimmed(trimmed);
    }

    fn report(&self, r: &ReportAccepted<'_>) {
        if r.errors.iter().all(|&(_, count)| count == 0) {
            return;
        }
        let to_ms = u64::try_from(r.data_time_ms).unwrap_or(0);
        if to_ms < r.at_ms.saturating_sub(self.bounds.max_age_ms) {
            return;
        }
        let len = r.report_interval_ms.map_or(DEFAULT_INTERVAL_MS, |ms| {
            u64::try_from(ms).unwrap_or(0).clamp(*INTERVAL_MS.start(), *INTERVAL_MS.end())
        });
        // Within its session, as the lifecycle store knows it.
        let start_ms = r.matched.map_or(0, |m| m.start_ms);
        let from_ms = to_ms.saturating_sub(len).max(start_ms.min(to_ms));
        let worst_gap = r.frame_max.into_iter().flatten().fold(0.0, f64::max);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a gap in ms, capped")]
        let worst_gap_ms = (worst_gap * 1000.0).ceil().min(f64::from(u32::MAX)) as u32;
        let bad = Bad { from_ms, to_ms, errors: r.errors, worst_gap_ms };
        let facts = r.matched.map_or_else(Facts::default, |m| Facts {
            start_ms: Some(m.start_ms),
            node: m.node,
            region: m.region,
        });
        let hash = r.session.unwrap_or_else(|| xxhash_rust::xxh3::xxh3_64(r.sequence.as_bytes()));
        let trimmed = self.update(r.key, r.at_ms, |h| h.report(hash, r.sequence, &facts, &bad));
        self.count_trimmed(trimmed);
    }
}

impl Collector for Timelines {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.single(&f::TIMELINE_STREAMS, Value::Int(self.streams() as u64));
        let (used, limit) = self.bytes();
        enc.single(&f::TIMELINE_BYTES, Value::Int(used as u64));
        enc.single(&f::TIMELINE_BYTES_LIMIT, Value::Int(limit as u64));
        enc.family(&f::TIMELINE_DROPPED);
        for (bound, label) in BOUNDS {
            for (item, count) in ["session", "interval"].into_iter().zip(&self.dropped[bound as usize]) {
                let labels = [("bound", label), ("item", item)];
                enc.sample(&f::TIMELINE_DROPPED, "", &labels, Value::Int(count.load(Ordering::Relaxed)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::Effect;

    const T: u64 = 1_764_000_000_000;

    fn limits(max_bytes: u64) -> TimelineLimits {
        TimelineLimits {
            max_sessions: 64,
            max_intervals: 512,
            max_age: std::time::Duration::from_secs(86_400),
            max_bytes,
        }
    }

    fn key(stream: &str) -> StreamKey {
        StreamKey::new(StreamId { domain: "d", app: "a", stream }, 128)
    }

    fn report(t: &Timelines, stream: &str, at_ms: u64) {
        let key = key(stream);
        let id = StreamId { domain: "d", app: "a", stream };
        let at_secs = at_ms / 1000;
        let errors = [(6, 1)];
        let mut r = ReportAccepted::for_test(id, &key, &errors, at_secs);
        r.data_time_ms = at_ms.cast_signed();
        r.sequence = "q";
        t.report(&r);
    }

    fn start(t: &Timelines, stream: &str, session: u64, at_ms: u64, effect: Option<Effect>) {
        let key = key(stream);
        let id = StreamId { domain: "d", app: "a", stream };
        t.transition(&Transition {
            stream: id,
            sent: id,
            key: &key,
            folded: false,
            session,
            sequence: "seq",
            start: true,
            event_time: 0,
            node: None,
            region: crate::catalog::Region::Unknown,
            errcode: None,
            cause: None,
            duration_ms: None,
            effect,
            at_secs: at_ms / 1000,
            at_ms,
        });
    }

    #[test]
    fn the_memory_cap_drops_the_oldest_history_of_any_stream_first() {
        let t = Timelines::new(&limits(20_000), 604_800);
        // Ten streams, one new report each minute round-robin, with gaps
        // between reports so each is an interval of its own.
        for i in 0..400u64 {
            report(&t, &format!("s{}", i % 10), T + i * 60_000);
            let (used, cap) = t.bytes();
            assert!(used <= cap + cap / 8, "{used} more than an eighth past {cap} after report {i}");
            if i % 50 == 0 {
                t.expire(T + i * 60_000);
                assert!(t.bytes().0 <= cap, "the timer keeps the cap");
            }
        }
        let dropped = t.dropped[Bound::Memory as usize][1].load(Ordering::Relaxed);
        assert!(dropped > 0, "nothing evicted");
        // What is left is the newest: every stream's latest report is there.
        let now = T + 399 * 60_000;
        for s in 0..10u64 {
            let id = StreamId { domain: "d", app: "a", stream: &format!("s{s}") };
            let v = t.view(id, &key(id.stream), now).expect("the newest reports stay");
            let last = v.sessions.last().unwrap().bad_intervals.last().unwrap().to_ms;
            assert!(last >= now - 10 * 60_000, "{s}: {last}");
        }
        let oldest_kept: u64 = (0..10u64)
            .filter_map(|s| t.view(StreamId { domain: "d", app: "a", stream: "" }, &key(&format!("s{s}")), now))
            .map(|v| v.sessions[0].bad_intervals[0].to_ms)
            .min()
            .unwrap();
        assert!(oldest_kept > T + 60 * 60_000, "old history went first: {oldest_kept}");
    }

    #[test]
    fn starts_follow_the_lifecycle_stores_effect_and_zero_bytes_keeps_nothing() {
        let t = Timelines::new(&limits(1 << 20), 604_800);
        start(&t, "s", 1, T, Some(Effect { opened: Some(T - 500), ..Effect::default() }));
        // A retried start changes nothing; past --max-live-streams the start is believed.
        start(&t, "s", 1, T + 1000, Some(Effect::default()));
        start(&t, "other", 2, T + 2000, None);
        let id = StreamId { domain: "d", app: "a", stream: "s" };
        let v = t.view(id, &key("s"), T + 3000).unwrap();
        assert_eq!((v.sessions.len(), v.sessions[0].start_ms), (1, Some(T - 500)));
        assert_eq!(t.streams(), 2);
        t.expire(T + 9 * 86_400_000);
        assert_eq!((t.streams(), t.bytes().0), (0, 0), "a week later the live sessions are believed over");
        let off = Timelines::new(&limits(0), 604_800);
        start(&off, "s", 1, T, None);
        report(&off, "s", T);
        assert_eq!((off.streams(), off.bytes().0), (0, 0));
    }
}
