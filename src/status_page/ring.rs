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
        Self { capacity, items: Mutex::new(VecDeque::new()) }
    }

    /// Appends an entry written by `fill`; once full, into the oldest
    /// entry's memory, so strings keep their buffers.
    pub(super) fn push(&self, fill: impl FnOnce(&mut T)) {
        let mut items = crate::sync::lock(&self.items);
        let mut entry = if items.len() >= self.capacity { items.pop_front().unwrap_or_default() } else { T::default() };
        fill(&mut entry);
        items.push_back(entry);
    }

    /// `f` of the entries, oldest first.
    pub(super) fn read<R>(&self, f: impl FnOnce(&VecDeque<T>) -> R) -> R {
        f(&crate::sync::lock(&self.items))
    }
}
