//! `collabgpu info`: every GPU adapter wgpu finds, with what the engine would use of it.

use std::io::Write;

use collabgpu::gpu::device::{adapter_report, list_adapters};

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

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let adapters = list_adapters(args.wgpu_backend.as_deref())?;
    let entries: Vec<serde_json::Value> = adapters.iter().map(adapter_report).collect();
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
            "forward_backward",
        ] {
            writeln!(
                out,
                "  {key:<38} {}",
                entry[key].as_str().unwrap_or_default()
            )?;
        }
        for key in ["subgroup_min_size", "subgroup_max_size"] {
            writeln!(out, "  {key:<38} {}", entry[key])?;
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
