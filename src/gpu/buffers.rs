//! Buffer helpers: storage buffers made from host data, uploads and read-backs (through `map_async`,
//! in pieces for large tensors), and a small harness that runs chosen kernels on host data (tests, benches).

use wgpu::util::DeviceExt;

use super::GpuError;
use super::device::Device;
use super::kernels::{Bindings, Kernel, Kernels};
use super::layout::{StepUniform, Triple};

/// The usages every storage buffer gets: bindable, writable from the host, copyable out.
pub const STORAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// A buffer holding `bytes`, at least 16 bytes long (a binding may not be empty).
pub fn buffer_with(
    device: &Device,
    label: &str,
    bytes: &[u8],
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    let mut contents = bytes.to_vec();
    contents.resize(bytes.len().max(16).next_multiple_of(4), 0);
    device
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &contents,
            usage,
        })
}

/// An empty buffer of at least `size` bytes (rounded up to 16).
pub fn empty_buffer(
    device: &Device,
    label: &str,
    size: u64,
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    device.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(16).next_multiple_of(16),
        usage,
        mapped_at_creation: false,
    })
}

/// Maps `buffer` (created with `MAP_READ`) once the submission `after` is done, and copies out its
/// first `size` bytes. Waits for that submission only, so later work keeps the GPU busy.
pub fn read_mapped(
    device: &Device,
    buffer: &wgpu::Buffer,
    size: u64,
    after: Option<wgpu::SubmissionIndex>,
) -> Result<Vec<u8>, GpuError> {
    if size == 0 {
        return Ok(Vec::new());
    }
    with_mapped(device, buffer, size, after, <[u8]>::to_vec)
}

/// Maps the first `size` (> 0) bytes of `buffer` once the submission `after` is done, hands them
/// to `read` and unmaps: callers that copy straight into their own memory skip a whole-size
/// intermediate vector.
fn with_mapped<R>(
    device: &Device,
    buffer: &wgpu::Buffer,
    size: u64,
    after: Option<wgpu::SubmissionIndex>,
    read: impl FnOnce(&[u8]) -> R,
) -> Result<R, GpuError> {
    // wgpu calls back from inside `poll`; the oneshot channel carries the result out of the
    // callback, as in wgpu's own read-back examples.
    let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
    buffer
        .slice(..size)
        .map_async(wgpu::MapMode::Read, move |result| {
            // A failed send means the receiver is gone, and nobody is left to tell.
            let _ = sender.send(result);
        });
    device
        .device
        .poll(wgpu::PollType::Wait {
            submission_index: after,
            timeout: None,
        })
        .map_err(GpuError::Poll)?;
    pollster::block_on(receiver.receive())
        .ok_or(GpuError::ReadBackDropped)?
        .map_err(GpuError::ReadBackMap)?;
    let result = read(
        &buffer
            .slice(..size)
            .get_mapped_range()
            .map_err(GpuError::ReadBackView)?,
    );
    buffer.unmap();
    Ok(result)
}

/// Bytes one piece of a large upload or read-back stages at a time. A tensor of the ML-25M shape
/// at K = 128 is 114 MB; staged whole, each transfer would hold one or two more copies of it in
/// host memory (and lavapipe keeps the device buffers in host memory as well).
pub const TRANSFER_CHUNK_BYTES: usize = 16 << 20;

/// Writes `data` into `buffer` from byte `offset` (a multiple of 4) in pieces of
/// [`TRANSFER_CHUNK_BYTES`], submitting and waiting after each, so that wgpu frees each piece's
/// staging memory before the next: the host never holds a second whole copy of `data`.
pub fn write_f32(
    device: &Device,
    buffer: &wgpu::Buffer,
    offset: u64,
    data: &[f32],
) -> Result<(), GpuError> {
    let floats = TRANSFER_CHUNK_BYTES / 4;
    for (c, piece) in data.chunks(floats).enumerate() {
        let at = offset + (c * TRANSFER_CHUNK_BYTES) as u64;
        device
            .queue
            .write_buffer(buffer, at, bytemuck::cast_slice(piece));
        // An empty submission still flushes the queued write.
        device.queue.submit([]);
        device.wait()?;
    }
    Ok(())
}

/// Reads `out.len()` f32s of `buffer` from byte `offset` (a multiple of 4) straight into `out`,
/// through one staging buffer of at most [`TRANSFER_CHUNK_BYTES`].
pub fn read_f32_into(
    device: &Device,
    buffer: &wgpu::Buffer,
    offset: u64,
    out: &mut [f32],
) -> Result<(), GpuError> {
    if out.is_empty() {
        return Ok(());
    }
    let floats = TRANSFER_CHUNK_BYTES / 4;
    let staging = empty_buffer(
        device,
        "read-back",
        (out.len().min(floats) * 4) as u64,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    for (c, piece) in out.chunks_mut(floats).enumerate() {
        let size = (piece.len() * 4) as u64;
        let mut encoder = device.device.create_command_encoder(&Default::default());
        let at = offset + (c * TRANSFER_CHUNK_BYTES) as u64;
        encoder.copy_buffer_to_buffer(buffer, at, &staging, 0, size);
        let index = device.queue.submit([encoder.finish()]);
        with_mapped(device, &staging, size, Some(index), |bytes| {
            piece.copy_from_slice(bytemuck::cast_slice(bytes))
        })?;
    }
    Ok(())
}

/// Copies `size` bytes of a storage buffer back to the host (a one-off staging buffer).
pub fn read_buffer(device: &Device, buffer: &wgpu::Buffer, size: u64) -> Result<Vec<u8>, GpuError> {
    let staging = empty_buffer(
        device,
        "read-back",
        size,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let mut encoder = device.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
    let index = device.queue.submit([encoder.finish()]);
    read_mapped(device, &staging, size, Some(index))
}

/// Reads back `len` f32s.
pub fn read_f32(device: &Device, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>, GpuError> {
    let bytes = read_buffer(device, buffer, (len * 4) as u64)?;
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}

/// The contents of every binding for a [`KernelHarness`] run, as host data.
#[derive(Debug, Clone, Default)]
pub struct HarnessInputs {
    /// Flat `[P | Q | bu | bi]`.
    pub params: Vec<f32>,
    /// Same layout as `params`.
    pub grads: Vec<f32>,
    /// Adam's `m`, in the `params` layout.
    pub first_moment: Vec<f32>,
    /// Adam's `v`, in the `params` layout.
    pub second_moment: Vec<f32>,
    pub triples: Vec<Triple>,
    /// See the scratch layout in shaders/common.wgsl; [`StepUniform::scratch_len`] floats.
    pub scratch: Vec<f32>,
    pub losses: Vec<f32>,
    /// `U + I` claim slots; all `u32::MAX` between batches.
    pub claims: Vec<u32>,
    /// `U + I` row counts (zero between batches); empty: as many zeros as `claims`.
    pub counts: Vec<u32>,
}

/// Runs chosen kernels on host data and reads the results back: how the tests check each WGSL
/// kernel against its CPU twin. Not used on the training path.
#[derive(Debug)]
pub struct KernelHarness {
    pub params: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    pub first_moment: wgpu::Buffer,
    pub second_moment: wgpu::Buffer,
    pub scratch: wgpu::Buffer,
    pub losses: wgpu::Buffer,
    pub claims: wgpu::Buffer,
    pub counts: wgpu::Buffer,
    triples: wgpu::Buffer,
    lens: [usize; 8],
}

impl KernelHarness {
    /// Uploads `inputs` into fresh buffers.
    pub fn new(device: &Device, inputs: &HarnessInputs) -> KernelHarness {
        let f = |label, data: &[f32]| {
            buffer_with(device, label, bytemuck::cast_slice(data), STORAGE_USAGE)
        };
        let counts = match inputs.counts.is_empty() {
            true => vec![0u32; inputs.claims.len().max(4)],
            false => inputs.counts.clone(),
        };
        KernelHarness {
            params: f("params", &inputs.params),
            grads: f("grads", &inputs.grads),
            first_moment: f("first moment", &inputs.first_moment),
            second_moment: f("second moment", &inputs.second_moment),
            scratch: f("scratch", &inputs.scratch),
            losses: f("losses", &inputs.losses),
            claims: buffer_with(
                device,
                "claims",
                bytemuck::cast_slice(&inputs.claims),
                STORAGE_USAGE,
            ),
            counts: buffer_with(
                device,
                "counts",
                bytemuck::cast_slice(&counts),
                STORAGE_USAGE,
            ),
            triples: buffer_with(
                device,
                "triples",
                bytemuck::cast_slice(&inputs.triples),
                STORAGE_USAGE,
            ),
            lens: [
                inputs.params.len(),
                inputs.grads.len(),
                inputs.first_moment.len(),
                inputs.second_moment.len(),
                inputs.scratch.len(),
                inputs.losses.len(),
                inputs.claims.len(),
                counts.len(),
            ],
        }
    }

    /// Runs `kernels` in order, all reading the one step record `step`, and waits for them.
    pub fn run(
        &self,
        device: &Device,
        kernels: &Kernels,
        sequence: &[Kernel],
        step: &StepUniform,
    ) -> Result<(), GpuError> {
        let steps = buffer_with(
            device,
            "steps",
            &kernels.step_bytes(std::slice::from_ref(step)),
            wgpu::BufferUsages::UNIFORM,
        );
        let bind_groups = kernels.bind_groups(
            device,
            &Bindings {
                steps: &steps,
                params: &self.params,
                grads: &self.grads,
                first_moment: &self.first_moment,
                second_moment: &self.second_moment,
                triples: &self.triples,
                scratch: &self.scratch,
                losses: &self.losses,
                claims: &self.claims,
                counts: &self.counts,
            },
        );
        let mut encoder = device.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for &kernel in sequence {
                kernels.dispatch(&mut pass, kernel, &bind_groups, 0, step);
            }
        }
        device.queue.submit([encoder.finish()]);
        device.wait()
    }

    pub fn read_params(&self, device: &Device) -> Result<Vec<f32>, GpuError> {
        read_f32(device, &self.params, self.lens[0])
    }
    pub fn read_grads(&self, device: &Device) -> Result<Vec<f32>, GpuError> {
        read_f32(device, &self.grads, self.lens[1])
    }
    pub fn read_first_moment(&self, device: &Device) -> Result<Vec<f32>, GpuError> {
        read_f32(device, &self.first_moment, self.lens[2])
    }
    pub fn read_second_moment(&self, device: &Device) -> Result<Vec<f32>, GpuError> {
        read_f32(device, &self.second_moment, self.lens[3])
    }
    pub fn read_scratch(&self, device: &Device) -> Result<Vec<f32>, GpuError> {
        read_f32(device, &self.scratch, self.lens[4])
    }
    pub fn read_losses(&self, device: &Device) -> Result<Vec<f32>, GpuError> {
        read_f32(device, &self.losses, self.lens[5])
    }
    pub fn read_claims(&self, device: &Device) -> Result<Vec<u32>, GpuError> {
        let bytes = read_buffer(device, &self.claims, (self.lens[6] * 4) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
    pub fn read_counts(&self, device: &Device) -> Result<Vec<u32>, GpuError> {
        let bytes = read_buffer(device, &self.counts, (self.lens[7] * 4) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}
