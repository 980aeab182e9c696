//! A global allocator that counts allocations, for the tests and benchmarks that prove the
//! query path's budget ("no allocation per query in the steady state").
//!
//! Include it with `#[path = "support/counting_alloc.rs"] mod counting_alloc;` (from a bench:
//! `#[path = "../tests/support/counting_alloc.rs"]`); it installs itself as the global
//! allocator of that binary. [`allocations`] counts every thread's allocations, for a worker
//! thread watched from outside; [`thread_allocations`] only the calling thread's, for tests that
//! run in parallel with others.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local! { static THREAD_ALLOCS: Cell<u64> = const { Cell::new(0) }; }

fn count() {
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    // `try_with`: the thread-local may be gone while a thread exits; such allocations are not
    // anyone's to count.
    let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to the system allocator with the caller's arguments unchanged,
// so `Counting` upholds exactly the contract `System` does; counting touches no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by `System` through this allocator with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: as for `dealloc`, and the caller's contract for `realloc` is passed on.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (and reallocations) so far, on every thread.
pub fn allocations() -> u64 {
    ALLOCS.load(Ordering::SeqCst)
}

/// Allocations (and reallocations) so far, on the calling thread.
pub fn thread_allocations() -> u64 {
    THREAD_ALLOCS.with(Cell::get)
}
