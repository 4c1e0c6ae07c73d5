//! The sparse `sgd` step at scale: the same arithmetic as the reference kernels
//! (`gather`, `dot`, `bias_add`, `sigmoid_range`, `mse_grad`, `scatter_add`, `scatter_add_bias`,
//! `sgd`), entry for entry and in the same order, rearranged so that each row of `P` makes one
//! trip from memory per batch, two threads share the work, and no step touches memory
//! proportional to `U` or `I`.
//!
//! On ML-25M the factor tables are far larger than the caches, so the cost of a step is the number
//! of random rows it fetches. The step groups the batch's entries by user and by item
//! ([`Groups`], a stable radix sort by row, so rows come in ascending order) and then makes two
//! passes:
//! 1. **Users**, in parallel over chunks of distinct users (the item groups are built meanwhile, by
//!    whichever thread is free). The forward pass of the chunk's entries, eight at a time, leaving
//!    `g`, the user's slot and the squared error of each entry in one record ([`GradSlot`]); as soon
//!    as it is through a user's entries, a copy of the user's row `P[u]` as it was (into
//!    `old_user_rows`), the gradient `sum g_b * Q[i_b]`, and the update of `P[u]` and `bu[u]` in
//!    place, while the row and its items' rows are still in L1.
//! 2. **Items**, in parallel over chunks of distinct items: the gradient `sum g_b * P_old[u_b]`,
//!    read from the compact copy (which the caches hold) rather than from `P`, then the update of
//!    `Q[i]` and `bi[i]`; alongside, the batch loss.
//!
//! Rows the next iterations need are prefetched, so several trips to memory overlap. Where the CPU
//! has AVX2 both passes run a copy of themselves compiled for it, and the dot products of eight
//! ratings go through [`simd::dot8`].
//!
//! Why each rearrangement keeps every bit (SPEC "Loss and gradients", "Optimisers"):
//! - **Forward** values are independent per rating; each `x_b` is still summed in `j` order from 0.
//!   Eight ratings are interleaved so that their eight dependency chains overlap in the CPU.
//! - **Gradients**: a row's gradient is the sum of its contributions *in batch order* starting from
//!   0, exactly what the in-order scatter-add leaves in that row: the grouping keeps batch order
//!   within a row. All gradients are taken at the parameters before the step: a user's row moves
//!   only after its own gradient is complete, no other rating reads it in pass 1 (each user belongs
//!   to one chunk), and pass 2 reads the copies. `Q` and `bi` move only in pass 2, after every
//!   rating has been through the forward pass.
//! - **Update**: each distinct row moves once, `p = p - lr * (g + wd * p)`.
//! - **Loss**: the batch's squared errors are summed in batch order in f32 on one thread, as
//!   `mse_grad` does.

use rayon::prelude::*;

use super::kernels;
use super::param_buffer::ParamBuffer;
use super::simd::{self, LANES};
use crate::model::{apply_y_range, sigmoid};
use crate::prefetch::{prefetch, prefetch_bytes, prefetch_slice};
use crate::train::StepHyper;

/// Distinct users per parallel task of pass 1: enough work (about 1.4 ratings each on ML-25M) to
/// dwarf the cost of a task.
const USER_CHUNK: usize = 512;

/// Distinct items per parallel task of pass 2: smaller, because popular items carry many ratings.
const ITEM_CHUNK: usize = 128;

/// Batches smaller than this run every pass on the calling thread: a fork-join costs microseconds,
/// which a small batch does not repay. Measured on the ML-25M shape with 2 threads (BENCHMARKS.md):
/// at B = 512 two threads lost (5.3-5.7 against 6.1-6.8 M ratings/s), at B = 1,024 they won
/// (9.6-10.2 against 5.2-6.5). The result is the same either way.
const PARALLEL_MIN_BATCH: usize = 1024;

/// How many entries (or rows) ahead the passes prefetch: far enough to cover a trip to memory,
/// near enough that the lines are still in L1 when their turn comes.
const PREFETCH_AHEAD: usize = 16;

/// How many items ahead pass 2 prefetches an item's row.
const ITEMS_AHEAD: usize = 4;

/// The entries of a batch grouped by row (a user or an item), stably: the batch's distinct rows in
/// ascending order ("slots"), and for each slot its batch entries in batch order. Ascending rows
/// make the passes walk `P` and `Q` from low addresses to high, which memory serves faster than
/// a random order. Every buffer is allocated once for `B`; a batch uses the front of each.
#[derive(Debug, Default)]
struct Groups {
    /// `rows - 1` (the largest row index), which bounds the radix sort's digits.
    max_row: u32,
    /// How many slots the current batch has.
    slots: usize,
    /// The row of each slot, ascending; `slots` of them.
    distinct: Vec<u32>,
    /// `entries[offsets[s]..offsets[s + 1]]` are slot `s`'s batch entries; `slots + 1` of them.
    offsets: Vec<u32>,
    /// Batch entries grouped by slot, in batch order within a slot; `B`.
    entries: Vec<u32>,
    /// The slot of each entry, in the order of `entries`; `B` (kept only where asked for).
    grouped_slots: Vec<u32>,
    /// Scratch of the radix sort: `(row << 32) | entry`, two buffers of `B`, and the digit counts
    /// of every pass.
    sort_keys: [Vec<u64>; 2],
    counts: Vec<u32>,
    /// The row of each entry, and where asked for its other index and its rating, in the order of
    /// `entries`, so that pass 1 reads them in sequence rather than at random.
    grouped_rows: Vec<u32>,
    grouped_others: Vec<u32>,
    grouped_ratings: Vec<f32>,
}

/// Bits per radix-sort digit: 2,048 counters fit in L1, and two passes cover 4 million rows.
const RADIX_BITS: u32 = 11;

/// Row spans up to `2^13` sort in one pass: 8,192 counters (32 KiB) still mostly stay in L1, and
/// one pass of them is cheaper than two of 2,048. A block of `--order blocks` on ML-25M spans
/// about 5,800 users and 2,100 items.
const SINGLE_PASS_BITS: u32 = 13;

/// Digit counters for the sort of any span: one pass of up to `2^13`, or up to three passes of
/// `2^11` (32-bit rows).
const COUNTERS: usize = 1 << SINGLE_PASS_BITS;
const _: () = assert!(COUNTERS >= 3 << RADIX_BITS);

/// What [`Groups::build`] keeps besides the grouping itself.
#[derive(Clone, Copy)]
enum Keep<'a> {
    /// Nothing more (the item groups).
    Nothing,
    /// Each entry's slot, other index and rating in grouped order (the user groups).
    SlotsAnd(&'a [u32], &'a [f32]),
}

impl Groups {
    fn new(rows: usize, batch_size: usize) -> Groups {
        let max_row = rows.saturating_sub(1) as u32;
        Groups {
            max_row,
            slots: 0,
            distinct: vec![0; batch_size + 1],
            offsets: vec![0; batch_size + 2],
            entries: vec![0; batch_size],
            grouped_slots: vec![0; batch_size],
            sort_keys: [vec![0; batch_size], vec![0; batch_size]],
            counts: vec![0; COUNTERS],
            grouped_rows: vec![0; batch_size],
            grouped_others: vec![0; batch_size],
            grouped_ratings: vec![0.0; batch_size],
        }
    }

    /// The radix sort's passes and bits per digit for row offsets up to `span`: a single pass
    /// up to [`SINGLE_PASS_BITS`], else digits of at most [`RADIX_BITS`].
    fn digits(span: u32) -> (usize, u32) {
        let bits = (u32::BITS - span.leading_zeros()).max(1);
        if bits <= SINGLE_PASS_BITS {
            return (1, bits);
        }
        let passes = bits.div_ceil(RADIX_BITS);
        (passes as usize, bits.div_ceil(passes))
    }

    /// Groups the entries of `indices` by row: a stable least-significant-digit radix sort of the
    /// entries by row, then one scan for the slots and what `keep` asks for. The digits are those
    /// of `row - lowest`, so a batch whose rows lie in a narrow range (every batch of
    /// `--order blocks`) sorts in one pass.
    fn build(&mut self, indices: &[u32], keep: Keep<'_>) {
        let n = indices.len();
        let (lowest, highest) = indices
            .iter()
            .fold((u32::MAX, 0), |(lo, hi), &row| (lo.min(row), hi.max(row)));
        let lowest = lowest.min(highest);
        let (passes, digit_bits) = Groups::digits((highest - lowest).min(self.max_row));
        let radix = 1usize << digit_bits;
        let mask = radix as u32 - 1;
        let digit = |row: u32, shift: u32| ((row - lowest) >> shift) & mask;

        // The digit counts of every pass in one read, then each pass's starting positions.
        let counts = &mut self.counts[..passes * radix];
        counts.fill(0);
        for &row in indices {
            for pass in 0..passes {
                counts[pass * radix + digit(row, pass as u32 * digit_bits) as usize] += 1;
            }
        }
        for pass_counts in counts.chunks_exact_mut(radix) {
            let mut start = 0;
            for count in pass_counts.iter_mut() {
                (*count, start) = (start, start + *count);
            }
        }

        // Stable scatters: equal digits keep their order, so each row's entries stay in batch
        // order. The first pass reads the indices themselves.
        let [first, second] = &mut self.sort_keys;
        let (mut from, mut to) = (&mut first[..n], &mut second[..n]);
        for pass in 0..passes {
            let shift = pass as u32 * digit_bits;
            let starts = &mut counts[pass * radix..][..radix];
            if pass == 0 {
                for (b, &row) in indices.iter().enumerate() {
                    let at = &mut starts[digit(row, shift) as usize];
                    from[*at as usize] = (u64::from(row) << 32) | b as u64;
                    *at += 1;
                }
            } else {
                for &key in from.iter() {
                    let at = &mut starts[digit((key >> 32) as u32, shift) as usize];
                    to[*at as usize] = key;
                    *at += 1;
                }
                std::mem::swap(&mut from, &mut to);
            }
        }

        // Slots: a new one wherever the row changes, written without a branch (about half the
        // entries start a slot, at random); the writes at index `slots` stay provisional until
        // the row changes.
        let mut slots = 0usize;
        let mut previous = None;
        for (at, &key) in from.iter().enumerate() {
            let (row, b) = ((key >> 32) as u32, key as u32 as usize);
            self.distinct[slots] = row;
            self.offsets[slots] = at as u32;
            slots += usize::from(previous != Some(row));
            previous = Some(row);
            self.entries[at] = b as u32;
            self.grouped_rows[at] = row;
            if let Keep::SlotsAnd(others, ratings) = keep {
                self.grouped_slots[at] = (slots - 1) as u32;
                self.grouped_others[at] = others[b];
                self.grouped_ratings[at] = ratings[b];
            }
        }
        self.offsets[slots] = n as u32;
        self.slots = slots;
    }

    fn len(&self) -> usize {
        self.slots
    }

    /// The rows of the slots, ascending.
    fn distinct(&self) -> &[u32] {
        &self.distinct[..self.slots]
    }

    /// The batch entries of slots `slots`.
    fn entries_of(&self, slots: std::ops::Range<usize>) -> &[u32] {
        &self.entries[self.offsets[slots.start] as usize..self.offsets[slots.end] as usize]
    }
}

/// Buffers of the sparse step, allocated once for `B` and reused by every batch.
#[derive(Debug, Default)]
pub(crate) struct SparseSgd {
    /// `dL/dx`, the user slot and the squared error of each batch entry, `B`.
    grad_slots: Vec<GradSlot>,
    /// `g` in the order of the user groups' entries, `B`.
    grouped_g: Vec<f32>,
    users: Groups,
    items: Groups,
    /// `P[u]` before the step, one row of `K` per user slot.
    old_user_rows: ParamBuffer,
    avx2: bool,
}

/// The four parameter tensors of the step.
pub(crate) struct Tensors<'a> {
    pub user_factors: &'a mut [f32],
    pub item_factors: &'a mut [f32],
    pub user_bias: &'a mut [f32],
    pub item_bias: &'a mut [f32],
}

/// The optimiser state the step updates besides the parameters, in the layout of [`Tensors`].
pub(crate) enum OptimizerState<'a> {
    /// `sgd` keeps none.
    Sgd,
    /// `rowwise-adagrad`'s accumulators: one per row of `P` (`user_factors`, `U` entries), of `Q`
    /// (`I`), and one per bias entry (`U` and `I`).
    RowwiseAdagrad(Tensors<'a>),
    /// `sparse-adam`'s moments, each shaped as the parameters.
    SparseAdam { m: Tensors<'a>, v: Tensors<'a> },
}

/// The optimiser state of one side of the step (the users' rows or the items'), as a pass reaches
/// it: the same ownership as the side's parameter rows (a task touches its own rows' state only).
#[derive(Clone, Copy)]
enum SideState {
    Sgd,
    /// One accumulator per factor row and one per bias entry.
    Adagrad {
        rows: Shared,
        bias: Shared,
    },
    /// Adam's moments of the factor rows (`K` wide) and of the biases.
    Adam {
        m_rows: Shared,
        v_rows: Shared,
        m_bias: Shared,
        v_bias: Shared,
    },
}

impl OptimizerState<'_> {
    /// The users' side and the items' side.
    fn sides(&mut self) -> (SideState, SideState) {
        match self {
            OptimizerState::Sgd => (SideState::Sgd, SideState::Sgd),
            OptimizerState::RowwiseAdagrad(sums) => (
                SideState::Adagrad {
                    rows: Shared::new(sums.user_factors),
                    bias: Shared::new(sums.user_bias),
                },
                SideState::Adagrad {
                    rows: Shared::new(sums.item_factors),
                    bias: Shared::new(sums.item_bias),
                },
            ),
            OptimizerState::SparseAdam { m, v } => (
                SideState::Adam {
                    m_rows: Shared::new(m.user_factors),
                    v_rows: Shared::new(v.user_factors),
                    m_bias: Shared::new(m.user_bias),
                    v_bias: Shared::new(v.user_bias),
                },
                SideState::Adam {
                    m_rows: Shared::new(m.item_factors),
                    v_rows: Shared::new(v.item_factors),
                    m_bias: Shared::new(m.item_bias),
                    v_bias: Shared::new(v.item_bias),
                },
            ),
        }
    }
}

/// What every task of a step reads and never writes.
#[derive(Clone, Copy)]
struct Batch {
    k: usize,
    y_range: Option<(f32, f32)>,
    /// `2 / B` of the whole batch.
    scale: f32,
    /// `B` of the whole batch, for the L2 factor.
    len: usize,
    hyper: StepHyper,
    /// Whether the CPU has AVX2: the passes then run a copy of themselves compiled for it.
    avx2: bool,
}

impl SparseSgd {
    /// Buffers for batches of up to `batch_size` over `users` x `items` with `k` factors.
    pub(crate) fn new(users: usize, items: usize, k: usize, batch_size: usize) -> SparseSgd {
        SparseSgd {
            grad_slots: vec![GradSlot::default(); batch_size],
            grouped_g: vec![0.0; batch_size],
            users: Groups::new(users, batch_size),
            items: Groups::new(items, batch_size),
            old_user_rows: ParamBuffer::zeros(batch_size * k),
            avx2: simd::avx2_available(),
        }
    }

    /// One step of a sparse optimiser (`sgd`, `rowwise-adagrad` or `sparse-adam`, after `state`)
    /// on one batch; returns the batch loss at the parameters before the step. Runs its parallel
    /// passes on the current rayon pool. Indices must be `< U` and `< I`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &mut self,
        params: Tensors<'_>,
        mut state: OptimizerState<'_>,
        k: usize,
        users: &[u32],
        items: &[u32],
        ratings: &[f32],
        y_range: Option<(f32, f32)>,
        hyper: &StepHyper,
    ) -> f32 {
        let b_len = users.len();
        let parallel = b_len >= PARALLEL_MIN_BATCH && rayon::current_num_threads() > 1;
        let batch = Batch {
            k,
            y_range,
            scale: 2.0 / b_len as f32,
            len: b_len,
            hyper: *hyper,
            avx2: self.avx2,
        };
        let (user_state, item_state) = state.sides();
        let Tensors {
            user_factors,
            item_factors,
            user_bias,
            item_bias,
        } = params;

        // The user groups, then pass 1 (forward, user gradients and user updates, a chunk of users
        // per task); the item groups, which only pass 2 needs, are built alongside, so the thread
        // that finishes them joins pass 1 instead of waiting for the user groups.
        let (user_groups, item_groups) = (&mut self.users, &mut self.items);
        let per_rating = PerRating {
            grad_slots: Shared::new(&mut self.grad_slots[..b_len]),
            grouped_g: Shared::new(&mut self.grouped_g[..b_len]),
        };
        let old_user_rows = &mut self.old_user_rows;
        let (user_rows, user_bias) = (Shared::new(user_factors), Shared::new(user_bias));
        let (q, bi) = (&*item_factors, &*item_bias);
        let mut users_side = || {
            user_groups.build(users, Keep::SlotsAnd(items, ratings));
            let user_groups = &*user_groups;
            let pass = UserPass {
                batch,
                groups: user_groups,
                user_rows,
                user_bias,
                state: user_state,
                q,
                bi,
                out: per_rating,
            };
            let task = |c: usize, old_rows: &mut [f32]| {
                let slots = c * USER_CHUNK..((c + 1) * USER_CHUNK).min(user_groups.len());
                users_chunk(pass, slots, old_rows);
            };
            let old_user_rows = &mut old_user_rows[..user_groups.len() * k];
            if parallel {
                old_user_rows
                    .par_chunks_mut(USER_CHUNK * k)
                    .enumerate()
                    .for_each(|(c, old)| task(c, old));
            } else {
                old_user_rows
                    .chunks_mut(USER_CHUNK * k)
                    .enumerate()
                    .for_each(|(c, old)| task(c, old));
            }
        };
        let mut items_side = || item_groups.build(items, Keep::Nothing);
        if parallel {
            rayon::join(users_side, items_side);
        } else {
            users_side();
            items_side();
        }
        let (user_groups, item_groups) = (&self.users, &self.items);
        let old_user_rows = &self.old_user_rows[..user_groups.len() * k];

        // Pass 2: item gradients and item updates, alongside the in-order loss sum.
        let grad_slots = &self.grad_slots[..b_len];
        let pass = ItemPass {
            batch,
            groups: item_groups,
            item_rows: Shared::new(item_factors),
            item_bias: Shared::new(item_bias),
            state: item_state,
            grad_slots,
            old_user_rows,
        };
        let task = |c: usize| {
            let slots = c * ITEM_CHUNK..((c + 1) * ITEM_CHUNK).min(item_groups.len());
            items_chunk(pass, slots);
        };
        let loss_sum = || {
            let mut sum = 0.0f32;
            for entry in grad_slots {
                sum += entry.squared_error;
            }
            sum
        };
        let chunks = item_groups.len().div_ceil(ITEM_CHUNK);
        let sum = if parallel {
            rayon::join(|| (0..chunks).into_par_iter().for_each(task), loss_sum).1
        } else {
            (0..chunks).for_each(task);
            loss_sum()
        };
        sum / b_len as f32
    }
}

/// The per-rating outputs of the forward pass, which the tasks of pass 1 write at their own
/// entries.
#[derive(Clone, Copy)]
struct PerRating {
    grad_slots: Shared<GradSlot>,
    /// `g` in the order of the user groups' entries.
    grouped_g: Shared,
}

/// Pass 1 on the user slots `slots`: forward for their entries, then each user's gradient and
/// update. `old_rows` receives the users' rows as they were, one per slot.
fn users_chunk(pass: UserPass<'_>, slots: std::ops::Range<usize>, old_rows: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if pass.batch.avx2 {
        // SAFETY: `batch.avx2` is only true where the CPU reported AVX2.
        unsafe { users_chunk_avx2(pass, slots, old_rows) };
        return;
    }
    users_chunk_body(pass, slots, old_rows);
}

/// [`users_chunk`] compiled for AVX2 (8-wide loops; the same arithmetic, lane by lane).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn users_chunk_avx2(
    pass: UserPass<'_>,
    slots: std::ops::Range<usize>,
    old_rows: &mut [f32],
) {
    users_chunk_body(pass, slots, old_rows);
}

#[inline(always)]
fn users_chunk_body(pass: UserPass<'_>, slots: std::ops::Range<usize>, old_rows: &mut [f32]) {
    let (batch, groups) = (pass.batch, pass.groups);
    let range = groups.offsets[slots.start] as usize..groups.offsets[slots.end] as usize;
    let entries = &groups.entries[range.clone()];
    let (users, items) = (
        &groups.grouped_rows[range.clone()],
        &groups.grouped_others[range.clone()],
    );
    let ratings = &groups.grouped_ratings[range.clone()];
    let mut grad = vec![0.0f32; batch.k];
    let base = range.start;
    let mut next_slot = slots.start;
    let mut old_rows = old_rows.chunks_exact_mut(batch.k);

    // Forward, `LANES` ratings at a time (a single one for the last few). As soon as the forward
    // pass is through a user's entries, that user's gradient and update follow, while its row and
    // its items' rows are in L1. (Plain loops, no closures: a closure would be compiled once for
    // the baseline CPU instead of inside the AVX2 copy of this function.)
    let whole = entries.len() / LANES * LANES;
    let mut n0 = 0;
    while n0 < entries.len() {
        let lanes = if n0 < whole { LANES } else { 1 };
        for n in n0 + PREFETCH_AHEAD..(n0 + lanes + PREFETCH_AHEAD).min(entries.len()) {
            pass.prefetch_entry(users[n], items[n]);
        }
        if lanes == LANES {
            let pu: [&[f32]; LANES] = std::array::from_fn(|l| pass.p_row(users[n0 + l]));
            let qi: [&[f32]; LANES] = std::array::from_fn(|l| pass.q_row(items[n0 + l]));
            let dots = simd::dot8(pu, qi, batch.avx2);
            for (l, &dot) in dots.iter().enumerate() {
                let n = n0 + l;
                pass.finish(
                    entries[n] as usize,
                    base + n,
                    (users[n], items[n], ratings[n]),
                    dot,
                );
            }
        } else {
            let (pu, qi) = (pass.p_row(users[n0]), pass.q_row(items[n0]));
            let mut dot = 0.0f32;
            for j in 0..batch.k {
                dot += pu[j] * qi[j];
            }
            pass.finish(
                entries[n0] as usize,
                base + n0,
                (users[n0], items[n0], ratings[n0]),
                dot,
            );
        }
        n0 += lanes;
        while next_slot < slots.end && groups.offsets[next_slot + 1] as usize - base <= n0 {
            let old = old_rows.next().expect("one old row per slot");
            pass.update_user(next_slot, old, &mut grad);
            next_slot += 1;
        }
    }
    debug_assert_eq!(next_slot, slots.end);
}

/// What one task of pass 1 works on. Its methods are always inlined, so that they are compiled
/// for AVX2 inside [`users_chunk_avx2`] (a closure would be compiled once, for the baseline CPU).
///
/// SAFETY (for every `Shared` access in the methods): a task owns the user slots it was given, so
/// the rows of their users, and the entries listed under them, are touched by this task alone;
/// `P` and `bu` are read only at those rows, and each row is written only after its last read.
#[derive(Clone, Copy)]
struct UserPass<'a> {
    batch: Batch,
    groups: &'a Groups,
    user_rows: Shared,
    user_bias: Shared,
    state: SideState,
    q: &'a [f32],
    bi: &'a [f32],
    out: PerRating,
}

impl UserPass<'_> {
    #[inline(always)]
    fn p_row(&self, u: u32) -> &[f32] {
        unsafe { self.user_rows.row_ref(u as usize, self.batch.k) }
    }

    #[inline(always)]
    fn q_row(&self, i: u32) -> &[f32] {
        &self.q[i as usize * self.batch.k..][..self.batch.k]
    }

    /// Starts loading what a rating of user `u` and item `i` will read.
    #[inline(always)]
    fn prefetch_entry(&self, u: u32, i: u32) {
        self.user_rows.prefetch(u as usize, self.batch.k);
        self.user_bias.prefetch(u as usize, 1);
        prefetch_slice(self.q_row(i));
        prefetch(&self.bi[i as usize]);
    }

    /// `x`, `pred`, `(pred - r)^2` and `g` of batch entry `b` (at grouped position `at`), of user
    /// `u`, item `i` and rating `r`, whose dot product is `dot`, as `bias_add`, `sigmoid_range` and
    /// `mse_grad` compute them.
    #[inline(always)]
    fn finish(&self, b: usize, at: usize, (u, i, r): (u32, u32, f32), dot: f32) {
        let batch = self.batch;
        let x = dot + (unsafe { self.user_bias.row_ref(u as usize, 1)[0] } + self.bi[i as usize]);
        let pred = apply_y_range(x, batch.y_range);
        let err = pred - r;
        let g = match batch.y_range {
            Some((lo, hi)) => {
                let s = sigmoid(x);
                batch.scale * err * (hi - lo) * s * (1.0 - s)
            }
            None => batch.scale * err,
        };
        unsafe {
            self.out.grad_slots.row(b, 1)[0] = GradSlot {
                g,
                user_slot: self.groups.grouped_slots[at],
                squared_error: err * err,
            };
            self.out.grouped_g.row(at, 1)[0] = g;
        }
    }

    /// The gradient of the user in `slot` (its forward pass done), a copy of its row into `old`,
    /// and its update.
    #[inline(always)]
    fn update_user(&self, slot: usize, old: &mut [f32], grad: &mut [f32]) {
        let k = self.batch.k;
        let user = self.groups.distinct[slot] as usize;
        let row = unsafe { self.user_rows.row(user, k) };
        old.copy_from_slice(row);
        grad.fill(0.0);
        let mut bias_grad = 0.0f32;
        for at in self.groups.offsets[slot] as usize..self.groups.offsets[slot + 1] as usize {
            let g_b = unsafe { self.out.grouped_g.row_ref(at, 1)[0] };
            for (a, &o) in grad
                .iter_mut()
                .zip(self.q_row(self.groups.grouped_others[at]))
            {
                *a += g_b * o;
            }
            bias_grad += g_b;
        }
        let bias = unsafe { &mut self.user_bias.row(user, 1)[0] };
        let occurrences = self.groups.offsets[slot + 1] - self.groups.offsets[slot];
        let target = Row {
            index: user,
            occurrences,
            params: row,
            bias,
        };
        // SAFETY: this task owns the user's slot, so the user's state too.
        unsafe { update_row(self.batch, self.state, target, grad, bias_grad) };
    }
}

/// What the tasks of pass 2 work on: each owns the item slots it is given, so the rows of their
/// items are touched by that task alone.
#[derive(Clone, Copy)]
struct ItemPass<'a> {
    batch: Batch,
    groups: &'a Groups,
    item_rows: Shared,
    item_bias: Shared,
    state: SideState,
    grad_slots: &'a [GradSlot],
    /// `P[u]` before the step, one row per user slot.
    old_user_rows: &'a [f32],
}

/// Pass 2 on the item slots `slots`: each item's gradient from the old user rows, then its update.
fn items_chunk(pass: ItemPass<'_>, slots: std::ops::Range<usize>) {
    #[cfg(target_arch = "x86_64")]
    if pass.batch.avx2 {
        // SAFETY: `batch.avx2` is only true where the CPU reported AVX2.
        unsafe { items_chunk_avx2(pass, slots) };
        return;
    }
    items_chunk_body(pass, slots);
}

/// [`items_chunk`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn items_chunk_avx2(pass: ItemPass<'_>, slots: std::ops::Range<usize>) {
    items_chunk_body(pass, slots);
}

#[inline(always)]
fn items_chunk_body(pass: ItemPass<'_>, slots: std::ops::Range<usize>) {
    let ItemPass {
        batch,
        groups,
        item_rows,
        item_bias,
        state,
        grad_slots,
        old_user_rows,
    } = pass;
    let k = batch.k;
    let old_row = |slot: u32| &old_user_rows[slot as usize * k..][..k];
    let mut grad = vec![0.0f32; k];
    // The chunk's entries, item after item: prefetching runs across item boundaries, since most
    // items have only a few ratings in a batch.
    let all_entries = groups.entries_of(slots.clone());
    let mut n = 0;
    for slot in slots.clone() {
        let item = groups.distinct[slot];
        // SAFETY: this task owns the slots `slots`, so their items' rows are touched by it alone.
        let (row, bias) = unsafe {
            (
                item_rows.row(item as usize, k),
                item_bias.row(item as usize, 1),
            )
        };
        if let Some(&ahead) = groups.distinct().get(slot + ITEMS_AHEAD) {
            item_rows.prefetch(ahead as usize, k);
            item_bias.prefetch(ahead as usize, 1);
        }
        grad.fill(0.0);
        let mut bias_grad = 0.0f32;
        for &b in groups.entries_of(slot..slot + 1) {
            if let Some(&ahead) = all_entries.get(n + PREFETCH_AHEAD) {
                prefetch_slice(old_row(grad_slots[ahead as usize].user_slot));
            }
            n += 1;
            let GradSlot {
                g: g_b, user_slot, ..
            } = grad_slots[b as usize];
            for (a, &o) in grad.iter_mut().zip(old_row(user_slot)) {
                *a += g_b * o;
            }
            bias_grad += g_b;
        }
        let occurrences = groups.offsets[slot + 1] - groups.offsets[slot];
        let target = Row {
            index: item as usize,
            occurrences,
            params: row,
            bias: &mut bias[0],
        };
        // SAFETY: this task owns the item's slot, so the item's state too.
        unsafe { update_row(batch, state, target, &mut grad, bias_grad) };
    }
}

/// One row of a side as the update sees it: its index, `n_r`, its factors and its bias.
struct Row<'r> {
    index: usize,
    occurrences: u32,
    params: &'r mut [f32],
    bias: &'r mut f32,
}

/// The update of one factor row and its bias from their batch gradients `grad` and `bias_grad`
/// (the scatter-add sums): the L2 per occurrence first, `g = G + (2 λ n_r / B) p`
/// ([`kernels::l2_grad`]), then the optimiser's step, entry for entry the arithmetic of
/// [`kernels::sgd`], [`kernels::rowwise_adagrad`] or [`kernels::sparse_adam`].
///
/// # Safety
/// No other thread may touch row `target.index` of `state` meanwhile.
#[inline(always)]
unsafe fn update_row(
    batch: Batch,
    state: SideState,
    target: Row<'_>,
    grad: &mut [f32],
    mut bias_grad: f32,
) {
    let Row {
        index,
        occurrences,
        params: row,
        bias,
    } = target;
    let hyper = &batch.hyper;
    if hyper.l2 != 0.0 {
        let factor = kernels::l2_factor(hyper.l2, occurrences, batch.len);
        for (g, &p) in grad.iter_mut().zip(row.iter()) {
            *g += factor * p;
        }
        bias_grad += factor * *bias;
    }
    let bias = std::slice::from_mut(bias);
    let bias_grad = [bias_grad];
    match state {
        SideState::Sgd => {
            sgd_entries(hyper, row, grad);
            sgd_entries(hyper, bias, &bias_grad);
        }
        SideState::Adagrad {
            rows,
            bias: bias_sums,
        } => unsafe {
            adagrad_entries(hyper, row, grad, &mut rows.row(index, 1)[0]);
            adagrad_entries(hyper, bias, &bias_grad, &mut bias_sums.row(index, 1)[0]);
        },
        SideState::Adam {
            m_rows,
            v_rows,
            m_bias,
            v_bias,
        } => unsafe {
            let k = row.len();
            adam_entries(hyper, row, grad, m_rows.row(index, k), v_rows.row(index, k));
            adam_entries(
                hyper,
                bias,
                &bias_grad,
                m_bias.row(index, 1),
                v_bias.row(index, 1),
            );
        },
    }
}

/// `p = p - lr * (g + wd * p)` on each entry ([`kernels::sgd`]).
#[inline(always)]
fn sgd_entries(hyper: &StepHyper, params: &mut [f32], grad: &[f32]) {
    let (lr, wd) = (hyper.lr, hyper.wd);
    for (p, &g) in params.iter_mut().zip(grad) {
        *p -= lr * (g + wd * *p);
    }
}

/// One row of [`kernels::rowwise_adagrad`]: the accumulator `sum` gains the mean square of the
/// row's gradient ([`kernels::sum_of_squares`]), then each entry takes its step.
#[inline(always)]
fn adagrad_entries(hyper: &StepHyper, params: &mut [f32], grad: &[f32], sum: &mut f32) {
    *sum += kernels::sum_of_squares(grad) / params.len() as f32;
    let denominator = sum.sqrt() + hyper.eps;
    for (p, &g) in params.iter_mut().zip(grad) {
        *p -= hyper.lr * g / denominator;
    }
}

/// One row of [`kernels::sparse_adam`].
#[inline(always)]
fn adam_entries(hyper: &StepHyper, params: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32]) {
    let decay = 1.0 - hyper.lr * hyper.wd;
    let (beta1, beta2) = (hyper.beta1, hyper.beta2);
    let (one_minus_beta1, one_minus_beta2) = (1.0 - beta1, 1.0 - beta2);
    for (((p, &g), m), v) in params.iter_mut().zip(grad).zip(m).zip(v) {
        let decayed = *p * decay;
        *m = beta1 * *m + one_minus_beta1 * g;
        *v = beta2 * *v + one_minus_beta2 * g * g;
        *p = decayed - hyper.step_size * *m / ((*v / hyper.bias_correction2).sqrt() + hyper.eps);
    }
}

/// A buffer whose rows tasks read and write in place, each row by one task only.
struct Shared<T = f32> {
    data: *mut T,
    len: usize,
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Shared<T> {}

// SAFETY: a `Shared` is only used by the passes above, whose tasks touch disjoint rows (each task
// owns the distinct rows of its slots and the batch entries listed under them), so no two threads
// ever access the same entry.
unsafe impl<T: Send> Send for Shared<T> {}
unsafe impl<T: Sync> Sync for Shared<T> {}

impl<T> Shared<T> {
    fn new(data: &mut [T]) -> Shared<T> {
        Shared {
            data: data.as_mut_ptr(),
            len: data.len(),
        }
    }

    /// Row `row` of width `k`.
    ///
    /// # Safety
    /// No other reference to this row may be alive while the returned one is, on any thread.
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    unsafe fn row(&self, row: usize, k: usize) -> &mut [T] {
        assert!((row + 1) * k <= self.len, "row {row} is out of bounds");
        // SAFETY: in bounds (checked above); exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.data.add(row * k), k) }
    }

    /// Row `row` of width `k`, to read.
    ///
    /// # Safety
    /// No mutable reference to this row may be alive while the returned one is, on any thread.
    #[inline(always)]
    unsafe fn row_ref(&self, row: usize, k: usize) -> &[T] {
        assert!((row + 1) * k <= self.len, "row {row} is out of bounds");
        // SAFETY: in bounds (checked above); the absence of writers is the caller's promise.
        unsafe { std::slice::from_raw_parts(self.data.add(row * k), k) }
    }

    /// Prefetches row `row` of width `k` without making a reference to it (another task may own
    /// it).
    #[inline(always)]
    fn prefetch(&self, row: usize, k: usize) {
        if (row + 1) * k <= self.len {
            prefetch_bytes(self.data.wrapping_add(row * k).cast(), k * size_of::<T>());
        }
    }
}

/// What pass 1 leaves about one batch entry, side by side so that each entry costs one random
/// write in pass 1 and one random read in pass 2: its `g`, its user's slot and its squared error.
#[derive(Debug, Default, Clone, Copy)]
struct GradSlot {
    g: f32,
    user_slot: u32,
    /// `(pred - r)^2`, for the batch loss.
    squared_error: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grouping a stable sort by row gives: the distinct rows ascending, each with its batch
    /// entries in batch order.
    fn stable_groups(indices: &[u32]) -> Vec<(u32, Vec<u32>)> {
        let mut order: Vec<u32> = (0..indices.len() as u32).collect();
        order.sort_by_key(|&b| indices[b as usize]);
        let mut groups: Vec<(u32, Vec<u32>)> = Vec::new();
        for b in order {
            let row = indices[b as usize];
            match groups.last_mut() {
                Some((last, entries)) if *last == row => entries.push(b),
                _ => groups.push((row, vec![b])),
            }
        }
        groups
    }

    #[test]
    fn groups_match_a_stable_sort_for_narrow_and_wide_spans() {
        let mut state = 0x9e37_79b9u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        // (rows of the table, lowest row, span of the batch): one pass with an offset, the
        // largest single-pass span, two and three passes.
        let cases = [
            (162_541, 100_000, 5_800),
            (1 << 20, 12_345, 1 << SINGLE_PASS_BITS),
            (162_541, 0, 162_541),
            (u32::MAX as usize, 7, u32::MAX - 7),
        ];
        for (rows, lowest, span) in cases {
            let batch: Vec<u32> = (0..3000).map(|_| lowest + next() % span).collect();
            let mut groups = Groups::new(rows, batch.len());
            groups.build(&batch, Keep::Nothing);
            let got: Vec<(u32, Vec<u32>)> = (0..groups.len())
                .map(|s| (groups.distinct()[s], groups.entries_of(s..s + 1).to_vec()))
                .collect();
            assert_eq!(got, stable_groups(&batch), "rows {rows}, span {span}");
        }
    }
}
