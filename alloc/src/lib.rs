//! The process's memory allocator, and giving freed memory back to the operating system.
//!
//! With the `mimalloc` feature (the shipped binary's default) the allocator is mimalloc: the proxy
//! allocates and frees small buffers on every request, and malloc/free were the top user-space symbols
//! of a profile of the warm path with glibc's allocator (docs/benchmarks.md). It is built without
//! transparent huge pages (`no_thp`): with them, every touched 2 MiB of its arenas stayed resident.
//! Without the feature the allocator is the system's, which heap profilers (heaptrack) can see.
//!
//! mimalloc returns freed memory to the OS lazily: memory freed longer ago than its purge delay (one
//! second) is purged the next time a thread asks the allocator to collect, which an idle server never
//! does — start-up's freed memory (the configuration's parse and validation, the schema compilers)
//! stayed resident for the life of the process. [`give_back`], called now and then, returns it.
//!
//! The workspace forbids `unsafe` code; this crate only denies it, for one foreign call allowed where it
//! is made (mimalloc's `mi_collect`, which takes no pointers).

/// The global allocator type: mimalloc, or the system's without the `mimalloc` feature.
#[cfg(feature = "mimalloc")]
pub type Allocator = mimalloc::MiMalloc;
/// The global allocator type: mimalloc, or the system's without the `mimalloc` feature.
#[cfg(not(feature = "mimalloc"))]
pub type Allocator = std::alloc::System;

/// The global allocator, for `#[global_allocator] static A: Allocator = ALLOCATOR;`.
#[cfg(feature = "mimalloc")]
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;
/// The global allocator, for `#[global_allocator] static A: Allocator = ALLOCATOR;`.
#[cfg(not(feature = "mimalloc"))]
pub const ALLOCATOR: Allocator = std::alloc::System;

/// Returns memory to the operating system: the calling thread's free pages, and, process-wide, memory
/// freed longer ago than the allocator's purge delay. Cheap (microseconds when nothing is waiting);
/// meant to be called every few seconds from one thread, never per request. A no-op with the system's
/// allocator.
pub fn give_back() {
    #[cfg(feature = "mimalloc")]
    collect();
}

/// mimalloc's normal collection (no forced reclaim of other threads' abandoned pages).
#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)]
fn collect() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any time.
    unsafe {
        libmimalloc_sys::mi_collect(false);
    }
}

#[cfg(test)]
mod tests;
