//! The sparse `sgd` step at scale: the same arithmetic as the reference kernels
//! (`gather`, `dot`, `bias_add`, `sigmoid_range`, `mse_grad`, `scatter_add`, `scatter_add_bias`,
//! `sgd`), entry for entry and in the same order, rearranged so that two threads share the work and
//! no step touches memory proportional to `U` or `I`.
//!
//! Why each rearrangement keeps every bit (SPEC "Loss and gradients", "Optimisers"):
//! - **Forward** (`x`, `pred`, `g` and the squared error per rating) is independent per rating,
//!   so it runs in parallel chunks of the batch; each `x_b` is still summed in `j` order from 0.
//!   Eight ratings are interleaved so their eight dependency chains overlap in the CPU.
//! - **Gradients**: each distinct row's gradient is the sum of its contributions *in batch order*
//!   starting from 0, exactly what the in-order scatter-add leaves in that row. The batch entries of
//!   each row are chained in batch order (`RowLists`), so one task sums one row alone, whichever
//!   thread runs it. Gradients go to a compact buffer (one slot per distinct row), so nothing of
//!   size `U x K` is zeroed or walked per batch.
//! - **Update**: every gradient is taken before any parameter moves (the update pass starts after
//!   the gradient pass has finished), and each distinct row moves once,
//!   `p = p - lr * (g + wd * p)`; rows are independent, so the pass runs in parallel.
//! - **Loss**: the batch's squared errors are summed in batch order in f32 on one thread, as
//!   `mse_grad` does.

use rayon::prelude::*;

use crate::model::{apply_y_range, sigmoid};
use crate::train::StepHyper;

/// No entry in a row chain.
const NONE: u32 = u32::MAX;

/// Ratings per parallel task of the forward pass: large enough to dwarf the cost of a task.
const FORWARD_CHUNK: usize = 2048;

/// Distinct rows per parallel task of the gradient and update passes.
const ROW_CHUNK: usize = 512;

/// Batches smaller than this run every pass on the calling thread: a fork-join costs microseconds,
/// which a small batch does not repay. The result is the same either way.
const PARALLEL_MIN_BATCH: usize = 4096;

/// The batch entries of each row, chained in batch order, and the distinct rows of the batch in
/// order of first occurrence. `first` and `last` are indexed by row (size `U` or `I`) but only the
/// batch's rows are ever read or reset.
#[derive(Debug, Default)]
struct RowLists {
    /// First batch entry of each row, or [`NONE`].
    first: Vec<u32>,
    /// Last batch entry of each row (meaningful only where `first` is set).
    last: Vec<u32>,
    /// The next batch entry of the same row, or [`NONE`]; `B` entries.
    next: Vec<u32>,
    distinct: Vec<u32>,
}

impl RowLists {
    fn new(rows: usize, batch_size: usize) -> RowLists {
        RowLists {
            first: vec![NONE; rows],
            last: vec![0; rows],
            next: vec![NONE; batch_size],
            distinct: Vec::with_capacity(batch_size),
        }
    }

    /// Chains the entries of `indices` by row, in batch order.
    fn build(&mut self, indices: &[u32]) {
        for &row in &self.distinct {
            self.first[row as usize] = NONE;
        }
        self.distinct.clear();
        for (b, &row) in indices.iter().enumerate() {
            let b = b as u32;
            let row = row as usize;
            self.next[b as usize] = NONE;
            if self.first[row] == NONE {
                self.first[row] = b;
                self.distinct.push(row as u32);
            } else {
                self.next[self.last[row] as usize] = b;
            }
            self.last[row] = b;
        }
    }
}

/// Buffers of the sparse step, allocated once for `B` and reused by every batch.
#[derive(Debug, Default)]
pub(crate) struct SparseSgd {
    /// `dL/dx`, `B`.
    g: Vec<f32>,
    /// `(pred - r)^2`, `B`.
    squared_error: Vec<f32>,
    users: RowLists,
    items: RowLists,
    /// `dL/dP` of the distinct users, one row of `K` per slot of `users.distinct`.
    user_factor_grads: Vec<f32>,
    item_factor_grads: Vec<f32>,
    user_bias_grads: Vec<f32>,
    item_bias_grads: Vec<f32>,
}

/// The four parameter tensors of the step.
pub(crate) struct Tensors<'a> {
    pub user_factors: &'a mut [f32],
    pub item_factors: &'a mut [f32],
    pub user_bias: &'a mut [f32],
    pub item_bias: &'a mut [f32],
}

impl SparseSgd {
    /// Buffers for batches of up to `batch_size` over `users` x `items` with `k` factors.
    pub(crate) fn new(users: usize, items: usize, k: usize, batch_size: usize) -> SparseSgd {
        SparseSgd {
            g: vec![0.0; batch_size],
            squared_error: vec![0.0; batch_size],
            users: RowLists::new(users, batch_size),
            items: RowLists::new(items, batch_size),
            user_factor_grads: vec![0.0; batch_size * k],
            item_factor_grads: vec![0.0; batch_size * k],
            user_bias_grads: vec![0.0; batch_size],
            item_bias_grads: vec![0.0; batch_size],
        }
    }

    /// One `sgd` step on one batch; returns the batch loss at the parameters before the step.
    /// Runs its parallel passes on the current rayon pool. Indices must be `< U` and `< I`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step(
        &mut self,
        params: Tensors<'_>,
        k: usize,
        users: &[u32],
        items: &[u32],
        ratings: &[f32],
        y_range: Option<(f32, f32)>,
        hyper: &StepHyper,
    ) -> f32 {
        let b_len = users.len();
        let parallel = b_len >= PARALLEL_MIN_BATCH && rayon::current_num_threads() > 1;
        let Tensors {
            user_factors,
            item_factors,
            user_bias,
            item_bias,
        } = params;
        let g = &mut self.g[..b_len];
        let squared_error = &mut self.squared_error[..b_len];
        let (user_lists, item_lists) = (&mut self.users, &mut self.items);

        // Forward, alongside the chaining of the batch's rows (which reads indices only).
        {
            let (p, q, bu, bi) = (&*user_factors, &*item_factors, &*user_bias, &*item_bias);
            let forward = |n0: usize, g: &mut [f32], sq: &mut [f32]| {
                let n1 = n0 + g.len();
                forward_chunk(
                    (p, q, bu, bi),
                    k,
                    (&users[n0..n1], &items[n0..n1], &ratings[n0..n1]),
                    y_range,
                    2.0 / b_len as f32,
                    g,
                    sq,
                );
            };
            if parallel {
                rayon::join(
                    || {
                        g.par_chunks_mut(FORWARD_CHUNK)
                            .zip(squared_error.par_chunks_mut(FORWARD_CHUNK))
                            .enumerate()
                            .for_each(|(c, (g, sq))| forward(c * FORWARD_CHUNK, g, sq))
                    },
                    || rayon::join(|| user_lists.build(users), || item_lists.build(items)),
                );
            } else {
                forward(0, g, squared_error);
                user_lists.build(users);
                item_lists.build(items);
            }
        }

        // Gradients, all at the parameters before the step, alongside the in-order loss sum.
        let (n_users, n_items) = (user_lists.distinct.len(), item_lists.distinct.len());
        let user_grads = (
            &mut self.user_factor_grads[..n_users * k],
            &mut self.user_bias_grads[..n_users],
        );
        let item_grads = (
            &mut self.item_factor_grads[..n_items * k],
            &mut self.item_bias_grads[..n_items],
        );
        let g = &*g;
        let mut loss_sum = 0.0f32;
        {
            let (p, q) = (&*user_factors, &*item_factors);
            // dL/dP[u] sums g_b * Q[i_b]; dL/dQ[i] sums g_b * P[u_b].
            let users_pass = || row_grads(user_lists, items, q, k, g, user_grads, parallel);
            let items_pass = || row_grads(item_lists, users, p, k, g, item_grads, parallel);
            let loss_pass = || {
                let mut sum = 0.0f32;
                for &e in squared_error.iter() {
                    sum += e;
                }
                sum
            };
            if parallel {
                let (_, (_, sum)) = rayon::join(users_pass, || rayon::join(items_pass, loss_pass));
                loss_sum = sum;
            } else {
                users_pass();
                items_pass();
                loss_sum += loss_pass();
            }
        }

        // Update: each distinct row once.
        let mut users_update = || {
            let grads = (&self.user_factor_grads[..], &self.user_bias_grads[..]);
            row_updates(
                user_factors,
                user_bias,
                &user_lists.distinct,
                grads,
                k,
                hyper,
                parallel,
            )
        };
        let mut items_update = || {
            let grads = (&self.item_factor_grads[..], &self.item_bias_grads[..]);
            row_updates(
                item_factors,
                item_bias,
                &item_lists.distinct,
                grads,
                k,
                hyper,
                parallel,
            )
        };
        if parallel {
            rayon::join(users_update, items_update);
        } else {
            users_update();
            items_update();
        }
        loss_sum / b_len as f32
    }
}

/// `x`, `pred`, `err^2` and `g` for a run of ratings, as `dot`, `bias_add`, `sigmoid_range` and
/// `mse_grad` compute them (`scale` is `2/B` of the whole batch).
fn forward_chunk(
    (p, q, bu, bi): (&[f32], &[f32], &[f32], &[f32]),
    k: usize,
    (users, items, ratings): (&[u32], &[u32], &[f32]),
    y_range: Option<(f32, f32)>,
    scale: f32,
    g: &mut [f32],
    squared_error: &mut [f32],
) {
    const LANES: usize = 8;
    let finish = |b: usize, dot: f32, g: &mut [f32], sq: &mut [f32]| {
        let (u, i) = (users[b] as usize, items[b] as usize);
        let x = dot + (bu[u] + bi[i]);
        let pred = apply_y_range(x, y_range);
        let err = pred - ratings[b];
        sq[b] = err * err;
        g[b] = match y_range {
            Some((lo, hi)) => {
                let s = sigmoid(x);
                scale * err * (hi - lo) * s * (1.0 - s)
            }
            None => scale * err,
        };
    };
    fn row(table: &[f32], index: u32, k: usize) -> &[f32] {
        &table[index as usize * k..][..k]
    }
    let whole = users.len() / LANES * LANES;
    for b0 in (0..whole).step_by(LANES) {
        let pu: [&[f32]; LANES] = std::array::from_fn(|l| row(p, users[b0 + l], k));
        let qi: [&[f32]; LANES] = std::array::from_fn(|l| row(q, items[b0 + l], k));
        let mut acc = [0.0f32; LANES];
        for j in 0..k {
            for l in 0..LANES {
                acc[l] += pu[l][j] * qi[l][j];
            }
        }
        for (l, &dot) in acc.iter().enumerate() {
            finish(b0 + l, dot, g, squared_error);
        }
    }
    for b in whole..users.len() {
        let (pu, qi) = (row(p, users[b], k), row(q, items[b], k));
        let mut dot = 0.0f32;
        for j in 0..k {
            dot += pu[j] * qi[j];
        }
        finish(b, dot, g, squared_error);
    }
}

/// The gradient of every distinct row of `lists`: `factor_grads[slot] = sum g_b * other[other_b]`
/// and `bias_grads[slot] = sum g_b` over the row's entries in batch order, from 0.
fn row_grads(
    lists: &RowLists,
    other_indices: &[u32],
    other: &[f32],
    k: usize,
    g: &[f32],
    (factor_grads, bias_grads): (&mut [f32], &mut [f32]),
    parallel: bool,
) {
    let chunk = |rows: &[u32], factor_grads: &mut [f32], bias_grads: &mut [f32]| {
        for ((&row, acc), bias_acc) in rows
            .iter()
            .zip(factor_grads.chunks_exact_mut(k))
            .zip(bias_grads.iter_mut())
        {
            acc.fill(0.0);
            let mut bias_sum = 0.0f32;
            let mut b = lists.first[row as usize];
            while b != NONE {
                let g_b = g[b as usize];
                let other_row = &other[other_indices[b as usize] as usize * k..][..k];
                for (a, &o) in acc.iter_mut().zip(other_row) {
                    *a += g_b * o;
                }
                bias_sum += g_b;
                b = lists.next[b as usize];
            }
            *bias_acc = bias_sum;
        }
    };
    if parallel {
        lists
            .distinct
            .par_chunks(ROW_CHUNK)
            .zip(factor_grads.par_chunks_mut(ROW_CHUNK * k))
            .zip(bias_grads.par_chunks_mut(ROW_CHUNK))
            .for_each(|((rows, f), b)| chunk(rows, f, b));
    } else {
        chunk(&lists.distinct, factor_grads, bias_grads);
    }
}

/// A tensor whose rows tasks update in place, each row by one task only.
#[derive(Clone, Copy)]
struct SharedRows {
    data: *mut f32,
    len: usize,
}

// SAFETY: `SharedRows` is only used by `row_updates`, whose tasks touch disjoint rows (the distinct
// rows of a batch, each listed once), so no two threads ever access the same entry.
unsafe impl Send for SharedRows {}
unsafe impl Sync for SharedRows {}

impl SharedRows {
    /// Row `row` of width `k`.
    ///
    /// # Safety
    /// No other reference to this row may be alive while the returned one is.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, row: usize, k: usize) -> &mut [f32] {
        assert!((row + 1) * k <= self.len, "row {row} is out of bounds");
        // SAFETY: in bounds (checked above); exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.data.add(row * k), k) }
    }
}

/// `p = p - lr * (g + wd * p)` on every distinct row of the factors and the bias, once each.
fn row_updates(
    factors: &mut [f32],
    bias: &mut [f32],
    distinct: &[u32],
    (factor_grads, bias_grads): (&[f32], &[f32]),
    k: usize,
    hyper: &StepHyper,
    parallel: bool,
) {
    let (lr, wd) = (hyper.lr, hyper.wd);
    let factors = SharedRows {
        data: factors.as_mut_ptr(),
        len: factors.len(),
    };
    let bias = SharedRows {
        data: bias.as_mut_ptr(),
        len: bias.len(),
    };
    let chunk = |slot0: usize, rows: &[u32]| {
        for (d, &row) in rows.iter().enumerate() {
            let slot = slot0 + d;
            // SAFETY: `distinct` lists each row once and every task takes its own slots, so this
            // row is touched by this iteration alone.
            let (p, p_bias) = unsafe { (factors.row(row as usize, k), bias.row(row as usize, 1)) };
            let grad = &factor_grads[slot * k..][..k];
            for (p, &g) in p.iter_mut().zip(grad) {
                *p -= lr * (g + wd * *p);
            }
            p_bias[0] -= lr * (bias_grads[slot] + wd * p_bias[0]);
        }
    };
    if parallel {
        distinct
            .par_chunks(ROW_CHUNK)
            .enumerate()
            .for_each(|(c, rows)| chunk(c * ROW_CHUNK, rows));
    } else {
        chunk(0, distinct);
    }
}
