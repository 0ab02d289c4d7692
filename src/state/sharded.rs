//! A map from a stream's label set to what is kept of it, split into shards
//! so that one shard locked (by a scrape, an expiry pass or a snapshot) never
//! stalls ingest into the others. The stream registry and the lifecycle
//! store both keep their streams this way.
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 64;

pub type Shard<V> = hashbrown::HashMap<Box<str>, V>;

pub struct Sharded<V> {
    shards: Box<[Mutex<Shard<V>>]>,
}

impl<V> Default for Sharded<V> {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::default()).collect() }
    }
}

impl<V> Sharded<V> {
    /// The shard that holds `key`, locked.
    pub fn shard(&self, key: &str) -> MutexGuard<'_, Shard<V>> {
        #[allow(clippy::cast_possible_truncation, reason = "any bits of the hash pick a shard")]
        let i = xxhash_rust::xxh3::xxh3_64(key.as_bytes()) as usize % SHARDS;
        lock(&self.shards[i])
    }

    /// Every shard, locked one at a time.
    pub fn each(&self) -> impl Iterator<Item = MutexGuard<'_, Shard<V>>> {
        self.shards.iter().map(lock)
    }
}

/// A poisoned shard still holds consistent entries (each update is one
/// map operation): go on with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
