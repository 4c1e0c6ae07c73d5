//! SPEC "Batches": every epoch draws a new permutation of the training ratings from the seed and the
//! epoch number and cuts it into batches of `B`, dropping the short last one by default.

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
