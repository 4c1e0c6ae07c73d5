//! Software prefetch: asking the CPU to start loading memory that a loop will read a few
//! iterations later, so that several trips to memory overlap instead of following one another.
//! The large-data paths (the sparse `sgd` step, the epoch shuffle and gather) read rows and
//! entries at random addresses that the hardware prefetchers cannot guess, but that the code
//! knows in advance. A prefetch is a hint: it never faults, reads nothing the program sees, and
//! changes no result, only speed. On targets without one it does nothing.

/// Bytes per cache line on the CPUs we tune for.
const LINE: usize = 64;

/// Prefetches the cache line holding `value`.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    prefetch_bytes((value as *const T).cast(), 1);
}

/// Prefetches every cache line of `values`.
#[inline(always)]
pub(crate) fn prefetch_slice<T>(values: &[T]) {
    prefetch_bytes(values.as_ptr().cast(), size_of_val(values));
}

/// Prefetches the cache lines of the `bytes` bytes at `start`. No reference to the memory is made,
/// so it may be memory another thread is writing; the caller keeps the range inside one of its
/// allocations.
#[inline(always)]
pub(crate) fn prefetch_bytes(start: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    for offset in (0..bytes).step_by(LINE) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `_mm_prefetch` only hints; it cannot fault, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, bytes);
}
