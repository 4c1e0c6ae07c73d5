//! The epoch loop with the CPU backend: determinism (same seed, same bits; 1 and 2 threads, same
//! bits), the backend against the reference step run batch by batch, divergence
//! reporting, and learning a planted model for real.

#[path = "support/correlation.rs"]
mod correlation;

use collabgpu::cpu::{CpuBackend, reference};
use collabgpu::data::Ratings;
use collabgpu::model::Params;
use collabgpu::train::batches::{batches_per_epoch, epoch_order};
use collabgpu::train::schedule::step_hyper;
use collabgpu::train::{
    self, OptimizerKind, Progress, ScheduleKind, TrainConfig, TrainError, TrainReport,
};
use correlation::correlation;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// Ratings from a planted DotProductBias model plus Gaussian noise (the synthetic generator of the
/// data branch is not on main yet, so the test plants its own). Returns the data, the planted
/// biases and the noise floor (the planted model's own MSE on the noisy ratings).
struct Planted {
    train: Ratings,
    valid: Ratings,
    users: usize,
    items: usize,
    user_bias: Vec<f32>,
    item_bias: Vec<f32>,
    noise_floor: f64,
}

fn planted(users: usize, items: usize, n: usize, noise_std: f32, seed: u64) -> Planted {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = 4;
    let factor = Normal::new(0.0f32, 0.5).unwrap();
    let bias = Normal::new(0.0f32, 0.6).unwrap();
    let noise = Normal::new(0.0f32, noise_std).unwrap();
    let p: Vec<f32> = (0..users * k).map(|_| factor.sample(&mut rng)).collect();
    let q: Vec<f32> = (0..items * k).map(|_| factor.sample(&mut rng)).collect();
    let user_bias: Vec<f32> = (0..users).map(|_| bias.sample(&mut rng)).collect();
    let item_bias: Vec<f32> = (0..items).map(|_| bias.sample(&mut rng)).collect();
    let truth = Params {
        factors: k,
        user_factors: p,
        item_factors: q,
        user_bias: user_bias.clone(),
        item_bias: item_bias.clone(),
    };
    let mut all = Ratings::default();
    for _ in 0..n {
        let (u, i) = (
            rng.random_range(0..users as u32),
            rng.random_range(0..items as u32),
        );
        let clean = truth.predict(u, i, Some((0.0, 5.5)));
        let r = clean + noise.sample(&mut rng);
        all.users.push(u);
        all.items.push(i);
        all.ratings.push(r);
    }
    let n_valid = n / 5;
    let valid_idx: Vec<u32> = (0..n_valid as u32).collect();
    let train_idx: Vec<u32> = (n_valid as u32..n as u32).collect();
    // The floor on the validation part, where it is measured.
    let valid = all.select(&valid_idx);
    let valid_floor = valid_idx
        .iter()
        .map(|&j| {
            let j = j as usize;
            let clean = truth.predict(all.users[j], all.items[j], Some((0.0, 5.5)));
            ((clean - all.ratings[j]) as f64).powi(2)
        })
        .sum::<f64>()
        / n_valid as f64;
    Planted {
        train: all.select(&train_idx),
        valid,
        users,
        items,
        user_bias,
        item_bias,
        noise_floor: valid_floor,
    }
}

fn run(config: &TrainConfig, data: &Planted, threads: usize) -> TrainReport {
    let mut backend = CpuBackend::new(threads).unwrap();
    let state = train::initial_state(config, data.users, data.items);
    train::train(
        &mut backend,
        config,
        &state,
        &data.train,
        &data.valid,
        &mut |_| {},
    )
    .unwrap()
}

fn bits(params: &Params) -> Vec<Vec<u32>> {
    params
        .tensors()
        .iter()
        .map(|t| t.iter().map(|x| x.to_bits()).collect())
        .collect()
}

fn small_config(optimizer: OptimizerKind) -> TrainConfig {
    TrainConfig {
        factors: 8,
        epochs: 2,
        batch_size: 32,
        optimizer,
        schedule: match optimizer {
            OptimizerKind::AdamW => ScheduleKind::OneCycle,
            _ => ScheduleKind::Constant,
        },
        lr: match optimizer {
            OptimizerKind::AdamW => 5e-3,
            _ => 0.05,
        },
        ..TrainConfig::default()
    }
}

#[test]
fn same_seed_gives_identical_bits_and_another_seed_does_not() {
    // Big enough (U + I) * (K + 1) that the dense update spans several parallel chunks.
    let data = planted(900, 1200, 6000, 0.3, 1);
    for optimizer in [OptimizerKind::AdamW, OptimizerKind::Sgd] {
        let config = small_config(optimizer);
        let a = run(&config, &data, 2);
        let b = run(&config, &data, 2);
        assert_eq!(
            bits(&a.state.params),
            bits(&b.state.params),
            "{optimizer:?}"
        );
        assert_eq!(a.epochs[1].valid_loss, b.epochs[1].valid_loss);
        let other = run(&TrainConfig { seed: 43, ..config }, &data, 2);
        assert_ne!(
            bits(&a.state.params),
            bits(&other.state.params),
            "{optimizer:?}"
        );
    }
}

#[test]
fn one_and_two_threads_give_identical_bits() {
    let data = planted(900, 1200, 6000, 0.3, 2);
    for optimizer in [OptimizerKind::AdamW, OptimizerKind::Sgd] {
        let config = small_config(optimizer);
        let one = run(&config, &data, 1);
        let two = run(&config, &data, 2);
        let three = run(&config, &data, 3);
        assert_eq!(
            bits(&one.state.params),
            bits(&two.state.params),
            "{optimizer:?}"
        );
        assert_eq!(
            bits(&one.state.params),
            bits(&three.state.params),
            "{optimizer:?}"
        );
        let moments = |r: &TrainReport| r.state.moments.as_ref().map(|m| (bits(&m.m), bits(&m.v)));
        assert_eq!(moments(&one), moments(&two));
        let losses = |r: &TrainReport| {
            r.epochs
                .iter()
                .map(|e| (e.train_loss.to_bits(), e.valid_loss.map(f64::to_bits)))
                .collect::<Vec<_>>()
        };
        assert_eq!(losses(&one), losses(&two), "{optimizer:?}");
    }
}

/// The whole run through the reference step alone, one batch at a time on `Params`: the
/// backend's flat buffers, chunking, sparse grouping and threads must change no bit of it.
fn literal_reference(config: &TrainConfig, data: &Planted) -> (Params, Vec<f64>) {
    let mut state = train::initial_state(config, data.users, data.items);
    let per_epoch = batches_per_epoch(data.train.len(), config.batch_size, config.drop_last);
    let total = (per_epoch * config.epochs) as u64;
    let mut epoch_losses = Vec::new();
    for epoch in 0..config.epochs {
        let order = epoch_order(data.train.len(), config.seed, epoch);
        let shuffled = data.train.select(&order);
        let mut loss_sum = 0.0;
        for s in 0..per_epoch {
            let hyper = step_hyper(config, (epoch * per_epoch + s) as u64, total);
            let range = s * config.batch_size..((s + 1) * config.batch_size).min(shuffled.len());
            loss_sum += reference::train_step(
                &mut state,
                config,
                &shuffled.users[range.clone()],
                &shuffled.items[range.clone()],
                &shuffled.ratings[range],
                &hyper,
            ) as f64;
        }
        epoch_losses.push(loss_sum / per_epoch as f64);
    }
    (state.params, epoch_losses)
}

/// Trains `config` on `data` with each thread count and asserts that the parameters and the epoch
/// losses are, bit for bit, those of the literal composition of the reference kernels.
fn assert_matches_reference(config: &TrainConfig, data: &Planted, threads: &[usize]) -> Params {
    let (expected, losses) = literal_reference(config, data);
    for &threads in threads {
        let report = run(config, data, threads);
        let what = format!("{threads} threads, y-range {:?}", config.y_range);
        assert_eq!(bits(&report.state.params), bits(&expected), "{what}");
        let got: Vec<f64> = report.epochs.iter().map(|e| e.train_loss).collect();
        assert_eq!(got, losses, "{what}");
    }
    expected
}

#[test]
fn backend_matches_a_literal_composition_of_the_reference_kernels_bit_for_bit() {
    let data = planted(300, 500, 3000, 0.3, 3);
    let config = small_config(OptimizerKind::AdamW);
    assert_matches_reference(&config, &data, &[1, 2]);
}

#[test]
fn sgd_matches_a_literal_composition_of_the_reference_kernels_bit_for_bit() {
    let data = planted(300, 500, 3000, 0.3, 3);
    let config = small_config(OptimizerKind::Sgd);
    assert_matches_reference(&config, &data, &[1, 2]);
}

/// Batches of 1,024 and more take the parallel sparse path (chunks of users, then chunks of items);
/// the short last batch (kept here: 32,000 training ratings = 5 x 6,200 + 1,000) takes the
/// one-thread path with its own `B`.
/// Few users and items, so rows repeat many times within a batch and the per-row order matters.
#[test]
fn large_batch_sgd_matches_the_reference_on_any_thread_count() {
    let data = planted(300, 70, 40_000, 0.3, 8);
    for y_range in [Some((0.0, 5.5)), None] {
        let config = TrainConfig {
            factors: 12,
            epochs: 2,
            batch_size: 6200,
            optimizer: OptimizerKind::Sgd,
            schedule: ScheduleKind::Constant,
            lr: 30.0,
            wd: 0.01,
            drop_last: false,
            y_range,
            ..TrainConfig::default()
        };
        let expected = assert_matches_reference(&config, &data, &[1, 2, 3]);
        let start = train::initial_state(&config, data.users, data.items);
        assert_ne!(
            bits(&expected),
            bits(&start.params),
            "the run must move the parameters"
        );
    }
}

/// Many users and items, so that the sparse path splits each batch into many chunks of users and
/// of items that different threads take, with `K = 16` (whole 8-wide blocks, no tail) and most
/// rows occurring once or twice per batch, as on the large data sets.
#[test]
fn sparse_sgd_over_many_chunks_matches_the_reference() {
    let data = planted(6000, 1500, 60_000, 0.3, 9);
    let config = TrainConfig {
        factors: 16,
        epochs: 2,
        batch_size: 16_384,
        optimizer: OptimizerKind::Sgd,
        schedule: ScheduleKind::Constant,
        lr: 100.0,
        wd: 0.01,
        ..TrainConfig::default()
    };
    assert_matches_reference(&config, &data, &[1, 2, 3]);
}

#[test]
fn sgd_leaves_rows_outside_every_batch_untouched() {
    // Users 40.. and items 40.. never occur in the training ratings.
    let mut data = planted(40, 40, 2000, 0.3, 4);
    data.users = 60;
    data.items = 60;
    let config = small_config(OptimizerKind::Sgd);
    let start = train::initial_state(&config, 60, 60);
    let report = run(&config, &data, 2);
    let (k, p0, p1) = (config.factors, &start.params, &report.state.params);
    assert_eq!(p1.user_factors[40 * k..], p0.user_factors[40 * k..]);
    assert_eq!(p1.item_bias[40..], p0.item_bias[40..]);
    assert_ne!(p1.user_factors[..40 * k], p0.user_factors[..40 * k]);
    assert!(report.state.moments.is_none());
}

#[test]
fn divergence_stops_with_the_epoch_and_step() {
    let data = planted(50, 50, 2000, 0.3, 5);
    let config = TrainConfig {
        factors: 4,
        batch_size: 16,
        optimizer: OptimizerKind::Sgd,
        schedule: ScheduleKind::Constant,
        lr: 1e30,
        y_range: None,
        ..TrainConfig::default()
    };
    let mut backend = CpuBackend::new(1).unwrap();
    let state = train::initial_state(&config, 50, 50);
    let err = train::train(
        &mut backend,
        &config,
        &state,
        &data.train,
        &data.valid,
        &mut |_| {},
    )
    .unwrap_err();
    match err {
        TrainError::NonFinite { epoch, step, .. } => {
            assert_eq!(epoch, 0);
            assert!(step < 100, "step {step}");
            assert!(err.to_string().contains("--lr"), "{err}");
        }
        other => panic!("expected NonFinite, got {other}"),
    }
}

#[test]
fn observer_sees_every_epoch_and_progress_and_losses_fall() {
    let data = planted(100, 100, 4000, 0.3, 6);
    let config = TrainConfig {
        factors: 8,
        epochs: 3,
        ..TrainConfig::default()
    };
    let mut backend = CpuBackend::new(2).unwrap();
    let state = train::initial_state(&config, data.users, data.items);
    let (mut epochs, mut batches) = (Vec::new(), 0);
    let report = train::train(
        &mut backend,
        &config,
        &state,
        &data.train,
        &data.valid,
        &mut |p| match p {
            Progress::Epoch(e) => epochs.push(e.epoch),
            Progress::Batches { done, total, .. } => {
                assert!(done <= total);
                batches += 1;
            }
        },
    )
    .unwrap();
    assert_eq!(epochs, vec![0, 1, 2]);
    assert!(batches >= 3);
    assert_eq!(report.ratings_trained, 3 * (3200 / 64 * 64) as u64);
    let first = report.epochs[0].valid_loss.unwrap();
    let last = report.final_valid_loss().unwrap();
    assert!(last < first, "valid loss {first} -> {last}");
}

#[test]
fn learns_a_planted_model_down_to_the_noise_floor() {
    // 200 users, 300 items, 100,000 noisy ratings of a planted K = 4 model (noise std 0.5): about
    // 400 ratings per user, so estimation error stays well under the 10% allowed.
    let data = planted(200, 300, 100_000, 0.5, 7);
    let config = TrainConfig {
        factors: 4,
        epochs: 10,
        lr: 1e-2,
        wd: 0.01,
        ..TrainConfig::default()
    };
    let report = run(&config, &data, 2);
    let valid = report.final_valid_loss().unwrap();
    assert!(
        valid <= 1.10 * data.noise_floor,
        "valid MSE {valid} is not within 10% of the noise floor {}",
        data.noise_floor
    );
    let params = &report.state.params;
    let user_corr = correlation(&params.user_bias, &data.user_bias);
    let item_corr = correlation(&params.item_bias, &data.item_bias);
    eprintln!(
        "planted: valid MSE {valid:.4}, noise floor {:.4}, bias correlations user {user_corr:.3} item {item_corr:.3}",
        data.noise_floor
    );
    assert!(user_corr > 0.8, "user bias correlation {user_corr}");
    assert!(item_corr > 0.8, "item bias correlation {item_corr}");
}

/// A saved model's `predict` and the trainer's validation loss must be the same numbers: the
/// evaluation (eight dot products at a time, chunked sums) and `Params::predict` add the biases
/// in the training kernels' order, so within one chunk the sums agree to the bit.
#[test]
fn evaluation_equals_summed_predictions_bit_for_bit() {
    let data = planted(60, 50, 3_000, 0.3, 11);
    let config = small_config(OptimizerKind::AdamW);
    let report = run(&config, &data, 2);
    let params = &report.state.params;
    let valid = &data.valid;
    assert!(valid.len() < collabgpu::cpu::backend::EVAL_CHUNK);
    let mut host = 0.0f64;
    for n in 0..valid.len() {
        let pred = params.predict(valid.users[n], valid.items[n], config.y_range);
        let err = pred - valid.ratings[n];
        host += err as f64 * err as f64;
    }
    let valid_loss = report.final_valid_loss().unwrap();
    assert_eq!(valid_loss, host / valid.len() as f64);
}
