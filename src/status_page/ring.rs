//! The fixed-size ring the latest reports are kept in.
//!
//! Every HTTP worker writes an entry per accepted report, so each writing
//! thread writes a shard of its own (unless there are more writers than
//! shards), behind its own lock; entries are numbered in one sequence, and
//! reading puts the shards' latest back in order.
#[cfg(test)]
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Shards of a ring: more than the HTTP workers usually started.
const SHARDS: usize = 8;

/// A fixed number of the latest entries, oldest out first.
pub(super) struct Ring<T> {
    /// Entries kept (at least one), in each shard and in all.
    capacity: usize,
    shards: Box<[Mutex<Shard<T>>]>,
    /// The number of the next entry, across shards.
    next: AtomicU64,
}

/// One writer's latest entries, each with its number.
struct Shard<T> {
    slots: Vec<(u64, T)>,
    /// The slot the next entry is written into once all are taken: the oldest.
    oldest: usize,
}

impl<T: Default> Ring<T> {
    pub(super) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shard = || Mutex::new(Shard { slots: Vec::with_capacity(capacity), oldest: 0 });
        Self { capacity, shards: (0..SHARDS).map(|_| shard()).collect(), next: AtomicU64::new(0) }
    }

    /// Appends an entry written by `fill`; once the writer's shard is full,
    /// into its oldest entry's memory, so strings keep their buffers.
    pub(super) fn push(&self, fill: impl FnOnce(&mut T)) {
        let mut shard = crate::sync::lock(&self.shards[writer() % SHARDS]);
        // Numbered under the shard's lock, so that a shard's are in order.
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        if shard.slots.len() < self.capacity {
            let mut entry = T::default();
            fill(&mut entry);
            shard.slots.push((number, entry));
            return;
        }
        let oldest = shard.oldest;
        shard.oldest = if oldest + 1 == self.capacity { 0 } else { oldest + 1 };
        let slot = &mut shard.slots[oldest];
        slot.0 = number;
        fill(&mut slot.1);
    }

    /// `f` of the latest entries, oldest first: each shard holds its latest,
    /// so the latest of all are among them.
    pub(super) fn latest<R>(&self, f: impl FnOnce(&[&T]) -> R) -> R {
        let shards: Vec<MutexGuard<'_, Shard<T>>> = self.shards.iter().map(crate::sync::lock).collect();
        let mut all: Vec<&(u64, T)> = shards.iter().flat_map(|s| &s.slots).collect();
        all.sort_unstable_by_key(|e| e.0);
        let items: Vec<&T> = all[all.len().saturating_sub(self.capacity)..].iter().map(|e| &e.1).collect();
        f(&items)
    }

    /// `f` of the latest entries, oldest first, copied out.
    #[cfg(test)]
    pub(super) fn read<R>(&self, f: impl FnOnce(&VecDeque<T>) -> R) -> R
    where
        T: Clone,
    {
        f(&self.latest(|items| items.iter().map(|&e| e.clone()).collect()))
    }
}

/// The calling thread's number, taken in turn when it first writes: the
/// HTTP workers, started one after the other, write shards apart.
fn writer() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static WRITER: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    WRITER.with(|w| *w)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The ring holds what a deque of the latest `capacity` pushes
        /// holds, oldest first, whatever the capacity and count.
        #[test]
        fn holds_the_latest_pushes_in_order(capacity in 0usize..6, pushes in 0u32..20) {
            let ring = Ring::<Vec<u32>>::new(capacity);
            let mut plain = VecDeque::new();
            for n in 0..pushes {
                ring.push(|v| {
                    v.clear();
                    v.push(n);
                });
                if plain.len() >= capacity.max(1) {
                    plain.pop_front();
                }
                plain.push_back(vec![n]);
            }
            proptest::prop_assert_eq!(ring.read(Clone::clone), plain);
        }

        /// Pushed by threads in turn, each writing a shard (and some the
        /// same), the ring still holds the latest pushes in order.
        #[test]
        fn writers_in_turn_leave_the_latest_pushes_in_order(
            capacity in 0usize..6,
            runs in proptest::collection::vec(1u32..8, 0..24),
        ) {
            let ring = Ring::<Vec<u32>>::new(capacity);
            let mut plain = VecDeque::new();
            let mut n = 0;
            for run in runs {
                let first = n;
                std::thread::scope(|s| {
                    s.spawn(|| {
                        for n in first..first + run {
                            ring.push(|v| {
                                v.clear();
                                v.push(n);
                            });
                        }
                    });
                });
                for n in first..first + run {
                    if plain.len() >= capacity.max(1) {
                        plain.pop_front();
                    }
                    plain.push_back(vec![n]);
                }
                n += run;
            }
            proptest::prop_assert_eq!(ring.read(Clone::clone), plain);
        }
    }
}
