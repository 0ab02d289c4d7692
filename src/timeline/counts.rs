//! A bad interval's (error code, count) pairs, by code: up to three held
//! inline (a merged interval seldom has more error types), past that on
//! the heap, so that a new interval costs no allocation.
use std::mem::size_of;

const INLINE: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCounts {
    Inline { len: u8, pairs: [(u8, u32); INLINE] },
    Heap(Vec<(u8, u32)>),
}

impl Default for ErrorCounts {
    fn default() -> Self {
        Self::Inline { len: 0, pairs: [(0, 0); INLINE] }
    }
}

impl ErrorCounts {
    pub fn as_slice(&self) -> &[(u8, u32)] {
        match self {
            Self::Inline { len, pairs } => &pairs[..usize::from(*len)],
            Self::Heap(v) => v,
        }
    }

    /// Adds `count` errors of `code` (a count saturates at `u32::MAX`).
    pub fn add(&mut self, code: u8, count: u64) {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        match self.as_slice().binary_search_by_key(&code, |p| p.0) {
            Ok(i) => {
                let pairs = match self {
                    Self::Inline { pairs, .. } => &mut pairs[..],
                    Self::Heap(v) => &mut v[..],
                };
                pairs[i].1 = pairs[i].1.saturating_add(count);
            }
            Err(i) => self.insert(i, (code, count)),
        }
    }

    fn insert(&mut self, i: usize, pair: (u8, u32)) {
        match self {
            Self::Inline { len, pairs } if usize::from(*len) < INLINE => {
                let n = usize::from(*len);
                pairs.copy_within(i..n, i + 1);
                pairs[i] = pair;
                *len += 1;
            }
            Self::Inline { pairs, .. } => {
                let mut v = Vec::with_capacity(2 * INLINE);
                v.extend_from_slice(pairs);
                v.insert(i, pair);
                *self = Self::Heap(v);
            }
            Self::Heap(v) => v.insert(i, pair),
        }
    }

    /// What it holds on the heap, bytes.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Self::Inline { .. } => 0,
            Self::Heap(v) => v.capacity() * size_of::<(u8, u32)>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_stay_by_code_inline_then_on_the_heap() {
        let mut c = ErrorCounts::default();
        for (code, count) in [(7, 1), (1, 2), (7, 3), (4, 1)] {
            c.add(code, count);
        }
        assert_eq!((c.as_slice(), c.heap_bytes()), (&[(1, 2), (4, 1), (7, 4)][..], 0));
        c.add(2, u64::MAX);
        c.add(2, 1);
        assert_eq!(c.as_slice(), [(1, 2), (2, u32::MAX), (4, 1), (7, 4)]);
        assert!(c.heap_bytes() > 0);
    }
}
