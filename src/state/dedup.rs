//! Remembers recently accepted callbacks so CSS's retries are counted once.
//!
//! Each entry is a fixed 16 bytes in a FIFO plus a slot in a table of
//! 64-bit identity hashes (seeded per process, so identities cannot be
//! aimed at each other from outside; its layout in `dedup/index.rs`). Entries
//! leave after the window, or oldest-first once the capacity is reached; the
//! latter is counted, because it means the effective window is shorter than
//! configured. Large sets are split into shards by identity, each with its
//! share of the capacity, so the HTTP workers do not queue on one lock.
mod index;

use super::sharded::Sharded;
use crate::expose::families as f;
use crate::expose::{Collector, Encoder, Value};
use index::Index;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::MutexGuard;

/// What picks an identity's shard: its high bits (the index buckets by the low ones).
fn shard_hash(id: u64) -> u64 {
    id >> 60
}

pub struct Dedup {
    window_secs: u64,
    /// Capacity of each shard.
    capacity: usize,
    seed: u64,
    shards: Sharded<Inner>,
    /// Identities dropped before their window ended.
    evicted_early: AtomicU64,
}

/// Shards of a large set; below [`SHARD_FROM`] entries, one, so a small
/// capacity is exactly oldest-first.
const SHARDS: usize = 16;
const SHARD_FROM: usize = 4096;

#[derive(Default)]
struct Inner {
    /// The identities of `order`, to find one without reading it.
    seen: Index,
    /// (identity, expires at, Unix seconds), oldest first.
    order: VecDeque<(u64, u64)>,
}

/// What became of a callback's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    First { evicted_early: bool },
    Again,
}

/// What makes two callbacks the same event: a retry repeats all of it.
#[derive(Debug, Clone, Copy)]
pub struct EventKey<'a> {
    pub event_type: i64,
    pub appid: i64,
    pub domain: &'a str,
    pub app: &'a str,
    pub stream: &'a str,
    pub sequence: &'a str,
    /// `data_time` for push errors, `event_time` for push start/end.
    pub time: i64,
}

/// Bytes of an [`EventKey`]'s parts hashed from the stack.
const IDENTITY_ON_STACK: usize = 256;

impl<'a> EventKey<'a> {
    /// Gives `f` what its identity hashes, in order.
    fn each_part(&self, mut f: impl FnMut(&[u8])) {
        f(&self.event_type.to_le_bytes());
        f(&self.appid.to_le_bytes());
        f(&self.time.to_le_bytes());
        for part in [self.domain, self.app, self.stream, self.sequence] {
            // Length-prefixed, so ("ab","c") and ("a","bc") differ.
            f(&(part.len() as u64).to_le_bytes());
            f(part.as_bytes());
        }
    }

    /// `names` are domain, app, stream and sequence; a missing appid is 0.
    pub fn new(event_type: i64, appid: Option<i64>, names: [&'a str; 4], time: i64) -> Self {
        let [domain, app, stream, sequence] = names;
        Self { event_type, appid: appid.unwrap_or(0), domain, app, stream, sequence, time }
    }
}

impl Dedup {
    pub fn new(window_secs: u64, capacity: usize) -> Self {
        Self::with_seed(window_secs, capacity, rand::random())
    }

    /// A memory keying identities with `seed`: that of a snapshot's, so
    /// retries after a restart still match the identities it holds.
    pub fn with_seed(window_secs: u64, capacity: usize, seed: u64) -> Self {
        let shards = if capacity >= SHARD_FROM { SHARDS } else { 1 };
        Self {
            window_secs,
            capacity: capacity.max(1).div_ceil(shards),
            seed,
            shards: Sharded::new(shards),
            evicted_early: AtomicU64::new(0),
        }
    }

    /// The event's identity, a hash keyed with this process's seed (and
    /// kept in the state file: it must not change between versions).
    pub fn identity(&self, key: &EventKey) -> u64 {
        // The parts laid end to end on the stack and hashed at once: the
        // same hash as fed to a streaming hasher, without its setup.
        let mut bytes = [0u8; IDENTITY_ON_STACK];
        let (mut len, mut fits) = (0, true);
        key.each_part(|part| match bytes.get_mut(len..len + part.len()) {
            Some(room) => {
                room.copy_from_slice(part);
                len += part.len();
            }
            None => fits = false,
        });
        if !fits {
            return self.streamed_identity(key);
        }
        xxhash_rust::xxh3::xxh3_64_with_seed(&bytes[..len], self.seed)
    }

    /// [`Self::identity`] of a key too long for the stack.
    fn streamed_identity(&self, key: &EventKey) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::with_seed(self.seed);
        key.each_part(|part| h.update(part));
        h.digest()
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Records `id` as seen at `now` unless it already is.
    pub fn check_and_insert(&self, id: u64, now_secs: u64) -> Seen {
        let mut inner = self.shard(id);
        inner.expire(now_secs);
        self.insert(&mut inner, id, now_secs.saturating_add(self.window_secs))
    }

    /// Whether `id` is remembered at `now`, without recording it.
    pub fn holds(&self, id: u64, now_secs: u64) -> bool {
        let mut inner = self.shard(id);
        inner.expire(now_secs);
        inner.seen.contains(id)
    }

    /// Puts back one identity from a snapshot, remembered at most a window
    /// from `now`; give them oldest first. What [`Self::restore_all`] does
    /// at once, for the tests to hold it to.
    #[cfg(test)]
    fn restore(&self, id: u64, expires_secs: u64, now_secs: u64) {
        let mut inner = self.shard(id);
        self.insert(&mut inner, id, expires_secs.min(now_secs.saturating_add(self.window_secs)));
    }

    /// Puts back a snapshot's (identity, expires at) entries, each
    /// remembered at most a window from `now`, oldest first, each shard
    /// locked once and sized once for its share: a million single inserts
    /// would grow and rehash every table several times.
    pub fn restore_all(&self, mut entries: Vec<(u64, u64)>, now_secs: u64) {
        let latest = now_secs.saturating_add(self.window_secs);
        // As a snapshot holds them (shard by shard, oldest first), already in order.
        entries.sort_by_key(|&(id, expires)| (self.shards.index(shard_hash(id)), expires));
        for run in entries.chunk_by(|a, b| self.shards.index(shard_hash(a.0)) == self.shards.index(shard_hash(b.0))) {
            let mut inner = self.shard(run[0].0);
            let room = run.len().min(self.capacity);
            inner.seen.reserve(room);
            inner.order.reserve(room);
            for &(id, expires) in run {
                self.insert(&mut inner, id, expires.min(latest));
            }
        }
    }

    /// Calls `f` with every identity and its expiry (Unix seconds), a shard at a time.
    pub fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        for shard in self.shards.each() {
            for &(id, expires) in &shard.order {
                f(id, expires);
            }
        }
    }

    fn shard(&self, id: u64) -> MutexGuard<'_, Inner> {
        self.shards.at(shard_hash(id))
    }

    /// Adds `id` unless it is there already, dropping the oldest entry if
    /// the shard is full (first: the set never holds more than its capacity).
    fn insert(&self, inner: &mut Inner, id: u64, expires_secs: u64) -> Seen {
        if inner.seen.contains(id) {
            return Seen::Again;
        }
        let full = inner.order.len() >= self.capacity;
        let oldest = if full { inner.order.pop_front() } else { None };
        if let Some((old, _)) = oldest {
            inner.seen.remove(old);
            self.evicted_early.fetch_add(1, Ordering::Relaxed);
        }
        inner.seen.insert(id);
        inner.order.push_back((id, expires_secs));
        Seen::First { evicted_early: oldest.is_some() }
    }

    /// Drops expired entries; returns how many remain.
    pub fn expire(&self, now_secs: u64) -> usize {
        self.each_shard(|inner| {
            inner.expire(now_secs);
            inner.order.len()
        })
    }

    pub fn len(&self) -> usize {
        self.each_shard(|inner| inner.order.len())
    }

    /// The sum of `f` over the shards.
    fn each_shard(&self, mut f: impl FnMut(&mut Inner) -> usize) -> usize {
        self.shards.each().map(|mut s| f(&mut s)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most entries held, over all shards.
    pub fn capacity(&self) -> usize {
        self.capacity * self.shards.count()
    }
}

impl Inner {
    fn expire(&mut self, now_secs: u64) {
        while let Some(&(id, expires)) = self.order.front() {
            if expires > now_secs {
                break;
            }
            self.order.pop_front();
            self.seen.remove(id);
        }
    }
}

impl Collector for Dedup {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.single(&f::DEDUP_ENTRIES, Value::Int(self.len() as u64));
        enc.single(&f::DEDUP_EVICTED, Value::Int(self.evicted_early.load(Ordering::Relaxed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(domain: &'a str, app: &'a str, time: i64) -> EventKey<'a> {
        EventKey { event_type: 321, appid: 1, domain, app, stream: "s", sequence: "q", time }
    }

    #[test]
    fn repeats_within_the_window_are_seen_again() {
        let d = Dedup::new(900, 100);
        let id = d.identity(&key("d", "a", 1));
        assert_eq!(d.check_and_insert(id, 1000), Seen::First { evicted_early: false });
        assert_eq!(d.check_and_insert(id, 1000 + 899), Seen::Again);
        // The window is over: a new callback with the same identity counts.
        assert_eq!(d.check_and_insert(id, 1000 + 900), Seen::First { evicted_early: false });
    }

    #[test]
    fn capacity_evicts_oldest_first() {
        let d = Dedup::new(900, 2);
        let ids: Vec<u64> = (0..3).map(|i| d.identity(&key("d", "a", i))).collect();
        d.check_and_insert(ids[0], 1);
        d.check_and_insert(ids[1], 1);
        assert_eq!(d.check_and_insert(ids[2], 1), Seen::First { evicted_early: true });
        assert_eq!(d.len(), 2);
        assert_eq!(d.check_and_insert(ids[1], 1), Seen::Again);
        assert!(matches!(d.check_and_insert(ids[0], 1), Seen::First { .. }));
    }

    #[test]
    fn a_large_set_is_sharded_within_its_capacity() {
        let d = Dedup::new(900, 10_000);
        assert_eq!(d.shards.count(), SHARDS);
        let ids: Vec<u64> = (0..20_000).map(|i| d.identity(&key("d", "a", i))).collect();
        let evicted =
            ids.iter().filter(|&&id| d.check_and_insert(id, 1) == Seen::First { evicted_early: true }).count();
        assert!(d.len() <= 10_000 && d.len() > 9_900, "{}", d.len());
        assert_eq!(evicted, 20_000 - d.len());
        assert_eq!(d.check_and_insert(ids[19_999], 1), Seen::Again, "the newest are kept");
        assert_eq!(d.expire(901), 0);
    }

    #[test]
    fn identity_parts_are_delimited() {
        let d = Dedup::new(1, 1);
        assert_ne!(d.identity(&key("ab", "c", 1)), d.identity(&key("a", "bc", 1)));
        assert_eq!(d.identity(&key("ab", "c", 1)), d.identity(&key("ab", "c", 1)));
        assert_ne!(d.identity(&key("ab", "c", 1)), d.identity(&key("ab", "c", 2)));
    }

    proptest::proptest! {
        /// Hashed from the stack or streamed, an identity is the same.
        #[test]
        fn an_identity_hashed_at_once_is_the_streamed_one(
            names in proptest::array::uniform4("[a-z\u{76f4}]{0,4}|[a-z]{100,130}"),
            (event_type, appid, time) in proptest::prelude::any::<(i64, i64, i64)>(),
        ) {
            let [domain, app, stream, sequence] = &names;
            let key = EventKey { event_type, appid, domain, app, stream, sequence, time };
            let d = Dedup::new(1, 1);
            proptest::prop_assert_eq!(d.identity(&key), d.streamed_identity(&key));
        }
    }

    #[test]
    fn restored_entries_keep_their_seed_and_expiry() {
        let d = Dedup::new(900, 10);
        let id = d.identity(&key("d", "a", 1));
        d.check_and_insert(id, 1000);
        let back = Dedup::with_seed(900, 10, d.seed());
        d.for_each(|id, expires| back.restore(id, expires, 1000));
        let retried = back.identity(&key("d", "a", 1));
        assert_eq!(back.check_and_insert(retried, 1899), Seen::Again);
        assert_eq!(back.check_and_insert(retried, 1900), Seen::First { evicted_early: false });
    }

    #[test]
    fn restored_at_once_as_one_by_one() {
        // Past the capacity, out of order, a duplicate, an expiry past the window.
        let mut entries: Vec<(u64, u64)> = (0..40u64).map(|i| ((i % 4) << 60 | i, 1000 + i)).collect();
        entries.push(entries[7]);
        entries.push((5 << 60, 99_999));
        entries.reverse();
        let (all, one) = (Dedup::with_seed(900, 8, 1), Dedup::with_seed(900, 8, 1));
        all.restore_all(entries.clone(), 1000);
        entries.sort_by_key(|&(_, expires)| expires);
        entries.iter().for_each(|&(id, expires)| one.restore(id, expires, 1000));
        let held = |d: &Dedup| {
            let mut v = Vec::new();
            d.for_each(|id, expires| v.push((id, expires)));
            v.sort_unstable();
            v
        };
        assert_eq!(held(&all), held(&one));
        assert_eq!(all.len(), 8);
        assert!(held(&all).contains(&(5 << 60, 1900)), "{:?}", held(&all));
        assert_eq!(all.evicted_early.load(Ordering::Relaxed), one.evicted_early.load(Ordering::Relaxed));
    }

    /// A shard as it was before its index: (identity, expires at) oldest
    /// first, and a hash set of the identities.
    type Fifo = (VecDeque<(u64, u64)>, std::collections::HashSet<u64>);

    /// The memory as it was before its index, oldest out first.
    struct Model {
        window: u64,
        capacity: usize,
        shards: Vec<Fifo>,
        evicted: u64,
    }

    impl Model {
        /// An empty model of `d`: its window, its shards and their capacity.
        fn of(d: &Dedup) -> Self {
            let shards = (0..d.shards.count()).map(|_| Fifo::default()).collect();
            Self { window: d.window_secs, capacity: d.capacity, shards, evicted: 0 }
        }

        /// `id`'s shard, with what expired at `now` gone.
        fn shard(&mut self, id: u64, now: u64) -> &mut Fifo {
            let at = usize::try_from(shard_hash(id) % self.shards.len() as u64).unwrap();
            let (order, seen) = &mut self.shards[at];
            while order.front().is_some_and(|&(_, expires)| expires <= now) {
                seen.remove(&order.pop_front().unwrap().0);
            }
            &mut self.shards[at]
        }

        fn check_and_insert(&mut self, id: u64, now: u64) -> Seen {
            self.shard(id, now);
            self.insert(id, now + self.window)
        }

        /// Adds `id` to its shard as it is, expired entries and all.
        fn insert(&mut self, id: u64, expires: u64) -> Seen {
            let capacity = self.capacity;
            let at = usize::try_from(shard_hash(id) % self.shards.len() as u64).unwrap();
            let (order, seen) = &mut self.shards[at];
            if !seen.insert(id) {
                return Seen::Again;
            }
            let evicted_early = order.len() >= capacity;
            if evicted_early {
                seen.remove(&order.pop_front().unwrap().0);
            }
            order.push_back((id, expires));
            self.evicted += u64::from(evicted_early);
            Seen::First { evicted_early }
        }
    }

    proptest::proptest! {
        /// Over random inserts, lookups and expiries, on a clock that may
        /// step back, the memory behaves as a FIFO and a hash set of the
        /// same capacity, whether one shard or sixteen.
        #[test]
        fn the_memory_is_a_fifo_and_a_set(
            sharded in proptest::prelude::any::<bool>(),
            capacity in 1usize..24,
            ops in proptest::collection::vec((0u8..4, 0u64..48, 0u64..4), 0..400),
        ) {
            // Sixteen shards from 4 096 on: the same share of each shard per id.
            let capacity = if sharded { SHARD_FROM + capacity } else { capacity };
            let d = Dedup::with_seed(10, capacity, 1);
            let shards = d.shards.count();
            let mut model = Model::of(&d);
            let mut now = 1000u64;
            // Few ids, so repeats and evictions happen; spread over the shards.
            let id = |n: u64| n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for (op, n, step) in ops {
                now = if step == 3 { now - 2 } else { now + step };
                match op {
                    0 | 1 => proptest::prop_assert_eq!(d.check_and_insert(id(n), now), model.check_and_insert(id(n), now)),
                    2 => proptest::prop_assert_eq!(d.holds(id(n), now), model.shard(id(n), now).1.contains(&id(n))),
                    _ => {
                        let left: usize = (0..shards as u64).map(|s| model.shard(s << 60, now).0.len()).sum();
                        proptest::prop_assert_eq!(d.expire(now), left);
                    }
                }
            }
            let mut held = Vec::new();
            d.for_each(|id, expires| held.push((id, expires)));
            let order: Vec<(u64, u64)> = model.shards.iter().flat_map(|(order, _)| order.iter().copied()).collect();
            proptest::prop_assert_eq!(held, order);
            proptest::prop_assert_eq!(d.evicted_early.load(Ordering::Relaxed), model.evicted);
        }
    }

    fn held(d: &Dedup) -> Vec<(u64, u64)> {
        let mut held = Vec::new();
        d.for_each(|id, expires| held.push((id, expires)));
        held
    }

    proptest::proptest! {
        /// Over random inserts, lookups, clock moves, expiries and restarts
        /// (what the state file holds, restored into a new memory), the
        /// memory behaves as a FIFO and a hash set of the same capacity.
        #[test]
        fn the_memory_across_restores(
            sharded in proptest::prelude::any::<bool>(),
            capacity in 1usize..40,
            ops in proptest::collection::vec((0u8..8, 0u64..96, 0u64..6), 0..500),
        ) {
            let capacity = if sharded { SHARD_FROM + capacity } else { capacity };
            let mut d = Dedup::with_seed(10, capacity, 1);
            let shards = d.shards.count();
            let mut model = Model::of(&d);
            let mut now = 1000u64;
            let id = |n: u64| n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for (op, n, step) in ops {
                now = if step == 5 { now - 3 } else { now + step };
                match op {
                    0..=4 => proptest::prop_assert_eq!(d.check_and_insert(id(n), now), model.check_and_insert(id(n), now)),
                    5 => proptest::prop_assert_eq!(d.holds(id(n), now), model.shard(id(n), now).1.contains(&id(n))),
                    6 => {
                        let left: usize = (0..shards as u64).map(|s| model.shard(s << 60, now).0.len()).sum();
                        proptest::prop_assert_eq!(d.expire(now), left);
                    }
                    _ => {
                        let mut entries = held(&d);
                        let evicted = d.evicted_early.load(Ordering::Relaxed);
                        d = Dedup::with_seed(10, capacity, 1);
                        d.evicted_early.store(evicted, Ordering::Relaxed);
                        d.restore_all(entries.clone(), now);
                        model.shards.iter_mut().for_each(|(order, seen)| {
                            order.clear();
                            seen.clear();
                        });
                        // Put back oldest first by expiry within each shard, as a restore does.
                        entries.sort_by_key(|&(id, expires)| (shard_hash(id) % shards as u64, expires));
                        for (id, expires) in entries {
                            model.insert(id, expires.min(now + 10));
                        }
                    }
                }
            }
            let order: Vec<(u64, u64)> = model.shards.iter().flat_map(|(order, _)| order.iter().copied()).collect();
            proptest::prop_assert_eq!(held(&d), order);
            proptest::prop_assert_eq!(d.evicted_early.load(Ordering::Relaxed), model.evicted);
        }
    }

    #[test]
    fn expire_empties() {
        let d = Dedup::new(10, 10);
        d.check_and_insert(7, 0);
        assert_eq!(d.expire(9), 1);
        assert_eq!(d.expire(10), 0);
        assert!(d.is_empty());
    }
}
