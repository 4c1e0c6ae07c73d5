//! `collabgpu info`: every GPU adapter wgpu finds, with what the engine would use of it.

use std::io::Write;

use collabgpu::gpu::device::{USED_FEATURE_NAMES, list_adapters};

/// Arguments of `collabgpu info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only adapters of this wgpu backend: vulkan, metal, dx12 or gl (default: `WGPU_BACKEND`, else all).
    #[arg(long, value_name = "BACKEND")]
    pub wgpu_backend: Option<String>,
}

/// The limits the engine cares about, by name.
fn limits_json(limits: &wgpu::Limits) -> serde_json::Value {
    serde_json::json!({
        "max_storage_buffer_binding_size": limits.max_storage_buffer_binding_size,
        "max_buffer_size": limits.max_buffer_size,
        "max_storage_buffers_per_shader_stage": limits.max_storage_buffers_per_shader_stage,
        "max_uniform_buffer_binding_size": limits.max_uniform_buffer_binding_size,
        "min_uniform_buffer_offset_alignment": limits.min_uniform_buffer_offset_alignment,
        "max_compute_workgroups_per_dimension": limits.max_compute_workgroups_per_dimension,
        "max_compute_invocations_per_workgroup": limits.max_compute_invocations_per_workgroup,
        "max_compute_workgroup_storage_size": limits.max_compute_workgroup_storage_size,
    })
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let adapters = list_adapters(args.wgpu_backend.as_deref())?;
    let entries: Vec<serde_json::Value> = adapters
        .iter()
        .map(|adapter| {
            let info = adapter.get_info();
            let features = adapter.features();
            let used: serde_json::Map<String, serde_json::Value> = USED_FEATURE_NAMES
                .iter()
                .map(|(name, f)| (name.to_string(), features.contains(*f).into()))
                .collect();
            let float_atomics = features.contains(wgpu::Features::SHADER_FLOAT32_ATOMIC);
            serde_json::json!({
                "name": info.name,
                "backend": format!("{:?}", info.backend).to_lowercase(),
                "device_type": format!("{:?}", info.device_type),
                "driver": info.driver,
                "driver_info": info.driver_info,
                "features": used,
                "scatter_add": if float_atomics { "float-atomic" } else { "cas" },
                "limits": limits_json(&adapter.limits()),
            })
        })
        .collect();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "adapters": entries }))?
        )?;
        return Ok(());
    }
    if entries.is_empty() {
        writeln!(
            out,
            "No GPU adapter found. Install a GPU driver; on a CPU-only Linux machine the \
             `mesa-vulkan-drivers` package gives a software Vulkan adapter (lavapipe). \
             `collabgpu train --backend cpu` works without one."
        )?;
        return Ok(());
    }
    for (n, entry) in entries.iter().enumerate() {
        writeln!(
            out,
            "adapter {n}: {}",
            entry["name"].as_str().unwrap_or_default()
        )?;
        for key in [
            "backend",
            "device_type",
            "driver",
            "driver_info",
            "scatter_add",
        ] {
            writeln!(
                out,
                "  {key:<38} {}",
                entry[key].as_str().unwrap_or_default()
            )?;
        }
        for (feature, present) in entry["features"].as_object().into_iter().flatten() {
            writeln!(
                out,
                "  {:<38} {}",
                feature,
                if present == true { "yes" } else { "no" }
            )?;
        }
        if let Some(limits) = entry["limits"].as_object() {
            for (name, value) in limits {
                writeln!(out, "  {name:<38} {value}")?;
            }
        }
    }
    Ok(())
}
