//! The orchestrator's queue: the training set resident on the GPU for the whole run, each chunk's
//! triples gathered there from the epoch's order (4 bytes a rating cross the bus instead of 12),
//! and up to [`SLOTS`] chunks in flight whose losses come back through `map_async`, so that the
//! host waits for the GPU once per epoch rather than once per chunk.
//!
//! A chunk's life (the backend records it, this module keeps track of it): its order and step
//! records go into a free slot's buffers, one compute pass runs `gather_triples` and then the
//! batches' kernels, the losses (and the pass's two timestamps) are copied into the slot's
//! read-back buffer, the command buffer is submitted and the read-back is asked to be mapped. The
//! map callback only sends on a channel; [`Queue::poll`] collects, without blocking, the chunks
//! whose mapping has arrived, and [`Queue::finish`] waits once for the newest submission and
//! collects the rest. A slot is reused only after its chunk was collected (a mapped buffer cannot
//! be copied into), so a full ring makes the next submission wait for its oldest chunk while the
//! others keep the GPU busy: [`Queue::wait_oldest`].

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Instant;

use super::GpuError;
use super::buffers::{STORAGE_USAGE, TRANSFER_CHUNK_BYTES, empty_buffer};
use super::device::Device;
use super::layout::{Triple, WORKGROUP, pack_triples};
use super::shaders;
use crate::data::Ratings;

/// Chunks in flight at most: while the GPU runs two, the host fills the third.
pub const SLOTS: usize = 3;

/// `struct GatherRecord` of shaders/gather_triples.wgsl, byte for byte: one dispatch's chunk
/// length and the piece of the training set it reads.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GatherRecord {
    /// Entries of the chunk's order.
    pub len: u32,
    /// The training-set index of the piece's first triple.
    pub first: u32,
    /// Triples in the piece.
    pub piece_len: u32,
    /// Unused: keeps the record 16 bytes.
    pub padding: u32,
}

/// `gather_triples` and its own bind-group layout: it binds the order and a piece of the training
/// set, which no training kernel reads, under binding numbers of its own rather than the training
/// kernels' numbering of [`super::layout::binding`]. Built once per device.
#[derive(Debug)]
pub struct GatherKernel {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Bytes between two [`GatherRecord`]s in a uniform buffer (the uniform offset alignment).
    pub record_stride: u64,
    max_per_dimension: u32,
}

impl GatherKernel {
    pub fn new(device: &Device) -> GatherKernel {
        let gpu = &device.device;
        let entry = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let storage = |read_only| wgpu::BufferBindingType::Storage { read_only };
        let layout = gpu.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("gather_triples"),
            entries: &[
                entry(0, wgpu::BufferBindingType::Uniform),
                entry(1, storage(true)),
                entry(2, storage(true)),
                entry(3, storage(false)),
            ],
        });
        let pipeline_layout = gpu.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("gather_triples"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let source = shaders::source("gather_triples").expect("shaders/gather_triples.wgsl");
        let module = gpu.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("gather_triples"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = gpu.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("gather_triples"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("gather_triples"),
            compilation_options: Default::default(),
            cache: None,
        });
        let limits = gpu.limits();
        let align = limits.min_uniform_buffer_offset_alignment as u64;
        GatherKernel {
            layout,
            pipeline,
            record_stride: (size_of::<GatherRecord>() as u64).div_ceil(align) * align,
            max_per_dimension: limits.max_compute_workgroups_per_dimension,
        }
    }

    /// The bind group of one slot and one piece: the piece's record at `records`' entry `piece`.
    pub fn bind_group(
        &self,
        device: &Device,
        records: &wgpu::Buffer,
        piece: usize,
        order: &wgpu::Buffer,
        train_piece: &wgpu::Buffer,
        triples: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        device.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("gather_triples"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: records,
                        offset: piece as u64 * self.record_stride,
                        size: wgpu::BufferSize::new(size_of::<GatherRecord>() as u64),
                    }),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: order.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: train_piece.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: triples.as_entire_binding(),
                },
            ],
        })
    }

    /// Records one piece's gather of a chunk of `len` ratings.
    pub fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        bind_group: &wgpu::BindGroup,
        len: usize,
    ) {
        let groups = (len as u64).div_ceil(WORKGROUP as u64).max(1);
        let x = groups.min(self.max_per_dimension as u64);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(x as u32, groups.div_ceil(x) as u32, 1);
    }

    /// The records of a chunk of `len` ratings, one per piece, laid out at `record_stride`.
    pub fn record_bytes(&self, train: &TrainSet, len: usize) -> Vec<u8> {
        let stride = self.record_stride as usize;
        let mut bytes = vec![0u8; train.pieces.len().max(1) * stride];
        for (p, piece) in train.pieces.iter().enumerate() {
            let record = GatherRecord {
                len: len as u32,
                first: piece.first as u32,
                piece_len: piece.len as u32,
                padding: 0,
            };
            bytes[p * stride..p * stride + size_of::<GatherRecord>()]
                .copy_from_slice(bytemuck::bytes_of(&record));
        }
        bytes
    }
}

/// One piece of the resident training set: at most one binding's worth of triples.
#[derive(Debug)]
pub struct TrainPiece {
    /// The training-set index of its first triple.
    pub first: usize,
    pub len: usize,
    pub triples: wgpu::Buffer,
}

/// The training triples, uploaded once per run, in pieces of at most `piece_len` triples each so
/// that every piece fits one binding.
#[derive(Debug)]
pub struct TrainSet {
    pub pieces: Vec<TrainPiece>,
    pub len: usize,
}

impl TrainSet {
    /// Uploads `ratings` in pieces of `piece_len` triples, each written in parts of
    /// [`TRANSFER_CHUNK_BYTES`] so that the host never packs more than one part at a time.
    pub fn upload(
        device: &Device,
        ratings: &Ratings,
        piece_len: usize,
    ) -> Result<TrainSet, GpuError> {
        let piece_len = piece_len.max(1);
        let part_len = TRANSFER_CHUNK_BYTES / size_of::<Triple>();
        let mut pieces = Vec::new();
        for first in (0..ratings.len()).step_by(piece_len) {
            let end = (first + piece_len).min(ratings.len());
            let bytes = ((end - first) * size_of::<Triple>()) as u64;
            let triples = empty_buffer(device, "training triples", bytes, STORAGE_USAGE);
            for start in (first..end).step_by(part_len) {
                let stop = (start + part_len).min(end);
                let part = pack_triples(
                    &ratings.users[start..stop],
                    &ratings.items[start..stop],
                    &ratings.ratings[start..stop],
                );
                let at = ((start - first) * size_of::<Triple>()) as u64;
                device
                    .queue
                    .write_buffer(&triples, at, bytemuck::cast_slice(&part));
                // An empty submission flushes the write, so its staging memory goes before the next.
                device.queue.submit([]);
                device.wait()?;
            }
            pieces.push(TrainPiece {
                first,
                len: end - first,
                triples,
            });
        }
        Ok(TrainSet {
            pieces,
            len: ratings.len(),
        })
    }

    /// Bytes the pieces hold on the GPU.
    pub fn bytes(&self) -> u64 {
        self.pieces.iter().map(|p| p.triples.size()).sum()
    }
}

/// Where a chunk's losses buffer holds each batch's loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossLayout {
    /// The fused path: `forward_backward` leaves, from entry `s * stride` on, the sum of squared
    /// errors of each of batch `s`'s workgroups (`ceil(B / WORKGROUP)` of them; `stride` is that
    /// for the capacity `C`).
    PartialSums { stride: usize },
    /// The single-op path: `batch_loss` leaves batch `s`'s mean at entry `s`.
    Mean,
}

impl LossLayout {
    /// The layout of the fused (`fused`) or the single-op path for batches of capacity `C`.
    pub fn new(fused: bool, capacity: usize) -> LossLayout {
        match fused {
            true => LossLayout::PartialSums {
                stride: capacity.div_ceil(WORKGROUP as usize).max(1),
            },
            false => LossLayout::Mean,
        }
    }

    /// Entries each batch takes in the losses buffer.
    pub fn stride(self) -> usize {
        match self {
            LossLayout::PartialSums { stride } => stride,
            LossLayout::Mean => 1,
        }
    }

    /// Batch `s`'s loss (its mean squared error) from a chunk's `entries`: the partial sums added
    /// in workgroup order, so the loss is the same every run.
    pub fn batch_loss(self, entries: &[f32], s: usize, batch_len: usize) -> f32 {
        match self {
            LossLayout::Mean => entries[s],
            LossLayout::PartialSums { stride } => {
                let parts = batch_len.div_ceil(WORKGROUP as usize);
                entries[s * stride..][..parts].iter().sum::<f32>() / batch_len as f32
            }
        }
    }
}

/// A submitted chunk whose losses have not been collected yet.
#[derive(Debug)]
pub struct InFlight {
    /// The slot whose buffers it uses.
    pub slot: usize,
    /// The slot's read-back buffer: the losses from byte 0, then the timestamps.
    pub readback: wgpu::Buffer,
    pub layout: LossLayout,
    /// Each batch's `B`, in order.
    pub batch_lens: Vec<usize>,
    /// Where the pass's two timestamps lie in `readback`, when the adapter has them.
    pub timestamps_at: Option<u64>,
    /// Nanoseconds per timestamp tick.
    pub period_ns: f64,
    pub submission: wgpu::SubmissionIndex,
    /// Bytes of `readback` being mapped.
    pub mapped_bytes: u64,
    mapped: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

impl InFlight {
    /// Asks for `readback`'s first `mapped_bytes` to be mapped once `submission` is done (the
    /// callback only sends on a channel; nothing waits here) and records the chunk.
    #[allow(clippy::too_many_arguments)]
    pub fn mapped(
        slot: usize,
        readback: &wgpu::Buffer,
        mapped_bytes: u64,
        layout: LossLayout,
        batch_lens: Vec<usize>,
        timestamps_at: Option<u64>,
        period_ns: f64,
        submission: wgpu::SubmissionIndex,
    ) -> InFlight {
        let (sender, mapped) = mpsc::channel();
        readback.map_async(wgpu::MapMode::Read, ..mapped_bytes, move |result| {
            // A failed send means the receiver is gone, and nobody is left to tell.
            let _ = sender.send(result);
        });
        InFlight {
            slot,
            readback: readback.clone(),
            layout,
            batch_lens,
            timestamps_at,
            period_ns,
            submission,
            mapped_bytes,
            mapped,
        }
    }
}

/// What collecting chunks found beside their losses, for the backend's timings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Collected {
    /// Host seconds blocked on the GPU.
    pub wait_seconds: f64,
    /// The collected passes' GPU time, where the adapter has timestamps.
    pub kernel_seconds: Option<f64>,
}

impl Collected {
    fn add_kernel_seconds(&mut self, seconds: f64) {
        *self.kernel_seconds.get_or_insert(0.0) += seconds;
    }
}

/// The chunks in flight, oldest first, and the losses collected and not yet handed out.
#[derive(Debug, Default)]
pub struct Queue {
    in_flight: VecDeque<InFlight>,
    arrived: Vec<f32>,
}

impl Queue {
    /// Whether `slot`'s previous chunk is still to be collected.
    pub fn holds(&self, slot: usize) -> bool {
        self.in_flight.iter().any(|chunk| chunk.slot == slot)
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    pub fn push(&mut self, chunk: InFlight) {
        self.in_flight.push_back(chunk);
    }

    /// The losses collected so far and not handed out, oldest first.
    pub fn take_arrived(&mut self) -> Vec<f32> {
        std::mem::take(&mut self.arrived)
    }

    /// Collects, without blocking, the oldest chunks whose read-back is mapped.
    pub fn poll(&mut self, device: &Device) -> Result<Collected, GpuError> {
        device
            .device
            .poll(wgpu::PollType::Poll)
            .map_err(GpuError::Poll)?;
        let mut collected = Collected::default();
        while let Some(chunk) = self.in_flight.front() {
            match chunk.mapped.try_recv() {
                Ok(result) => {
                    result.map_err(GpuError::ReadBackMap)?;
                    let chunk = self.in_flight.pop_front().expect("the front exists");
                    self.read(&chunk, &mut collected)?;
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return Err(GpuError::ReadBackDropped),
            }
        }
        Ok(collected)
    }

    /// Blocks until the oldest chunk is done and collects it (a full ring: the newer chunks keep
    /// the GPU busy meanwhile).
    pub fn wait_oldest(&mut self, device: &Device) -> Result<Collected, GpuError> {
        let mut collected = Collected::default();
        if let Some(chunk) = self.in_flight.pop_front() {
            self.wait_and_read(device, &chunk, &mut collected)?;
        }
        Ok(collected)
    }

    /// Blocks once, until the newest chunk is done, and collects every chunk.
    pub fn finish(&mut self, device: &Device) -> Result<Collected, GpuError> {
        let mut collected = Collected::default();
        if let Some(newest) = self.in_flight.back() {
            let started = Instant::now();
            wait_for(device, newest.submission.clone())?;
            collected.wait_seconds += started.elapsed().as_secs_f64();
        }
        while let Some(chunk) = self.in_flight.pop_front() {
            self.wait_and_read(device, &chunk, &mut collected)?;
        }
        Ok(collected)
    }

    fn wait_and_read(
        &mut self,
        device: &Device,
        chunk: &InFlight,
        collected: &mut Collected,
    ) -> Result<(), GpuError> {
        let result = match chunk.mapped.try_recv() {
            Ok(result) => result,
            Err(mpsc::TryRecvError::Empty) => {
                let started = Instant::now();
                wait_for(device, chunk.submission.clone())?;
                // `poll` has run the map callback once the submission is done.
                let result = chunk.mapped.recv().map_err(|_| GpuError::ReadBackDropped)?;
                collected.wait_seconds += started.elapsed().as_secs_f64();
                result
            }
            Err(mpsc::TryRecvError::Disconnected) => return Err(GpuError::ReadBackDropped),
        };
        result.map_err(GpuError::ReadBackMap)?;
        self.read(chunk, collected)
    }

    /// Reads a mapped chunk's losses (and pass time) and unmaps its read-back for reuse.
    fn read(&mut self, chunk: &InFlight, collected: &mut Collected) -> Result<(), GpuError> {
        {
            let view = chunk
                .readback
                .get_mapped_range(..chunk.mapped_bytes)
                .map_err(GpuError::ReadBackView)?;
            let entries_bytes = chunk.batch_lens.len() * chunk.layout.stride() * 4;
            let entries: Vec<f32> = bytemuck::pod_collect_to_vec(&view[..entries_bytes]);
            self.arrived.extend(
                chunk
                    .batch_lens
                    .iter()
                    .enumerate()
                    .map(|(s, &len)| chunk.layout.batch_loss(&entries, s, len)),
            );
            if let Some(at) = chunk.timestamps_at {
                let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&view[at as usize..][..16]);
                let ticks = ticks[1].saturating_sub(ticks[0]);
                collected.add_kernel_seconds(ticks as f64 * chunk.period_ns * 1e-9);
            }
        }
        chunk.readback.unmap();
        Ok(())
    }
}

fn wait_for(device: &Device, submission: wgpu::SubmissionIndex) -> Result<(), GpuError> {
    device
        .device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: None,
        })
        .map_err(GpuError::Poll)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_sums_add_up_to_the_mean_of_each_batch() {
        // Capacity 130: three workgroups of 64 per batch; batch 0 full, batch 1 of 65 ratings.
        let layout = LossLayout::new(true, 130);
        assert_eq!(layout.stride(), 3);
        let entries = [64.0, 128.0, 2.0, 13.0, 0.0, 99.0];
        assert_eq!(layout.batch_loss(&entries, 0, 130), 194.0 / 130.0);
        // Only ceil(65 / 64) = 2 partials belong to batch 1; the third is stale.
        assert_eq!(layout.batch_loss(&entries, 1, 65), 13.0 / 65.0);
        let mean = LossLayout::new(false, 130);
        assert_eq!(mean.stride(), 1);
        assert_eq!(mean.batch_loss(&[0.5, 0.25], 1, 130), 0.25);
    }
}
