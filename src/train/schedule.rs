//! SPEC "Schedules": the learning rate and Adam's `beta1` for every step, computed on the host in
//! f64 and handed to the backends as f32, so that both backends see the very same scalars.

use super::config::{ScheduleKind, TrainConfig};

/// The hyperparameters of one optimiser step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepHyper {
    /// `t`, counting steps from 1 over the whole run.
    pub t: u64,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub wd: f32,
    /// `λ` of the L2 per occurrence (SPEC "Scale").
    pub l2: f32,
    /// Adam's `lr / (1 - beta1^t)`.
    pub step_size: f32,
    /// Adam's `1 - beta2^t`.
    pub bias_correction2: f32,
}

/// `cos_sched(a, b, f) = a + (1 + cos(pi * (1 - f))) * (b - a) / 2`.
pub fn cos_sched(a: f64, b: f64, f: f64) -> f64 {
    a + (1.0 + (std::f64::consts::PI * (1.0 - f)).cos()) * (b - a) / 2.0
}

/// `(lr, beta1)` at step `step` (from 0) of `total_steps`, per SPEC.
pub fn lr_and_beta1(config: &TrainConfig, step: u64, total_steps: u64) -> (f64, f64) {
    let lr_max = config.lr as f64;
    match config.schedule {
        ScheduleKind::Constant => (lr_max, 0.9),
        ScheduleKind::OneCycle => {
            let pos = step as f64 / total_steps.max(1) as f64;
            if pos < 0.25 {
                let f = pos / 0.25;
                (
                    cos_sched(lr_max / 25.0, lr_max, f),
                    cos_sched(0.95, 0.85, f),
                )
            } else {
                let f = (pos - 0.25) / 0.75;
                (cos_sched(lr_max, lr_max / 1e5, f), cos_sched(0.85, 0.95, f))
            }
        }
    }
}

/// The full hyperparameters of step `step` (from 0) of `total_steps`.
pub fn step_hyper(config: &TrainConfig, step: u64, total_steps: u64) -> StepHyper {
    let (lr, beta1) = lr_and_beta1(config, step, total_steps);
    let t = step + 1;
    let beta2 = config.beta2 as f64;
    let (step_size, bias_correction2) = match config.optimizer.has_moments() {
        true => (
            lr / (1.0 - beta1.powi(t as i32)),
            1.0 - beta2.powi(t as i32),
        ),
        false => (lr, 1.0),
    };
    StepHyper {
        t,
        lr: lr as f32,
        beta1: beta1 as f32,
        beta2: config.beta2,
        eps: config.eps,
        wd: config.wd,
        l2: config.l2,
        step_size: step_size as f32,
        bias_correction2: bias_correction2 as f32,
    }
}
