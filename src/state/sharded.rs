//! One container split into shards, each behind its own lock, so that one
//! shard locked (by a scrape, an expiry pass or a snapshot) never stalls
//! ingest into the others. The stream registry and the lifecycle store keep
//! their streams this way, keyed by label set; the de-duplication memory
//! its identities, keyed by hash.
use crate::sync::lock;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{LazyLock, Mutex, MutexGuard};

/// Shards of the stores keyed by a stream's label set: the same key falls
/// in the same shard number in each, which is what lets a snapshot copy a
/// stream's lifecycle and its gauges under one cut.
pub const STREAM_SHARDS: usize = 64;

/// A store keyed by a stream's label set, hashed as [`shard_hash`] hashes
/// it: a lookup by a [`StreamKey`](super::key::StreamKey) reuses the hash
/// the key carries ([`Hashed`]) instead of hashing its text again.
pub type Shard<V> = hashbrown::HashMap<Box<str>, V, KeyHashing>;

/// Hashes a label set by [`shard_hash`], and a [`Hashed`] one by the hash
/// it carries: the same number for the same text.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHashing;

impl BuildHasher for KeyHashing {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    /// A `str` is hashed as its bytes, then a 0xff byte (`str`'s `Hash`):
    /// the bytes give the hash, the terminator nothing.
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64(bytes);
    }

    fn write_u8(&mut self, _terminator: u8) {}

    /// A [`Hashed`] key's hash.
    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    fn finish(&self) -> u64 {
        table_hash(self.0)
    }
}

/// A label set with its [`shard_hash`], to find it in a [`Shard`] without
/// hashing its text.
pub struct Hashed<'a> {
    pub text: &'a str,
    pub hash: u64,
}

impl Hash for Hashed<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl hashbrown::Equivalent<Box<str>> for Hashed<'_> {
    fn equivalent(&self, key: &Box<str>) -> bool {
        self.text == &**key
    }
}

pub struct Sharded<S> {
    shards: Box<[Mutex<S>]>,
    /// The shard count less one: counts are powers of two, so a mask picks
    /// the same shard as the remainder would, without a division per lookup.
    mask: usize,
}

impl<V> Default for Sharded<Shard<V>> {
    fn default() -> Self {
        Self::new(STREAM_SHARDS)
    }
}

impl<S: Default> Sharded<S> {
    /// `shards`, a power of two (shard numbers are kept in the state file
    /// as the hash's remainder, which the mask must equal).
    pub fn new(shards: usize) -> Self {
        assert!(shards.is_power_of_two(), "a power of two of shards, not {shards}");
        Self { shards: (0..shards).map(|_| Mutex::default()).collect(), mask: shards - 1 }
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
        let i = hash as usize & self.mask;
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

/// Where a store's table looks for a key of [`shard_hash`] `hash`: that
/// hash mixed with a key drawn per process. The shard hash itself is
/// unseeded (shard numbers are kept in the state file), so a sender could
/// pick stream names whose hashes share bits; mixed with a secret, every
/// bit of the result depends on every bit of the hash (also the low ones,
/// alike within a shard), and a table's buckets cannot be aimed at.
pub fn table_hash(hash: u64) -> u64 {
    static KEY: LazyLock<[u64; 2]> = LazyLock::new(rand::random);
    let [a, b] = *KEY;
    // A folded multiply, as foldhash mixes.
    let m = u128::from(hash ^ a) * u128::from(b | 1);
    #[allow(clippy::cast_possible_truncation, reason = "the two halves folded")]
    let folded = (m as u64) ^ ((m >> 64) as u64);
    folded
}

/// The shard number `key` falls in, in a store of [`STREAM_SHARDS`].
pub fn stream_shard(key: &str) -> usize {
    #[allow(clippy::cast_possible_truncation, reason = "a remainder below 64")]
    let i = (shard_hash(key) % STREAM_SHARDS as u64) as usize;
    i
}

#[cfg(test)]
mod tests {
    use super::super::key::{StreamId, StreamKey};
    use super::*;

    proptest::proptest! {
        /// A shard finds a stream by its key's carried hash exactly as by
        /// its text, present or not.
        #[test]
        fn a_key_is_found_by_its_hash_as_by_its_text(
            streams in proptest::collection::vec("[a-z0-9\"\\\\]{0,6}", 1..200),
            absent in proptest::collection::vec("[a-z0-9]{7,8}", 1..20),
        ) {
            let key = |s: &str| StreamKey::new(StreamId { domain: "d", app: "live", stream: s }, 64);
            let mut shard = Shard::default();
            for (n, s) in streams.iter().enumerate() {
                shard.entry(key(s).as_str().into()).or_insert(n);
            }
            for s in streams.iter().chain(&absent) {
                let k = key(s);
                let first = streams.iter().position(|t| t == s);
                proptest::prop_assert_eq!(shard.get(&k.hashed()).copied(), first, "{:?}", s);
                proptest::prop_assert_eq!(shard.get(k.as_str()).copied(), first, "{:?}", s);
            }
        }

        /// The shard a hash picks is its remainder by the count, as state
        /// files written by earlier versions number them.
        #[test]
        fn a_shard_number_is_the_remainder(hash in proptest::prelude::any::<u64>(), bits in 0u32..7) {
            let count = 1usize << bits;
            let i = Sharded::<()>::new(count).index(hash);
            proptest::prop_assert_eq!(i as u64, hash % count as u64);
        }
    }

    /// Keys of one shard share the hash's low bits: the table's buckets
    /// come from the others, so they still spread.
    #[test]
    fn keys_of_one_shard_spread_over_the_table() {
        let mut buckets = std::collections::HashSet::new();
        let mut n = 0;
        for s in 0..20_000 {
            let k = StreamKey::new(StreamId { domain: "d", app: "live", stream: &format!("s{s}") }, 64);
            if stream_shard(k.as_str()) == 0 {
                n += 1;
                buckets.insert(KeyHashing.hash_one(k.hashed()) % 1024);
            }
        }
        // About 300 keys in 1024 buckets: most fall apart.
        assert!(buckets.len() * 10 > n * 8, "{} buckets for {n} keys", buckets.len());
    }
}
