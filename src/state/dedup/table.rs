//! The index's bucket array. At the default capacity a shard's buckets
//! span megabytes read at random, one line per callback: on 4 KiB pages
//! nearly every read also misses the TLB and walks the page tables. From
//! half a huge page on, the array lives in its own anonymous mapping
//! marked for transparent huge pages (`madvise`, what Linux's default THP
//! setting honours), so the whole memory takes a few TLB entries. Where
//! the mapping or the advice is refused (another OS, THP off), the array
//! stays on the heap, as smaller ones do: the same table, on small pages.
use memmap2::MmapMut;
use std::ops::{Deref, DerefMut};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// A transparent huge page on x86-64 and most arm64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// Zeroed elements of `T`, on the heap or in a mapping on huge pages.
pub(super) enum Table<T> {
    Heap(Box<[T]>),
    /// The elements start `at` bytes into `map`, on a huge-page boundary.
    Mapped {
        map: MmapMut,
        at: usize,
        len: usize,
    },
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self::Heap(Box::default())
    }
}

impl<T: FromBytes + IntoBytes + KnownLayout + Immutable> Table<T> {
    /// `len` zeroed elements, on huge pages from half of one on (a table
    /// of 1 MiB takes a whole 2 MiB page: the index's shards grow by
    /// doubling, and most of a large memory's life is spent at 1 or 2 MiB
    /// a shard).
    pub(super) fn zeroed(len: usize) -> Self {
        Self::zeroed_advised(len, advise_huge_pages)
    }

    /// [`Self::zeroed`] with `advise` marking the mapping: its refusal
    /// leaves the table on the heap.
    fn zeroed_advised(len: usize, advise: impl FnOnce(&MmapMut) -> std::io::Result<()>) -> Self {
        let bytes = len * size_of::<T>();
        if bytes >= HUGE_PAGE / 2 {
            // Room to start on a huge-page boundary: an anonymous mapping
            // is only page-aligned. What is never touched takes no memory.
            let mapped = MmapMut::map_anon(bytes.next_multiple_of(HUGE_PAGE) + HUGE_PAGE)
                .and_then(|map| advise(&map).map(|()| map));
            if let Ok(map) = mapped {
                let at = map.as_ptr().align_offset(HUGE_PAGE);
                return Self::Mapped { map, at, len: bytes };
            }
        }
        Self::Heap(<[T]>::new_box_zeroed_with_elems(len).expect("a table that fits in memory"))
    }

    /// Whether the elements are in a mapping marked for huge pages.
    #[cfg(test)]
    pub(super) fn is_mapped(&self) -> bool {
        matches!(self, Self::Mapped { .. })
    }
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(map: &MmapMut) -> std::io::Result<()> {
    map.advise(memmap2::Advice::HugePage)
}

/// Elsewhere no advice is known: the heap serves.
#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: &MmapMut) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

impl<T: FromBytes + IntoBytes + KnownLayout + Immutable> Deref for Table<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Self::Heap(elements) => elements,
            Self::Mapped { map, at, len } => {
                <[T]>::ref_from_bytes(&map[*at..*at + *len]).expect("whole elements on a huge-page boundary")
            }
        }
    }
}

impl<T: FromBytes + IntoBytes + KnownLayout + Immutable> DerefMut for Table<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Self::Heap(elements) => elements,
            Self::Mapped { map, at, len } => {
                <[T]>::mut_from_bytes(&mut map[*at..*at + *len]).expect("whole elements on a huge-page boundary")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tables_stay_on_the_heap() {
        let table = Table::<u64>::zeroed(HUGE_PAGE / 16 - 1);
        assert!(!table.is_mapped());
        assert!(table.iter().all(|&x| x == 0));
    }

    #[test]
    fn large_tables_start_on_a_huge_page_zeroed() {
        let mut table = Table::<u64>::zeroed(HUGE_PAGE / 16);
        // Where THP is built in, the advice is taken; elsewhere the heap serves.
        if std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
            assert!(table.is_mapped());
            assert_eq!(table.as_ptr().align_offset(HUGE_PAGE), 0);
        }
        assert_eq!(table.len(), HUGE_PAGE / 16);
        assert!(table.iter().all(|&x| x == 0));
        table[HUGE_PAGE / 16 - 1] = 7;
        assert_eq!(table.iter().sum::<u64>(), 7);
    }

    #[test]
    fn refused_advice_leaves_the_table_on_the_heap() {
        let refused = |_: &MmapMut| Err(std::io::ErrorKind::Unsupported.into());
        let mut table = Table::<u64>::zeroed_advised(HUGE_PAGE, refused);
        assert!(!table.is_mapped());
        assert_eq!(table.len(), HUGE_PAGE);
        table[HUGE_PAGE - 1] = 7;
        assert_eq!(table.iter().sum::<u64>(), 7);
    }
}
