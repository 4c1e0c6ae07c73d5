//! The reference training step: SPEC "Loss and gradients" and "Optimisers" written out once,
//! plainly, from the kernels of [`super::kernels`], one call per operation and one tensor at a
//! time, with fresh buffers every call. It is slow on purpose and is what everything else is
//! checked against: [`super::CpuBackend`]'s fast paths (flat buffers and threads for `adamw`, the
//! sparse grouped step for `sgd`) must give its bits exactly on any thread count
//! (`tests/train_cpu.rs`), and the GPU must agree with it within float tolerance
//! (`tests/gpu_trajectory.rs`).
//!
//! A step, for a batch of `B` ratings `(u_b, i_b, r_b)` and `K` factors:
//! 1. forward: gather `P[u_b]` and `Q[i_b]`, `x_b = dot + bu[u_b] + bi[i_b]`, `pred_b` through the
//!    sigmoid range, and the batch loss with `g_b = dL/dx_b`;
//! 2. backward: scatter-add `g_b * Q[i_b]` into the gradient of `P[u_b]`, `g_b * P[u_b]` into that
//!    of `Q[i_b]`, and `g_b` into both bias gradients, all at the parameters before the update;
//! 3. update: `adamw` moves every parameter; `sgd` moves only the rows of the batch, once each.

use super::kernels;
use crate::model::Params;
use crate::train::{StepHyper, TrainConfig, TrainState};

/// One optimiser step of `config`'s optimiser on the batch `(users, items, ratings)`; returns the
/// batch loss at the parameters before the step. `state.moments` is `Some` for `adamw` and `None`
/// for `sgd`.
pub fn train_step(
    state: &mut TrainState,
    config: &TrainConfig,
    users: &[u32],
    items: &[u32],
    ratings: &[f32],
    hyper: &StepHyper,
) -> f32 {
    let k = config.factors;
    let b = ratings.len();
    let params = &mut state.params;

    // 1. Forward.
    let (mut user_rows, mut item_rows) = (vec![0.0; b * k], vec![0.0; b * k]);
    kernels::gather(&params.user_factors, k, users, &mut user_rows);
    kernels::gather(&params.item_factors, k, items, &mut item_rows);
    let mut x = vec![0.0; b];
    kernels::dot(&user_rows, &item_rows, k, &mut x);
    kernels::bias_add(&mut x, &params.user_bias, &params.item_bias, users, items);
    let mut pred = vec![0.0; b];
    kernels::sigmoid_range(&x, config.y_range, &mut pred);
    let mut g = vec![0.0; b];
    let loss = kernels::mse_grad(&x, &pred, ratings, config.y_range, &mut g);

    // 2. Backward.
    let mut grads = Params::zeros(params.users(), params.items(), k);
    kernels::scatter_add(&mut grads.user_factors, k, users, &g, &item_rows);
    kernels::scatter_add(&mut grads.item_factors, k, items, &g, &user_rows);
    kernels::scatter_add_bias(&mut grads.user_bias, users, &g);
    kernels::scatter_add_bias(&mut grads.item_bias, items, &g);

    // 3. Update.
    match &mut state.moments {
        Some(moments) => {
            let tensors = params.tensors_mut();
            let (ms, vs) = (moments.m.tensors_mut(), moments.v.tensors_mut());
            for (((p, grad), m), v) in tensors.into_iter().zip(grads.tensors()).zip(ms).zip(vs) {
                kernels::adamw(p, grad, m, v, hyper);
            }
        }
        None => {
            let (du, di) = (distinct(users), distinct(items));
            kernels::sgd(&mut params.user_factors, &grads.user_factors, k, &du, hyper);
            kernels::sgd(&mut params.item_factors, &grads.item_factors, k, &di, hyper);
            kernels::sgd(&mut params.user_bias, &grads.user_bias, 1, &du, hyper);
            kernels::sgd(&mut params.item_bias, &grads.item_bias, 1, &di, hyper);
        }
    }
    loss
}

/// The distinct rows of a batch, ascending. Each row's update depends on that row alone, so any
/// order gives the same bits.
fn distinct(rows: &[u32]) -> Vec<u32> {
    let mut rows = rows.to_vec();
    rows.sort_unstable();
    rows.dedup();
    rows
}
