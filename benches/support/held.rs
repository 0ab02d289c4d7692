//! A global allocator that counts the bytes held, for the benches that
//! report memory. Each bench is a crate of its own: they include this
//! file with `#[path]`.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

pub struct Counting;
static HELD: AtomicI64 = AtomicI64::new(0);

#[allow(unsafe_code, reason = "a global allocator is an unsafe trait; this one only counts, then delegates")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size().cast_signed() as i64, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size().cast_signed() as i64, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

/// Bytes held now.
pub fn held() -> i64 {
    HELD.load(Ordering::Relaxed)
}
