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
//! per update): past the cap the oldest history of any stream goes first.
//! Each shard queues its streams by when their oldest part was last seen
//! ([`History::oldest_ms`]) and shows its queue's front in an atomic, so
//! neither the age bound nor the cap walks every stream: the expiry timer
//! takes what is due from the queues' fronts and, past the cap, frees a
//! tenth of it, oldest first across all shards; a callback that finds the
//! cap passed frees what it added the same way, a few streams' oldest parts
//! at most, so a flood of new streams costs each callback O(1) (the
//! 64 fronts read, one more lock). What a bound drops is counted in
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
use crate::state::sharded::{table_hash, Sharded, STREAM_SHARDS};
use crate::state::snapshot::key_parts;
use crate::state::streams::StreamId;
use hashbrown::hash_table::Entry as Slot;
use hashbrown::HashTable;
use history::{Bad, Bounds, Dropped, Facts, History, Trimmed};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use view::StreamHistory;

/// Report interval assumed when a report does not say, ms (as the SLO
/// accounting assumes).
const DEFAULT_INTERVAL_MS: u64 = 5000;
/// A report's interval is believed within these bounds, ms.
const INTERVAL_MS: std::ops::RangeInclusive<u64> = 1000..=60_000;
/// Streams whose oldest parts a callback past the memory cap drops, at most.
const EVICT_PER_CALLBACK: usize = 16;

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
    /// The time it is queued under: at most its [`History::oldest_ms`].
    queued: u64,
    history: History,
}

/// One shard's histories, and their queue by [`History::oldest_ms`],
/// soonest first. A stream is queued again only when its oldest part got
/// older (seldom: a late report, a restored session); when it got newer,
/// its place is found stale as it comes up and it goes back under its
/// time. A queued time that is not its stream's any more (it was queued
/// again, or is gone) is passed over.
#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
}

/// What a shard's pass over its due streams did.
#[derive(Default)]
struct Freed {
    bytes: usize,
    /// Streams removed, empty.
    streams: usize,
    /// Streams handed to the pass.
    handed: usize,
}

impl Shard {
    /// Queues the stream `hash` under `at`, and makes the queue over
    /// again once most of it is stale (so it holds at most two places per
    /// stream, as its estimate counts).
    fn queue(&mut self, at: u64, hash: u64) {
        self.queue.push(Reverse((at, hash)));
        if self.queue.len() > 2 * self.table.len() + 64 {
            self.queue = self.table.iter().map(|e| Reverse((e.queued, e.hash))).collect();
        }
    }

    /// The soonest queued time, if any.
    fn soonest(&self) -> Option<u64> {
        self.queue.peek().map(|r| r.0 .0)
    }

    /// Hands `f` each stream whose oldest part was last seen before
    /// `cutoff`, oldest first, until `budget` bytes are freed or `streams`
    /// were handed; queues each again under its new time, or removes it
    /// once empty.
    fn take_due(
        &mut self,
        cutoff: u64,
        live_ttl_ms: u64,
        (budget, streams): (usize, usize),
        mut f: impl FnMut(&mut History),
    ) -> Freed {
        let (mut freed, mut again) = (Freed::default(), Vec::new());
        while let Some(&Reverse((at, hash))) = self.queue.peek() {
            if at >= cutoff || freed.bytes >= budget || freed.handed >= streams {
                break;
            }
            self.queue.pop();
            let Ok(mut slot) = self.table.find_entry(table_hash(hash), |e| e.hash == hash && e.queued == at) else {
                continue;
            };
            let e = slot.get_mut();
            let oldest = e.history.oldest_ms(live_ttl_ms);
            if oldest >= cutoff {
                e.queued = oldest;
                again.push(Reverse((oldest, hash)));
                continue;
            }
            freed.handed += 1;
            let before = e.history.bytes();
            f(&mut e.history);
            if e.history.is_empty() {
                slot.remove();
                freed.bytes += before;
                freed.streams += 1;
            } else {
                freed.bytes += before.saturating_sub(e.history.bytes());
                e.queued = e.history.oldest_ms(live_ttl_ms);
                again.push(Reverse((e.queued, hash)));
            }
        }
        // Queued again after the pass, so that none is handed twice.
        again.into_iter().for_each(|Reverse((at, hash))| self.queue(at, hash));
        freed
    }
}

pub struct Timelines {
    shards: Sharded<Shard>,
    /// Per shard, its queue's soonest time (`u64::MAX`: empty), as of its
    /// last change: where the oldest history is, without a lock.
    soonest: Box<[AtomicU64]>,
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
            soonest: (0..STREAM_SHARDS).map(|_| AtomicU64::new(u64::MAX)).collect(),
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
        let e = shard.table.find(table_hash(key.shard_hash()), |e| &*e.key == key.as_str())?;
        Some(view::build(id, &e.history, &self.bounds, now_ms))
    }

    /// Applies `f` to the history of `key` (made if there is none), then
    /// the bounds at `now_ms`. `adds_ms`: when what `f` adds was last seen,
    /// if that is all that can make the history's oldest part older (a
    /// report: what it had only grows newer); else it is found out.
    fn update(&self, key: &StreamKey, now_ms: u64, adds_ms: Option<u64>, f: impl FnOnce(&mut History)) -> Trimmed {
        if self.max_bytes == 0 {
            return Trimmed::default();
        }
        let ttl = self.bounds.live_ttl_ms;
        let mut guard = self.shards.at(key.shard_hash());
        let shard = &mut *guard;
        let hash = key.shard_hash();
        let slot = shard.table.entry(table_hash(hash), |e| &*e.key == key.as_str(), |e| table_hash(e.hash));
        let (mut entry, before) = match slot {
            Slot::Occupied(e) => {
                let before = e.get().history.bytes();
                (e, before)
            }
            Slot::Vacant(v) => {
                self.streams.fetch_add(1, Ordering::Relaxed);
                let history = History::new(key.as_str().len());
                (v.insert(Entry { key: key.as_str().into(), hash, queued: u64::MAX, history }), 0)
            }
        };
        let e = entry.get_mut();
        f(&mut e.history);
        let trimmed = e.history.trim(&self.bounds, now_ms);
        let (after, older) = if e.history.is_empty() {
            entry.remove();
            self.streams.fetch_sub(1, Ordering::Relaxed);
            (0, None)
        } else {
            let oldest = adds_ms.unwrap_or_else(|| e.history.oldest_ms(ttl));
            let older = (oldest < e.queued).then_some(oldest);
            e.queued = e.queued.min(oldest);
            debug_assert!(e.queued <= e.history.oldest_ms(ttl), "queued after its oldest part");
            (e.history.bytes(), older)
        };
        if let Some(at) = older {
            shard.queue(at, hash);
            self.publish(self.shards.index(hash), shard);
        }
        drop(guard);
        let used = if after >= before {
            self.bytes.fetch_add(after - before, Ordering::Relaxed) + (after - before)
        } else {
            self.bytes.fetch_sub(before - after, Ordering::Relaxed) - (before - after)
        };
        if used > self.max_bytes {
            // Past the cap (the timer's pass not come yet): what this
            // callback added goes, oldest first, in bounded work, and a
            // little more (a 1024th of the cap), so that not every callback
            // at the cap pays for a search.
            self.evict(used - self.max_bytes + self.max_bytes / 1024, EVICT_PER_CALLBACK);
        }
        trimmed
    }

    fn freed(&self, freed: &Freed) {
        self.bytes.fetch_sub(freed.bytes, Ordering::Relaxed);
        self.streams.fetch_sub(freed.streams, Ordering::Relaxed);
    }

    /// Shows shard `i`'s soonest time (its lock held).
    fn publish(&self, i: usize, shard: &Shard) {
        self.soonest[i].store(shard.soonest().unwrap_or(u64::MAX), Ordering::Relaxed);
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

    /// The memory cap: frees `need` bytes (from at most `streams`
    /// streams), the oldest history of all streams (by when it was last
    /// seen) first. The shard whose queue has the oldest part drops what
    /// is older than any other shard's oldest, then the next.
    fn evict(&self, need: usize, streams: usize) {
        let ttl = self.bounds.live_ttl_ms;
        let (mut freed, mut handed, mut dropped) = (0, 0, Dropped::default());
        while freed < need && handed < streams {
            let (mut first, mut second) = ((u64::MAX, 0), u64::MAX);
            for (i, at) in self.soonest.iter().enumerate() {
                let at = at.load(Ordering::Relaxed);
                if at < first.0 {
                    (first, second) = ((at, i), first.0);
                } else if at < second {
                    second = at;
                }
            }
            if first.0 == u64::MAX {
                break;
            }
            let cutoff = second.max(first.0.saturating_add(1));
            let mut shard = self.shard(first.1);
            let pass = shard.take_due(cutoff, ttl, (need - freed, streams - handed), |h| {
                let d = h.evict_before(cutoff, ttl);
                dropped.sessions += d.sessions;
                dropped.intervals += d.intervals;
            });
            self.publish(first.1, &shard);
            drop(shard);
            self.freed(&pass);
            (freed, handed) = (freed + pass.bytes, handed + pass.handed);
        }
        self.count(Bound::Memory, dropped);
    }

    /// Shard number `i`, locked.
    fn shard(&self, i: usize) -> std::sync::MutexGuard<'_, Shard> {
        self.shards.at(i as u64)
    }

    /// Drops what has aged out by `now_ms`, then the oldest past the
    /// memory cap. Runs on the expiry timer; takes only what is due.
    pub fn expire(&self, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(self.bounds.max_age_ms);
        let mut trimmed = Vec::new();
        for (i, mut shard) in self.shards.each().enumerate() {
            let freed = shard.take_due(cutoff, self.bounds.live_ttl_ms, (usize::MAX, usize::MAX), |h| {
                trimmed.push(h.trim(&self.bounds, now_ms));
            });
            self.publish(i, &shard);
            drop(shard);
            self.freed(&freed);
        }
        trimmed.into_iter().for_each(|t| self.count_trimmed(t));
        // Past the cap, a tenth of it is freed, so that passes are rare.
        let used = self.bytes.load(Ordering::Relaxed);
        if used > self.max_bytes {
            if let Ok(_one) = self.evicting.try_lock() {
                self.evict(used - (self.max_bytes - self.max_bytes / 10), usize::MAX);
            }
        }
    }

    /// Every history as the state file's sixth section ([`record`]), one
    /// shard locked at a time.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for shard in self.shards.each() {
            for e in shard.table.iter() {
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
        let room = if self.max_bytes == 0 { 0 } else { self.shards.share(histories.len()) };
        for mut shard in self.shards.each() {
            shard.table.reserve(room, |e| table_hash(e.hash));
            shard.queue.reserve(room);
        }
        for (key, sessions) in histories {
            let Some(parts) = key_parts(key) else {
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
            let t = self.update(&key, now_ms, None, |h| sessions.into_iter().for_each(|s| h.restore(s)));
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
        if self.max_bytes == 0 {
            return;
        }
        let trimmed = if t.start {
            // Past --max-live-streams the lifecycle store says nothing: the start is believed.
            let (opened, closed) = t.effect.map_or((Some(t.at_ms), None), |e| (e.opened, e.closed.map(|c| c.1)));
            // A start already applied (or retried after its end) tells nothing new.
            let Some(start_ms) = opened else { return };
            self.update(t.key, t.at_ms, None, |h| h.start(t.session, t.sequence, start_ms, (t.node, t.region), closed))
        } else {
            let at_ms = t.effect.and_then(|e| e.closed).map_or(t.at_ms, |c| c.1);
            let errcode = t.errcode.unwrap_or(0);
            self.update(t.key, t.at_ms, None, |h| h.end(t.session, t.sequence, at_ms, errcode, t.duration_ms))
        };
        self.count_trimmed(trimmed);
    }

    fn report(&self, r: &ReportAccepted<'_>) {
        if self.max_bytes == 0 || r.errors.iter().all(|&(_, count)| count == 0) {
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
        let trimmed = self.update(r.key, r.at_ms, Some(to_ms), |h| h.report(hash, r.sequence, &facts, &bad));
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

    /// Each stream's kept bad intervals' ends, as of `now`.
    fn kept(t: &Timelines, streams: u64, now: u64) -> Vec<Vec<u64>> {
        let any = StreamId { domain: "d", app: "a", stream: "" };
        let view = |s| t.view(any, &key(&format!("s{s}")), now);
        let ends =
            |v: StreamHistory| v.sessions.iter().flat_map(|s| s.bad_intervals.iter().map(|iv| iv.to_ms)).collect();
        (0..streams).map(|s| view(s).map_or_else(Vec::new, ends)).collect()
    }

    #[test]
    fn a_callback_past_the_memory_cap_makes_room_from_the_oldest_of_any_stream() {
        let t = Timelines::new(&limits(20_000), 604_800);
        // Ten streams, one new report each minute round-robin, with gaps
        // between reports so each is an interval of its own.
        for i in 0..400u64 {
            report(&t, &format!("s{}", i % 10), T + i * 60_000);
            let (used, cap) = t.bytes();
            assert!(used <= cap, "{used} > {cap} after report {i}");
        }
        let dropped = t.dropped[Bound::Memory as usize][1].load(Ordering::Relaxed);
        assert!(dropped > 0, "nothing evicted");
        // What is left is the newest: every stream's latest report is there, its oldest gone.
        let now = T + 399 * 60_000;
        for (s, ends) in kept(&t, 10, now).iter().enumerate() {
            assert_eq!(ends.last(), Some(&(T + (390 + s as u64) * 60_000)), "{s}: {ends:?}");
            assert!(ends[0] > T + 60 * 60_000, "{s}: old history went first: {ends:?}");
        }
    }

    #[test]
    fn the_timers_pass_frees_a_tenth_of_the_cap_oldest_first_across_all_shards() {
        let mut t = Timelines::new(&limits(1 << 30), 604_800);
        // 40 streams (in most of the shards), a report each minute round-robin.
        let times: Vec<u64> = (0..400u64).map(|i| T + i * 60_000).collect();
        for (i, &at) in times.iter().enumerate() {
            report(&t, &format!("s{}", i % 40), at);
        }
        let now = *times.last().unwrap();
        t.max_bytes = t.bytes().0 / 2;
        t.expire(now);
        let (used, cap) = t.bytes();
        assert!(used <= cap - cap / 10 && used > cap / 2, "{used} of {cap}");
        // Kept: exactly the newest reports of all streams together.
        let mut kept: Vec<u64> = kept(&t, 40, now).concat();
        kept.sort_unstable();
        assert_eq!(kept, times[times.len() - kept.len()..], "a suffix in time of everything");
        let dropped = t.dropped[Bound::Memory as usize][1].load(Ordering::Relaxed);
        assert_eq!(dropped, (times.len() - kept.len()) as u64);
        // A stream whose reports come ever later in the past is queued again
        // each time; its stale places do not pile up.
        for i in 0..1000 {
            report(&t, "late", now - i * 10_000);
        }
        let shard = t.shards.at(key("late").shard_hash());
        assert!(shard.queue.len() <= 2 * shard.table.len() + 64, "{}", shard.queue.len());
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
