//! Storage for the flat parameter buffer `[P | Q | bu | bi]` (and the sparse step's copy of old
//! user rows) that suits random row access.
//!
//! The sparse `sgd` step reads and writes whole rows of `P` and `Q` at random; on ML-25M they are
//! 57 MB together, far beyond the caches, so each row costs a trip to memory. Two things make
//! those trips cheaper without changing a value:
//! - **64-byte alignment**: a row of `K = 64` floats then covers exactly four cache lines instead
//!   of five (a `Vec<f32>` from the allocator starts 16 bytes into a line);
//! - **transparent huge pages** (Linux, `madvise(MADV_HUGEPAGE)` before the first write): one TLB
//!   entry covers 2 MiB instead of 4 KiB, so random rows stop missing the TLB as well.
//!   BENCHMARKS.md ("CPU sgd at scale") has what each is worth.

use std::ops::{Deref, DerefMut};

/// Bytes in a cache line.
const LINE: usize = 64;

/// A zero-initialised `[f32]` whose first entry sits on a cache-line boundary, and whose memory is
/// offered to the kernel for huge pages when large enough.
#[derive(Debug, Default, Clone)]
pub(crate) struct ParamBuffer {
    storage: Vec<f32>,
    /// Index of the first entry in `storage`.
    start: usize,
    len: usize,
}

impl ParamBuffer {
    /// `len` zeros.
    pub(crate) fn zeros(len: usize) -> ParamBuffer {
        ParamBuffer::filled(len, |storage| storage.resize(storage.len() + len, 0.0))
    }

    /// The concatenation of `parts`, in order.
    pub(crate) fn concat<'a>(parts: impl IntoIterator<Item = &'a [f32]> + Clone) -> ParamBuffer {
        let len = parts.clone().into_iter().map(<[f32]>::len).sum();
        ParamBuffer::filled(len, |storage| {
            for part in parts {
                storage.extend_from_slice(part);
            }
        })
    }

    /// A buffer of `len` entries that `fill` appends to an aligned, advised, empty allocation.
    fn filled(len: usize, fill: impl FnOnce(&mut Vec<f32>)) -> ParamBuffer {
        let pad = LINE / size_of::<f32>();
        let mut storage: Vec<f32> = Vec::with_capacity(len + pad);
        advise_huge_pages(&storage);
        let misalign = (storage.as_ptr() as usize % LINE) / size_of::<f32>();
        let start = (pad - misalign) % pad;
        storage.resize(start, 0.0);
        fill(&mut storage);
        assert_eq!(
            storage.len(),
            start + len,
            "fill appends exactly len entries"
        );
        ParamBuffer {
            storage,
            start,
            len,
        }
    }
}

impl Deref for ParamBuffer {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.storage[self.start..self.start + self.len]
    }
}

impl DerefMut for ParamBuffer {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// Asks Linux to back the whole 2 MiB pages inside `v`'s allocation with huge pages. Called before
/// the first write, so the pages are huge from their first fault. Advice only: where the kernel
/// declines (or on other systems) nothing changes but speed.
fn advise_huge_pages(v: &Vec<f32>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE_PAGE: usize = 2 << 20;
        let begin = v.as_ptr() as usize;
        let end = begin + v.capacity() * size_of::<f32>();
        let (first, last) = (
            begin.div_ceil(HUGE_PAGE) * HUGE_PAGE,
            end / HUGE_PAGE * HUGE_PAGE,
        );
        if last > first {
            // SAFETY: the range lies inside `v`'s own allocation, and MADV_HUGEPAGE changes how
            // the kernel backs it, never its contents.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenates_in_order_on_a_line_boundary() {
        let (a, b) = (vec![1.0f32, 2.0, 3.0], vec![4.0f32; 1 << 20]);
        let mut buf = ParamBuffer::concat([a.as_slice(), b.as_slice()]);
        assert_eq!(buf.len(), 3 + (1 << 20));
        assert_eq!(&buf[..4], &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(buf.as_ptr() as usize % LINE, 0);
        buf[0] = 9.0;
        assert_eq!(buf[0], 9.0);
        assert!(ParamBuffer::concat([&[][..]]).is_empty());
        let zeros = ParamBuffer::zeros(1 << 20);
        assert_eq!(zeros.len(), 1 << 20);
        assert!(zeros.iter().all(|&x| x == 0.0));
        assert_eq!(zeros.as_ptr() as usize % LINE, 0);
    }
}
