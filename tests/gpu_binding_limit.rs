//! Adam's two moments live in a buffer each, so the largest binding a run needs is the parameters'
//! size, not twice it: the ML-25M shape at K = 128 (113 MB of parameters) must train through a
//! 128 MiB binding limit. These tests open the device with a binding limit lowered to between the
//! parameters' bytes and twice them, which a shared `[m | v]` buffer would not fit, and train there;
//! kilobytes instead of the 226 MB the real shape would allocate.

mod support;

use std::sync::Arc;

use collabgpu::cpu::reference::train_step as cpu_step;
use collabgpu::data::Ratings;
use collabgpu::gpu::{Device, GpuBackend, GpuOptions};
use collabgpu::model::Params;
use collabgpu::train::schedule::step_hyper;
use collabgpu::train::{
    Backend, Batches, OptimizerKind, ScheduleKind, StepHyper, TrainConfig, initial_state,
};
use support::{assert_close, gpu_device, random_f32, random_indices_with_repeats};

const USERS: usize = 40;
const ITEMS: usize = 30;
const FACTORS: usize = 32;
const STEPS: usize = 20;

/// Bytes of the parameter buffer: N = (U + I) * (K + 1) floats, padded to a multiple of 4.
fn param_bytes() -> u64 {
    ((USERS + ITEMS) * (FACTORS + 1)).next_multiple_of(4) as u64 * 4
}

fn config(optimizer: OptimizerKind) -> TrainConfig {
    TrainConfig {
        factors: FACTORS,
        optimizer,
        schedule: ScheduleKind::OneCycle,
        lr: 0.02,
        init_std: 0.1,
        ..TrainConfig::default()
    }
}

/// A device whose `max_storage_buffer_binding_size` is `limit` bytes, or `None` without an adapter.
fn device_with_binding_limit(limit: u64) -> Option<Arc<Device>> {
    gpu_device()?;
    let options = GpuOptions {
        max_binding_bytes: Some(limit),
        ..GpuOptions::default()
    };
    let device = Device::new(&options).expect("the adapter opens with a lower binding limit");
    assert_eq!(
        device.device.limits().max_storage_buffer_binding_size,
        limit,
        "the device did not take the lowered binding limit"
    );
    Some(Arc::new(device))
}

fn ratings(n: usize, seed: u64) -> Ratings {
    Ratings {
        users: random_indices_with_repeats(n, USERS as u32, seed),
        items: random_indices_with_repeats(n, ITEMS as u32, seed + 1),
        ratings: random_f32(n, 1.0, 5.0, seed + 2)
            .iter()
            .map(|r| r.round())
            .collect(),
        timestamps: None,
    }
}

#[test]
fn adamw_trains_when_its_two_moments_together_exceed_the_binding_limit_but_each_fits() {
    // Halfway between the parameters' bytes and twice them, rounded to a multiple of 4.
    let limit = (param_bytes() * 3 / 2).next_multiple_of(4);
    assert!(param_bytes() <= limit && limit < 2 * param_bytes());
    let Some(device) = device_with_binding_limit(limit) else {
        return;
    };
    let config = config(OptimizerKind::AdamW);
    let b = config.batch_size;
    let data = ratings(STEPS * b, 5);
    let hypers: Vec<StepHyper> = (0..STEPS as u64)
        .map(|s| step_hyper(&config, s, STEPS as u64))
        .collect();
    let mut cpu_state = initial_state(&config, USERS, ITEMS);

    // Any binding over the lowered limit is a validation error: catch it here rather than rely on
    // wgpu's default handler.
    let scope = device
        .device
        .push_error_scope(wgpu::ErrorFilter::Validation);
    let mut gpu = GpuBackend::with_device(device.clone(), &GpuOptions::default());
    gpu.start(&config, &cpu_state)
        .expect("m and v each fit the binding limit, so adamw must start");
    gpu.set_train_set(&data).unwrap();
    let order: Vec<u32> = (0..data.len() as u32).collect();
    let batches = Batches {
        order: &order,
        batch_size: b,
        steps: &hypers,
        starts: None,
    };
    let gpu_losses = gpu.train_batches(&batches).unwrap();
    gpu.set_eval_set(&data).unwrap();
    let gpu_sse = gpu.eval_sum_squared_error().unwrap();
    let gpu_state = gpu.state().unwrap();
    let memory = gpu.memory_report().unwrap();
    if let Some(error) = pollster::block_on(scope.pop()) {
        panic!("wgpu validation error with the binding limit at {limit} bytes: {error}");
    }

    assert_eq!(memory.parameters, param_bytes());
    assert_eq!(
        memory.optimizer_state,
        2 * param_bytes(),
        "m and v, one parameter-sized buffer each"
    );
    assert!(memory.optimizer_state > limit);

    // The same steps on the CPU reference: the split moments must still be the right ones.
    let mut cpu_losses = Vec::new();
    for (s, hyper) in hypers.iter().enumerate() {
        let range = s * b..(s + 1) * b;
        cpu_losses.push(cpu_step(
            &mut cpu_state,
            &config,
            &data.users[range.clone()],
            &data.items[range.clone()],
            &data.ratings[range],
            hyper,
        ));
    }
    assert_close("batch losses", &gpu_losses, &cpu_losses, 1e-6, 1e-5);
    let want_moments = cpu_state.moments.as_ref().unwrap();
    let got_moments = gpu_state
        .moments
        .as_ref()
        .expect("adamw reads m and v back");
    for (prefix, got, want, atol) in [
        ("", &gpu_state.params, &cpu_state.params, 1e-5),
        ("m.", &got_moments.m, &want_moments.m, 1e-5),
        // Second moments are squares of gradients: compare them on their own scale.
        ("v.", &got_moments.v, &want_moments.v, 1e-10),
    ] {
        for ((name, g), w) in Params::TENSOR_NAMES
            .iter()
            .zip(got.tensors())
            .zip(want.tensors())
        {
            assert_close(&format!("{prefix}{name}"), g, w, atol, 1e-3);
        }
    }
    let want_sse = support::host_sum_squared_error(&cpu_state.params, &data, config.y_range);
    assert_close(
        "validation SSE",
        &[gpu_sse as f32],
        &[want_sse as f32],
        1e-3,
        1e-5,
    );
}

#[test]
fn parameters_larger_than_the_binding_limit_are_refused_with_what_to_do() {
    let limit = (param_bytes() - 64).next_multiple_of(4);
    let Some(device) = device_with_binding_limit(limit) else {
        return;
    };
    for optimizer in [OptimizerKind::AdamW, OptimizerKind::Sgd] {
        let config = config(optimizer);
        let mut gpu = GpuBackend::with_device(device.clone(), &GpuOptions::default());
        let error = gpu
            .start(&config, &initial_state(&config, USERS, ITEMS))
            .expect_err("the parameters do not fit one binding")
            .to_string();
        assert!(
            error.contains(&param_bytes().to_string())
                && error.contains(&limit.to_string())
                && error.contains("--factors")
                && error.contains("--backend cpu"),
            "{optimizer:?}: {error}"
        );
    }
}
