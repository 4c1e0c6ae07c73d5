//! The scale optimisers of SPEC "Scale" on the CPU: `rowwise-adagrad`, `sparse-adam` and the L2
//! per occurrence (`--l2`). Their reference kernels against steps computed by hand, then the fast
//! sparse path (grouped, threaded) against a literal composition of the reference kernels, bit for
//! bit, on 1, 2 and 3 threads, on small batches (one thread) and large ones (the parallel passes).

mod support;

use collabgpu::cpu::{CpuBackend, kernels, reference};
use collabgpu::data::Ratings;
use collabgpu::model::Params;
use collabgpu::train::batches::{batches_per_epoch, block_epoch, epoch_order};
use collabgpu::train::schedule::step_hyper;
use collabgpu::train::{
    self, BatchOrder, OptimizerKind, ScheduleKind, StepHyper, TrainConfig, TrainReport,
};
use support::assert_close;

fn hyper(t: u64, lr: f32, eps: f32) -> StepHyper {
    let (beta1, beta2) = (0.9f64, 0.99f64);
    StepHyper {
        t,
        lr,
        beta1: beta1 as f32,
        beta2: beta2 as f32,
        eps,
        wd: 0.0,
        l2: 0.0,
        step_size: (lr as f64 / (1.0 - beta1.powi(t as i32))) as f32,
        bias_correction2: (1.0 - beta2.powi(t as i32)) as f32,
    }
}

#[test]
fn occurrences_count_each_row_of_a_batch() {
    assert_eq!(
        kernels::occurrences(&[4, 0, 4, 2, 4, 0]),
        vec![(0, 2), (2, 1), (4, 3)]
    );
    assert!(kernels::occurrences(&[]).is_empty());
}

#[test]
fn l2_adds_two_lambda_n_over_b_times_the_row_to_its_gradient() {
    // B = 4: row 0 occurs 3 times, row 1 once, row 2 never. λ = 0.5:
    // row 0 gains 2 * 0.5 * 3 / 4 = 0.75 of itself, row 1 gains 0.25 of itself, row 2 nothing.
    let param = [1.0f32, -2.0, 4.0, 8.0, 100.0, 100.0];
    let mut grad = [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6];
    let rows = kernels::occurrences(&[0, 0, 1, 0]);
    kernels::l2_grad(&mut grad, &param, 2, &rows, 0.5, 4);
    assert_close("grad", &grad, &[0.85, -1.3, 1.3, 2.4, 0.5, 0.6], 1e-7, 1e-6);
    // λ = 0 leaves every bit.
    let mut untouched = [0.1f32, -0.0, 0.3, 0.4, 0.5, 0.6];
    kernels::l2_grad(&mut untouched, &param, 2, &rows, 0.0, 4);
    assert_eq!(
        untouched.map(f32::to_bits),
        [0.1f32, -0.0, 0.3, 0.4, 0.5, 0.6].map(f32::to_bits)
    );
}

#[test]
fn two_rowwise_adagrad_steps_match_hand_computation() {
    // K = 2, rows 0 and 2 in the batch, row 1 not. Step 1, eps 0 so the numbers stay round:
    // row 0: g = (2, 2), mean square 4, s = 4, p -= 0.5 * g / 2 = (0.5, 0.5) -> (0.5, 1.5);
    // row 2: g = (3, 0), mean square 4.5, s = 4.5, p -= 0.5 * (3, 0) / sqrt(4.5).
    let mut param = vec![1.0f32, 2.0, 7.0, 7.0, -1.0, 0.25];
    let mut sums = vec![0.0f32, 0.0, 0.0];
    let grad = [2.0f32, 2.0, 9.0, 9.0, 3.0, 0.0];
    let h = hyper(1, 0.5, 0.0);
    kernels::rowwise_adagrad(&mut param, &grad, &mut sums, 2, &[0, 2], &h);
    assert_eq!(sums, vec![4.0, 0.0, 4.5]);
    let moved = -1.0 - 1.5 / 4.5f64.sqrt();
    assert_close(
        "param after step 1",
        &param,
        &[0.5, 1.5, 7.0, 7.0, moved as f32, 0.25],
        1e-7,
        1e-6,
    );
    // Step 2 on row 0 alone, eps 1e-5: g = (0, 1), s = 4 + 0.5 = 4.5,
    // p -= 0.5 * (0, 1) / (sqrt(4.5) + 1e-5).
    let h = hyper(2, 0.5, 1e-5);
    kernels::rowwise_adagrad(
        &mut param,
        &[0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        &mut sums,
        2,
        &[0],
        &h,
    );
    assert_eq!(sums, vec![4.5, 0.0, 4.5]);
    let second = 1.5 - 0.5 / (4.5f64.sqrt() + 1e-5);
    assert_close(
        "param after step 2",
        &param[..2],
        &[0.5, second as f32],
        1e-7,
        1e-6,
    );
}

#[test]
fn one_sparse_adam_step_moves_only_the_batch_rows_and_their_moments() {
    // t = 1 from zero moments: m = 0.1 g, v = 0.01 g^2, and the bias corrections
    // (1 - 0.9) and (1 - 0.99) make the step lr * g / (|g| + eps): about lr against the sign of g.
    // Row 1 is not in the batch: it and its moments stay exactly as they were (dense AdamW would
    // move it along its non-zero m).
    let mut param = vec![0.5f32, -0.5, 0.25, 0.25];
    let grad = [0.2f32, -0.4, 0.0, 0.0];
    let mut m = vec![0.0f32, 0.0, 0.3, 0.3];
    let mut v = vec![0.0f32, 0.0, 0.01, 0.01];
    let mut h = hyper(1, 0.01, 1e-5);
    h.wd = 0.1;
    kernels::sparse_adam(&mut param, &grad, (&mut m, &mut v), 2, &[0], &h);
    assert_close("m", &m, &[0.02, -0.04, 0.3, 0.3], 1e-8, 1e-6);
    assert_close("v", &v, &[0.0004, 0.0016, 0.01, 0.01], 1e-9, 1e-5);
    // p = p (1 - lr wd) - lr * (m / 0.1) / (sqrt(v / 0.01) + eps).
    let step = |p: f64, g: f64| p * (1.0 - 0.001) - 0.01 * g / (g.abs() + 1e-5);
    assert_close(
        "param",
        &param,
        &[step(0.5, 0.2) as f32, step(-0.5, -0.4) as f32, 0.25, 0.25],
        1e-7,
        1e-5,
    );
}

#[test]
fn reference_step_with_l2_regularises_each_occurrence_and_reports_the_plain_loss() {
    // A batch of user 0 twice with no error (rating = prediction): the MSE gradient is zero, so
    // sgd moves each row by lr * 2 λ n_r / B * p alone, and the loss is the plain MSE, 0.
    let config = TrainConfig {
        factors: 2,
        optimizer: OptimizerKind::Sgd,
        y_range: None,
        wd: 0.0,
        l2: 0.5,
        ..TrainConfig::default()
    };
    let params = Params {
        factors: 2,
        user_factors: vec![1.0, 2.0],
        item_factors: vec![0.5, 0.0, 0.0, 0.25],
        user_bias: vec![0.5],
        item_bias: vec![0.0, 0.5],
    };
    let rating_0 = params.raw_score(0, 0);
    let rating_1 = params.raw_score(0, 1);
    let mut state = train::TrainState {
        params,
        moments: None,
        row_sums: None,
    };
    let mut h = hyper(1, 0.1, 1e-5);
    h.l2 = 0.5;
    let loss = reference::train_step(
        &mut state,
        &config,
        &[0, 0],
        &[0, 1],
        &[rating_0, rating_1],
        &h,
    );
    assert_eq!(loss, 0.0);
    // User 0: n = 2, factor 2 * 0.5 * 2 / 2 = 1, p -= 0.1 p. Items: n = 1, factor 0.5, p -= 0.05 p.
    let p = &state.params;
    assert_close("P", &p.user_factors, &[0.9, 1.8], 1e-7, 1e-6);
    assert_close("bu", &p.user_bias, &[0.45], 1e-7, 1e-6);
    assert_close("Q", &p.item_factors, &[0.475, 0.0, 0.0, 0.2375], 1e-7, 1e-6);
    assert_close("bi", &p.item_bias, &[0.0, 0.475], 1e-7, 1e-6);
}

struct Data {
    users: usize,
    items: usize,
    train: Ratings,
    valid: Ratings,
}

fn data(users: usize, items: usize, n: usize, seed: u64) -> Data {
    let all = support::planted_ratings(users, items, n, seed);
    let (train, valid) = support::random_split(&all, 0.2, seed);
    Data {
        users,
        items,
        train,
        valid,
    }
}

fn run(config: &TrainConfig, data: &Data, threads: usize) -> TrainReport {
    let mut backend = CpuBackend::new(threads).unwrap();
    support::train_run(
        &mut backend,
        config,
        data.users,
        data.items,
        &data.train,
        &data.valid,
    )
}

fn bits(params: &Params) -> Vec<Vec<u32>> {
    params
        .tensors()
        .iter()
        .map(|t| t.iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// The whole run through [`reference::train_step`] alone, one batch at a time: the state and each
/// epoch's training loss.
fn literal_reference(config: &TrainConfig, data: &Data) -> (train::TrainState, Vec<f64>) {
    let mut state = train::initial_state(config, data.users, data.items);
    let per_epoch = batches_per_epoch(data.train.len(), config.batch_size, config.drop_last);
    let total = (per_epoch * config.epochs) as u64;
    let mut losses = Vec::new();
    let shape = (data.users, data.items, config.factors);
    let plan = |epoch| {
        let train = &data.train;
        block_epoch(
            &train.users,
            &train.items,
            shape,
            config.batch_size,
            config.seed,
            epoch,
        )
    };
    let per_epoch = match config.order {
        BatchOrder::Random => per_epoch,
        BatchOrder::Blocks => plan(0).starts.len() - 1,
    };
    let total = match config.order {
        BatchOrder::Random => total,
        BatchOrder::Blocks => (per_epoch * config.epochs) as u64,
    };
    for epoch in 0..config.epochs {
        let (order, starts) = match config.order {
            BatchOrder::Random => (epoch_order(data.train.len(), config.seed, epoch), None),
            BatchOrder::Blocks => {
                let plan = plan(epoch);
                (plan.order, Some(plan.starts))
            }
        };
        let shuffled = data.train.select(&order);
        let mut sum = 0.0;
        for s in 0..per_epoch {
            let hyper = step_hyper(config, (epoch * per_epoch + s) as u64, total);
            let range = match &starts {
                Some(starts) => starts[s]..starts[s + 1],
                None => s * config.batch_size..((s + 1) * config.batch_size).min(shuffled.len()),
            };
            sum += reference::train_step(
                &mut state,
                config,
                &shuffled.users[range.clone()],
                &shuffled.items[range.clone()],
                &shuffled.ratings[range],
                &hyper,
            ) as f64;
        }
        losses.push(sum / per_epoch as f64);
    }
    (state, losses)
}

/// The backend on each thread count against the literal reference: parameters, optimiser state
/// and every epoch's training loss, bit for bit. Returns the reference's state.
fn assert_matches_reference(config: &TrainConfig, data: &Data) -> train::TrainState {
    let (expected, losses) = literal_reference(config, data);
    for threads in [1, 2, 3] {
        let report = run(config, data, threads);
        let what = format!(
            "{} on {threads} threads, B = {}",
            config.optimizer.name(),
            config.batch_size
        );
        assert_eq!(
            bits(&report.state.params),
            bits(&expected.params),
            "{what}: parameters"
        );
        let moments = |s: &train::TrainState| s.moments.as_ref().map(|m| (bits(&m.m), bits(&m.v)));
        assert_eq!(
            moments(&report.state),
            moments(&expected),
            "{what}: moments"
        );
        let sums = |s: &train::TrainState| s.row_sums.as_ref().map(bits);
        assert_eq!(sums(&report.state), sums(&expected), "{what}: row sums");
        let got: Vec<f64> = report.epochs.iter().map(|e| e.train_loss).collect();
        assert_eq!(got, losses, "{what}: epoch losses");
    }
    let start = train::initial_state(config, data.users, data.items);
    assert_ne!(
        bits(&expected.params),
        bits(&start.params),
        "the run must move the parameters"
    );
    expected
}

fn scale_config(optimizer: OptimizerKind, batch_size: usize, l2: f32) -> TrainConfig {
    TrainConfig {
        factors: 12,
        epochs: 2,
        batch_size,
        optimizer,
        schedule: ScheduleKind::OneCycle,
        lr: match optimizer {
            OptimizerKind::Sgd => 30.0,
            OptimizerKind::RowwiseAdagrad => 0.05,
            _ => 0.01,
        },
        wd: 0.01,
        l2,
        drop_last: false,
        ..TrainConfig::default()
    }
}

/// Small batches: the sparse path on the calling thread; adamw's dense path with L2.
#[test]
fn small_batches_of_every_optimizer_with_l2_match_the_reference_bit_for_bit() {
    let data = data(60, 50, 3000, 21);
    for optimizer in [
        OptimizerKind::AdamW,
        OptimizerKind::Sgd,
        OptimizerKind::RowwiseAdagrad,
        OptimizerKind::SparseAdam,
    ] {
        let mut config = scale_config(optimizer, 64, 0.05);
        if optimizer == OptimizerKind::Sgd {
            config.lr = 0.5;
        }
        assert_matches_reference(&config, &data);
    }
}

/// Batches of 1,024 and more take the parallel passes; few users and items, so rows repeat many
/// times in a batch (the per-row sums and `n_r` matter), and the short last batch (kept: 32,000
/// training ratings = 5 x 6,200 + 1,000) has its own `B` in the L2 factor.
#[test]
fn large_batches_of_the_scale_optimizers_match_the_reference_on_any_thread_count() {
    let data = data(300, 70, 40_000, 22);
    for optimizer in [OptimizerKind::RowwiseAdagrad, OptimizerKind::SparseAdam] {
        for l2 in [0.0, 0.1] {
            assert_matches_reference(&scale_config(optimizer, 6200, l2), &data);
        }
    }
    assert_matches_reference(&scale_config(OptimizerKind::Sgd, 6200, 0.1), &data);
}

/// Many users and items: each batch splits into many chunks of users and of items that different
/// threads take, most rows occurring once or twice, as on the large data sets.
#[test]
fn scale_optimizers_over_many_chunks_match_the_reference() {
    let data = data(6000, 1500, 60_000, 23);
    for optimizer in [OptimizerKind::RowwiseAdagrad, OptimizerKind::SparseAdam] {
        let config = TrainConfig {
            factors: 16,
            batch_size: 16_384,
            ..scale_config(optimizer, 16_384, 0.05)
        };
        assert_matches_reference(&config, &data);
    }
}

#[test]
fn scale_optimizers_leave_rows_outside_every_batch_and_their_state_untouched() {
    // Users 40.. and items 40.. never occur in the training ratings.
    let mut data = data(40, 40, 2000, 24);
    (data.users, data.items) = (60, 60);
    for optimizer in [OptimizerKind::RowwiseAdagrad, OptimizerKind::SparseAdam] {
        let config = scale_config(optimizer, 64, 0.05);
        let start = train::initial_state(&config, 60, 60);
        let report = run(&config, &data, 2);
        let (k, p0, p1) = (config.factors, &start.params, &report.state.params);
        assert_eq!(p1.user_factors[40 * k..], p0.user_factors[40 * k..]);
        assert_eq!(p1.item_bias[40..], p0.item_bias[40..]);
        assert_ne!(p1.user_factors[..40 * k], p0.user_factors[..40 * k]);
        if let Some(sums) = &report.state.row_sums {
            assert!(sums.user_factors[40..].iter().all(|&s| s == 0.0));
            assert!(sums.user_factors[..40].iter().all(|&s| s > 0.0));
        }
        if let Some(moments) = &report.state.moments {
            assert!(moments.v.item_factors[40 * k..].iter().all(|&v| v == 0.0));
        }
    }
}

/// Both scale optimisers learn: on planted data they end well below the variance of the ratings.
#[test]
fn scale_optimizers_learn_a_planted_model() {
    let data = data(200, 150, 30_000, 25);
    let mean = data.valid.ratings.iter().map(|&r| r as f64).sum::<f64>() / data.valid.len() as f64;
    let variance = data
        .valid
        .ratings
        .iter()
        .map(|&r| (r as f64 - mean).powi(2))
        .sum::<f64>()
        / data.valid.len() as f64;
    for (optimizer, lr) in [
        (OptimizerKind::RowwiseAdagrad, 0.1),
        (OptimizerKind::SparseAdam, 0.02),
    ] {
        let config = TrainConfig {
            factors: 8,
            epochs: 6,
            batch_size: 256,
            optimizer,
            schedule: ScheduleKind::Constant,
            lr,
            wd: 0.0,
            l2: 0.02,
            ..TrainConfig::default()
        };
        let report = run(&config, &data, 2);
        let loss = report.final_valid_loss().unwrap();
        assert!(
            loss < 0.6 * variance,
            "{}: valid MSE {loss} against a rating variance of {variance}",
            optimizer.name()
        );
    }
}

/// `--early-stop N`: the run stops N epochs after its best validation loss, and keeps that
/// epoch's parameters. A learning rate far too high for sgd makes the validation loss rise after
/// the first epochs, so the best epoch is known to be early; the kept parameters must be exactly
/// those of a run of `best + 1` epochs with no early stopping (constant schedule: the same steps).
#[test]
fn early_stop_keeps_the_best_epoch_and_stops_after_n_epochs_without_improvement() {
    let data = data(60, 50, 3000, 26);
    let config = TrainConfig {
        factors: 8,
        epochs: 30,
        batch_size: 16,
        optimizer: OptimizerKind::Sgd,
        schedule: ScheduleKind::Constant,
        lr: 1.0,
        wd: 0.0,
        early_stop: 2,
        ..TrainConfig::default()
    };
    let report = run(&config, &data, 2);
    let losses: Vec<f64> = report
        .epochs
        .iter()
        .map(|e| e.valid_loss.unwrap())
        .collect();
    let best = report
        .best
        .as_ref()
        .expect("early stopping keeps a best epoch");
    let lowest = losses.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(best.valid_loss, lowest, "losses {losses:?}");
    assert_eq!(losses[best.epoch], lowest);
    assert!(report.stopped_early, "losses {losses:?}");
    assert_eq!(
        report.epochs.len(),
        best.epoch + 3,
        "two epochs past the best, losses {losses:?}"
    );
    assert!(losses[best.epoch + 1..].iter().all(|&l| l >= lowest));
    assert_eq!(report.kept_valid_loss(), Some(lowest));

    let shorter = TrainConfig {
        epochs: best.epoch + 1,
        early_stop: 0,
        ..config
    };
    let plain = run(&shorter, &data, 1);
    assert!(plain.best.is_none() && !plain.stopped_early);
    assert_eq!(bits(&best.params), bits(&plain.state.params));
    assert_eq!(bits(report.kept_params()), bits(&plain.state.params));
}

/// `--order blocks`: batches of different lengths (each block's last one short), taken block by
/// block; the backend must still give the reference's bits on any thread count, for every sparse
/// optimiser and adamw. K = 4000 makes the rows of 300 x 200 ratings spill the cache budget, so the
/// grid has several blocks (S = 2 here).
#[test]
fn block_order_matches_the_reference_bit_for_bit_on_any_thread_count() {
    let data = data(300, 200, 12_000, 27);
    let ranges = collabgpu::train::batches::block_ranges(300, 200, 1100);
    assert!(ranges >= 2, "S = {ranges}");
    for optimizer in [
        OptimizerKind::AdamW,
        OptimizerKind::Sgd,
        OptimizerKind::RowwiseAdagrad,
        OptimizerKind::SparseAdam,
    ] {
        let config = TrainConfig {
            factors: 1100,
            order: BatchOrder::Blocks,
            init_std: 0.001,
            ..scale_config(optimizer, 1500, 0.05)
        };
        let config = match optimizer {
            OptimizerKind::Sgd => TrainConfig { lr: 3.0, ..config },
            OptimizerKind::AdamW => TrainConfig { lr: 1e-3, ..config },
            _ => config,
        };
        assert_matches_reference(&config, &data);
    }
}
