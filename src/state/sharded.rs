//! One container split into shards, each behind its own lock, so that one
//! shard locked (by a scrape, an expiry pass or a snapshot) never stalls
//! ingest into the others. The stream registry and the lifecycle store keep
//! their streams this way, keyed by label set; the de-duplication memory
//! its identities, keyed by hash.
use crate::sync::lock;
use std::sync::{Mutex, MutexGuard};

/// Shards of the stores keyed by a stream's label set: the same key falls
/// in the same shard number in each, which is what lets a snapshot copy a
/// stream's lifecycle and its gauges under one cut.
pub const STREAM_SHARDS: usize = 64;

/// A store keyed by a stream's label set.
pub type Shard<V> = hashbrown::HashMap<Box<str>, V>;

pub struct Sharded<S> {
    shards: Box<[Mutex<S>]>,
}

impl<V> Default for Sharded<Shard<V>> {
    fn default() -> Self {
        Self::new(STREAM_SHARDS)
    }
}

impl<S: Default> Sharded<S> {
    pub fn new(shards: usize) -> Self {
        Self { shards: (0..shards.max(1)).map(|_| Mutex::default()).collect() }
    }
}

impl<S> Sharded<S> {
    /// The shard that holds what hashes to `hash`, locked.
    pub fn at(&self, hash: u64) -> MutexGuard<'_, S> {
        lock(&self.shards[self.index(hash)])
    }

    /// One shard's share of `n` keys, and an eighth more (keys do not
    /// spread evenly): what to size each shard for before `n` inserts.
    pub fn share(&self, n: usize) -> usize {
        let each = n.div_ceil(self.shards.len());
        each + each / 8
    }

    /// The number of the shard that holds what hashes to `hash`.
    pub fn index(&self, hash: u64) -> usize {
        #[allow(clippy::cast_possible_truncation, reason = "any bits of the hash pick a shard")]
        let i = hash as usize % self.shards.len();
        i
    }

    /// Every shard, locked one at a time.
    pub fn each(&self) -> impl Iterator<Item = MutexGuard<'_, S>> {
        self.shards.iter().map(lock)
    }

    /// Every shard with the shard of the same number of `other`, both
    /// locked (this one first), one pair at a time.
    pub fn each_with<'a, T>(
        &'a self,
        other: &'a Sharded<T>,
    ) -> impl Iterator<Item = (MutexGuard<'a, S>, MutexGuard<'a, T>)> {
        assert_eq!(self.shards.len(), other.shards.len(), "paired stores are sharded alike");
        self.shards.iter().zip(other.shards.iter()).map(|(a, b)| {
            let a = lock(a);
            (a, lock(b))
        })
    }

    pub fn count(&self) -> usize {
        self.shards.len()
    }
}

impl<V> Sharded<Shard<V>> {
    /// The shard that holds `key`, locked.
    pub fn shard(&self, key: &str) -> MutexGuard<'_, Shard<V>> {
        self.at(shard_hash(key))
    }

    /// Room in each shard for its share of `n` more keys, so that a
    /// restore of `n` does not grow and rehash every table several times.
    pub fn reserve(&self, n: usize) {
        let room = self.share(n);
        for mut shard in self.each() {
            shard.reserve(room);
        }
    }
}

/// What picks a stream's shard; also its shard number, modulo the count.
pub fn shard_hash(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

/// The shard number `key` falls in, in a store of [`STREAM_SHARDS`].
pub fn stream_shard(key: &str) -> usize {
    #[allow(clippy::cast_possible_truncation, reason = "a remainder below 64")]
    let i = (shard_hash(key) % STREAM_SHARDS as u64) as usize;
    i
}
