//! The same training steps on both backends from the same initial parameters: the GPU backend
//! through `Backend::train_batches` (the batches as indices into its resident training set), the CPU as a plain step composed from `cpu::kernels` (the
//! reference the CPU backend implements). Every step's loss and every parameter tensor (and Adam
//! moment, and row-wise Adagrad accumulator) are compared after every step, for every optimiser,
//! with and without `--l2`; then chunking must not change the result, the fused training path (the
//! default, which the trajectories run) must agree with the single-op kernels, and a run resumed
//! from the state read back must go on as if unbroken. The trajectories run on both
//! `forward_backward` paths: a subgroup per rating (the default where the adapter has `SUBGROUP`)
//! and one thread per rating ([`GpuOptions::thread_per_rating`]).

mod support;

use collabgpu::cpu::reference::train_step as cpu_step;
use collabgpu::data::Ratings;
use collabgpu::gpu::layout::EVAL_WORKGROUPS;
use collabgpu::gpu::{GpuBackend, GpuOptions};
use collabgpu::model::Params;
use collabgpu::train::initial_state;
use collabgpu::train::schedule::step_hyper;
use collabgpu::train::{
    Backend, Batches, OptimizerKind, ScheduleKind, StepHyper, TrainConfig, TrainState,
};
use support::{assert_close, gpu_device, random_f32};

const USERS: usize = 40;
const ITEMS: usize = 30;
const STEPS: usize = 50;

/// Ratings in `[1, 5]` where user 0 and item 0 are frequent (one user many times per batch).
fn synthetic_ratings(n: usize, seed: u64) -> Ratings {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut users = Vec::with_capacity(n);
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let hot = rng.random_bool(0.3);
        users.push(if hot {
            0
        } else {
            rng.random_range(0..USERS as u32)
        });
        items.push(if rng.random_bool(0.2) {
            0
        } else {
            rng.random_range(0..ITEMS as u32)
        });
    }
    let ratings = random_f32(n, 1.0, 5.0, seed + 1)
        .iter()
        .map(|r| r.round())
        .collect();
    Ratings {
        users,
        items,
        ratings,
        timestamps: None,
    }
}

fn config(optimizer: OptimizerKind, schedule: ScheduleKind) -> TrainConfig {
    TrainConfig {
        factors: 8,
        optimizer,
        schedule,
        // Larger than the default so that 50 steps move the parameters visibly.
        lr: if optimizer == OptimizerKind::Sgd {
            0.5
        } else {
            0.02
        },
        init_std: 0.1,
        ..TrainConfig::default()
    }
}

/// `config` with L2 per occurrence `l2`.
fn with_l2(config: TrainConfig, l2: f32) -> TrainConfig {
    TrainConfig { l2, ..config }
}

fn assert_state_close(what: &str, got: &TrainState, want: &TrainState, atol: f32, rtol: f32) {
    assert_eq!(
        (got.moments.is_some(), got.row_sums.is_some()),
        (want.moments.is_some(), want.row_sums.is_some()),
        "{what}: the optimiser state the GPU handed back"
    );
    let mut pairs = vec![("", &got.params, &want.params)];
    if let (Some(g), Some(w)) = (&got.moments, &want.moments) {
        pairs.push(("m.", &g.m, &w.m));
        pairs.push(("v.", &g.v, &w.v));
    }
    if let (Some(g), Some(w)) = (&got.row_sums, &want.row_sums) {
        pairs.push(("s.", g, w));
    }
    for (prefix, g, w) in pairs {
        for ((name, gt), wt) in Params::TENSOR_NAMES
            .iter()
            .zip(g.tensors())
            .zip(w.tensors())
        {
            // Second moments and row sums are squares of gradients: compare them on their own
            // scale.
            let atol = match prefix {
                "v." | "s." => atol * atol,
                _ => atol,
            };
            assert_close(&format!("{what}: {prefix}{name}"), gt, wt, atol, rtol);
        }
    }
}

/// `0, 1, .., n - 1`: batches that take the training set in its own order.
fn in_order(n: usize) -> Vec<u32> {
    (0..n as u32).collect()
}

/// Both `forward_backward` paths: the default (a subgroup per rating where the adapter has
/// `SUBGROUP`) and one thread per rating.
fn forward_backward_paths() -> [GpuOptions; 2] {
    [
        GpuOptions::default(),
        GpuOptions {
            thread_per_rating: true,
            ..GpuOptions::default()
        },
    ]
}

/// [`trajectory_on`] on both `forward_backward` paths.
fn trajectory(config: TrainConfig) {
    for options in forward_backward_paths() {
        trajectory_on(config.clone(), &options);
    }
}

/// Trains `STEPS` batches one at a time on both backends, comparing after every step.
fn trajectory_on(config: TrainConfig, options: &GpuOptions) {
    let Some(device) = gpu_device() else { return };
    let b = config.batch_size;
    let data = synthetic_ratings(STEPS * b, 7);
    let hypers: Vec<StepHyper> = (0..STEPS as u64)
        .map(|s| step_hyper(&config, s, STEPS as u64))
        .collect();
    let mut cpu_state = initial_state(&config, USERS, ITEMS);
    let mut gpu = GpuBackend::with_device(device, options);
    let path = gpu.forward_backward_path();
    gpu.start(&config, &cpu_state).unwrap();
    // The GPU holds the ratings reversed and gathers them back by a reversed order, so that every
    // batch sees the CPU's triples only if `gather_triples` follows the order.
    let n = data.len();
    let reversed: Vec<u32> = (0..n as u32).rev().collect();
    gpu.set_train_set(&data.select(&reversed)).unwrap();
    for s in 0..STEPS {
        let range = s * b..(s + 1) * b;
        let batches = Batches {
            order: &reversed[range.clone()],
            batch_size: b,
            steps: &hypers[s..s + 1],
            starts: None,
        };
        let gpu_loss = gpu.train_batches(&batches).unwrap();
        let cpu_loss = cpu_step(
            &mut cpu_state,
            &config,
            &data.users[range.clone()],
            &data.items[range.clone()],
            &data.ratings[range],
            &hypers[s],
        );
        assert_close(
            &format!("loss of step {s} ({path})"),
            &gpu_loss,
            &[cpu_loss],
            1e-6,
            1e-5,
        );
        let gpu_state = gpu.state().unwrap();
        assert_state_close(
            &format!("after step {s} ({path})"),
            &gpu_state,
            &cpu_state,
            1e-5,
            1e-3,
        );
    }
    // The run must have moved the parameters, or the comparison proved nothing.
    let start = initial_state(&config, USERS, ITEMS);
    let moved = cpu_state
        .params
        .user_factors
        .iter()
        .zip(&start.params.user_factors)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(moved > 1e-3, "50 steps moved P by only {moved}");
}

#[test]
fn adamw_one_cycle_trajectory_matches_cpu_for_50_steps() {
    trajectory(config(OptimizerKind::AdamW, ScheduleKind::OneCycle));
}

/// K = 8: the fused path moves rows with `sgd_apply_vec4`.
#[test]
fn sgd_trajectory_matches_cpu_for_50_steps() {
    trajectory(config(OptimizerKind::Sgd, ScheduleKind::Constant));
}

/// K = 6, not a multiple of 4: rows are not aligned to vec4s, so the fused path keeps `sgd_apply`.
#[test]
fn sgd_trajectory_with_unaligned_rows_matches_cpu_for_50_steps() {
    trajectory(TrainConfig {
        factors: 6,
        ..config(OptimizerKind::Sgd, ScheduleKind::Constant)
    });
}

/// K = 13 is no multiple of any subgroup size: some lanes take one entry more than others.
#[test]
fn adamw_and_sgd_trajectories_with_k_13_match_cpu_for_50_steps() {
    for optimizer in [OptimizerKind::AdamW, OptimizerKind::Sgd] {
        let config = TrainConfig {
            factors: 13,
            ..config(optimizer, ScheduleKind::Constant)
        };
        trajectory(config);
    }
}

#[test]
fn rowwise_adagrad_trajectory_matches_cpu_for_50_steps() {
    trajectory(config(
        OptimizerKind::RowwiseAdagrad,
        ScheduleKind::Constant,
    ));
}

#[test]
fn sparse_adam_one_cycle_trajectory_matches_cpu_for_50_steps() {
    trajectory(config(OptimizerKind::SparseAdam, ScheduleKind::OneCycle));
}

/// L2 per occurrence on every optimiser: user 0 and item 0 occur many times in each batch, so
/// their `n_r` is large and the term visibly moves them.
#[test]
fn every_optimizer_with_l2_trajectory_matches_cpu_for_50_steps() {
    for (optimizer, schedule) in [
        (OptimizerKind::AdamW, ScheduleKind::OneCycle),
        (OptimizerKind::Sgd, ScheduleKind::Constant),
        (OptimizerKind::RowwiseAdagrad, ScheduleKind::Constant),
        (OptimizerKind::SparseAdam, ScheduleKind::OneCycle),
    ] {
        trajectory(with_l2(config(optimizer, schedule), 0.5));
    }
}

/// All batches in one call, with the chunk size forced to `chunk_batches`.
fn run_chunked(
    config: &TrainConfig,
    data: &Ratings,
    chunk_batches: Option<usize>,
) -> (Vec<f32>, TrainState, f64) {
    run_with(
        config,
        data,
        GpuOptions {
            chunk_batches,
            ..GpuOptions::default()
        },
    )
}

/// All batches in one call on a backend built with `options`: the losses, the final state and the
/// SSE over `data`.
fn run_with(
    config: &TrainConfig,
    data: &Ratings,
    options: GpuOptions,
) -> (Vec<f32>, TrainState, f64) {
    let device = gpu_device().expect("checked by the caller");
    let b = config.batch_size;
    let n_batches = data.len().div_ceil(b);
    let hypers: Vec<StepHyper> = (0..n_batches as u64)
        .map(|s| step_hyper(config, s, n_batches as u64))
        .collect();
    let mut gpu = GpuBackend::with_device(device, &options);
    gpu.start(config, &initial_state(config, USERS, ITEMS))
        .unwrap();
    gpu.set_train_set(data).unwrap();
    let order = in_order(data.len());
    let batches = Batches {
        order: &order,
        batch_size: b,
        steps: &hypers,
        starts: None,
    };
    let losses = gpu.train_batches(&batches).unwrap();
    gpu.set_eval_set(data).unwrap();
    let sse = gpu.eval_sum_squared_error().unwrap();
    (losses, gpu.state().unwrap(), sse)
}

fn chunking_changes_nothing(config: TrainConfig) {
    if gpu_device().is_none() {
        return;
    }
    // 50 full batches and a short one of 17, the way an epoch that keeps its last batch ends.
    let data = synthetic_ratings(STEPS * config.batch_size + 17, 11);
    let (one_losses, one_state, one_sse) = run_chunked(&config, &data, None);
    let (tiny_losses, tiny_state, tiny_sse) = run_chunked(&config, &data, Some(3));
    assert_eq!(one_losses.len(), STEPS + 1);
    // The training set in pieces of 100 ratings (a binding smaller than the set): every chunk is
    // gathered from several pieces.
    let (piece_losses, piece_state, _) = run_with(
        &config,
        &data,
        GpuOptions {
            chunk_batches: Some(3),
            train_piece_ratings: Some(100),
            ..GpuOptions::default()
        },
    );
    assert_close(
        "losses, training set in pieces vs whole",
        &piece_losses,
        &tiny_losses,
        1e-6,
        1e-5,
    );
    assert_state_close(
        "training set in pieces vs whole",
        &piece_state,
        &tiny_state,
        1e-6,
        1e-4,
    );
    assert_close(
        "losses, chunks of 3 batches vs one chunk",
        &tiny_losses,
        &one_losses,
        1e-6,
        1e-5,
    );
    assert_state_close(
        "chunks of 3 batches vs one chunk",
        &tiny_state,
        &one_state,
        1e-6,
        1e-4,
    );
    assert_close(
        "validation SSE, chunks of 3 vs one",
        &[tiny_sse as f32],
        &[one_sse as f32],
        1e-5,
        1e-5,
    );
    // And the GPU's evaluation agrees with the host's over the final parameters.
    let want = support::host_sum_squared_error(&one_state.params, &data, config.y_range);
    assert_close(
        "validation SSE, GPU vs host",
        &[one_sse as f32],
        &[want as f32],
        1e-3,
        1e-5,
    );
}

#[test]
fn adamw_tiny_chunks_give_the_same_result_as_one_chunk() {
    chunking_changes_nothing(config(OptimizerKind::AdamW, ScheduleKind::OneCycle));
}

#[test]
fn sgd_tiny_chunks_give_the_same_result_as_one_chunk() {
    chunking_changes_nothing(config(OptimizerKind::Sgd, ScheduleKind::OneCycle));
}

#[test]
fn scale_optimizers_with_l2_tiny_chunks_give_the_same_result_as_one_chunk() {
    for optimizer in [OptimizerKind::RowwiseAdagrad, OptimizerKind::SparseAdam] {
        chunking_changes_nothing(with_l2(config(optimizer, ScheduleKind::OneCycle), 0.5));
    }
}

fn fused_matches_unfused(config: TrainConfig) {
    if gpu_device().is_none() {
        return;
    }
    let data = synthetic_ratings(STEPS * config.batch_size + 17, 13);
    // Chunks of 7 batches: several submissions, both slots, claim tags across chunks.
    let fused_options = GpuOptions {
        chunk_batches: Some(7),
        ..GpuOptions::default()
    };
    let unfused_options = GpuOptions {
        unfused: true,
        ..fused_options.clone()
    };
    let (fused_losses, fused_state, fused_sse) = run_with(&config, &data, fused_options);
    let (unfused_losses, unfused_state, unfused_sse) = run_with(&config, &data, unfused_options);
    assert_eq!(fused_losses.len(), STEPS + 1);
    assert_close(
        "losses, fused vs single-op kernels",
        &fused_losses,
        &unfused_losses,
        1e-6,
        1e-5,
    );
    assert_state_close(
        "fused vs single-op kernels",
        &fused_state,
        &unfused_state,
        1e-5,
        1e-3,
    );
    assert_close(
        "validation SSE, fused vs single-op kernels",
        &[fused_sse as f32],
        &[unfused_sse as f32],
        1e-4,
        1e-4,
    );
}

#[test]
fn adamw_fused_path_matches_single_op_kernels() {
    fused_matches_unfused(config(OptimizerKind::AdamW, ScheduleKind::OneCycle));
}

#[test]
fn sgd_fused_path_matches_single_op_kernels() {
    fused_matches_unfused(config(OptimizerKind::Sgd, ScheduleKind::OneCycle));
}

#[test]
fn scale_optimizers_fused_path_matches_single_op_kernels() {
    for optimizer in [OptimizerKind::RowwiseAdagrad, OptimizerKind::SparseAdam] {
        fused_matches_unfused(config(optimizer, ScheduleKind::OneCycle));
    }
}

/// `l2_grad` sits before the optimiser on both paths, and on the dense one too.
#[test]
fn l2_fused_path_matches_single_op_kernels() {
    for optimizer in [OptimizerKind::AdamW, OptimizerKind::RowwiseAdagrad] {
        fused_matches_unfused(with_l2(config(optimizer, ScheduleKind::OneCycle), 0.5));
    }
}

/// The fused path's claim tags only grow; before they would overflow, the claims are cleared and
/// the tags restart. Forcing that every few batches must not change a thing: not the rows the
/// sparse optimisers own, nor the rows whose gradients `adamw_vec4` reads.
fn claim_tag_restarts_change_nothing(config: TrainConfig) {
    if gpu_device().is_none() {
        return;
    }
    let data = synthetic_ratings(STEPS * config.batch_size, 19);
    let options = GpuOptions {
        chunk_batches: Some(3),
        ..GpuOptions::default()
    };
    let restarting = GpuOptions {
        claim_tag_limit: Some(5),
        ..options.clone()
    };
    let (losses, state, _) = run_with(&config, &data, options);
    let (restarted_losses, restarted_state, _) = run_with(&config, &data, restarting);
    assert_close(
        "losses, claim tags restarted every few batches vs never",
        &restarted_losses,
        &losses,
        1e-6,
        1e-5,
    );
    assert_state_close(
        "claim tags restarted every few batches vs never",
        &restarted_state,
        &state,
        1e-6,
        1e-4,
    );
}

#[test]
fn sgd_claim_tag_restarts_change_nothing() {
    claim_tag_restarts_change_nothing(config(OptimizerKind::Sgd, ScheduleKind::Constant));
}

#[test]
fn adamw_claim_tag_restarts_change_nothing() {
    claim_tag_restarts_change_nothing(config(OptimizerKind::AdamW, ScheduleKind::OneCycle));
}

#[test]
fn scale_optimizers_claim_tag_restarts_change_nothing() {
    for optimizer in [OptimizerKind::RowwiseAdagrad, OptimizerKind::SparseAdam] {
        claim_tag_restarts_change_nothing(config(optimizer, ScheduleKind::Constant));
    }
}

/// The backend reports where its time went and what it allocated, in sizes it can check.
#[test]
fn timings_and_memory_report_add_up() {
    let Some(device) = gpu_device() else { return };
    let config = config(OptimizerKind::AdamW, ScheduleKind::OneCycle);
    let data = synthetic_ratings(10 * config.batch_size, 17);
    let mut gpu = GpuBackend::with_device(
        device,
        &GpuOptions {
            chunk_batches: Some(2),
            ..GpuOptions::default()
        },
    );
    assert!(gpu.memory_report().is_none(), "no run, no memory");
    let (losses, _, _) = {
        let hypers: Vec<StepHyper> = (0..10).map(|s| step_hyper(&config, s, 10)).collect();
        gpu.start(&config, &initial_state(&config, USERS, ITEMS))
            .unwrap();
        gpu.set_train_set(&data).unwrap();
        let order = in_order(data.len());
        let batches = Batches {
            order: &order,
            batch_size: config.batch_size,
            steps: &hypers,
            starts: None,
        };
        (gpu.train_batches(&batches).unwrap(), (), ())
    };
    assert_eq!(losses.len(), 10);
    let timings = gpu.timings();
    eprintln!("{timings:?}");
    assert_eq!(timings.batches, 10);
    assert_eq!(timings.chunks, 5, "10 batches in chunks of 2");
    assert_eq!(
        timings.dispatches, 20,
        "two dispatches per batch on the fused path"
    );
    assert_eq!(timings.gather_dispatches, 5, "one gather per chunk");
    assert_eq!(
        timings.host_waits, 1,
        "one wait, for the last of the chunks"
    );
    assert_eq!(
        timings.queue_full_waits, 2,
        "chunks 4 and 5 each wait for a slot (three in flight), as a call of many chunks does"
    );
    assert!(timings.upload_seconds > 0.0 && timings.readback_wait_seconds > 0.0);
    match timings.kernel_seconds {
        Some(kernels) => assert!(kernels > 0.0, "timestamps said the passes took no time"),
        None => eprintln!("this adapter has no TIMESTAMP_QUERY: no GPU-side kernel times"),
    }
    let memory = gpu.memory_report().unwrap();
    eprintln!("{memory:?}");
    // N = (U + I) * (K + 1) floats, padded to a multiple of 4; two Adam moments.
    let n = ((USERS + ITEMS) * (config.factors + 1)).next_multiple_of(4) as u64 * 4;
    assert_eq!(memory.parameters, n);
    assert_eq!(memory.gradients, n);
    assert_eq!(memory.optimizer_state, 2 * n);
    // Three chunk slots of 2 batches of 64 triples (12 bytes each) and their order (4 each).
    assert_eq!(memory.triple_chunks, 3 * 2 * 64 * 16);
    assert_eq!(memory.train_set, data.len() as u64 * 12);
    // The fused path keeps only x, pred, g, sq per rating of a batch of C = 64, or room for the
    // evaluation's most partial sums where that is more.
    assert_eq!(memory.scratch, (4 * 64).max(EVAL_WORKGROUPS as u64) * 4);
    assert!(memory.total() > 4 * n + memory.triple_chunks);
}

/// Resuming through the GPU: train half the steps, read the state back (what a checkpoint saves),
/// start a fresh backend from it and train the rest. Must end where the CPU does without a break,
/// so `m` and `v` (or the row sums) go up to and come back from their own buffers each in its
/// place.
fn resumed_matches_cpu_without_a_break(config: TrainConfig) {
    let Some(device) = gpu_device() else { return };
    let b = config.batch_size;
    let data = synthetic_ratings(STEPS * b, 13);
    let hypers: Vec<StepHyper> = (0..STEPS as u64)
        .map(|s| step_hyper(&config, s, STEPS as u64))
        .collect();
    let half = STEPS / 2;
    let order = in_order(data.len());
    let batches = |steps: std::ops::Range<usize>| Batches {
        order: &order[steps.start * b..steps.end * b],
        batch_size: b,
        steps: &hypers[steps],
        starts: None,
    };
    let mut first = GpuBackend::with_device(device.clone(), &GpuOptions::default());
    first
        .start(&config, &initial_state(&config, USERS, ITEMS))
        .unwrap();
    first.set_train_set(&data).unwrap();
    first.train_batches(&batches(0..half)).unwrap();
    let saved = first.state().unwrap();
    let mut second = GpuBackend::with_device(device, &GpuOptions::default());
    second.start(&config, &saved).unwrap();
    second.set_train_set(&data).unwrap();
    let resumed_losses = second.train_batches(&batches(half..STEPS)).unwrap();

    let mut cpu_state = initial_state(&config, USERS, ITEMS);
    let mut cpu_losses = Vec::new();
    for (s, hyper) in hypers.iter().enumerate() {
        let range = s * b..(s + 1) * b;
        let loss = cpu_step(
            &mut cpu_state,
            &config,
            &data.users[range.clone()],
            &data.items[range.clone()],
            &data.ratings[range],
            hyper,
        );
        if s >= half {
            cpu_losses.push(loss);
        }
    }
    assert_close(
        "losses after the resume",
        &resumed_losses,
        &cpu_losses,
        1e-6,
        1e-5,
    );
    assert_state_close(
        "resumed run",
        &second.state().unwrap(),
        &cpu_state,
        1e-5,
        1e-3,
    );
}

#[test]
fn adamw_resumed_from_read_back_state_matches_cpu_without_a_break() {
    resumed_matches_cpu_without_a_break(config(OptimizerKind::AdamW, ScheduleKind::OneCycle));
}

#[test]
fn scale_optimizers_resumed_from_read_back_state_match_cpu_without_a_break() {
    for optimizer in [OptimizerKind::RowwiseAdagrad, OptimizerKind::SparseAdam] {
        resumed_matches_cpu_without_a_break(with_l2(
            config(optimizer, ScheduleKind::OneCycle),
            0.5,
        ));
    }
}
