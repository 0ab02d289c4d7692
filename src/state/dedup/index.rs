//! Where a shard of the duplicate memory finds an identity: an
//! open-addressing table of 64-byte buckets, each holding up to five
//! identities inline with their insert numbers. Finding or adding one reads
//! one cache line in nearly every case; at the default capacity (2 million
//! identities, tens of MB) that line is a cache miss.
//!
//! Nothing is ever removed. The shard numbers its inserts, and its FIFO
//! holds the last `live` of them: a way is live while its number is among
//! those, so an entry leaving the FIFO (expired or evicted) leaves the table
//! without a read of its bucket, and its dead way is reused by a later
//! insert into that bucket.
//!
//! An identity lives in its home bucket, picked by its low 32 bits, or, when
//! that has no dead way, in the next one that has. Each bucket counts the
//! identities that passed over it to a later one, so a search stops at the
//! first bucket that none passed; a dead way keeps its count until it is
//! reused or the table is rebuilt.

/// Identities a bucket holds: five of 8 bytes, their 4-byte numbers, and
/// its count, in 64 bytes.
const WAYS: usize = 5;
const ALL_WAYS: u8 = (1 << WAYS) - 1;

/// Live identities per bucket, on average, before the table grows, and at
/// the capacity: 3 of 5 ways, so that few homes are full when an insert
/// comes (2 MiB-sized tables at 2.5 and 1.9 missed the cache a little
/// less, for 20 and 57 % more memory: BENCHMARKS.md).
const LOAD: usize = 3;

/// How much the table grows at a time: the fewer rebuilds while a memory
/// fills, the fewer identities moved and tables written (BENCHMARKS.md).
const GROWTH: usize = 4;

/// Inserts between two rebuilds at most, so that every number in the table
/// is less than 2^32 inserts old and wrapping differences tell its age.
const REBUILD_EVERY: u32 = 1 << 31;

/// The most live identities a table holds: half the numbers below
/// [`REBUILD_EVERY`], so a fresh way's number, that far back, is never live.
pub(super) const MOST: usize = 1 << 30;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    ids: [u64; WAYS],
    numbers: [u32; WAYS],
    /// Identities held in a later bucket whose home is this one or an
    /// earlier one that passed over it, dead ones included.
    passed: u32,
}

/// The numbers of the live identities: the `live` up to `last`.
#[derive(Clone, Copy)]
struct Live {
    last: u32,
    live: u32,
}

impl Live {
    /// A way numbered `number` holds a live identity: one of the last `live` inserts.
    fn holds(self, number: u32) -> bool {
        self.last.wrapping_sub(number) < self.live
    }
}

impl Bucket {
    /// A bucket of a new table: dead ways holding `id`, whose home is this
    /// bucket (reusing one releases no count), numbered [`REBUILD_EVERY`]
    /// before `next`.
    fn fresh(id: u64, next: u32) -> Self {
        Self { ids: [id; WAYS], numbers: [next.wrapping_sub(REBUILD_EVERY); WAYS], passed: 0 }
    }

    /// Bit `i` set: way `i` is live. Every way tested, no branch.
    fn live(&self, live: Live) -> u8 {
        self.numbers.iter().enumerate().fold(0u8, |mask, (way, &n)| mask | u8::from(live.holds(n)) << way)
    }

    /// Whether one of the `held` ways (its [`Self::live`] ones) holds `id`.
    fn holds(&self, id: u64, held: u8) -> bool {
        self.hits(id) & held != 0
    }

    /// Bit `i` set: way `i` holds `id`, live or dead. Every way compared,
    /// then one branch: a branch per way mispredicts where the match is:
    /// fewer instructions, but twice the time per insert into a full small
    /// memory (BENCHMARKS.md).
    fn hits(&self, id: u64) -> u8 {
        self.ids.iter().enumerate().fold(0u8, |hits, (way, &id_there)| hits | u8::from(id_there == id) << way)
    }
}

/// A set of the identities of a shard's last inserts, grown as it fills.
#[derive(Default)]
pub(super) struct Index {
    /// Any number of them, or none before the first insert.
    buckets: Vec<Bucket>,
    /// The number of the next insert.
    next: u32,
}

impl Index {
    /// An empty index whose inserts are numbered from `next`, to test the
    /// numbers' wrap.
    #[cfg(test)]
    pub(super) fn numbered_from(next: u32) -> Self {
        Self { buckets: Vec::new(), next }
    }

    /// `id`'s home bucket: its low 32 bits scaled to the table, so a table
    /// has any size (sized for its capacity, not to a power of two) and a
    /// rebuild finds the homes in the order it reads them; only called with
    /// buckets.
    fn home(&self, id: u64) -> usize {
        #[allow(clippy::cast_possible_truncation, reason = "the low bits pick the bucket")]
        let low = u64::from(id as u32);
        #[allow(clippy::cast_possible_truncation, reason = "below the bucket count")]
        let home = ((low * self.buckets.len() as u64) >> 32) as usize;
        home
    }

    /// The lowest identity whose home is bucket `at` of `buckets`.
    fn first_at(at: usize, buckets: usize) -> u64 {
        ((at as u64) << 32).div_ceil(buckets as u64)
    }

    fn next(&self, at: usize) -> usize {
        if at + 1 == self.buckets.len() {
            0
        } else {
            at + 1
        }
    }

    fn live(&self, live: usize) -> Live {
        debug_assert!(live <= MOST);
        #[allow(clippy::cast_possible_truncation, reason = "at most MOST")]
        let live = live as u32;
        Live { last: self.next.wrapping_sub(1), live }
    }

    /// Whether `id` is among the last `live` inserts: searched from its home
    /// on, until a bucket that none passed over (at most all of them).
    pub(super) fn contains(&self, id: u64, live: usize) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let live = self.live(live);
        let mut at = self.home(id);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[at];
            // Only the ways holding `id` tested for life: a lookup does not
            // need the others'.
            let mut hits = bucket.hits(id);
            while hits != 0 {
                if live.holds(bucket.numbers[hits.trailing_zeros() as usize]) {
                    return true;
                }
                hits &= hits - 1;
            }
            if bucket.passed == 0 {
                return false;
            }
            at = self.next(at);
        }
        false
    }

    /// Adds `id` as the next insert unless it is among the last `live`
    /// (then returns false); the caller's FIFO then holds it last, and
    /// never more than `most`.
    pub(super) fn insert(&mut self, id: u64, live: usize, most: usize) -> bool {
        if live >= self.buckets.len() * LOAD {
            let largest = Self::buckets_for(most);
            if self.buckets.len() < largest {
                self.rebuild((self.buckets.len() * GROWTH).clamp(1, largest), live);
            }
        }
        let window = self.live(live);
        // The search notes the first bucket with room on its way: nearly
        // always the home, so one bucket read finds and adds.
        let (home, mut room) = (self.home(id), None);
        let mut at = home;
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[at];
            let held = bucket.live(window);
            if bucket.holds(id, held) {
                return false;
            }
            if room.is_none() && held != ALL_WAYS {
                room = Some((at, held));
            }
            if bucket.passed == 0 {
                break;
            }
            at = self.next(at);
        }
        match room {
            Some((at, held)) => {
                self.pass_over(home, at);
                self.put(at, held, id, self.next);
            }
            None => self.place(id, self.next, window),
        }
        self.next = self.next.wrapping_add(1);
        if self.next % REBUILD_EVERY == 0 {
            self.rebuild(self.buckets.len(), live + 1);
        }
        true
    }

    /// Puts `id`, numbered `number`, in the first way that is not `live`
    /// from its home on, counting it in each bucket it passes over.
    fn place(&mut self, id: u64, number: u32, live: Live) {
        let home = self.home(id);
        let mut at = home;
        let mut held = self.buckets[at].live(live);
        while held == ALL_WAYS {
            at = self.next(at);
            held = self.buckets[at].live(live);
        }
        self.pass_over(home, at);
        self.put(at, held, id, number);
    }

    /// Puts `id`, numbered `number`, in the first way of bucket `at` that
    /// is not `held` (its live ways); the buckets that the dead identity
    /// there passed over count it no longer.
    fn put(&mut self, at: usize, held: u8, id: u64, number: u32) {
        let bucket = &mut self.buckets[at];
        let way = (!held & ALL_WAYS).trailing_zeros() as usize;
        let dead = std::mem::replace(&mut bucket.ids[way], id);
        bucket.numbers[way] = number;
        let mut over = self.home(dead);
        while over != at {
            self.buckets[over].passed -= 1;
            over = self.next(over);
        }
    }

    /// Counts an identity held at `held` in each bucket from `home` on that it passes over.
    fn pass_over(&mut self, home: usize, held: usize) {
        let mut at = home;
        while at != held {
            self.buckets[at].passed += 1;
            at = self.next(at);
        }
    }

    /// Buckets for `n` live identities.
    fn buckets_for(n: usize) -> usize {
        n.div_ceil(LOAD).max(1)
    }

    /// Room for `n` live identities without growing.
    pub(super) fn reserve(&mut self, n: usize, live: usize) {
        let buckets = Self::buckets_for(n);
        if buckets > self.buckets.len() {
            self.rebuild(buckets, live);
        }
    }

    /// Moves the last `live` inserts into a new table of `buckets` buckets
    /// (the dead ones and their counts stay behind).
    fn rebuild(&mut self, buckets: usize, live: usize) {
        let next = self.next;
        let old = std::mem::replace(
            &mut self.buckets,
            (0..buckets).map(|at| Bucket::fresh(Self::first_at(at, buckets), next)).collect(),
        );
        let live = self.live(live);
        for bucket in &old {
            let held = bucket.live(live);
            for way in (0..WAYS).filter(|way| held & (1 << way) != 0) {
                self.place(bucket.ids[way], bucket.numbers[way], live);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!((size_of::<Bucket>(), align_of::<Bucket>()), (64, 64));
    }

    /// Every count of identities passing over a bucket, as recounted from
    /// the ways: the live ones and the dead ones not yet reused.
    fn recounted_passes(index: &Index) -> Vec<u32> {
        let mut passed = vec![0; index.buckets.len()];
        for (held, bucket) in index.buckets.iter().enumerate() {
            for &id in &bucket.ids {
                let mut at = index.home(id);
                while at != held {
                    passed[at] += 1;
                    at = index.next(at);
                }
            }
        }
        passed
    }

    proptest::proptest! {
        /// Equal to the last `live` identities of a FIFO over any inserts
        /// and drops of the oldest, with the identities crowded into few
        /// homes so that searches pass over full buckets and wrap around the
        /// table, and numbered across the wrap of 2^32.
        #[test]
        fn holds_the_last_inserts(
            from_wrap in 0u32..300,
            ops in proptest::collection::vec((0u8..3, 0u64..256), 0..400),
        ) {
            // Four homes (a quarter of the table apart); higher bits tell ids apart.
            let id = |n: u64| (n % 4) << 30 | n << 40;
            let mut index = Index::numbered_from(0u32.wrapping_sub(from_wrap));
            let mut fifo = VecDeque::new();
            for (op, n) in ops {
                if op == 0 {
                    fifo.pop_front();
                } else {
                    let added = index.insert(id(n), fifo.len(), 400);
                    proptest::prop_assert_eq!(added, !fifo.contains(&id(n)));
                    if added {
                        fifo.push_back(id(n));
                    }
                }
                proptest::prop_assert!(index.contains(id(n), fifo.len()) == fifo.contains(&id(n)));
                proptest::prop_assert_eq!(index.contains(id(n ^ 1), fifo.len()), fifo.contains(&id(n ^ 1)));
            }
            for n in 0..256 {
                proptest::prop_assert_eq!(index.contains(id(n), fifo.len()), fifo.contains(&id(n)));
            }
            let live = index.live(fifo.len());
            let held: u32 = index.buckets.iter().map(|b| b.live(live).count_ones()).sum();
            proptest::prop_assert_eq!(held as usize, fifo.len());
            let passed: Vec<u32> = index.buckets.iter().map(|b| b.passed).collect();
            proptest::prop_assert_eq!(passed, recounted_passes(&index));
        }
    }

    #[test]
    fn a_rebuild_at_the_wrap_keeps_the_live_and_drops_the_dead() {
        let id = |n: u64| (n % 4) << 30 | n << 40;
        let mut index = Index::numbered_from(u32::MAX - 40);
        let mut fifo = VecDeque::new();
        for n in 0..40 {
            assert!(index.insert(id(n), fifo.len(), 400));
            fifo.push_back(id(n));
            if fifo.len() > 10 {
                fifo.pop_front();
            }
        }
        // The 41st insert is numbered u32::MAX; the table is rebuilt after it.
        assert!(index.insert(id(40), fifo.len(), 11));
        fifo.push_back(id(40));
        assert_eq!(index.next, 0);
        let live = index.live(fifo.len());
        for bucket in &index.buckets {
            let fresh = (0..WAYS).filter(|&way| bucket.live(live) & (1 << way) == 0);
            assert!(fresh.into_iter().all(|way| bucket.numbers[way] == REBUILD_EVERY), "only live and fresh ways");
        }
        assert!((0..41).all(|n| index.contains(id(n), fifo.len()) == fifo.contains(&id(n))));
        assert!(index.buckets.iter().zip(recounted_passes(&index)).all(|(b, n)| b.passed == n));
    }
}
