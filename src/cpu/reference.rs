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
//! 3. L2 per occurrence (SPEC "Scale", when `--l2` is not 0): `(2 λ n_r / B) p_r` added to the
//!    gradient of every row `r` of the batch, at the parameters before the update;
//! 4. update: `adamw` moves every parameter; `sgd`, `rowwise-adagrad` and `sparse-adam` move only
//!    the rows of the batch, once each.

use super::kernels;
use crate::model::Params;
use crate::train::{OptimizerKind, StepHyper, TrainConfig, TrainState};

/// One optimiser step of `config`'s optimiser on the batch `(users, items, ratings)`; returns the
/// batch loss at the parameters before the step. `state.moments` is `Some` for `adamw` and
/// `sparse-adam`, `state.row_sums` for `rowwise-adagrad`.
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

    // 3. L2 per occurrence.
    let (user_counts, item_counts) = (kernels::occurrences(users), kernels::occurrences(items));
    let l2 = hyper.l2;
    kernels::l2_grad(
        &mut grads.user_factors,
        &params.user_factors,
        k,
        &user_counts,
        l2,
        b,
    );
    kernels::l2_grad(
        &mut grads.item_factors,
        &params.item_factors,
        k,
        &item_counts,
        l2,
        b,
    );
    kernels::l2_grad(
        &mut grads.user_bias,
        &params.user_bias,
        1,
        &user_counts,
        l2,
        b,
    );
    kernels::l2_grad(
        &mut grads.item_bias,
        &params.item_bias,
        1,
        &item_counts,
        l2,
        b,
    );

    // 4. Update. Each row's update depends on that row alone, so the order of the distinct rows
    // does not change a bit.
    let du: Vec<u32> = user_counts.iter().map(|&(row, _)| row).collect();
    let di: Vec<u32> = item_counts.iter().map(|&(row, _)| row).collect();
    // Per tensor: its width and its distinct rows.
    let widths_and_rows = [(k, &du), (k, &di), (1, &du), (1, &di)];
    let tensors = params.tensors_mut();
    match config.optimizer {
        OptimizerKind::AdamW => {
            let moments = state.moments.as_mut().expect("adamw carries moments");
            let (ms, vs) = (moments.m.tensors_mut(), moments.v.tensors_mut());
            for (((p, grad), m), v) in tensors.into_iter().zip(grads.tensors()).zip(ms).zip(vs) {
                kernels::adamw(p, grad, m, v, hyper);
            }
        }
        OptimizerKind::Sgd => {
            for ((p, grad), (width, rows)) in tensors
                .into_iter()
                .zip(grads.tensors())
                .zip(widths_and_rows)
            {
                kernels::sgd(p, grad, width, rows, hyper);
            }
        }
        OptimizerKind::RowwiseAdagrad => {
            let sums = state
                .row_sums
                .as_mut()
                .expect("rowwise-adagrad carries row sums");
            let all = tensors
                .into_iter()
                .zip(grads.tensors())
                .zip(sums.tensors_mut());
            for (((p, grad), s), (width, rows)) in all.zip(widths_and_rows) {
                kernels::rowwise_adagrad(p, grad, s, width, rows, hyper);
            }
        }
        OptimizerKind::SparseAdam => {
            let moments = state.moments.as_mut().expect("sparse-adam carries moments");
            let (ms, vs) = (moments.m.tensors_mut(), moments.v.tensors_mut());
            let all = tensors
                .into_iter()
                .zip(grads.tensors())
                .zip(ms.into_iter().zip(vs));
            for (((p, grad), (m, v)), (width, rows)) in all.zip(widths_and_rows) {
                kernels::sparse_adam(p, grad, (m, v), width, rows, hyper);
            }
        }
    }
    loss
}
