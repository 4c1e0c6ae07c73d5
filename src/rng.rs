//! Every random draw in the engine comes from one seed, split into independent streams so that
//! changing, say, the number of epochs never changes the initial parameters or the split.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a random stream is used for; each has its own ChaCha stream for the same seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RngStream {
    /// The initial parameters.
    Init,
    /// The random train/validation split.
    Split,
    /// The permutation of training ratings of one epoch (counted from 0).
    Epoch(u64),
    /// The synthetic data generator.
    Synthetic,
    /// The order in which epoch `e` of `--order blocks` visits the blocks.
    BlockOrder(u64),
    /// The permutation of one block's ratings in one epoch of `--order blocks`.
    Block { epoch: u64, block: u64 },
}

impl RngStream {
    fn id(self) -> u64 {
        match self {
            RngStream::Init => 1,
            RngStream::Split => 2,
            RngStream::Synthetic => 3,
            RngStream::Epoch(epoch) => 1_000 + epoch,
            // Epochs stay below 2^20 and blocks below 2^24 (`train::batches`), so these ids
            // never meet each other or the ones above.
            RngStream::BlockOrder(epoch) => (1 << 62) | epoch,
            RngStream::Block { epoch, block } => (1 << 63) | (epoch << 24) | block,
        }
    }
}

/// The generator for `stream` under `seed`; the same pair always gives the same numbers.
pub fn seeded_rng(seed: u64, stream: RngStream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream.id());
    rng
}
