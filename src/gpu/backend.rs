//! The GPU training backend: parameters and optimiser state resident in storage buffers for the
//! whole run; each run of batches streams to the GPU in double-buffered chunks of triples, many
//! batches per command buffer and one compute pass per chunk, and only the batch losses (per chunk)
//! and the validation loss (one scalar per evaluation chunk) come back.
//!
//! Training runs the fused path by default: per batch `forward_backward` (gather to scatter-add in
//! one dispatch), `batch_loss`, `l2_grad` with `--l2`, and the optimiser (`adamw_vec4`, or for the
//! sparse ones `sgd_apply`, `rowwise_adagrad_apply`, `sparse_adam_apply`), three or four
//! dispatches. [`GpuOptions::unfused`] runs the single-op kernels instead (nine to twelve).
//! [`GpuBackend::timings`] says where the time went and [`GpuBackend::memory_report`] what the run
//! allocated.

use super::GpuError;
use super::buffers::{self, STORAGE_USAGE, buffer_with, empty_buffer};
use super::device::{DEFAULT_CHUNK_BYTES, Device, GpuOptions};
use super::kernels::{Bindings, Kernel, Kernels};
use super::layout::{StepUniform, Triple, pack_triples, padded_len};
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
    /// Compute dispatches recorded for training.
    pub dispatches: u64,
    /// Times the host blocked on the GPU: one per chunk of training batches (its losses) and
    /// one per evaluation (its sum). Reading the final state back is not counted.
    pub host_waits: u64,
    /// Bytes the fused training kernels read and write, by arithmetic ([`fused_batch_bytes`]);
    /// 0 on the single-op path.
    pub kernel_bytes: u64,
    /// Host: packing triples and step records and handing them to the queue (`write_buffer`).
    pub upload_seconds: f64,
    /// Host: recording the dispatches of each chunk and submitting them.
    pub encode_seconds: f64,
    /// Host: blocked until a chunk's batch losses were mapped back (the GPU still working).
    pub readback_wait_seconds: f64,
    /// GPU: the summed span of the training compute passes (timestamp queries), or `None` where
    /// the adapter lacks `TIMESTAMP_QUERY`.
    pub kernel_seconds: Option<f64>,
    /// Host: whole validation-loss evaluations, dispatch to scalar.
    pub eval_seconds: f64,
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
    /// The two double-buffered chunks of training triples.
    pub triple_chunks: u64,
    /// The per-batch step records (uniforms) of both chunks.
    pub step_records: u64,
    /// Batch losses, sgd claims and timestamp resolve buffers.
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
            + self.triple_chunks
            + self.step_records
            + self.small_buffers
            + self.staging
            + self.eval_set
    }
}

/// Timestamp queries at the start and end of each chunk's compute pass, two per chunk slot.
#[derive(Debug)]
struct PassTimer {
    query_set: wgpu::QuerySet,
    /// Resolved queries, slot `s` at byte `s * QUERY_RESOLVE_BUFFER_ALIGNMENT`.
    resolve: wgpu::Buffer,
    /// One mappable copy of the two timestamps per slot.
    readbacks: Vec<wgpu::Buffer>,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
}
/// One of the two chunk slots: while the GPU trains on one, the host fills the other.
#[derive(Debug)]
struct ChunkSlot {
    triples: wgpu::Buffer,
    steps: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
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
    chunks: Vec<(wgpu::BindGroup, StepUniform)>,
    readback: wgpu::Buffer,
    _buffers: Vec<wgpu::Buffer>,
}

/// Everything that lives for one training run.
#[derive(Debug)]
struct Run {
    optimizer: OptimizerKind,
    /// Whether `l2_grad` runs (`--l2` is not 0).
    l2: bool,
    /// The fused path (three dispatches per batch) or the single-op kernels.
    fused: bool,
    /// The next batch's claim tag base in units of `C` (fused sparse optimisers); tags only grow.
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
    claims: wgpu::Buffer,
    slots: Vec<ChunkSlot>,
    chunk_batches: usize,
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
        let kernels = Kernels::new(&device, options.force_cas_atomics);
        GpuBackend {
            device,
            kernels,
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

    /// Where the time went since the last `start` (see [`GpuTimings`]).
    pub fn timings(&self) -> GpuTimings {
        self.timings.clone()
    }

    /// Whether the training path is the fused one (three dispatches per batch).
    pub fn is_fused(&self) -> bool {
        !self.options.unfused
    }

    /// The GPU memory the current run allocated, by purpose; `None` before `start`.
    pub fn memory_report(&self) -> Option<GpuMemoryReport> {
        let run = self.run.as_ref()?;
        let slots = |f: fn(&ChunkSlot) -> u64| run.slots.iter().map(f).sum::<u64>();
        let mut small = run.losses.size() + run.claims.size();
        let mut staging = slots(|s| s.readback.size());
        if let Some(timer) = &run.timer {
            small += timer.resolve.size();
            staging += timer.readbacks.iter().map(|b| b.size()).sum::<u64>();
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
            triple_chunks: slots(|s| s.triples.size()),
            step_records: slots(|s| s.steps.size()),
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
        if fused && optimizer.is_sparse() {
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
        let losses = empty_buffer(device, "losses", chunk_batches as u64 * 4, STORAGE_USAGE);
        // The single-op sgd claims with atomicMin and releases to u32::MAX; the fused path's tags
        // grow from 1 * C, so every slot starts below them.
        let unclaimed = if fused { 0 } else { u32::MAX };
        let claims = buffer_with(
            device,
            "claims",
            bytemuck::cast_slice(&vec![unclaimed; users + items]),
            STORAGE_USAGE,
        );
        let timer = device.has_timestamps().then(|| {
            let align = wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT;
            PassTimer {
                query_set: device.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("chunk pass times"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 4,
                }),
                resolve: empty_buffer(
                    device,
                    "timestamps",
                    2 * align,
                    wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                ),
                readbacks: (0..2)
                    .map(|_| {
                        empty_buffer(
                            device,
                            "timestamps read-back",
                            16,
                            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        )
                    })
                    .collect(),
                period_ns: device.queue.get_timestamp_period() as f64,
            }
        });
        let slots = (0..2)
            .map(|_| {
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
                    chunk_batches as u64 * 4,
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                );
                let bind_group = self.kernels.bind_group(
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
                    },
                );
                ChunkSlot {
                    triples,
                    steps,
                    readback,
                    bind_group,
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
            claims,
            slots,
            chunk_batches,
            eval: None,
        });
        Ok(())
    }

    fn train_batches(&mut self, batches: &Batches<'_>) -> Result<Vec<f32>, TrainError> {
        let device = &self.device;
        let kernels = &self.kernels;
        let timings = &mut self.timings;
        let run = self.run.as_mut().ok_or(NOT_STARTED)?;
        if batches.batch_size > run.shape.capacity as usize {
            return Err(TrainError::BatchSize {
                backend: "gpu",
                got: batches.batch_size,
                started_for: run.shape.capacity as usize,
            });
        }
        let sequence = if run.fused {
            Kernels::fused_train_step(run.optimizer, run.l2)
        } else {
            Kernels::train_step(run.optimizer, run.l2)
        };
        let tagged_claims = run.fused && run.optimizer.is_sparse();
        let mut losses = Vec::with_capacity(batches.len());
        // The chunk whose losses are still on their way back: (slot, batches, submission).
        let mut pending: Option<(usize, usize, wgpu::SubmissionIndex)> = None;
        let mut chunk_start = 0;
        let mut chunk = 0;
        while chunk_start < batches.len() {
            let upload_started = Instant::now();
            let chunk_end = (chunk_start + run.chunk_batches).min(batches.len());
            let count = chunk_end - chunk_start;
            let slot_index = chunk % 2;
            let slot = &run.slots[slot_index];
            let first = batches.range(chunk_start).start;
            let last = batches.range(chunk_end - 1).end;
            let triples = pack_triples(
                &batches.users[first..last],
                &batches.items[first..last],
                &batches.ratings[first..last],
            );
            // Fused sparse optimisers: each batch gets fresh claim tags; restart them (and clear the claims)
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
                        s - chunk_start,
                        &batches.steps[s],
                    );
                    if tagged_claims {
                        step.claim_base =
                            (run.next_claim + (s - chunk_start) as u32) * run.shape.capacity;
                    }
                    step
                })
                .collect();
            if tagged_claims {
                run.next_claim += count as u32;
            }
            // Queue writes land before this submission and after every earlier one, so filling
            // this slot while the GPU still runs the other chunk is safe.
            device
                .queue
                .write_buffer(&slot.triples, 0, bytemuck::cast_slice(&triples));
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
                // One compute pass for the whole chunk; per batch one bind (the step record's
                // dynamic offset moves), then only pipelines change between dispatches.
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
                for (s, step) in steps.iter().enumerate() {
                    kernels.dispatch_step(&mut pass, &sequence, &slot.bind_group, s, step);
                }
            }
            encoder.copy_buffer_to_buffer(&run.losses, 0, &slot.readback, 0, count as u64 * 4);
            if let Some(timer) = &run.timer {
                let at = slot_index as u64 * wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT;
                let queries = 2 * slot_index as u32..2 * slot_index as u32 + 2;
                encoder.resolve_query_set(&timer.query_set, queries, &timer.resolve, at);
                encoder.copy_buffer_to_buffer(
                    &timer.resolve,
                    at,
                    &timer.readbacks[slot_index],
                    0,
                    16,
                );
            }
            let submission = device.queue.submit([encoder.finish()]);
            timings.encode_seconds += encode_started.elapsed().as_secs_f64();
            timings.batches += count as u64;
            timings.chunks += 1;
            timings.dispatches += (count * sequence.len()) as u64;
            if run.fused {
                timings.kernel_bytes += steps
                    .iter()
                    .map(|step| {
                        let n = step.batch_len as u64;
                        fused_batch_bytes(&run.shape, n, run.optimizer, run.l2)
                    })
                    .sum::<u64>();
            }
            if let Some((slot, count, after)) = pending.take() {
                losses.extend(collect_chunk(device, run, timings, slot, count, after)?);
            }
            pending = Some((slot_index, count, submission));
            chunk_start = chunk_end;
            chunk += 1;
        }
        if let Some((slot, count, after)) = pending {
            losses.extend(collect_chunk(device, run, timings, slot, count, after)?);
        }
        Ok(losses)
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
            let bind_group = kernels.bind_group(
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
                },
            );
            buffers.push(buffer);
            chunks.push((bind_group, step));
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
            for (c, (bind_group, step)) in eval.chunks.iter().enumerate() {
                self.kernels
                    .dispatch(&mut pass, Kernel::EvalPartial, bind_group, c, step);
                self.kernels
                    .dispatch(&mut pass, Kernel::EvalFinish, bind_group, c, step);
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
/// - `forward_backward`, per rating: its triple (12), the two factor rows and biases it reads
///   (`8 (K + 1)`), the gradient rows it adds to, read and written (`16 (K + 1)`), its squared
///   error (4);
/// - `batch_loss`: the `n` squared errors (4 each) and the loss (4);
/// - `l2_grad`, per rating: its two rows' values read and gradients read and written,
///   `24 (K + 1)`;
/// - `adamw` (dense): every parameter's value, gradient and two moments read and the value, two
///   moments and zeroed gradient written, `32 P`;
/// - the sparse optimisers, per rating: the two row claims (8), and its two rows' values and
///   gradients read and written back, the gradient zeroed (`32 (K + 1)`); `rowwise-adagrad` also
///   reads and writes the accumulators of the two rows and two biases (32), `sparse-adam` the two
///   moments of every entry (`32 (K + 1)`).
pub fn fused_batch_bytes(shape: &StepUniform, n: u64, optimizer: OptimizerKind, l2: bool) -> u64 {
    let row = shape.factors as u64 + 1;
    let forward = n * (12 + 24 * row + 4);
    let loss = 4 * n + 4;
    let regularise = if l2 { n * 24 * row } else { 0 };
    let sparse = n * (32 * row + 8);
    let update = match optimizer {
        OptimizerKind::AdamW => 32 * (shape.users as u64 + shape.items as u64) * row,
        OptimizerKind::Sgd => sparse,
        OptimizerKind::RowwiseAdagrad => sparse + n * 32,
        OptimizerKind::SparseAdam => sparse + n * 32 * row,
    };
    forward + loss + regularise + update
}

/// Waits for a chunk's submission `after` and reads its `count` batch losses back from `slot`,
/// and its pass time where the adapter has timestamps.
fn collect_chunk(
    device: &Device,
    run: &Run,
    timings: &mut GpuTimings,
    slot: usize,
    count: usize,
    after: wgpu::SubmissionIndex,
) -> Result<Vec<f32>, GpuError> {
    let started = Instant::now();
    let losses = read_losses(device, &run.slots[slot].readback, count, after.clone())?;
    timings.readback_wait_seconds += started.elapsed().as_secs_f64();
    timings.host_waits += 1;
    if let Some(timer) = &run.timer {
        let bytes = buffers::read_mapped(device, &timer.readbacks[slot], 16, Some(after))?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
        let seconds = ticks[1].saturating_sub(ticks[0]) as f64 * timer.period_ns * 1e-9;
        *timings.kernel_seconds.get_or_insert(0.0) += seconds;
    }
    Ok(losses)
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
        // U = 10, I = 20, K = 3 (rows of 4 entries), a batch of 5 ratings.
        let shape = StepUniform::shape(10, 20, 3, Some((0.0, 5.5)), 8);
        let forward = 5 * (12 + 24 * 4 + 4);
        let loss = 5 * 4 + 4;
        let bytes = |optimizer, l2| fused_batch_bytes(&shape, 5, optimizer, l2);
        assert_eq!(
            bytes(OptimizerKind::AdamW, false),
            forward + loss + 32 * 30 * 4
        );
        let sgd = 5 * (32 * 4 + 8);
        assert_eq!(bytes(OptimizerKind::Sgd, false), forward + loss + sgd);
        // Row sums of P's or Q's row and of its bias, read and written, on both sides.
        let sums = 5 * 2 * 2 * 8;
        assert_eq!(
            bytes(OptimizerKind::RowwiseAdagrad, false),
            forward + loss + sgd + sums
        );
        // m and v of every entry of both rows, read and written.
        let moments = 5 * 2 * 4 * 16;
        assert_eq!(
            bytes(OptimizerKind::SparseAdam, false),
            forward + loss + sgd + moments
        );
        // l2_grad: both rows' values read, their gradients read and written.
        let l2 = 5 * 2 * 4 * 12;
        assert_eq!(
            bytes(OptimizerKind::RowwiseAdagrad, true),
            forward + loss + l2 + sgd + sums
        );
        assert_eq!(
            bytes(OptimizerKind::AdamW, true),
            forward + loss + l2 + 32 * 30 * 4
        );
    }
}
