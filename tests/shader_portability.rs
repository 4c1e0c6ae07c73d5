//! Every shader in `shaders/` must parse, validate and translate with naga's own back ends, so a
//! kernel that would break on a Mac (MSL) or on Windows (HLSL) fails here, on any machine.

use collabgpu::gpu::shaders::{
    KERNEL_FILES, PIECE_FILES, kernels, needs_float_atomics, needs_subgroups, source,
};
use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};

fn validate(stem: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let text = source(stem).expect("listed kernel");
    let module = naga::front::wgsl::parse_str(&text).unwrap_or_else(|e| {
        panic!(
            "kernel {stem} (shaders/) does not parse:\n{}",
            e.emit_to_string(&text)
        )
    });
    let mut capabilities = Capabilities::empty();
    capabilities.set(
        Capabilities::SHADER_FLOAT32_ATOMIC,
        needs_float_atomics(stem),
    );
    capabilities.set(Capabilities::SUBGROUP, needs_subgroups(stem));
    let mut validator = Validator::new(ValidationFlags::all(), capabilities);
    if needs_subgroups(stem) {
        // What wgpu's `SUBGROUP` feature lets a compute shader use.
        validator
            .subgroup_stages(ShaderStages::COMPUTE)
            .subgroup_operations(SubgroupOperationSet::all());
    }
    let info = validator.validate(&module).unwrap_or_else(|e| {
        panic!(
            "kernel {stem} (shaders/) does not validate:\n{}",
            e.emit_to_string(&text)
        )
    });
    (module, info)
}

#[test]
fn every_shader_file_is_listed() {
    let mut on_disk: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders"))
            .expect("shaders/ exists")
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "wgsl"))
            .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
            .filter(|stem| !PIECE_FILES.contains(&stem.as_str()))
            .collect();
    on_disk.sort();
    let mut listed: Vec<String> = KERNEL_FILES.iter().map(|(s, _)| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "gpu::shaders::KERNEL_FILES (or PIECE_FILES) must list every shaders/*.wgsl"
    );
}

#[test]
fn every_shader_validates_with_naga() {
    for stem in kernels() {
        validate(&stem);
    }
}

#[test]
fn every_shader_translates_to_msl() {
    for stem in kernels() {
        let (module, info) = validate(&stem);
        // Float atomics need MSL 3.0 (Apple7+/Mac2), as wgpu asks for them.
        let options = naga::back::msl::Options {
            lang_version: (3, 0),
            ..Default::default()
        };
        let pipeline = naga::back::msl::PipelineOptions::default();
        naga::back::msl::write_string(&module, &info, &options, &pipeline)
            .unwrap_or_else(|e| panic!("kernel {stem} (shaders/) does not translate to MSL: {e}"));
    }
}

#[test]
fn every_portable_shader_translates_to_hlsl() {
    for stem in kernels() {
        if needs_float_atomics(&stem) {
            // HLSL has no float atomic add on buffers; DX12 adapters run the compare-and-swap path.
            continue;
        }
        let (module, info) = validate(&stem);
        // Wave intrinsics (the subgroup operations) need shader model 6.0, as wgpu asks for them.
        let options = naga::back::hlsl::Options {
            shader_model: if needs_subgroups(&stem) {
                naga::back::hlsl::ShaderModel::V6_0
            } else {
                naga::back::hlsl::Options::default().shader_model
            },
            ..Default::default()
        };
        let mut text = String::new();
        let pipeline = naga::back::hlsl::PipelineOptions::default();
        let mut writer = naga::back::hlsl::Writer::new(&mut text, &options, &pipeline);
        writer
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("kernel {stem} (shaders/) does not translate to HLSL: {e}"));
    }
}

#[test]
fn every_shader_translates_to_spirv() {
    for stem in kernels() {
        let (module, info) = validate(&stem);
        naga::back::spv::write_vec(&module, &info, &Default::default(), None).unwrap_or_else(|e| {
            panic!("kernel {stem} (shaders/) does not translate to SPIR-V: {e}")
        });
    }
}
