//! The fixed-size ring the latest reports are kept in.
use std::collections::VecDeque;
use std::sync::Mutex;

/// A fixed number of the latest entries, oldest out first.
pub(super) struct Ring<T> {
    capacity: usize,
    items: Mutex<VecDeque<T>>,
}

impl<T: Default> Ring<T> {
    pub(super) fn new(capacity: usize) -> Self {
        // Room for exactly `capacity`, so that once full the oldest entry
        // becomes the newest where it lies (see `push`).
        Self { capacity, items: Mutex::new(VecDeque::with_capacity(capacity)) }
    }

    /// Appends an entry written by `fill`; once full, into the oldest
    /// entry's memory, so strings keep their buffers, and in place: a
    /// rotation of a full deque by one only moves its head.
    pub(super) fn push(&self, fill: impl FnOnce(&mut T)) {
        let mut items = crate::sync::lock(&self.items);
        if !items.is_empty() && items.len() >= self.capacity {
            items.rotate_left(1);
            if let Some(newest) = items.back_mut() {
                fill(newest);
            }
            return;
        }
        let mut entry = T::default();
        fill(&mut entry);
        items.push_back(entry);
    }

    /// `f` of the entries, oldest first.
    pub(super) fn read<R>(&self, f: impl FnOnce(&VecDeque<T>) -> R) -> R {
        f(&crate::sync::lock(&self.items))
    }
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
    }
}
