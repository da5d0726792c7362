//! Heap allocations, counted for the benches: built with `--features
//! count-allocs`, the manager counts every allocation and reallocation and
//! `metrics` reports the total (`edgecm_heap_allocations_total`), so that a
//! bench can divide it by the events it sent. Without the feature (every
//! shipped build) nothing is counted and the metric is absent.

/// Allocations and reallocations since the start, when counted.
pub fn allocations() -> Option<u64> {
    #[cfg(feature = "count-allocs")]
    return Some(counting::ALLOCS.load(std::sync::atomic::Ordering::Relaxed));
    #[cfg(not(feature = "count-allocs"))]
    None
}

#[cfg(feature = "count-allocs")]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub static ALLOCS: AtomicU64 = AtomicU64::new(0);

    struct Counting;

    // SAFETY: every call is passed to `System` unchanged; only a counter is added.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            unsafe { System.realloc(p, l, n) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;
}
