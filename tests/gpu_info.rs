//! `collabgpu info --json` lists the adapter the GPU tests use, with the fields the README promises.

mod support;

#[test]
fn info_json_lists_the_adapter_with_features_and_limits() {
    let Some(device) = support::gpu_device() else {
        return;
    };
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_collabgpu"))
        .args(["info", "--json"])
        .output()
        .expect("collabgpu runs");
    assert!(
        output.status.success(),
        "info failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("info --json prints JSON");
    let adapters = json["adapters"].as_array().expect("an `adapters` array");
    let ours = adapters
        .iter()
        .find(|a| a["name"] == device.adapter_name())
        .unwrap_or_else(|| panic!("{} is not listed in {json}", device.adapter_name()));
    for key in [
        "backend",
        "device_type",
        "driver",
        "scatter_add",
        "forward_backward",
    ] {
        assert!(ours[key].is_string(), "{key} missing in {ours}");
    }
    assert!(ours["features"]["SHADER_FLOAT32_ATOMIC"].is_boolean());
    assert!(ours["features"]["SUBGROUP"].is_boolean());
    assert!(
        ours["subgroup_min_size"].as_u64().unwrap() <= ours["subgroup_max_size"].as_u64().unwrap()
    );
    assert!(
        ours["limits"]["max_storage_buffer_binding_size"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn an_adapter_name_that_matches_nothing_says_what_to_do() {
    let options = collabgpu::gpu::GpuOptions {
        adapter: Some("no-such-adapter-7f3a".into()),
        ..Default::default()
    };
    let error = collabgpu::gpu::Device::new(&options).expect_err("no adapter has that name");
    let message = error.to_string();
    assert!(
        matches!(error, collabgpu::gpu::GpuError::NoAdapter { .. }),
        "{message}"
    );
    for needle in [
        "no-such-adapter-7f3a",
        "collabgpu info",
        "--backend cpu",
        "mesa-vulkan-drivers",
    ] {
        assert!(
            message.contains(needle),
            "the message should mention {needle:?}: {message}"
        );
    }
}
