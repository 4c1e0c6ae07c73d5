//! SPEC "Batches": every epoch draws a new permutation of the training ratings from the seed and the
//! epoch number and cuts it into batches of `B`, dropping the short last one by default.

use crate::data::Ratings;
use crate::rng::{RngStream, seeded_rng};
use crate::shuffle::shuffle;

/// The order in which epoch `epoch` (from 0) visits the `n_train` training ratings.
pub fn epoch_order(n_train: usize, seed: u64, epoch: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n_train as u32).collect();
    shuffle(
        &mut order,
        &mut seeded_rng(seed, RngStream::Epoch(epoch as u64)),
    );
    order
}

/// How many batches one epoch has.
pub fn batches_per_epoch(n_train: usize, batch_size: usize, drop_last: bool) -> usize {
    if drop_last {
        n_train / batch_size
    } else {
        n_train.div_ceil(batch_size)
    }
}

/// The rows (of `P` and `Q`, `K + 1` floats each with the bias) that one block of `--order blocks`
/// may hold: 2 MiB, one core's L2 cache on the machines of BENCHMARKS.md, so that the rows a
/// batch touches stay there between its passes and from one batch of the block to the next.
pub const BLOCK_BYTES: usize = 2 << 20;

/// The most ranges per side: `S^2` blocks stay below 2^24 (the random streams rely on it).
pub const MAX_BLOCK_RANGES: usize = 4096;

/// `S` of `--order blocks`: the fewest contiguous ranges per side such that a block's rows,
/// `(U + I) / S` rows of `(K + 1)` floats, fit in [`BLOCK_BYTES`]; at most `min(U, I)` and
/// [`MAX_BLOCK_RANGES`]. ML-25M at K = 64 gets `S = 28` (784 blocks of about 25,500 training
/// ratings), ML-100K gets 1.
pub fn block_ranges(users: usize, items: usize, factors: usize) -> usize {
    let bytes = (users + items) as u64 * (factors as u64 + 1) * 4;
    let wanted = bytes.div_ceil(BLOCK_BYTES as u64).max(1) as usize;
    wanted.min(users.min(items).max(1)).min(MAX_BLOCK_RANGES)
}

/// The block of a rating: user range `u * S / U` and item range `i * S / I`, as `a * S + b`.
fn block_of(user: u32, item: u32, ranges: usize, users: usize, items: usize) -> usize {
    let a = (user as u64 * ranges as u64 / users as u64) as usize;
    let b = (item as u64 * ranges as u64 / items as u64) as usize;
    a * ranges + b
}

/// The ratings grouped by block, stably: `by_block[first[b]..first[b + 1]]` are block `b`'s
/// ratings (indices into the columns) in their order there.
struct BlockGroups {
    first: Vec<usize>,
    by_block: Vec<u32>,
}

/// A stable counting sort of the ratings by block (see [`block_of`]).
fn group_by_block(
    users_of: &[u32],
    items_of: &[u32],
    (users, items, factors): (usize, usize, usize),
) -> BlockGroups {
    let ranges = block_ranges(users, items, factors);
    let blocks = ranges * ranges;
    // Each row's range, looked up rather than divided for each of the N ratings twice.
    let user_range: Vec<u32> = (0..users as u32)
        .map(|u| (block_of(u, 0, ranges, users, items) / ranges * ranges) as u32)
        .collect();
    let item_range: Vec<u32> = (0..items as u32)
        .map(|i| block_of(0, i, ranges, users, items) as u32)
        .collect();
    let block = |u: u32, i: u32| (user_range[u as usize] + item_range[i as usize]) as usize;
    let mut first = vec![0usize; blocks + 1];
    for (&u, &i) in users_of.iter().zip(items_of) {
        first[block(u, i) + 1] += 1;
    }
    for b in 0..blocks {
        first[b + 1] += first[b];
    }
    let mut next = first.clone();
    let mut by_block = vec![0u32; users_of.len()];
    for (n, (&u, &i)) in users_of.iter().zip(items_of).enumerate() {
        let at = &mut next[block(u, i)];
        by_block[*at] = n as u32;
        *at += 1;
    }
    BlockGroups { first, by_block }
}

/// The ratings stably sorted by block, for a run in `--order blocks`. [`block_epoch`] of the
/// sorted columns gives the very same batches (each block's ratings keep their order, so each
/// block's permutation picks the same ratings), but its indices are then contiguous within a
/// block: a backend that gathers a batch's ratings by index reads one block's few hundred KB
/// instead of the whole training set at random, which on ML-25M cost as much as the training steps.
pub fn sorted_by_block(ratings: &Ratings, shape: (usize, usize, usize)) -> Ratings {
    let BlockGroups { by_block, .. } = group_by_block(&ratings.users, &ratings.items, shape);
    let pick = |column: &[u32]| by_block.iter().map(|&n| column[n as usize]).collect();
    Ratings {
        users: pick(&ratings.users),
        items: pick(&ratings.items),
        ratings: by_block
            .iter()
            .map(|&n| ratings.ratings[n as usize])
            .collect(),
        timestamps: ratings
            .timestamps
            .as_ref()
            .map(|t| by_block.iter().map(|&n| t[n as usize]).collect()),
    }
}

/// One epoch of `--order blocks`: the training ratings in batch order and where each batch starts.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockEpoch {
    /// Indices into the training ratings, block after block.
    pub order: Vec<u32>,
    /// `starts[s]..starts[s + 1]` are batch `s`'s entries of `order`; one more than the batches.
    pub starts: Vec<usize>,
}

/// SPEC "Scale", block order, for epoch `epoch` (from 0): users and items cut into
/// [`block_ranges`] contiguous ranges of dense index each; the non-empty blocks visited in an order
/// drawn from `(seed, epoch)`; each block's ratings (in training order) permuted from
/// `(seed, epoch, block)` and cut into batches of `batch_size`, the block's last batch holding what
/// remains (at least one rating; it is kept, so every training rating is trained on every epoch).
/// The number of batches, `sum over blocks of ceil(n_block / B)`, is the same every epoch.
pub fn block_epoch(
    users_of: &[u32],
    items_of: &[u32],
    (users, items, factors): (usize, usize, usize),
    batch_size: usize,
    seed: u64,
    epoch: usize,
) -> BlockEpoch {
    use rayon::prelude::*;
    let ranges = block_ranges(users, items, factors);
    let blocks = ranges * ranges;
    let BlockGroups {
        first,
        mut by_block,
    } = group_by_block(users_of, items_of, (users, items, factors));
    // The visiting order of the non-empty blocks.
    let mut visit: Vec<u32> = (0..blocks as u32)
        .filter(|&b| first[b as usize + 1] > first[b as usize])
        .collect();
    shuffle(
        &mut visit,
        &mut seeded_rng(seed, RngStream::BlockOrder(epoch as u64)),
    );
    // Each block's permutation, independently (so in parallel), then the blocks in visiting order.
    let mut chunks: Vec<&mut [u32]> = Vec::with_capacity(blocks);
    let mut rest = by_block.as_mut_slice();
    for b in 0..blocks {
        let (chunk, tail) = rest.split_at_mut(first[b + 1] - first[b]);
        chunks.push(chunk);
        rest = tail;
    }
    chunks.par_iter_mut().enumerate().for_each(|(b, chunk)| {
        let stream = RngStream::Block {
            epoch: epoch as u64,
            block: b as u64,
        };
        shuffle(chunk, &mut seeded_rng(seed, stream));
    });
    let mut order = Vec::with_capacity(users_of.len());
    let mut starts = vec![0usize];
    for &b in &visit {
        let chunk = &by_block[first[b as usize]..first[b as usize + 1]];
        for batch in chunk.chunks(batch_size) {
            order.extend_from_slice(batch);
            starts.push(order.len());
        }
    }
    BlockEpoch { order, starts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ranges_fit_the_rows_of_a_block_in_the_cache() {
        assert_eq!(block_ranges(943, 1682, 50), 1);
        let s = block_ranges(162_541, 59_047, 64);
        assert_eq!(s, 28);
        assert!((162_541 + 59_047) / s * 65 * 4 <= BLOCK_BYTES);
        assert_eq!(block_ranges(3, 1_000_000, 64), 3, "at most min(U, I)");
    }

    #[test]
    fn the_block_sorted_ratings_give_the_same_batches() {
        let (users, items, factors) = (40usize, 30usize, 300_000usize);
        let n = 3000u32;
        let ratings = Ratings {
            users: (0..n).map(|n| n * 7 % users as u32).collect(),
            items: (0..n).map(|n| n * 13 % items as u32).collect(),
            ratings: (0..n).map(|n| n as f32).collect(),
            timestamps: None,
        };
        let shape = (users, items, factors);
        let sorted = sorted_by_block(&ratings, shape);
        assert_ne!(
            sorted.ratings, ratings.ratings,
            "the test data is not in block order"
        );
        for epoch in 0..3 {
            let plan = block_epoch(&ratings.users, &ratings.items, shape, 16, 9, epoch);
            let again = block_epoch(&sorted.users, &sorted.items, shape, 16, 9, epoch);
            assert_eq!(again.starts, plan.starts);
            // The ratings (unique values here) of every batch, in batch order.
            let picked = |r: &Ratings, order: &[u32]| -> Vec<f32> {
                order.iter().map(|&n| r.ratings[n as usize]).collect()
            };
            assert_eq!(picked(&sorted, &again.order), picked(&ratings, &plan.order));
            // Each batch reads one contiguous stretch of the sorted columns.
            for w in again.starts.windows(2) {
                let batch = &again.order[w[0]..w[1]];
                let (lo, hi) = (batch.iter().min().unwrap(), batch.iter().max().unwrap());
                assert!(hi - lo < 100, "a batch reads one block's stretch");
            }
        }
    }

    #[test]
    fn every_batch_lies_in_one_block_and_every_rating_is_trained_once() {
        // 40 users x 30 items at K = 300,000: S = 41 would be wanted; min(U, I) = 30.
        let (users, items, factors) = (40usize, 30usize, 300_000usize);
        let ranges = block_ranges(users, items, factors);
        assert_eq!(ranges, 30);
        let n = 5000;
        let users_of: Vec<u32> = (0..n).map(|n| (n * 7 % users) as u32).collect();
        let items_of: Vec<u32> = (0..n).map(|n| (n * 13 % items) as u32).collect();
        let plan = block_epoch(&users_of, &items_of, (users, items, factors), 16, 5, 0);
        let mut seen = plan.order.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..n as u32).collect::<Vec<_>>());
        assert_eq!(*plan.starts.last().unwrap(), n);
        for w in plan.starts.windows(2) {
            let batch = &plan.order[w[0]..w[1]];
            assert!(!batch.is_empty() && batch.len() <= 16);
            let block = |&r: &u32| {
                block_of(
                    users_of[r as usize],
                    items_of[r as usize],
                    ranges,
                    users,
                    items,
                )
            };
            assert!(batch.iter().all(|r| block(r) == block(&batch[0])));
        }
        // The same seed and epoch give the same plan; another epoch another order, same batches.
        let again = block_epoch(&users_of, &items_of, (users, items, factors), 16, 5, 0);
        assert_eq!(again, plan);
        let next = block_epoch(&users_of, &items_of, (users, items, factors), 16, 5, 1);
        assert_ne!(next.order, plan.order);
        assert_eq!(next.starts.len(), plan.starts.len());
    }
}
