//! Where a shard of the duplicate memory finds an identity: an
//! open-addressing table of 64-byte buckets, each holding up to seven
//! identities inline. Finding, adding or removing one reads one cache line
//! in nearly every case, where a hash set with a separate control array
//! reads two; at the default capacity (2 million identities, tens of MB)
//! each of those lines is a cache miss.
//!
//! An identity lives in its home bucket, picked by its low bits, or, when
//! that is full, in the next one with room. Each bucket counts the
//! identities that passed over it to a later one, so a search stops at the
//! first bucket that none passed.

use super::table::Table;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Identities a bucket holds: seven of 8 bytes, and its counts, in 64 bytes.
const WAYS: usize = 7;
const ALL_WAYS: u8 = (1 << WAYS) - 1;

/// Identities per bucket, on average, before the table doubles: few
/// buckets are full, so few searches go past their home.
const LOAD: usize = 5;

/// Plain bytes (no implicit padding), so that it can live in a mapping.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C, align(64))]
struct Bucket {
    ids: [u64; WAYS],
    /// Identities held in a later bucket whose home is this one or an
    /// earlier one that passed over it.
    passed: u32,
    /// Bit `i` set: `ids[i]` holds an identity.
    used: u8,
    _padding: [u8; 3],
}

impl Bucket {
    /// The way holding `id`: every way compared, then one branch. A
    /// branch per way mispredicts where the match is: fewer instructions,
    /// but twice the time per insert into a full small memory (BENCHMARKS.md).
    fn find(&self, id: u64) -> Option<usize> {
        let hits = self.ids.iter().enumerate().fold(0u8, |hits, (way, &held)| hits | u8::from(held == id) << way);
        let hits = hits & self.used;
        (hits != 0).then(|| hits.trailing_zeros() as usize)
    }
}

/// A set of identities, grown by doubling as it fills.
#[derive(Default)]
pub(super) struct Index {
    /// A power of two of them, or none before the first insert.
    buckets: Table<Bucket>,
    len: usize,
}

impl Index {
    pub(super) fn contains(&self, id: u64) -> bool {
        position(&self.buckets, id).is_some()
    }

    /// Adds `id` unless the set holds it (false then), after removing the
    /// identity `make_room` gives, if any: the table's view taken once for
    /// the three, as a mapped table checks it on each.
    pub(super) fn insert_new(&mut self, id: u64, make_room: impl FnOnce() -> Option<u64>) -> bool {
        let buckets = &mut *self.buckets;
        if position(buckets, id).is_some() {
            return false;
        }
        if let Some(old) = make_room() {
            self.len -= usize::from(remove(buckets, old));
        }
        let count = buckets.len();
        if self.len >= count * LOAD {
            self.resize((count * 2).max(1));
        }
        place(&mut self.buckets, id);
        self.len += 1;
        true
    }

    /// Removes `id` if the set holds it.
    pub(super) fn remove(&mut self, id: u64) {
        self.len -= usize::from(remove(&mut self.buckets, id));
    }

    /// Room for `n` identities without growing.
    pub(super) fn reserve(&mut self, n: usize) {
        let buckets = n.div_ceil(LOAD).next_power_of_two();
        if buckets > self.buckets.len() {
            self.resize(buckets);
        }
    }

    /// Moves every identity into a table of `buckets` buckets.
    fn resize(&mut self, buckets: usize) {
        let old = std::mem::replace(&mut self.buckets, Table::zeroed(buckets));
        let new = &mut *self.buckets;
        for bucket in old.iter() {
            for way in (0..WAYS).filter(|way| bucket.used & (1 << way) != 0) {
                place(new, bucket.ids[way]);
            }
        }
    }
}

// The table's slice taken once per operation and passed down: a mapped
// table checks its view on each deref.

/// `id`'s home bucket; only called with buckets.
fn home(buckets: &[Bucket], id: u64) -> usize {
    #[allow(clippy::cast_possible_truncation, reason = "the low bits pick the bucket")]
    let low = id as usize;
    low & (buckets.len() - 1)
}

fn next(buckets: &[Bucket], at: usize) -> usize {
    (at + 1) & (buckets.len() - 1)
}

/// Where `id` is, its bucket and way: searched from its home on, until
/// a bucket that none passed over (at most all of them).
fn position(buckets: &[Bucket], id: u64) -> Option<(usize, usize)> {
    if buckets.is_empty() {
        return None;
    }
    let mut at = home(buckets, id);
    for _ in 0..buckets.len() {
        let bucket = &buckets[at];
        if let Some(way) = bucket.find(id) {
            return Some((at, way));
        }
        if bucket.passed == 0 {
            return None;
        }
        at = next(buckets, at);
    }
    None
}

/// Removes `id` if `buckets` hold it (true then); the buckets its insert
/// passed over count it no longer.
fn remove(buckets: &mut [Bucket], id: u64) -> bool {
    let Some((held, way)) = position(buckets, id) else { return false };
    let mut at = home(buckets, id);
    while at != held {
        buckets[at].passed -= 1;
        at = next(buckets, at);
    }
    buckets[held].used &= !(1 << way);
    true
}

/// Puts `id` in the first bucket with room from its home on, counting
/// it in each bucket it passes over.
fn place(buckets: &mut [Bucket], id: u64) {
    let mut at = home(buckets, id);
    loop {
        let bucket = &mut buckets[at];
        let free = !bucket.used & ALL_WAYS;
        if free != 0 {
            let way = free.trailing_zeros() as usize;
            bucket.ids[way] = id;
            bucket.used |= 1 << way;
            return;
        }
        bucket.passed += 1;
        at = next(buckets, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!((size_of::<Bucket>(), align_of::<Bucket>()), (64, 64));
    }

    #[test]
    fn growing_onto_huge_pages_keeps_every_identity() {
        // 1 MiB of buckets from 40 960 identities on: the table moves to a mapping.
        let id = |n: u64| n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut index = Index::default();
        (0..100_000).for_each(|n| assert!(index.insert_new(id(n), || None)));
        assert_eq!(index.buckets.len(), 1 << 15);
        if std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
            assert!(index.buckets.is_mapped());
        }
        assert!((0..100_000).all(|n| index.contains(id(n))));
        (0..100_000).step_by(2).for_each(|n| index.remove(id(n)));
        assert!((0..100_000).all(|n| index.contains(id(n)) == (n % 2 == 1)));
        assert_eq!(index.len, 50_000);
    }

    proptest::proptest! {
        /// Equal to a hash set over any inserts and removes, with the
        /// identities crowded into few homes so that searches pass over
        /// full buckets and wrap around the table.
        #[test]
        fn holds_what_a_hash_set_holds(
            ops in proptest::collection::vec((proptest::prelude::any::<bool>(), 0u64..256), 0..400),
        ) {
            // Homes 0 to 3 in a table of any size; higher bits tell ids apart.
            let id = |n: u64| (n % 4) | (n << 40);
            let (mut index, mut model) = (Index::default(), HashSet::new());
            for (add, n) in ops {
                if add {
                    proptest::prop_assert_eq!(index.insert_new(id(n), || None), model.insert(id(n)));
                } else {
                    index.remove(id(n));
                    model.remove(&id(n));
                }
                proptest::prop_assert_eq!(index.len, model.len());
                proptest::prop_assert_eq!(index.contains(id(n)), add);
                proptest::prop_assert_eq!(index.contains(id(n ^ 1)), model.contains(&id(n ^ 1)));
            }
            for n in 0..256 {
                proptest::prop_assert_eq!(index.contains(id(n)), model.contains(&id(n)));
            }
            let held: usize = index.buckets.iter().map(|b| b.used.count_ones() as usize).sum();
            proptest::prop_assert_eq!(held, model.len());
            // Emptied, no bucket counts an identity passing over it.
            model.iter().for_each(|&id| index.remove(id));
            proptest::prop_assert_eq!(index.len, 0);
            proptest::prop_assert!(index.buckets.iter().all(|b| b.passed == 0 && b.used == 0));
        }
    }
}
