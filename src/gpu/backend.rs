//! The GPU training backend: parameters, optimiser state and the training triples resident in
//! storage buffers for the whole run; each run of batches goes to the GPU as its order (training-set
//! indices) in chunks, many batches per command buffer and one compute pass per chunk, up to
//! [`queue::SLOTS`] chunks in flight, and only the batch losses (per chunk, mapped back
//! asynchronously) and the validation loss (one scalar per evaluation chunk) come back. The
//! host blocks on the GPU once per epoch ([`Backend::finish`]) and once per evaluation.
//!
//! Training runs the fused path by default: per chunk `gather_triples` (the chunk's triples from the
//! resident training set), then per batch `forward_backward` (gather to scatter-add and the batch's
//! loss sums in one dispatch; a subgroup per rating where the device has `SUBGROUP`, else one
//! thread per rating, [`GpuBackend::forward_backward_path`]), and the optimiser (`adamw_vec4`, or
//! for the sparse ones `sgd_apply` (`sgd_apply_vec4` when K is a multiple of 4),
//! `rowwise_adagrad_apply`, `sparse_adam_apply`): two dispatches. With `--l2` the `sgd` and
//! `rowwise-adagrad` steps add the L2 term themselves (`Kernels::folds_l2`, still two); `adamw`
//! and `sparse-adam` run `l2_grad` before the optimiser (three). [`GpuOptions::unfused`] runs the
//! single-op kernels instead (nine to twelve).
//! [`GpuBackend::timings`] says where the time went and [`GpuBackend::memory_report`] what the run
//! allocated.

use super::GpuError;
use super::buffers::{self, STORAGE_USAGE, buffer_with, empty_buffer};
use super::device::{DEFAULT_CHUNK_BYTES, Device, GpuOptions};
use super::kernels::{BindGroups, Bindings, Kernel, Kernels};
use super::layout::{StepUniform, Triple, WORKGROUP, pack_triples, padded_len};
use super::queue::{self, Collected, GatherKernel, InFlight, LossLayout, Queue, TrainSet};
use crate::data::Ratings;
use crate::model::Params;
use crate::train::{
    AdamMoments, Backend, Batches, OptimizerKind, TrainConfig, TrainError, TrainState,
};
use std::sync::Arc;
use std::time::Instant;

/// What every call before `start` answers.
const NOT_STARTED: TrainError = TrainError::NotStarted {
    backend: "gpu",
    call: "train or evaluate",
};

/// Most batches in one chunk, whatever the binding limits allow (bounds the step records).
const MAX_CHUNK_BATCHES: usize = 16_384;

/// The wgpu backend. Build it once with [`GpuBackend::new`]; the epoch loop drives it through
/// [`Backend`].
#[derive(Debug)]
pub struct GpuBackend {
    device: Arc<Device>,
    kernels: Kernels,
    gather: GatherKernel,
    options: GpuOptions,
    run: Option<Run>,
    timings: GpuTimings,
}

/// Where a run's time went, summed since [`Backend::start`]. Host times are wall-clock on the
/// host; `kernel_seconds` is measured on the GPU with timestamp queries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuTimings {
    /// Training batches recorded.
    pub batches: u64,
    /// Chunks of batches: one command buffer, one compute pass and one submission each.
    pub chunks: u64,
    /// Compute dispatches recorded for training batches (the per-step kernels).
    pub dispatches: u64,
    /// `gather_triples` dispatches: one per chunk and piece of the training set, not per batch.
    pub gather_dispatches: u64,
    /// Times the host blocked until the GPU had nothing left to do: one per `finish` with chunks
    /// in flight (once per epoch in the training loop) and one per evaluation (its sum). Reading
    /// the final state back is not counted.
    pub host_waits: u64,
    /// Times a submission found every chunk slot in flight and waited for the oldest chunk while
    /// the newer ones kept the GPU busy (many short chunks: a slow adapter, or large data).
    pub queue_full_waits: u64,
    /// Bytes the fused training kernels read and write, by arithmetic ([`fused_batch_bytes`]);
    /// 0 on the single-op path.
    pub kernel_bytes: u64,
    /// Host: uploading the training set, and handing each chunk's order and step records to the
    /// queue (`write_buffer`).
    pub upload_seconds: f64,
    /// Host: recording the dispatches of each chunk and submitting them.
    pub encode_seconds: f64,
    /// Host: blocked until chunks' batch losses were mapped back (both kinds of wait above).
    pub readback_wait_seconds: f64,
    /// GPU: the summed span of the training compute passes (timestamp queries), or `None` where
    /// the adapter lacks `TIMESTAMP_QUERY`.
    pub kernel_seconds: Option<f64>,
    /// Host: whole validation-loss evaluations, dispatch to scalar.
    pub eval_seconds: f64,
}

impl GpuTimings {
    /// Adds what collecting chunks waited and measured.
    fn add(&mut self, collected: Collected) {
        self.readback_wait_seconds += collected.wait_seconds;
        if let Some(seconds) = collected.kernel_seconds {
            *self.kernel_seconds.get_or_insert(0.0) += seconds;
        }
    }
}

/// Bytes of GPU memory one run allocated, by purpose. All of it lives until the next `start`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuMemoryReport {
    /// `P`, `Q`, `bu`, `bi` in one buffer (padded to a multiple of 4 floats).
    pub parameters: u64,
    /// Their gradients, same layout.
    pub gradients: u64,
    /// Adam's two moments, `m` and `v` in a buffer each of the parameters' size (`adamw`,
    /// `sparse-adam`), or `rowwise-adagrad`'s one accumulator per row and 16 bytes; 16 bytes each
    /// for `sgd` (a binding may not be empty).
    pub optimizer_state: u64,
    /// The per-batch intermediates (gathered rows, x, pred, g, squared errors).
    pub scratch: u64,
    /// The resident training triples (after `set_train_set`).
    pub train_set: u64,
    /// The chunk slots' gathered triples and their order (16 bytes per rating of a chunk).
    pub triple_chunks: u64,
    /// The per-batch step records and the gather records (uniforms) of every chunk slot.
    pub step_records: u64,
    /// Batch losses, sgd claims, row counts and timestamp resolve buffers.
    pub small_buffers: u64,
    /// Mappable read-back buffers (batch losses, timestamps, evaluation sums).
    pub staging: u64,
    /// The validation triples and their step records (after `set_eval_set`).
    pub eval_set: u64,
}

impl GpuMemoryReport {
    /// Every byte above.
    pub fn total(&self) -> u64 {
        self.parameters
            + self.gradients
            + self.optimizer_state
            + self.scratch
            + self.train_set
            + self.triple_chunks
            + self.step_records
            + self.small_buffers
            + self.staging
            + self.eval_set
    }
}

/// Timestamp queries at the start and end of each chunk's compute pass, two per chunk slot; each
/// slot's pair is copied into its read-back after the losses.
#[derive(Debug)]
struct PassTimer {
    query_set: wgpu::QuerySet,
    /// Resolved queries, slot `s` at byte `s * QUERY_RESOLVE_BUFFER_ALIGNMENT`.
    resolve: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
}
/// One of the [`queue::SLOTS`] chunk slots: while the GPU trains on some, the host fills another.
#[derive(Debug)]
struct ChunkSlot {
    /// The chunk's training-set indices, written by the host.
    order: wgpu::Buffer,
    /// The chunk's triples, gathered on the GPU from the resident training set.
    triples: wgpu::Buffer,
    steps: wgpu::Buffer,
    /// The chunk's losses, then (with timestamps) its pass's two timestamps at `timestamps_at`.
    readback: wgpu::Buffer,
    bind_groups: BindGroups,
}

/// The training set on the GPU and, per chunk slot, the records and bind groups (one per piece)
/// with which `gather_triples` fills the slot's triples from it.
#[derive(Debug)]
struct Resident {
    set: TrainSet,
    gathers: Vec<(wgpu::Buffer, Vec<wgpu::BindGroup>)>,
}

/// The most claim tag bases (in units of the batch capacity `C`) before the tags would overflow
/// a `u32`; past it the claims buffer is cleared and the tags start again at 1.
fn claim_limit(capacity: u32) -> u32 {
    u32::MAX / capacity.max(1) - 1
}

/// The validation set, uploaded once, in chunks that fit a binding.
#[derive(Debug)]
struct EvalSet {
    /// One bind group per chunk, and the chunk's step record.
    chunks: Vec<(BindGroups, StepUniform)>,
    readback: wgpu::Buffer,
    _buffers: Vec<wgpu::Buffer>,
}

/// Everything that lives for one training run.
#[derive(Debug)]
struct Run {
    optimizer: OptimizerKind,
    /// Whether `--l2` is not 0 (`l2_grad` runs, or the fused optimiser folds the term in).
    l2: bool,
    /// The fused path (two dispatches per batch, three with `--l2` for `adamw` and
    /// `sparse-adam`) or the single-op kernels.
    fused: bool,
    /// The next batch's claim tag base in units of `C` (the fused path); tags only grow.
    next_claim: u32,
    /// Past this tag base the claims are cleared and the tags restart at 1 (see [`claim_limit`]).
    claim_limit: u32,
    timer: Option<PassTimer>,
    shape: StepUniform,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    /// Adam's `m` and `v`, one buffer and one binding each, so that no binding is larger than
    /// the parameters; `rowwise-adagrad` keeps its row sums in `first_moment`.
    first_moment: wgpu::Buffer,
    second_moment: wgpu::Buffer,
    scratch: wgpu::Buffer,
    losses: wgpu::Buffer,
    /// Where each batch's loss lies in `losses`.
    loss_layout: LossLayout,
    claims: wgpu::Buffer,
    /// Each row's occurrences in a batch, counted by `forward_backward` and zeroed by the
    /// optimiser when it folds in the L2 term (see `Kernels::folds_l2`).
    counts: wgpu::Buffer,
    slots: Vec<ChunkSlot>,
    /// The slot the next chunk takes; slots are used in turn.
    next_slot: usize,
    /// Byte offset of the timestamps in every slot's read-back (after room for the losses).
    timestamps_at: u64,
    chunk_batches: usize,
    /// After `set_train_set`.
    train: Option<Resident>,
    queue: Queue,
    eval: Option<EvalSet>,
}

impl GpuBackend {
    /// Opens the adapter `options` choose and compiles every kernel.
    pub fn new(options: &GpuOptions) -> Result<GpuBackend, GpuError> {
        let device = Device::new(options)?;
        Ok(GpuBackend::with_device(Arc::new(device), options))
    }

    /// Builds the backend on a device acquired elsewhere (tests and benches share one).
    pub fn with_device(device: Arc<Device>, options: &GpuOptions) -> GpuBackend {
        let kernels = Kernels::new(&device, options);
        let gather = GatherKernel::new(&device);
        GpuBackend {
            device,
            kernels,
            gather,
            options: options.clone(),
            run: None,
            timings: GpuTimings::default(),
        }
    }

    /// The adapter's name, for reports (`train --json` prints it as `adapter`).
    pub fn adapter_name(&self) -> &str {
        self.device.adapter_name()
    }

    /// Whether the adapter runs on the CPU ([`Device::is_software`]).
    pub fn is_software(&self) -> bool {
        self.device.is_software()
    }

    /// The device this backend runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Which scatter-add runs: `float-atomic` (native) or `cas` (compare-and-swap loop).
    pub fn scatter_add_path(&self) -> &'static str {
        if self.kernels.float_atomics {
            "float-atomic"
        } else {
            "cas"
        }
    }

    /// How `forward_backward` runs: `subgroup` (a subgroup per rating, where the device has
    /// `SUBGROUP`) or `thread-per-rating`.
    pub fn forward_backward_path(&self) -> &'static str {
        if self.kernels.subgroups {
            "subgroup"
        } else {
            "thread-per-rating"
        }
    }

    /// Where the time went since the last `start` (see [`GpuTimings`]).
    pub fn timings(&self) -> GpuTimings {
        self.timings.clone()
    }

    /// Whether the training path is the fused one (two dispatches per batch).
    pub fn is_fused(&self) -> bool {
        !self.options.unfused
    }

    /// The GPU memory the current run allocated, by purpose; `None` before `start`.
    pub fn memory_report(&self) -> Option<GpuMemoryReport> {
        let run = self.run.as_ref()?;
        let slots = |f: fn(&ChunkSlot) -> u64| run.slots.iter().map(f).sum::<u64>();
        let mut small = run.losses.size() + run.claims.size() + run.counts.size();
        let mut staging = slots(|s| s.readback.size());
        if let Some(timer) = &run.timer {
            small += timer.resolve.size();
        }
        let (mut train_set, mut gather_records) = (0, 0);
        if let Some(train) = &run.train {
            train_set = train.set.bytes();
            gather_records = train.gathers.iter().map(|(b, _)| b.size()).sum();
        }
        let mut eval_set = 0;
        if let Some(eval) = &run.eval {
            staging += eval.readback.size();
            eval_set = eval._buffers.iter().map(|b| b.size()).sum();
        }
        Some(GpuMemoryReport {
            parameters: run.params.size(),
            gradients: run.grads.size(),
            optimizer_state: run.first_moment.size() + run.second_moment.size(),
            scratch: run.scratch.size(),
            train_set,
            triple_chunks: slots(|s| s.triples.size() + s.order.size()),
            step_records: slots(|s| s.steps.size()) + gather_records,
            small_buffers: small,
            staging,
            eval_set,
        })
    }

    fn run_mut(&mut self) -> Result<&mut Run, TrainError> {
        self.run.as_mut().ok_or(NOT_STARTED)
    }

    /// The largest buffer one binding may hold on this device.
    fn binding_limit(&self) -> u64 {
        let limits = self.device.device.limits();
        limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
    }
}

/// Batches per chunk of triples: `requested` when a test forces it, else as many as fit both the
/// adapter's binding limit (`limit`, already the smaller of `max_storage_buffer_binding_size` and
/// `max_buffer_size`) and [`DEFAULT_CHUNK_BYTES`], at most `MAX_CHUNK_BATCHES`, at least one.
pub fn chunk_batches(limit: u64, batch_bytes: u64, requested: Option<usize>) -> usize {
    match requested {
        Some(n) => n.max(1),
        None => ((limit.min(DEFAULT_CHUNK_BYTES) / batch_bytes.max(1)) as usize)
            .clamp(1, MAX_CHUNK_BATCHES),
    }
}

/// Writes `[P | Q | bu | bi]` into a parameter-layout `buffer` tensor by tensor, straight from
/// `params` (no flat host copy); the padding keeps the zeros wgpu fills every new buffer with.
fn write_params(device: &Device, buffer: &wgpu::Buffer, params: &Params) -> Result<(), GpuError> {
    let mut offset = 0;
    for tensor in params.tensors() {
        buffers::write_f32(device, buffer, offset, tensor)?;
        offset += (tensor.len() * 4) as u64;
    }
    Ok(())
}

/// Reads a parameter-layout `buffer` back into tensors shaped like `shape`'s `U`, `I`, `K`.
fn read_params(
    device: &Device,
    buffer: &wgpu::Buffer,
    shape: &StepUniform,
) -> Result<Params, GpuError> {
    let mut out = Params::zeros(
        shape.users as usize,
        shape.items as usize,
        shape.factors as usize,
    );
    let mut offset = 0;
    for tensor in out.tensors_mut() {
        buffers::read_f32_into(device, buffer, offset, tensor)?;
        offset += (tensor.len() * 4) as u64;
    }
    Ok(out)
}

impl Backend for GpuBackend {
    fn name(&self) -> String {
        format!("{} ({:?})", self.device.info.name, self.device.info.backend)
    }

    fn start(&mut self, config: &TrainConfig, state: &TrainState) -> Result<(), TrainError> {
        let params = &state.params;
        let (users, items, factors) = (params.users(), params.items(), params.factors);
        let optimizer = config.optimizer;
        let shape = StepUniform::shape(users, items, factors, config.y_range, config.batch_size);
        let limit = self.binding_limit();
        // The largest binding a run needs: the parameters, their gradients and each of Adam's
        // moments are buffers of this size (m and v apart, so adamw needs no more per binding).
        let param_bytes = (padded_len((users + items) * (factors + 1)) * 4) as u64;
        if param_bytes > limit {
            let what = if optimizer.has_moments() {
                "the parameters (and each of their gradients and Adam moments)"
            } else {
                "the parameters (and their gradients)"
            };
            return Err(GpuError::BindingTooLarge {
                what: what.to_string(),
                bytes: param_bytes,
                limit,
                hint: "use fewer --factors (K), or --backend cpu",
            }
            .into());
        }
        let batch_bytes = (config.batch_size * size_of::<Triple>()) as u64;
        if batch_bytes > limit {
            return Err(GpuError::BindingTooLarge {
                what: format!("one batch of {} ratings", config.batch_size),
                bytes: batch_bytes,
                limit,
                hint: "lower --bs, or --backend cpu",
            }
            .into());
        }
        let mut chunk_batches = chunk_batches(limit, batch_bytes, self.options.chunk_batches);
        let claim_limit = self
            .options
            .claim_tag_limit
            .unwrap_or_else(|| claim_limit(shape.capacity))
            .clamp(2, claim_limit(shape.capacity));
        let fused = !self.options.unfused;
        if fused {
            // A chunk's batches take consecutive tags from 1 after a restart.
            chunk_batches = chunk_batches.min(claim_limit as usize - 1);
        }

        self.timings = GpuTimings::default();
        let scratch_bytes = 4 * if fused {
            shape.fused_scratch_len()
        } else {
            shape.scratch_len()
        } as u64;
        if scratch_bytes > limit {
            return Err(GpuError::BindingTooLarge {
                what: "the per-batch scratch".to_string(),
                bytes: scratch_bytes,
                limit,
                hint: "lower --bs or --factors, or --backend cpu",
            }
            .into());
        }
        let device = &self.device;
        // wgpu zero-fills every new buffer, so the gradients, fresh moments and every padding
        // start at zero without a host-side buffer of zeros; the rest is written in pieces.
        let params_buffer = empty_buffer(device, "params", param_bytes, STORAGE_USAGE);
        write_params(device, &params_buffer, params)?;
        let grads = empty_buffer(device, "grads", param_bytes, STORAGE_USAGE);
        // Optimisers without moments bind 16-byte placeholders for m and v, except that
        // rowwise-adagrad's row sums take m's binding.
        let row_sum_bytes = (padded_len(2 * (users + items)) * 4) as u64;
        let (first_bytes, second_bytes) = match optimizer {
            _ if optimizer.has_moments() => (param_bytes, param_bytes),
            _ if optimizer.has_row_sums() => (row_sum_bytes, 16),
            _ => (16, 16),
        };
        let first_moment = empty_buffer(device, "first moment", first_bytes, STORAGE_USAGE);
        let second_moment = empty_buffer(device, "second moment", second_bytes, STORAGE_USAGE);
        if let (Some(moments), true) = (&state.moments, optimizer.has_moments()) {
            write_params(device, &first_moment, &moments.m)?;
            write_params(device, &second_moment, &moments.v)?;
        }
        if let (Some(sums), true) = (&state.row_sums, optimizer.has_row_sums()) {
            write_params(device, &first_moment, sums)?;
        }
        let scratch = empty_buffer(device, "scratch", scratch_bytes, STORAGE_USAGE);
        let loss_layout = LossLayout::new(fused, config.batch_size);
        let loss_bytes = (chunk_batches * loss_layout.stride() * 4) as u64;
        let losses = empty_buffer(device, "losses", loss_bytes, STORAGE_USAGE);
        // Each slot's read-back holds the losses, then (with timestamps) the pass's two ticks.
        let timestamps_at = loss_bytes.next_multiple_of(8);
        // The single-op sgd claims with atomicMin and releases to u32::MAX; the fused path's tags
        // grow from 1 * C, so every slot starts below them.
        let unclaimed = if fused { 0 } else { u32::MAX };
        let claims = buffer_with(
            device,
            "claims",
            bytemuck::cast_slice(&vec![unclaimed; users + items]),
            STORAGE_USAGE,
        );
        // Zero-filled, as forward_backward's counts must be before a batch (fold_l2 only).
        let counts = empty_buffer(
            device,
            "row counts",
            ((users + items) * 4).max(16) as u64,
            STORAGE_USAGE,
        );
        let timer = device.has_timestamps().then(|| {
            let align = wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT;
            PassTimer {
                query_set: device.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("chunk pass times"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2 * queue::SLOTS as u32,
                }),
                resolve: empty_buffer(
                    device,
                    "timestamps",
                    queue::SLOTS as u64 * align,
                    wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                ),
                period_ns: device.queue.get_timestamp_period() as f64,
            }
        });
        let readback_bytes = match timer {
            Some(_) => timestamps_at + 16,
            None => loss_bytes,
        };
        let slots = (0..queue::SLOTS)
            .map(|_| {
                let order = empty_buffer(
                    device,
                    "order",
                    chunk_batches as u64 * config.batch_size as u64 * 4,
                    STORAGE_USAGE,
                );
                let triples = empty_buffer(
                    device,
                    "triples",
                    chunk_batches as u64 * batch_bytes,
                    STORAGE_USAGE,
                );
                let steps = empty_buffer(
                    device,
                    "steps",
                    chunk_batches as u64 * self.kernels.step_stride,
                    wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                );
                let readback = empty_buffer(
                    device,
                    "losses read-back",
                    readback_bytes,
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                );
                let bind_groups = self.kernels.bind_groups(
                    device,
                    &Bindings {
                        steps: &steps,
                        params: &params_buffer,
                        grads: &grads,
                        first_moment: &first_moment,
                        second_moment: &second_moment,
                        triples: &triples,
                        scratch: &scratch,
                        losses: &losses,
                        claims: &claims,
                        counts: &counts,
                    },
                );
                ChunkSlot {
                    order,
                    triples,
                    steps,
                    readback,
                    bind_groups,
                }
            })
            .collect();
        self.run = Some(Run {
            optimizer,
            l2: config.l2 != 0.0,
            fused,
            next_claim: 1,
            claim_limit,
            timer,
            shape,
            params: params_buffer,
            grads,
            first_moment,
            second_moment,
            scratch,
            losses,
            loss_layout,
            claims,
            counts,
            slots,
            next_slot: 0,
            timestamps_at,
            chunk_batches,
            train: None,
            queue: Queue::default(),
            eval: None,
        });
        Ok(())
    }

    fn set_train_set(&mut self, ratings: &Ratings) -> Result<(), TrainError> {
        let upload_started = Instant::now();
        let per_binding = (self.binding_limit() / size_of::<Triple>() as u64) as usize;
        let piece_len = self
            .options
            .train_piece_ratings
            .unwrap_or(usize::MAX)
            .min(per_binding);
        let device = &self.device;
        let gather = &self.gather;
        let run = self.run.as_mut().ok_or(NOT_STARTED)?;
        let set = TrainSet::upload(device, ratings, piece_len)?;
        let record_bytes = set.pieces.len().max(1) as u64 * gather.record_stride;
        let gathers = run
            .slots
            .iter()
            .map(|slot| {
                let records = empty_buffer(
                    device,
                    "gather records",
                    record_bytes,
                    wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                );
                let groups = (set.pieces.iter().enumerate())
                    .map(|(p, piece)| {
                        let (order, triples) = (&slot.order, &slot.triples);
                        gather.bind_group(device, &records, p, order, &piece.triples, triples)
                    })
                    .collect();
                (records, groups)
            })
            .collect();
        run.train = Some(Resident { set, gathers });
        self.timings.upload_seconds += upload_started.elapsed().as_secs_f64();
        Ok(())
    }

    fn submit(&mut self, batches: &Batches<'_>) -> Result<(), TrainError> {
        let device = &self.device;
        let kernels = &self.kernels;
        let gather = &self.gather;
        let timings = &mut self.timings;
        let run = self.run.as_mut().ok_or(NOT_STARTED)?;
        if batches.batch_size > run.shape.capacity as usize {
            return Err(TrainError::BatchSize {
                backend: "gpu",
                got: batches.batch_size,
                started_for: run.shape.capacity as usize,
            });
        }
        let train = run.train.as_ref().ok_or(TrainError::NotStarted {
            backend: "gpu",
            call: "train (set_train_set was not called)",
        })?;
        let len = train.set.len;
        if let Some(&index) = batches.order.iter().find(|&&n| n as usize >= len) {
            return Err(TrainError::OrderOutOfRange { index, len });
        }
        let sequence = if run.fused {
            Kernels::fused_train_step(run.optimizer, run.l2, run.shape.factors)
        } else {
            Kernels::train_step(run.optimizer, run.l2)
        };
        // Every fused optimiser reads forward_backward's tags: the sparse ones to find each row's
        // owner, adamw_vec4 to skip the gradients of the rows the batch did not touch.
        let tagged_claims = run.fused;
        let fold_l2 = run.fused && run.l2 && Kernels::folds_l2(run.optimizer);
        let stride = run.loss_layout.stride();
        let mut chunk_start = 0;
        while chunk_start < batches.len() {
            let slot_index = run.next_slot;
            while run.queue.holds(slot_index) {
                // Every slot is in flight: wait for the oldest (this one) while the rest run.
                timings.queue_full_waits += 1;
                timings.add(run.queue.wait_oldest(device)?);
            }
            let upload_started = Instant::now();
            let chunk_end = (chunk_start + run.chunk_batches).min(batches.len());
            let count = chunk_end - chunk_start;
            let slot = &run.slots[slot_index];
            let (records, gather_groups) = &train.gathers[slot_index];
            let first = batches.range(chunk_start).start;
            let last = batches.range(chunk_end - 1).end;
            // The fused path: each batch gets fresh claim tags; restart them (and clear the claims)
            // before they would overflow.
            let restart_claims =
                tagged_claims && run.next_claim as u64 + count as u64 > run.claim_limit as u64;
            if restart_claims {
                run.next_claim = 1;
            }
            let steps: Vec<StepUniform> = (chunk_start..chunk_end)
                .map(|s| {
                    let range = batches.range(s);
                    let mut step = run.shape.with_batch(
                        range.start - first,
                        range.len(),
                        (s - chunk_start) * stride,
                        &batches.steps[s],
                    );
                    if tagged_claims {
                        step.claim_base =
                            (run.next_claim + (s - chunk_start) as u32) * run.shape.capacity;
                    }
                    step.fold_l2 = fold_l2 as u32;
                    step
                })
                .collect();
            if tagged_claims {
                run.next_claim += count as u32;
            }
            // Queue writes land before this submission and after every earlier one, so filling
            // this slot while the GPU still runs the others is safe.
            let order = &batches.order[first..last];
            device
                .queue
                .write_buffer(&slot.order, 0, bytemuck::cast_slice(order));
            device
                .queue
                .write_buffer(records, 0, &gather.record_bytes(&train.set, order.len()));
            device
                .queue
                .write_buffer(&slot.steps, 0, &kernels.step_bytes(&steps));
            let encode_started = Instant::now();
            timings.upload_seconds += (encode_started - upload_started).as_secs_f64();
            let mut encoder = device.device.create_command_encoder(&Default::default());
            if restart_claims {
                encoder.clear_buffer(&run.claims, 0, None);
            }
            {
                // One compute pass for the whole chunk: the gather, then per batch one bind (the
                // step record's dynamic offset moves) and only pipelines change between
                // dispatches.
                let timestamp_writes =
                    run.timer
                        .as_ref()
                        .map(|timer| wgpu::ComputePassTimestampWrites {
                            query_set: &timer.query_set,
                            beginning_of_pass_write_index: Some(2 * slot_index as u32),
                            end_of_pass_write_index: Some(2 * slot_index as u32 + 1),
                        });
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("train chunk"),
                    timestamp_writes,
                });
                for group in gather_groups {
                    gather.dispatch(&mut pass, group, order.len());
                }
                for (s, step) in steps.iter().enumerate() {
                    kernels.dispatch_step(&mut pass, &sequence, &slot.bind_groups, s, step);
                }
            }
            let loss_bytes = (count * stride * 4) as u64;
            encoder.copy_buffer_to_buffer(&run.losses, 0, &slot.readback, 0, loss_bytes);
            let mut mapped_bytes = loss_bytes;
            let mut timestamps_at = None;
            if let Some(timer) = &run.timer {
                let at = slot_index as u64 * wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT;
                let queries = 2 * slot_index as u32..2 * slot_index as u32 + 2;
                encoder.resolve_query_set(&timer.query_set, queries, &timer.resolve, at);
                encoder.copy_buffer_to_buffer(
                    &timer.resolve,
                    at,
                    &slot.readback,
                    run.timestamps_at,
                    16,
                );
                mapped_bytes = run.timestamps_at + 16;
                timestamps_at = Some(run.timestamps_at);
            }
            let submission = device.queue.submit([encoder.finish()]);
            run.queue.push(InFlight::mapped(
                slot_index,
                &slot.readback,
                mapped_bytes,
                run.loss_layout,
                steps.iter().map(|step| step.batch_len as usize).collect(),
                timestamps_at,
                run.timer.as_ref().map_or(0.0, |timer| timer.period_ns),
                submission,
            ));
            timings.encode_seconds += encode_started.elapsed().as_secs_f64();
            timings.batches += count as u64;
            timings.chunks += 1;
            timings.dispatches += (count * sequence.len()) as u64;
            timings.gather_dispatches += gather_groups.len() as u64;
            if run.fused {
                timings.kernel_bytes += steps
                    .iter()
                    .map(|step| {
                        let n = step.batch_len as u64;
                        fused_batch_bytes(&run.shape, n, run.optimizer, run.l2)
                    })
                    .sum::<u64>();
            }
            run.next_slot = (slot_index + 1) % queue::SLOTS;
            chunk_start = chunk_end;
        }
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<f32>, TrainError> {
        let run = self.run.as_mut().ok_or(NOT_STARTED)?;
        self.timings.add(run.queue.poll(&self.device)?);
        Ok(run.queue.take_arrived())
    }

    fn finish(&mut self) -> Result<Vec<f32>, TrainError> {
        let run = self.run.as_mut().ok_or(NOT_STARTED)?;
        if !run.queue.is_empty() {
            self.timings.host_waits += 1;
        }
        self.timings.add(run.queue.finish(&self.device)?);
        Ok(run.queue.take_arrived())
    }

    fn set_eval_set(&mut self, ratings: &Ratings) -> Result<(), TrainError> {
        let limit = self.binding_limit().min(DEFAULT_CHUNK_BYTES);
        let chunk_len = (limit / size_of::<Triple>() as u64).max(1) as usize;
        let max_chunks = self.run_mut()?.chunk_batches;
        let chunk_count = ratings.len().div_ceil(chunk_len);
        if chunk_count > max_chunks {
            // The losses buffer has one slot per chunk; this only bites with tiny forced chunks.
            return Err(GpuError::EvalChunks {
                needed: chunk_count,
                slots: max_chunks,
            }
            .into());
        }
        let device = &self.device;
        let kernels = &self.kernels;
        let run = self.run.as_ref().expect("checked by run_mut above");
        let steps: Vec<StepUniform> = (0..chunk_count)
            .map(|c| StepUniform {
                batch_start: 0,
                batch_len: (ratings.len() - c * chunk_len).min(chunk_len) as u32,
                slot: c as u32,
                ..run.shape
            })
            .collect();
        let steps_buffer = buffer_with(
            device,
            "eval steps",
            &kernels.step_bytes(&steps),
            wgpu::BufferUsages::UNIFORM,
        );
        let mut buffers = Vec::new();
        let mut chunks = Vec::new();
        for (c, step) in steps.into_iter().enumerate() {
            let range = c * chunk_len..c * chunk_len + step.batch_len as usize;
            let triples = pack_triples(
                &ratings.users[range.clone()],
                &ratings.items[range.clone()],
                &ratings.ratings[range],
            );
            let buffer = buffer_with(
                device,
                "eval triples",
                bytemuck::cast_slice(&triples),
                STORAGE_USAGE,
            );
            let bind_groups = kernels.bind_groups(
                device,
                &Bindings {
                    steps: &steps_buffer,
                    params: &run.params,
                    grads: &run.grads,
                    first_moment: &run.first_moment,
                    second_moment: &run.second_moment,
                    triples: &buffer,
                    scratch: &run.scratch,
                    losses: &run.losses,
                    claims: &run.claims,
                    counts: &run.counts,
                },
            );
            buffers.push(buffer);
            chunks.push((bind_groups, step));
        }
        buffers.push(steps_buffer);
        let readback = empty_buffer(
            device,
            "eval read-back",
            chunk_count as u64 * 4,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        self.run_mut()?.eval = Some(EvalSet {
            chunks,
            readback,
            _buffers: buffers,
        });
        Ok(())
    }

    fn eval_sum_squared_error(&mut self) -> Result<f64, TrainError> {
        let device = &self.device;
        let run = self.run.as_ref().ok_or(NOT_STARTED)?;
        let eval = run.eval.as_ref().ok_or(TrainError::NotStarted {
            backend: "gpu",
            call: "evaluate (set_eval_set was not called)",
        })?;
        if eval.chunks.is_empty() {
            return Ok(0.0);
        }
        let started = Instant::now();
        let mut encoder = device.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("evaluate"),
                timestamp_writes: None,
            });
            for (c, (bind_groups, step)) in eval.chunks.iter().enumerate() {
                self.kernels
                    .dispatch(&mut pass, Kernel::EvalPartial, bind_groups, c, step);
                self.kernels
                    .dispatch(&mut pass, Kernel::EvalFinish, bind_groups, c, step);
            }
        }
        let count = eval.chunks.len();
        encoder.copy_buffer_to_buffer(&run.losses, 0, &eval.readback, 0, count as u64 * 4);
        let submission = device.queue.submit([encoder.finish()]);
        let sums = read_losses(device, &eval.readback, count, submission)?;
        self.timings.eval_seconds += started.elapsed().as_secs_f64();
        self.timings.host_waits += 1;
        Ok(sums.iter().map(|&s| s as f64).sum())
    }

    fn state(&mut self) -> Result<TrainState, TrainError> {
        let device = &self.device;
        let run = self.run.as_ref().ok_or(NOT_STARTED)?;
        let params = read_params(device, &run.params, &run.shape)?;
        let moments = if run.optimizer.has_moments() {
            Some(AdamMoments {
                m: read_params(device, &run.first_moment, &run.shape)?,
                v: read_params(device, &run.second_moment, &run.shape)?,
            })
        } else {
            None
        };
        // One accumulator per row: the parameter layout of K = 1.
        let row_shape = StepUniform {
            factors: 1,
            ..run.shape
        };
        let row_sums = match run.optimizer.has_row_sums() {
            true => Some(read_params(device, &run.first_moment, &row_shape)?),
            false => None,
        };
        Ok(TrainState {
            params,
            moments,
            row_sums,
        })
    }
}

/// The bytes the fused path's kernels read and write in global memory for one batch of `n`
/// ratings with `optimizer` (and `l2_grad` when `l2`), counted from what each kernel touches
/// (caches ignored; `f32` entries, `P = (U + I) (K + 1)` parameters; the sparse kernels counted per
/// rating, as if no row occurred twice):
///
/// - `gather_triples`, per rating: its index (4), its triple read (12) and written (12);
/// - `forward_backward`, per rating: its triple (12), the two factor rows and biases it reads
///   (`8 (K + 1)`), the gradient rows it adds to, read and written (`16 (K + 1)`), its two rows'
///   claim tags read and written (16; every fused optimiser reads them); per workgroup its partial
///   loss sum (4);
/// - `l2_grad`, per rating: its two rows' values read and gradients read and written,
///   `24 (K + 1)`; where the optimiser folds the L2 term in (`Kernels::folds_l2`), instead its
///   two rows' counts, read and written by `forward_backward` and by the optimiser (32);
/// - `adamw_vec4` (dense): every parameter's value and two moments read and written (`24 P`),
///   every row's claim tag read (`4 (U + I)`), and only the touched rows' gradients read and
///   zeroed, per rating its two rows' `16 (K + 1)`, at most the dense `8 P` (an untouched row's
///   gradient is zero and is not read);
/// - the sparse optimisers, per rating: the two row claims (8), and its two rows' values and
///   gradients read and written back, the gradient zeroed (`32 (K + 1)`); `rowwise-adagrad` also
///   reads and writes the accumulators of the two rows and two biases (32), `sparse-adam` the two
///   moments of every entry (`32 (K + 1)`).
pub fn fused_batch_bytes(shape: &StepUniform, n: u64, optimizer: OptimizerKind, l2: bool) -> u64 {
    let row = shape.factors as u64 + 1;
    let rows = shape.users as u64 + shape.items as u64;
    let gather = n * (4 + 12 + 12);
    let forward = n * (12 + 24 * row + 16) + 4 * n.div_ceil(WORKGROUP as u64);
    let regularise = match (l2, Kernels::folds_l2(optimizer)) {
        (false, _) => 0,
        (true, false) => n * 24 * row,
        (true, true) => n * 32,
    };
    let sparse = n * (32 * row + 8);
    let update = match optimizer {
        OptimizerKind::AdamW => 24 * rows * row + 4 * rows + (n * 16 * row).min(8 * rows * row),
        OptimizerKind::Sgd => sparse,
        OptimizerKind::RowwiseAdagrad => sparse + n * 32,
        OptimizerKind::SparseAdam => sparse + n * 32 * row,
    };
    gather + forward + regularise + update
}

fn read_losses(
    device: &Device,
    readback: &wgpu::Buffer,
    count: usize,
    after: wgpu::SubmissionIndex,
) -> Result<Vec<f32>, GpuError> {
    let bytes = buffers::read_mapped(device, readback, count as u64 * 4, Some(after))?;
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_binding_limit() {
        // ML-25M through a 128 MiB binding: 20M triples of 12 bytes, B = 64.
        let batch_bytes = 64 * size_of::<Triple>() as u64;
        let n = chunk_batches(128 << 20, batch_bytes, None);
        assert!(n as u64 * batch_bytes <= 128 << 20);
        assert!(n as u64 * batch_bytes <= DEFAULT_CHUNK_BYTES);
        // A small adapter limit wins over the default size.
        assert_eq!(chunk_batches(10 * batch_bytes + 5, batch_bytes, None), 10);
        // Never zero, even when one batch barely fits.
        assert_eq!(chunk_batches(batch_bytes, batch_bytes, None), 1);
        // Tests may force tiny chunks.
        assert_eq!(chunk_batches(128 << 20, batch_bytes, Some(3)), 3);
    }

    #[test]
    fn fused_traffic_by_hand() {
        // U = 10, I = 20, K = 3 (rows of 4 entries), a batch of 5 ratings: one workgroup.
        let shape = StepUniform::shape(10, 20, 3, Some((0.0, 5.5)), 8);
        let gather = 5 * 28;
        // Triple, two rows read, two gradient rows read and written, two claims read and written;
        // one partial loss sum.
        let forward = 5 * (12 + 2 * 4 * 4 + 2 * 4 * 8 + 2 * 8) + 4;
        let bytes = |optimizer, l2| fused_batch_bytes(&shape, 5, optimizer, l2);
        // adamw: all 120 parameters' values, m and v read and written, the 30 claims read, and
        // the gradients of the 10 rows the batch touched (2 per rating) read and zeroed.
        let adamw = 120 * 3 * 8 + 30 * 4 + 5 * 2 * 4 * 8;
        assert_eq!(bytes(OptimizerKind::AdamW, false), gather + forward + adamw);
        // A batch that touches more rows than there are reads every gradient, no more.
        let big = 64;
        let big_forward = big * (12 + 2 * 4 * 4 + 2 * 4 * 8 + 2 * 8) + 4;
        assert_eq!(
            fused_batch_bytes(&shape, big, OptimizerKind::AdamW, false),
            big * 28 + big_forward + 120 * 3 * 8 + 30 * 4 + 120 * 8
        );
        let sgd = 5 * (32 * 4 + 8);
        assert_eq!(bytes(OptimizerKind::Sgd, false), gather + forward + sgd);
        // Row sums of P's or Q's row and of its bias, read and written, on both sides.
        let sums = 5 * 2 * 2 * 8;
        assert_eq!(
            bytes(OptimizerKind::RowwiseAdagrad, false),
            gather + forward + sgd + sums
        );
        // m and v of every entry of both rows, read and written.
        let moments = 5 * 2 * 4 * 16;
        assert_eq!(
            bytes(OptimizerKind::SparseAdam, false),
            gather + forward + sgd + moments
        );
        // l2_grad: both rows' values read, their gradients read and written.
        let l2 = 5 * 2 * 4 * 12;
        assert_eq!(
            bytes(OptimizerKind::SparseAdam, true),
            gather + forward + l2 + sgd + moments
        );
        // Folded into rowwise-adagrad and sgd: both rows' counts read and written twice.
        let counts = 5 * 2 * 2 * 8;
        assert_eq!(
            bytes(OptimizerKind::RowwiseAdagrad, true),
            gather + forward + counts + sgd + sums
        );
        assert_eq!(
            bytes(OptimizerKind::Sgd, true),
            gather + forward + counts + sgd
        );
        assert_eq!(
            bytes(OptimizerKind::AdamW, true),
            gather + forward + l2 + adamw
        );
    }
}
