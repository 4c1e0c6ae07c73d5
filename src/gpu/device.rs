//! Acquiring a GPU apart from doing any work on it, so that the backend, the tests, the benches and
//! `collabgpu info` share one way of choosing an adapter.

use super::GpuError;
use super::layout::STORAGE_BINDINGS;

/// How to choose and drive the GPU. Built by the CLI from `--adapter` and `--wgpu-backend`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuOptions {
    /// A case-insensitive substring of the adapter name (`--adapter`); `WGPU_ADAPTER_NAME` when unset.
    pub adapter: Option<String>,
    /// `vulkan`, `metal`, `dx12` or `gl` (`--wgpu-backend`); `WGPU_BACKEND` when unset, else all.
    pub wgpu_backend: Option<String>,
    /// Batches per chunk (one submission), to force tiny chunks in tests. `None`: as many as the
    /// adapter's binding limits and [`DEFAULT_CHUNK_BYTES`] allow.
    pub chunk_batches: Option<usize>,
    /// Use the portable compare-and-swap scatter-add even where native float atomics exist (tests).
    pub force_cas_atomics: bool,
    /// Run `forward_backward` one thread per rating (`shaders/forward_backward.wgsl`) even where
    /// the device has `SUBGROUP` and would run a subgroup per rating
    /// (`shaders/forward_backward_subgroup.wgsl`): for tests that check both.
    pub thread_per_rating: bool,
    /// Train with the single-op kernels (nine or eleven dispatches per batch) instead of the fused
    /// path (`forward_backward`, optimiser): for tests that compare the two.
    pub unfused: bool,
    /// The most claim tags (batches) the fused path hands out before it clears the claims and
    /// starts again, to force that restart in tests. `None`: as many as a `u32` holds.
    pub claim_tag_limit: Option<u32>,
    /// Triples per piece of the resident training set, to force several pieces (and so several
    /// `gather_triples` dispatches per chunk) in tests. `None`: as many as one binding holds.
    pub train_piece_ratings: Option<usize>,
    /// Ask the device for this lower `max_storage_buffer_binding_size` than the adapter's, to test
    /// a smaller adapter's binding limit without allocating hundreds of MB. `None`: the adapter's.
    pub max_binding_bytes: Option<u64>,
}

/// The default size of one chunk of triples on the GPU (each of the `gpu::queue::SLOTS` chunk
/// slots has one).
pub const DEFAULT_CHUNK_BYTES: u64 = 32 << 20;

/// The optional features the engine uses when the adapter has them.
/// `TIMESTAMP_QUERY` times each chunk's compute pass (see `GpuBackend::timings`); `SUBGROUP` runs
/// `forward_backward` a subgroup per rating (`shaders/forward_backward_subgroup.wgsl`).
pub const USED_FEATURES: wgpu::Features = wgpu::Features::SHADER_FLOAT32_ATOMIC
    .union(wgpu::Features::TIMESTAMP_QUERY)
    .union(wgpu::Features::SUBGROUP);

/// [`USED_FEATURES`] by name, for `collabgpu info`.
pub const USED_FEATURE_NAMES: [(&str, wgpu::Features); 3] = [
    (
        "SHADER_FLOAT32_ATOMIC",
        wgpu::Features::SHADER_FLOAT32_ATOMIC,
    ),
    ("TIMESTAMP_QUERY", wgpu::Features::TIMESTAMP_QUERY),
    ("SUBGROUP", wgpu::Features::SUBGROUP),
];

/// An adapter, its device and its queue, ready for work.
#[derive(Debug)]
pub struct Device {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
}

impl Device {
    /// Chooses an adapter as `options` say and opens it with the adapter's own limits and the
    /// optional features in [`USED_FEATURES`] that it has.
    pub fn new(options: &GpuOptions) -> Result<Device, GpuError> {
        let adapters = list_adapters(options.wgpu_backend.as_deref())?;
        let wanted = options
            .adapter
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .filter(|name| !name.is_empty());
        let names: Vec<String> = adapters
            .iter()
            .map(|a| {
                let info = a.get_info();
                format!("{} ({:?})", info.name, info.backend)
            })
            .collect();
        let chosen = match &wanted {
            Some(name) => {
                let needle = name.to_lowercase();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&needle))
                    .ok_or_else(|| GpuError::NoAdapter {
                        detail: format!(
                            " whose name contains {name:?} (adapters found: {}; see `collabgpu info`)",
                            if names.is_empty() { "none".to_string() } else { names.join(", ") }
                        ),
                    })?
            }
            None => adapters
                .into_iter()
                .min_by_key(|a| device_type_rank(a.get_info().device_type))
                .ok_or_else(|| GpuError::NoAdapter {
                    detail: String::new(),
                })?,
        };
        let info = chosen.get_info();
        let mut required_limits = chosen.limits();
        if required_limits.max_storage_buffers_per_shader_stage < STORAGE_BINDINGS {
            return Err(GpuError::TooFewStorageBindings {
                adapter: info.name,
                has: required_limits.max_storage_buffers_per_shader_stage,
                needs: STORAGE_BINDINGS,
            });
        }
        if let Some(bytes) = options.max_binding_bytes {
            // wgpu accepts limits lower than the adapter's; it then validates every binding
            // against them, as a smaller adapter would.
            required_limits.max_storage_buffer_binding_size =
                bytes.min(required_limits.max_storage_buffer_binding_size);
        }
        let required_features = chosen.features() & USED_FEATURES;
        let (device, queue) = pollster::block_on(chosen.request_device(&wgpu::DeviceDescriptor {
            label: Some("collabgpu"),
            required_features,
            required_limits,
            ..Default::default()
        }))
        .map_err(|source| GpuError::DeviceOpen {
            adapter: info.name.clone(),
            source,
        })?;
        Ok(Device {
            adapter: chosen,
            device,
            queue,
            info,
        })
    }

    /// The adapter's name, for reports.
    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    /// Whether the adapter is a software one that runs on the CPU (Mesa's lavapipe and llvmpipe,
    /// WARP): right for checking the GPU path, far slower than the CPU backend for training.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Whether the device was opened with native float atomics.
    pub fn has_float_atomics(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::SHADER_FLOAT32_ATOMIC)
    }

    /// Whether the device was opened with subgroup operations (`forward_backward` a subgroup per
    /// rating).
    pub fn has_subgroups(&self) -> bool {
        self.device.features().contains(wgpu::Features::SUBGROUP)
    }

    /// The adapter's subgroup sizes, smallest and largest (lavapipe: 8 and 8).
    pub fn subgroup_sizes(&self) -> (u32, u32) {
        (self.info.subgroup_min_size, self.info.subgroup_max_size)
    }

    /// Whether the device was opened with timestamp queries (per-pass GPU times).
    pub fn has_timestamps(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Waits until the GPU has finished everything submitted so far.
    pub fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(GpuError::Poll)
    }
}

/// Prefer real GPUs over software ones.
fn device_type_rank(device_type: wgpu::DeviceType) -> u8 {
    match device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

/// The backends named by `--wgpu-backend` (one of `vulkan`, `metal`, `dx12`, `gl`), else by
/// `WGPU_BACKEND`, else all of them.
pub fn parse_backends(name: Option<&str>) -> Result<wgpu::Backends, GpuError> {
    match name {
        Some(name) => match name.to_lowercase().as_str() {
            "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
            "metal" | "mtl" => Ok(wgpu::Backends::METAL),
            "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
            "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
            _ => Err(GpuError::UnknownWgpuBackend(name.to_string())),
        },
        None => Ok(wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all())),
    }
}

/// Every adapter of the chosen backends (see [`parse_backends`]).
pub fn list_adapters(wgpu_backend: Option<&str>) -> Result<Vec<wgpu::Adapter>, GpuError> {
    let backends = parse_backends(wgpu_backend)?;
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = backends;
    let instance = wgpu::Instance::new(descriptor);
    Ok(pollster::block_on(instance.enumerate_adapters(backends)))
}

/// What `collabgpu info --json` says of one adapter: name, backend, type, driver, the features the
/// engine uses, how it scatter-adds and runs `forward_backward`, its subgroup sizes, and the limits
/// the engine cares about.
pub fn adapter_report(adapter: &wgpu::Adapter) -> serde_json::Value {
    let info = adapter.get_info();
    let features = adapter.features();
    let used: serde_json::Map<String, serde_json::Value> = USED_FEATURE_NAMES
        .iter()
        .map(|(name, f)| (name.to_string(), features.contains(*f).into()))
        .collect();
    let float_atomics = features.contains(wgpu::Features::SHADER_FLOAT32_ATOMIC);
    let limits = adapter.limits();
    serde_json::json!({
        "name": info.name,
        "backend": format!("{:?}", info.backend).to_lowercase(),
        "device_type": format!("{:?}", info.device_type),
        "driver": info.driver,
        "driver_info": info.driver_info,
        "features": used,
        "scatter_add": if float_atomics { "float-atomic" } else { "cas" },
        "forward_backward": if features.contains(wgpu::Features::SUBGROUP) {
            "subgroup"
        } else {
            "thread-per-rating"
        },
        "subgroup_min_size": info.subgroup_min_size,
        "subgroup_max_size": info.subgroup_max_size,
        "limits": {
            "max_storage_buffer_binding_size": limits.max_storage_buffer_binding_size,
            "max_buffer_size": limits.max_buffer_size,
            "max_storage_buffers_per_shader_stage": limits.max_storage_buffers_per_shader_stage,
            "max_uniform_buffer_binding_size": limits.max_uniform_buffer_binding_size,
            "min_uniform_buffer_offset_alignment": limits.min_uniform_buffer_offset_alignment,
            "max_compute_workgroups_per_dimension": limits.max_compute_workgroups_per_dimension,
            "max_compute_invocations_per_workgroup": limits.max_compute_invocations_per_workgroup,
            "max_compute_workgroup_storage_size": limits.max_compute_workgroup_storage_size,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgpu_backend_names_parse_and_unknown_ones_say_what_to_use() {
        assert_eq!(
            parse_backends(Some("Vulkan")).unwrap(),
            wgpu::Backends::VULKAN
        );
        assert_eq!(
            parse_backends(Some("metal")).unwrap(),
            wgpu::Backends::METAL
        );
        assert_eq!(parse_backends(Some("dx12")).unwrap(), wgpu::Backends::DX12);
        assert_eq!(parse_backends(Some("gl")).unwrap(), wgpu::Backends::GL);
        let message = parse_backends(Some("cuda")).unwrap_err().to_string();
        assert!(
            message.contains("\"cuda\"") && message.contains("vulkan, metal, dx12, gl"),
            "{message}"
        );
    }
}
