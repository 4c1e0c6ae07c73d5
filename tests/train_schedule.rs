//! One-cycle and constant schedules against SPEC's formulas at the start, the 25% peak and the end.

use collabgpu::train::schedule::{lr_and_beta1, step_hyper};
use collabgpu::train::{OptimizerKind, ScheduleKind, TrainConfig};

fn close(name: &str, got: f64, expected: f64) {
    assert!(
        (got - expected).abs() <= 1e-12 * expected.abs().max(1.0),
        "{name}: got {got}, expected {expected}"
    );
}

#[test]
fn one_cycle_starts_at_a_25th_peaks_at_a_quarter_and_ends_near_zero() {
    let config = TrainConfig::default(); // lr_max = 5e-3
    let total = 1000;
    // The configuration holds lr_max as f32; the schedule widens it to f64.
    let lr_max = 5e-3f32 as f64;
    let (lr, beta1) = lr_and_beta1(&config, 0, total);
    close("lr at start", lr, lr_max / 25.0);
    close("beta1 at start", beta1, 0.95);

    // pos = 0.25 exactly: the second phase at f = 0, i.e. the peak.
    let (lr, beta1) = lr_and_beta1(&config, 250, total);
    close("lr at peak", lr, lr_max);
    close("beta1 at peak", beta1, 0.85);

    // Half-way up the warm-up (f = 0.5): cos(pi/2) = 0, so exactly the midpoint.
    let (lr, beta1) = lr_and_beta1(&config, 125, total);
    close("lr mid warm-up", lr, (lr_max / 25.0 + lr_max) / 2.0);
    close("beta1 mid warm-up", beta1, 0.9);

    // Last step: pos = 0.999, f = (0.999 - 0.25) / 0.75, cos_sched(lr_max, lr_max / 1e5, f): just
    // above lr_max / 1e5.
    let (lr, beta1) = lr_and_beta1(&config, total - 1, total);
    let f = (0.999 - 0.25) / 0.75;
    let expected =
        lr_max + (1.0 + (std::f64::consts::PI * (1.0 - f)).cos()) * (lr_max / 1e5 - lr_max) / 2.0;
    close("lr at end", lr, expected);
    assert!(lr < lr_max / 1e4, "lr at the end should be nearly lr_max/1e5, got {lr}");
    assert!((beta1 - 0.95).abs() < 1e-5, "beta1 at the end {beta1}");
}

#[test]
fn constant_schedule_keeps_lr_and_beta1() {
    let config = TrainConfig {
        schedule: ScheduleKind::Constant,
        lr: 0.02,
        ..TrainConfig::default()
    };
    for step in [0, 10, 999] {
        let (lr, beta1) = lr_and_beta1(&config, step, 1000);
        close("lr", lr, 0.02f32 as f64);
        close("beta1", beta1, 0.9);
    }
}

#[test]
fn step_hyper_carries_adam_bias_corrections() {
    let config = TrainConfig {
        schedule: ScheduleKind::Constant,
        ..TrainConfig::default()
    };
    let h = step_hyper(&config, 2, 100);
    assert_eq!(h.t, 3);
    assert_eq!(h.step_size, (5e-3f32 as f64 / (1.0 - 0.9f64.powi(3))) as f32);
    assert_eq!(h.bias_correction2, (1.0 - (0.99f32 as f64).powi(3)) as f32);
    let sgd = step_hyper(
        &TrainConfig {
            optimizer: OptimizerKind::Sgd,
            ..config
        },
        2,
        100,
    );
    assert_eq!(sgd.lr, 5e-3);
}
