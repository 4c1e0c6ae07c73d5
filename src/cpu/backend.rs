//! The CPU backend: [`Backend`] implemented by the fast paths beside the reference step of
//! [`super::reference`], which give its bits exactly: the `adamw` step calls the same kernels of
//! [`super::kernels`] in the same order on flat buffers.
//!
//! Two things make it a fair opponent for the GPU without changing a single bit of the result:
//! - the four parameter tensors (and their gradients and Adam moments) live in one flat buffer
//!   `[P | Q | bu | bi]`, so the dense AdamW update is one vectorisable loop over a slice, split
//!   into fixed chunks that the threads of a local rayon pool take; each entry's update depends on
//!   that entry alone, so the result is the same whatever the thread count;
//! - the evaluation sum of squares is taken in fixed chunks of [`EVAL_CHUNK`] ratings, each summed
//!   in order, and the chunk sums are added in chunk order.
//!
//! The `adamw` gradient of a batch (`B` = 64 by default) is too small to be worth threads; it is
//! accumulated in batch order by the scatter-add kernels, as the reference does. `sgd`, the
//! optimiser for scale, takes the sparse path of `sparse_sgd` instead, which spreads the
//! forward pass, the gradients and the update of large batches over the threads without changing a
//! bit either.

use rayon::prelude::*;

use super::kernels;
use super::param_buffer::ParamBuffer;
use super::simd::{self, LANES};
use super::sparse_sgd::{OptimizerState, SparseSgd, Tensors};
use crate::data::Ratings;
use crate::model::{Params, apply_y_range};
use crate::prefetch::{prefetch, prefetch_slice};
use crate::train::{AdamMoments, Backend, Batches, OptimizerKind, StepHyper, TrainConfig};
use crate::train::{TrainError, TrainState};

/// Entries per parallel chunk of the dense AdamW update: big enough that a chunk costs far more
/// than handing it to a thread, small enough that two threads share the work evenly.
const ADAMW_CHUNK: usize = 8 * 1024;

/// Ratings per chunk of the evaluation reduction. Fixed, so the sum does not depend on threads.
pub const EVAL_CHUNK: usize = 4096;

/// How many ratings ahead the evaluation prefetches their rows.
const EVAL_AHEAD: usize = 16;

/// Where each parameter tensor lives in the flat buffers.
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    users: usize,
    items: usize,
    /// `K`.
    factors: usize,
}

impl Layout {
    fn of(params: &Params) -> Layout {
        Layout {
            users: params.users(),
            items: params.items(),
            factors: params.factors,
        }
    }

    /// The entry ranges of `P`, `Q`, `bu`, `bi`.
    fn ranges(&self) -> [std::ops::Range<usize>; 4] {
        let p_end = self.users * self.factors;
        let q_end = p_end + self.items * self.factors;
        let bu_end = q_end + self.users;
        [
            0..p_end,
            p_end..q_end,
            q_end..bu_end,
            bu_end..bu_end + self.items,
        ]
    }

    fn len(&self) -> usize {
        (self.users + self.items) * (self.factors + 1)
    }

    fn flatten(&self, params: &Params) -> Vec<f32> {
        let mut flat = Vec::with_capacity(self.len());
        for tensor in params.tensors() {
            flat.extend_from_slice(tensor);
        }
        flat
    }

    fn unflatten(&self, flat: &[f32]) -> Params {
        let [p, q, bu, bi] = self.ranges();
        Params {
            factors: self.factors,
            user_factors: flat[p].to_vec(),
            item_factors: flat[q].to_vec(),
            user_bias: flat[bu].to_vec(),
            item_bias: flat[bi].to_vec(),
        }
    }
}

/// Buffers one batch needs, allocated once for `B` and reused by every step.
#[derive(Debug, Default)]
struct Scratch {
    /// `P[u_b]`, `B x K`.
    user_rows: Vec<f32>,
    /// `Q[i_b]`, `B x K`.
    item_rows: Vec<f32>,
    /// Raw scores, `B`.
    x: Vec<f32>,
    /// Predictions, `B`.
    pred: Vec<f32>,
    /// `dL/dx`, `B`.
    g: Vec<f32>,
    /// The distinct users and items of the batch, in order of first occurrence.
    distinct_users: Vec<u32>,
    distinct_items: Vec<u32>,
    /// Marks for building the distinct lists; cleared again after each batch.
    seen_user: Vec<bool>,
    seen_item: Vec<bool>,
}

/// The CPU reference backend. See the module documentation.
pub struct CpuBackend {
    /// Shared so the step loop can run inside the pool while borrowing the backend mutably.
    pool: std::sync::Arc<rayon::ThreadPool>,
    threads: usize,
    config: TrainConfig,
    layout: Layout,
    /// `[P | Q | bu | bi]`, cache-line aligned on huge pages for the random rows of `sgd`.
    params: ParamBuffer,
    /// Gradients in the same layout; zero outside the rows of the current batch.
    grads: Vec<f32>,
    /// Adam's moments in the same layout (`adamw` and `sparse-adam`; empty otherwise).
    m: Vec<f32>,
    v: Vec<f32>,
    /// `rowwise-adagrad`'s accumulators, `[sP (U) | sQ (I) | sbu (U) | sbi (I)]` (empty
    /// otherwise).
    row_sums: Vec<f32>,
    scratch: Scratch,
    /// The buffers of the sparse `sgd` step (empty for `adamw`).
    sparse: SparseSgd,
    /// The training set that [`Batches::order`] indexes.
    train: Ratings,
    /// One submitted run's ratings in batch order, gathered from `train`; reused across runs.
    run: Ratings,
    /// Losses of submitted batches not yet returned by `poll` or `finish`.
    losses: Vec<f32>,
    eval: Ratings,
    started: bool,
    use_avx2: bool,
}

impl CpuBackend {
    /// A backend on `threads` threads (0: one per core), at most [`max_threads`]: thousands of
    /// threads only contend for the cores (a run of 100000 started 2217 and never trained).
    pub fn new(threads: usize) -> Result<CpuBackend, TrainError> {
        let most = max_threads();
        if threads > most {
            return Err(TrainError::Config(format!(
                "--threads must be at most {most} (this machine has {} cores; 0 uses one per core), got {threads}",
                cores()
            )));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|n| format!("collabgpu-cpu-{n}"))
            .build()
            .map_err(|source| TrainError::Threads { threads, source })?;
        let threads = pool.current_num_threads();
        Ok(CpuBackend {
            pool: std::sync::Arc::new(pool),
            threads,
            config: TrainConfig::default(),
            layout: Layout::default(),
            params: ParamBuffer::default(),
            grads: Vec::new(),
            m: Vec::new(),
            v: Vec::new(),
            row_sums: Vec::new(),
            scratch: Scratch::default(),
            sparse: SparseSgd::default(),
            train: Ratings::default(),
            run: Ratings::default(),
            losses: Vec::new(),
            eval: Ratings::default(),
            started: false,
            use_avx2: avx2_available(),
        })
    }

    /// How many threads the backend uses.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// One optimiser step on one batch; returns the batch loss at the parameters before the step.
    fn step(&mut self, users: &[u32], items: &[u32], ratings: &[f32], hyper: &StepHyper) -> f32 {
        match self.config.optimizer {
            OptimizerKind::AdamW => self.adamw_step(users, items, ratings, hyper),
            _ => self.sparse_step(users, items, ratings, hyper),
        }
    }

    /// One `adamw` step: [`super::reference::train_step`] on the flat buffers, with the dense
    /// update spread over the pool.
    fn adamw_step(
        &mut self,
        users: &[u32],
        items: &[u32],
        ratings: &[f32],
        hyper: &StepHyper,
    ) -> f32 {
        let k = self.layout.factors;
        let b = users.len();
        let [p_range, q_range, bu_range, bi_range] = self.layout.ranges();
        let y_range = self.config.y_range;
        let s = &mut self.scratch;
        let (user_rows, item_rows) = (&mut s.user_rows[..b * k], &mut s.item_rows[..b * k]);
        let (x, pred, g) = (&mut s.x[..b], &mut s.pred[..b], &mut s.g[..b]);

        // Forward.
        kernels::gather(&self.params[p_range.clone()], k, users, user_rows);
        kernels::gather(&self.params[q_range.clone()], k, items, item_rows);
        kernels::dot(user_rows, item_rows, k, x);
        kernels::bias_add(
            x,
            &self.params[bu_range.clone()],
            &self.params[bi_range.clone()],
            users,
            items,
        );
        kernels::sigmoid_range(x, y_range, pred);
        let loss = kernels::mse_grad(x, pred, ratings, y_range, g);

        // Backward: every gradient at the parameters before the update.
        let (grad_p, rest) = self.grads.split_at_mut(q_range.start);
        let (grad_q, rest) = rest.split_at_mut(q_range.len());
        let (grad_bu, grad_bi) = rest.split_at_mut(bu_range.len());
        kernels::scatter_add(grad_p, k, users, g, item_rows);
        kernels::scatter_add(grad_q, k, items, g, user_rows);
        kernels::scatter_add_bias(grad_bu, users, g);
        kernels::scatter_add_bias(grad_bi, items, g);

        distinct_rows(users, &mut s.seen_user, &mut s.distinct_users);
        distinct_rows(items, &mut s.seen_item, &mut s.distinct_items);

        // L2 per occurrence on the batch's rows, at the parameters before the update.
        if hyper.l2 != 0.0 {
            let (user_counts, item_counts) =
                (kernels::occurrences(users), kernels::occurrences(items));
            let (grad_p, rest) = self.grads.split_at_mut(q_range.start);
            let (grad_q, rest) = rest.split_at_mut(q_range.len());
            let (grad_bu, grad_bi) = rest.split_at_mut(bu_range.len());
            let params = &self.params;
            let l2 = hyper.l2;
            kernels::l2_grad(grad_p, &params[p_range.clone()], k, &user_counts, l2, b);
            kernels::l2_grad(grad_q, &params[q_range.clone()], k, &item_counts, l2, b);
            kernels::l2_grad(grad_bu, &params[bu_range.clone()], 1, &user_counts, l2, b);
            kernels::l2_grad(grad_bi, &params[bi_range.clone()], 1, &item_counts, l2, b);
        }

        // Update.
        adamw_dense(
            &self.pool,
            self.threads,
            self.use_avx2,
            (&mut self.params, &self.grads),
            (&mut self.m, &mut self.v),
            hyper,
        );

        // Only the batch's rows hold gradient; zero them for the next batch.
        for &u in &s.distinct_users {
            self.grads[p_range.start + u as usize * k..][..k].fill(0.0);
            self.grads[bu_range.start + u as usize] = 0.0;
        }
        for &i in &s.distinct_items {
            self.grads[q_range.start + i as usize * k..][..k].fill(0.0);
            self.grads[bi_range.start + i as usize] = 0.0;
        }
        loss
    }
}

impl CpuBackend {
    /// One step of a sparse optimiser (`sgd`, `rowwise-adagrad`, `sparse-adam`) through the sparse
    /// path (see [`super::sparse_sgd`]).
    fn sparse_step(
        &mut self,
        users: &[u32],
        items: &[u32],
        ratings: &[f32],
        hyper: &StepHyper,
    ) -> f32 {
        let [_, q_range, bu_range, _] = self.layout.ranges();
        let (users_n, items_n) = (self.layout.users, self.layout.items);
        let tensors = split_tensors(
            &mut self.params,
            q_range.start,
            q_range.len(),
            bu_range.len(),
        );
        let state = match self.config.optimizer {
            OptimizerKind::RowwiseAdagrad => OptimizerState::RowwiseAdagrad(split_tensors(
                &mut self.row_sums,
                users_n,
                items_n,
                users_n,
            )),
            OptimizerKind::SparseAdam => OptimizerState::SparseAdam {
                m: split_tensors(&mut self.m, q_range.start, q_range.len(), bu_range.len()),
                v: split_tensors(&mut self.v, q_range.start, q_range.len(), bu_range.len()),
            },
            _ => OptimizerState::Sgd,
        };
        self.sparse.step(
            tensors,
            state,
            self.layout.factors,
            users,
            items,
            ratings,
            self.config.y_range,
            hyper,
        )
    }
}

/// `[P | Q | bu | bi]` (or any buffer of that layout) cut into its four tensors, of lengths
/// `p`, `q`, `bu` and the rest.
fn split_tensors(flat: &mut [f32], p: usize, q: usize, bu: usize) -> Tensors<'_> {
    let (user_factors, rest) = flat.split_at_mut(p);
    let (item_factors, rest) = rest.split_at_mut(q);
    let (user_bias, item_bias) = rest.split_at_mut(bu);
    Tensors {
        user_factors,
        item_factors,
        user_bias,
        item_bias,
    }
}

/// One chunk of the dense update: `((param, grad), (m, v))`, as the zipped chunk iterators give it.
type AdamwChunk<'a> = ((&'a mut [f32], &'a [f32]), (&'a mut [f32], &'a mut [f32]));

/// `kernels::adamw` over every entry of all four tensors, in fixed chunks across the pool.
fn adamw_dense(
    pool: &rayon::ThreadPool,
    threads: usize,
    use_avx2: bool,
    (params, grads): (&mut [f32], &[f32]),
    (m, v): (&mut [f32], &mut [f32]),
    hyper: &StepHyper,
) {
    let update = |((p, g), (m, v)): AdamwChunk<'_>| adamw_slices(p, g, m, v, hyper, use_avx2);
    if threads == 1 {
        update(((params, grads), (m, v)));
        return;
    }
    pool.install(|| {
        params
            .par_chunks_mut(ADAMW_CHUNK)
            .zip(grads.par_chunks(ADAMW_CHUNK))
            .zip(
                m.par_chunks_mut(ADAMW_CHUNK)
                    .zip(v.par_chunks_mut(ADAMW_CHUNK)),
            )
            .for_each(update);
    });
}

/// Appends the distinct entries of `rows` to `distinct` (cleared first) in order of first
/// occurrence, using `seen` as scratch marks (left all false again).
fn distinct_rows(rows: &[u32], seen: &mut [bool], distinct: &mut Vec<u32>) {
    distinct.clear();
    for &row in rows {
        if !seen[row as usize] {
            seen[row as usize] = true;
            distinct.push(row);
        }
    }
    for &row in distinct.iter() {
        seen[row as usize] = false;
    }
}

fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The dense AdamW update of [`kernels::adamw`], entry for entry the same arithmetic in the same
/// order (Rust never fuses a multiply and an add on its own), written over zipped slices so the
/// compiler vectorises it without bounds checks. With `use_avx2` the same code is compiled for
/// 8-wide AVX2; IEEE-754 makes each lane's result identical to the scalar one.
pub fn adamw_slices(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    hyper: &StepHyper,
    use_avx2: bool,
) {
    assert!(grad.len() == param.len() && m.len() == param.len() && v.len() == param.len());
    #[cfg(target_arch = "x86_64")]
    if use_avx2 {
        // SAFETY: `use_avx2` is only true when the CPU reported AVX2 (`avx2_available`).
        unsafe { adamw_avx2(param, grad, m, v, hyper) };
        return;
    }
    let _ = use_avx2;
    adamw_body(param, grad, m, v, hyper);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adamw_avx2(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    hyper: &StepHyper,
) {
    adamw_body(param, grad, m, v, hyper);
}

#[inline(always)]
fn adamw_body(param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], hyper: &StepHyper) {
    let decay = 1.0 - hyper.lr * hyper.wd;
    let (beta1, beta2) = (hyper.beta1, hyper.beta2);
    let (one_minus_beta1, one_minus_beta2) = (1.0 - beta1, 1.0 - beta2);
    let (step_size, bias_correction2, eps) = (hyper.step_size, hyper.bias_correction2, hyper.eps);
    for (((p, &g), m), v) in param
        .iter_mut()
        .zip(grad)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        let decayed = *p * decay;
        *m = beta1 * *m + one_minus_beta1 * g;
        *v = beta2 * *v + one_minus_beta2 * g * g;
        *p = decayed - step_size * *m / ((*v / bias_correction2).sqrt() + eps);
    }
}

/// The cores rayon would use by default.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most threads a [`CpuBackend`] starts: four per core, and never fewer than 256, so a thread
/// count chosen on a bigger machine still runs (results are the same for every count).
pub fn max_threads() -> usize {
    cores().saturating_mul(4).max(256)
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        let plural = if self.threads == 1 { "" } else { "s" };
        format!("cpu ({} thread{plural})", self.threads)
    }

    fn start(&mut self, config: &TrainConfig, state: &TrainState) -> Result<(), TrainError> {
        config.validate()?;
        let layout = Layout::of(&state.params);
        if layout.factors != config.factors {
            return Err(TrainError::Config(format!(
                "the starting parameters have K = {} but --factors is {}",
                layout.factors, config.factors
            )));
        }
        self.config = config.clone();
        self.layout = layout;
        self.params = ParamBuffer::concat(state.params.tensors());
        // The sparse path keeps compact per-batch gradients instead of a dense buffer.
        self.grads = match config.optimizer {
            OptimizerKind::AdamW => vec![0.0; layout.len()],
            _ => Vec::new(),
        };
        let moments = config.optimizer.has_moments();
        (self.m, self.v) = match (moments, &state.moments) {
            (true, Some(moments)) => (layout.flatten(&moments.m), layout.flatten(&moments.v)),
            (true, None) => (vec![0.0; layout.len()], vec![0.0; layout.len()]),
            (false, _) => (Vec::new(), Vec::new()),
        };
        if moments && (self.m.len() != layout.len() || self.v.len() != layout.len()) {
            return Err(TrainError::Config(
                "the Adam moments do not have the parameters' shape".into(),
            ));
        }
        let row_sums_len = 2 * (layout.users + layout.items);
        self.row_sums = match (config.optimizer.has_row_sums(), &state.row_sums) {
            (true, Some(sums)) => sums.tensors().concat(),
            (true, None) => vec![0.0; row_sums_len],
            (false, _) => Vec::new(),
        };
        if config.optimizer.has_row_sums() && self.row_sums.len() != row_sums_len {
            return Err(TrainError::Config(
                "the row-wise Adagrad accumulators do not have one entry per row".into(),
            ));
        }
        if config.optimizer.is_sparse() {
            self.sparse = SparseSgd::new(
                layout.users,
                layout.items,
                layout.factors,
                config.batch_size,
            );
            self.scratch = Scratch::default();
            self.started = true;
            return Ok(());
        }
        self.sparse = SparseSgd::default();
        let rows = config.batch_size * layout.factors;
        self.scratch = Scratch {
            user_rows: vec![0.0; rows],
            item_rows: vec![0.0; rows],
            x: vec![0.0; config.batch_size],
            pred: vec![0.0; config.batch_size],
            g: vec![0.0; config.batch_size],
            distinct_users: Vec::with_capacity(config.batch_size),
            distinct_items: Vec::with_capacity(config.batch_size),
            seen_user: vec![false; layout.users],
            seen_item: vec![false; layout.items],
        };
        self.started = true;
        Ok(())
    }

    fn set_train_set(&mut self, ratings: &Ratings) -> Result<(), TrainError> {
        if !self.started {
            return Err(TrainError::NotStarted {
                backend: "cpu",
                call: "take the training set",
            });
        }
        let (users, items) = (self.layout.users as u32, self.layout.items as u32);
        if ratings.users.iter().any(|&u| u >= users) || ratings.items.iter().any(|&i| i >= items) {
            return Err(TrainError::IndexOutOfRange {
                users: users as usize,
                items: items as usize,
            });
        }
        self.train = Ratings {
            users: ratings.users.clone(),
            items: ratings.items.clone(),
            ratings: ratings.ratings.clone(),
            timestamps: None,
        };
        self.losses.clear();
        Ok(())
    }

    /// Trains the batches at once: their losses are ready for the next `poll`.
    fn submit(&mut self, batches: &Batches<'_>) -> Result<(), TrainError> {
        if !self.started {
            return Err(TrainError::NotStarted {
                backend: "cpu",
                call: "train batches",
            });
        }
        if batches.batch_size != self.config.batch_size {
            return Err(TrainError::BatchSize {
                backend: "cpu",
                got: batches.batch_size,
                started_for: self.config.batch_size,
            });
        }
        let len = self.train.len();
        if let Some(&index) = batches.order.iter().find(|&&n| n as usize >= len) {
            return Err(TrainError::OrderOutOfRange { index, len });
        }
        let mut run = std::mem::take(&mut self.run);
        gather_triples(&self.pool, &self.train, batches.order, &mut run);
        // The step loop runs on a worker of the pool, so each step's parallel update is a cheap
        // fork-join among awake workers rather than a wake-up call from outside the pool.
        let pool = std::sync::Arc::clone(&self.pool);
        pool.install(|| {
            for (s, hyper) in batches.steps.iter().enumerate() {
                let range = batches.range(s);
                let loss = self.step(
                    &run.users[range.clone()],
                    &run.items[range.clone()],
                    &run.ratings[range],
                    hyper,
                );
                self.losses.push(loss);
            }
        });
        self.run = run;
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<f32>, TrainError> {
        Ok(std::mem::take(&mut self.losses))
    }

    fn finish(&mut self) -> Result<Vec<f32>, TrainError> {
        Ok(std::mem::take(&mut self.losses))
    }

    fn set_eval_set(&mut self, ratings: &Ratings) -> Result<(), TrainError> {
        self.eval = Ratings {
            users: ratings.users.clone(),
            items: ratings.items.clone(),
            ratings: ratings.ratings.clone(),
            timestamps: None,
        };
        Ok(())
    }

    fn eval_sum_squared_error(&mut self) -> Result<f64, TrainError> {
        if !self.started {
            return Err(TrainError::NotStarted {
                backend: "cpu",
                call: "evaluate",
            });
        }
        let params = self.layout.unflatten(&self.params);
        Ok(sum_squared_error(
            &self.pool,
            &params,
            &self.eval,
            self.config.y_range,
        ))
    }

    fn state(&mut self) -> Result<TrainState, TrainError> {
        let moments = self.config.optimizer.has_moments().then(|| AdamMoments {
            m: self.layout.unflatten(&self.m),
            v: self.layout.unflatten(&self.v),
        });
        let row_sums = self.config.optimizer.has_row_sums().then(|| {
            let (users, items) = (self.layout.users, self.layout.items);
            let one = Layout {
                users,
                items,
                factors: 1,
            };
            one.unflatten(&self.row_sums)
        });
        Ok(TrainState {
            params: self.layout.unflatten(&self.params),
            moments,
            row_sums,
        })
    }
}

/// The mean squared error of `params` on `ratings` (`None` for no ratings), on a pool of all
/// cores: [`sum_squared_error`] over the count, the very figure the CPU trainer reports as
/// `valid_loss`, for whoever scores a model outside a training run (`eval`, a finished checkpoint).
pub fn mean_squared_error(
    params: &Params,
    ratings: &Ratings,
    y_range: Option<(f32, f32)>,
) -> Result<Option<f64>, rayon::ThreadPoolBuildError> {
    if ratings.is_empty() {
        return Ok(None);
    }
    let pool = rayon::ThreadPoolBuilder::new().build()?;
    Ok(Some(
        sum_squared_error(&pool, params, ratings, y_range) / ratings.len() as f64,
    ))
}

/// `run = train[order]`: a run's ratings in batch order. Each read is a trip to memory on large
/// data, so the work is split over the pool's threads and the reads are prefetched a little ahead.
fn gather_triples(pool: &rayon::ThreadPool, train: &Ratings, order: &[u32], run: &mut Ratings) {
    const CHUNK: usize = 1 << 16;
    const AHEAD: usize = 16;
    run.users.resize(order.len(), 0);
    run.items.resize(order.len(), 0);
    run.ratings.resize(order.len(), 0.0);
    pool.install(|| {
        order
            .par_chunks(CHUNK)
            .zip(run.users.par_chunks_mut(CHUNK))
            .zip(run.items.par_chunks_mut(CHUNK))
            .zip(run.ratings.par_chunks_mut(CHUNK))
            .for_each(|(((order, users), items), ratings)| {
                for n in 0..order.len() {
                    if let Some(&ahead) = order.get(n + AHEAD) {
                        let ahead = ahead as usize;
                        prefetch(&train.users[ahead]);
                        prefetch(&train.items[ahead]);
                        prefetch(&train.ratings[ahead]);
                    }
                    let source = order[n] as usize;
                    users[n] = train.users[source];
                    items[n] = train.items[source];
                    ratings[n] = train.ratings[source];
                }
            });
    });
}

/// `sum (pred - r)^2` over `ratings`: each error in f32 as the model predicts it, squared and
/// summed in f64 within fixed chunks of [`EVAL_CHUNK`] ratings, the chunk sums added in order, so
/// the result is the same on any number of threads.
pub fn sum_squared_error(
    pool: &rayon::ThreadPool,
    params: &Params,
    ratings: &Ratings,
    y_range: Option<(f32, f32)>,
) -> f64 {
    let use_avx2 = simd::avx2_available();
    let chunk_sum = |n0: usize| {
        let end = (n0 + EVAL_CHUNK).min(ratings.len());
        let (users, items) = (&ratings.users[n0..end], &ratings.items[n0..end]);
        let k = params.factors;
        let p_row = |u: u32| &params.user_factors[u as usize * k..][..k];
        let q_row = |i: u32| &params.item_factors[i as usize * k..][..k];
        // Eight ratings at a time through `dot8`, which sums each `x` in the order `raw_score`
        // does, with the rows of the ratings ahead prefetched: on large data every row is a trip
        // to memory.
        let mut x = [0.0f32; EVAL_CHUNK];
        let whole = users.len() / LANES * LANES;
        for n0 in (0..whole).step_by(LANES) {
            for n in n0 + EVAL_AHEAD..(n0 + LANES + EVAL_AHEAD).min(users.len()) {
                prefetch_slice(p_row(users[n]));
                prefetch_slice(q_row(items[n]));
            }
            let pu: [&[f32]; LANES] = std::array::from_fn(|l| p_row(users[n0 + l]));
            let qi: [&[f32]; LANES] = std::array::from_fn(|l| q_row(items[n0 + l]));
            x[n0..n0 + LANES].copy_from_slice(&simd::dot8(pu, qi, use_avx2));
        }
        let mut sum = 0.0f64;
        for n in 0..users.len() {
            let (u, i) = (users[n], items[n]);
            let score = if n < whole {
                x[n] + (params.user_bias[u as usize] + params.item_bias[i as usize])
            } else {
                params.raw_score(u, i)
            };
            let err = apply_y_range(score, y_range) - ratings.ratings[n0 + n];
            sum += err as f64 * err as f64;
        }
        sum
    };
    let starts: Vec<usize> = (0..ratings.len()).step_by(EVAL_CHUNK).collect();
    let sums: Vec<f64> = pool.install(|| starts.par_iter().map(|&n0| chunk_sum(n0)).collect());
    sums.iter().sum()
}
