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

/// Identities a bucket holds: seven of 8 bytes, and its counts, in 64 bytes.
const WAYS: usize = 7;
const ALL_WAYS: u8 = (1 << WAYS) - 1;

/// Identities per bucket, on average, before the table doubles: few
/// buckets are full, so few searches go past their home.
const LOAD: usize = 5;

#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    ids: [u64; WAYS],
    /// Identities held in a later bucket whose home is this one or an
    /// earlier one that passed over it.
    passed: u32,
    /// Bit `i` set: `ids[i]` holds an identity.
    used: u8,
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
    buckets: Vec<Bucket>,
    len: usize,
}

impl Index {
    /// `id`'s home bucket; only called with buckets.
    fn home(&self, id: u64) -> usize {
        #[allow(clippy::cast_possible_truncation, reason = "the low bits pick the bucket")]
        let low = id as usize;
        low & (self.buckets.len() - 1)
    }

    fn next(&self, at: usize) -> usize {
        (at + 1) & (self.buckets.len() - 1)
    }

    /// Where `id` is, its bucket and way: searched from its home on, until
    /// a bucket that none passed over (at most all of them).
    fn position(&self, id: u64) -> Option<(usize, usize)> {
        if self.buckets.is_empty() {
            return None;
        }
        let mut at = self.home(id);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[at];
            if let Some(way) = bucket.find(id) {
                return Some((at, way));
            }
            if bucket.passed == 0 {
                return None;
            }
            at = self.next(at);
        }
        None
    }

    pub(super) fn contains(&self, id: u64) -> bool {
        self.position(id).is_some()
    }

    /// Adds `id`, which the set does not hold.
    pub(super) fn insert(&mut self, id: u64) {
        if self.len >= self.buckets.len() * LOAD {
            self.resize((self.buckets.len() * 2).max(1));
        }
        self.place(id);
        self.len += 1;
    }

    /// Puts `id` in the first bucket with room from its home on, counting
    /// it in each bucket it passes over.
    fn place(&mut self, id: u64) {
        let mut at = self.home(id);
        loop {
            let bucket = &mut self.buckets[at];
            let free = !bucket.used & ALL_WAYS;
            if free != 0 {
                let way = free.trailing_zeros() as usize;
                bucket.ids[way] = id;
                bucket.used |= 1 << way;
                return;
            }
            bucket.passed += 1;
            at = self.next(at);
        }
    }

    /// Removes `id` if the set holds it; the buckets its insert passed over
    /// count it no longer.
    pub(super) fn remove(&mut self, id: u64) {
        let Some((held, way)) = self.position(id) else { return };
        let mut at = self.home(id);
        while at != held {
            self.buckets[at].passed -= 1;
            at = self.next(at);
        }
        self.buckets[held].used &= !(1 << way);
        self.len -= 1;
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
        let old = std::mem::replace(&mut self.buckets, vec![Bucket::default(); buckets]);
        for bucket in &old {
            for way in (0..WAYS).filter(|way| bucket.used & (1 << way) != 0) {
                self.place(bucket.ids[way]);
            }
        }
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
                if add && !model.contains(&id(n)) {
                    index.insert(id(n));
                    model.insert(id(n));
                } else if !add {
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
