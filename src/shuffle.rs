//! The permutations of SPEC "Batches" and the random split, fast on large data.
//!
//! `rand`'s `SliceRandom::shuffle` swaps each position `i` with a random earlier one `j`, and on
//! 20 million ratings almost every `j` is a trip to memory (0.9–1.1 s per epoch on ML-25M, as long
//! as the sparse training steps themselves). The `j`s come from the generator alone, never from
//! the data, so they can be drawn ahead of time: [`shuffle`] draws them `AHEAD` swaps early and
//! prefetches their targets, then makes exactly the same swaps in the same order. The permutation
//! is the one `rand` gives, bit for bit (a test holds it to that), so models, checkpoints and
//! the GPU backend see the same batches as before.

use rand::Rng;
use rand::seq::SliceRandom;

use crate::prefetch::prefetch;

/// How many swaps ahead the targets are drawn and prefetched.
const AHEAD: usize = 32;

/// Shuffles `slice` exactly as `slice.shuffle(rng)` does with `rand` 0.9.
pub fn shuffle<T, R: Rng>(slice: &mut [T], rng: &mut R) {
    let n = slice.len();
    if n < 2 * AHEAD || n >= u32::MAX as usize {
        // Short slices gain nothing; rand takes another path at and above `u32::MAX`.
        slice.shuffle(rng);
        return;
    }
    let mut chooser = IncreasingUniform::new(rng);
    let mut ahead = [0u32; AHEAD];
    for slot in &mut ahead {
        *slot = chooser.next_index();
    }
    for i in 0..n {
        let slot = &mut ahead[i % AHEAD];
        let j = *slot as usize;
        if i + AHEAD < n {
            *slot = chooser.next_index();
            prefetch(&slice[*slot as usize]);
        }
        slice.swap(i, j);
    }
}

/// `rand`'s private `IncreasingUniform` (rand 0.9.5, `seq/increasing_uniform.rs`), started at
/// `n = 0` as a full shuffle starts it: each call returns a uniform index in `[0, n]` and then
/// increments `n`, drawing the generator in the same way and the same order.
struct IncreasingUniform<'a, R: Rng> {
    rng: &'a mut R,
    n: u32,
    /// A uniform number in `[0, (n + 1) * (n + 2) * .. * (n + chunk_remaining))`.
    chunk: u32,
    chunk_remaining: u8,
}

impl<'a, R: Rng> IncreasingUniform<'a, R> {
    fn new(rng: &'a mut R) -> Self {
        // At n = 0 the first index is always 0 and needs no random bits.
        IncreasingUniform {
            rng,
            n: 0,
            chunk: 0,
            chunk_remaining: 1,
        }
    }

    #[inline]
    fn next_index(&mut self) -> u32 {
        let next_n = self.n + 1;
        let next_chunk_remaining = self.chunk_remaining.checked_sub(1).unwrap_or_else(|| {
            let (bound, remaining) = bound_u32(next_n);
            self.chunk = self.rng.random_range(..bound);
            remaining - 1
        });
        let result = if next_chunk_remaining == 0 {
            self.chunk
        } else {
            let r = self.chunk % next_n;
            self.chunk /= next_n;
            r
        };
        self.chunk_remaining = next_chunk_remaining;
        self.n = next_n;
        result
    }
}

/// The largest product `m * (m + 1) * .. * (m + count - 1)` that fits a `u32`, and `count`.
fn bound_u32(m: u32) -> (u32, u8) {
    let mut product = m;
    let mut current = m + 1;
    loop {
        match u32::checked_mul(product, current) {
            Some(p) => {
                product = p;
                current += 1;
            }
            None => return (product, (current - m) as u8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{RngStream, seeded_rng};

    #[test]
    fn gives_rands_permutation_exactly() {
        for n in [0, 1, 2, 3, 63, 64, 65, 1000, 123_457] {
            for seed in [0, 7, 42] {
                let mut ours: Vec<u32> = (0..n).collect();
                let mut theirs = ours.clone();
                let stream = RngStream::Epoch(seed);
                let mut ours_rng = seeded_rng(seed, stream);
                let mut theirs_rng = seeded_rng(seed, stream);
                shuffle(&mut ours, &mut ours_rng);
                theirs.shuffle(&mut theirs_rng);
                assert_eq!(ours, theirs, "n = {n}, seed = {seed}");
                // The generators must be left in the same place, too.
                assert_eq!(ours_rng.random::<u64>(), theirs_rng.random::<u64>());
            }
        }
    }
}
