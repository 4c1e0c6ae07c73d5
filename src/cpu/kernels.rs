//! The reference kernels: one plain function per operation, in the order a training step runs
//! them. Each has a WGSL twin of the same name in `shaders/`, and the GPU tests compare the two.
//!
//! Loops run in index order so that results are bit-for-bit reproducible. `B` is the batch length
//! (the length of `indices`/`x`), `K` the number of factors.

use crate::model::{apply_y_range, sigmoid};
use crate::train::StepHyper;

/// Embedding gather: row `b` of `out` (`B x K`) is row `indices[b]` of `table`.
pub fn gather(table: &[f32], k: usize, indices: &[u32], out: &mut [f32]) {
    for (b, &row) in indices.iter().enumerate() {
        out[b * k..(b + 1) * k].copy_from_slice(&table[row as usize * k..(row as usize + 1) * k]);
    }
}

/// Dot product of matching rows: `x[b] = sum_j a[b, j] * c[b, j]`, summed in `j` order.
pub fn dot(a: &[f32], c: &[f32], k: usize, x: &mut [f32]) {
    for (b, x_b) in x.iter_mut().enumerate() {
        let mut sum = 0.0f32;
        for j in 0..k {
            sum += a[b * k + j] * c[b * k + j];
        }
        *x_b = sum;
    }
}

/// Bias addition: `x[b] += bu[users[b]] + bi[items[b]]`.
pub fn bias_add(x: &mut [f32], user_bias: &[f32], item_bias: &[f32], users: &[u32], items: &[u32]) {
    for (b, x_b) in x.iter_mut().enumerate() {
        *x_b += user_bias[users[b] as usize] + item_bias[items[b] as usize];
    }
}

/// Sigmoid range: `pred[b] = lo + (hi - lo) * sigmoid(x[b])`, or `x[b]` without a y-range.
pub fn sigmoid_range(x: &[f32], y_range: Option<(f32, f32)>, pred: &mut [f32]) {
    for (p, &x_b) in pred.iter_mut().zip(x) {
        *p = apply_y_range(x_b, y_range);
    }
}

/// MSE gradient with respect to the raw score `x` (SPEC "Loss and gradients"):
/// `g[b] = (2/B) * (pred[b] - r[b]) * (hi - lo) * s * (1 - s)` with `s = sigmoid(x[b])`
/// (`(2/B) * (pred[b] - r[b])` without a y-range). Returns the batch loss `(1/B) sum (pred - r)^2`,
/// summed in `b` order.
pub fn mse_grad(
    x: &[f32],
    pred: &[f32],
    ratings: &[f32],
    y_range: Option<(f32, f32)>,
    g: &mut [f32],
) -> f32 {
    let scale = 2.0 / x.len() as f32;
    let mut sum_squared = 0.0f32;
    for b in 0..x.len() {
        let err = pred[b] - ratings[b];
        sum_squared += err * err;
        g[b] = match y_range {
            Some((lo, hi)) => {
                let s = sigmoid(x[b]);
                scale * err * (hi - lo) * s * (1.0 - s)
            }
            None => scale * err,
        };
    }
    sum_squared / x.len() as f32
}

/// Scatter-add of scaled rows: `grad[indices[b], j] += g[b] * rows[b, j]`, in `b` order, so a row
/// that occurs several times in the batch receives the sum. With `rows = Q[i_b]` this is `dL/dP`.
pub fn scatter_add(grad: &mut [f32], k: usize, indices: &[u32], g: &[f32], rows: &[f32]) {
    for (b, &row) in indices.iter().enumerate() {
        let target = &mut grad[row as usize * k..(row as usize + 1) * k];
        for j in 0..k {
            target[j] += g[b] * rows[b * k + j];
        }
    }
}

/// Scatter-add for a bias: `grad[indices[b]] += g[b]`, in `b` order.
pub fn scatter_add_bias(grad: &mut [f32], indices: &[u32], g: &[f32]) {
    for (b, &row) in indices.iter().enumerate() {
        grad[row as usize] += g[b];
    }
}

/// Dense AdamW step on one tensor (SPEC "Optimisers"), every entry, in this order:
/// decoupled weight decay, first moment, second moment, bias-corrected step.
pub fn adamw(param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], hyper: &StepHyper) {
    let decay = 1.0 - hyper.lr * hyper.wd;
    for n in 0..param.len() {
        let g = grad[n];
        let mut p = param[n] * decay;
        m[n] = hyper.beta1 * m[n] + (1.0 - hyper.beta1) * g;
        v[n] = hyper.beta2 * v[n] + (1.0 - hyper.beta2) * g * g;
        p -= hyper.step_size * m[n] / ((v[n] / hyper.bias_correction2).sqrt() + hyper.eps);
        param[n] = p;
    }
}

/// Sparse SGD step with lazy weight decay: only the listed rows (each once, the distinct rows of
/// the batch) move, `p = p - lr * (g + wd * p)`; every other row is untouched.
pub fn sgd(param: &mut [f32], grad: &[f32], k: usize, rows: &[u32], hyper: &StepHyper) {
    for &row in rows {
        for n in row as usize * k..(row as usize + 1) * k {
            param[n] -= hyper.lr * (grad[n] + hyper.wd * param[n]);
        }
    }
}

/// The distinct rows of a batch column with how often each occurs (`n_r`), ascending by row.
pub fn occurrences(indices: &[u32]) -> Vec<(u32, u32)> {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    let mut counts: Vec<(u32, u32)> = Vec::new();
    for row in sorted {
        match counts.last_mut() {
            Some((last, n)) if *last == row => *n += 1,
            _ => counts.push((row, 1)),
        }
    }
    counts
}

/// The factor `2 λ n_r / B` of SPEC's L2 per occurrence, computed as `((2 λ) n_r) / B` in f32;
/// every backend and path uses this one function, so the factor has the same bits everywhere.
#[inline(always)]
pub fn l2_factor(l2: f32, occurrences: u32, batch_len: usize) -> f32 {
    2.0 * l2 * occurrences as f32 / batch_len as f32
}

/// L2 per occurrence (SPEC "Scale"): `grad[r] += (2 λ n_r / B) * param[r]` for every row `r` of
/// `rows` (`(row, n_r)`, from [`occurrences`]), entry by entry; `k` entries per row. A zero `λ`
/// leaves the gradient exactly as it is.
pub fn l2_grad(
    grad: &mut [f32],
    param: &[f32],
    k: usize,
    rows: &[(u32, u32)],
    l2: f32,
    batch_len: usize,
) {
    if l2 == 0.0 {
        return;
    }
    for &(row, n) in rows {
        let factor = l2_factor(l2, n, batch_len);
        for e in row as usize * k..(row as usize + 1) * k {
            grad[e] += factor * param[e];
        }
    }
}

/// The lanes of [`sum_of_squares`]: eight, one AVX register of f32.
pub const SQUARE_LANES: usize = 8;

/// `sum_j g_j^2` in f32, in a fixed order that a CPU sums eight entries at a time: entry `j` is
/// added to lane `j % 8` (each lane in `j` order from 0), then the lanes are added pairwise,
/// `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`. One sum in `j` order would be a chain of
/// `K` dependent additions per row, which made the accumulator the slowest part of a
/// `rowwise-adagrad` step at K = 64; this order gives the same bits on every path.
#[inline(always)]
pub fn sum_of_squares(g: &[f32]) -> f32 {
    let mut lanes = [0.0f32; SQUARE_LANES];
    let mut chunks = g.chunks_exact(SQUARE_LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x * x;
        }
    }
    for (lane, &x) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += x * x;
    }
    ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
}

/// Row-wise Adagrad (SPEC "Scale"): for each listed row (each once), `k` entries wide,
/// `s_r = s_r + (sum_j g_j^2) / k` (the sum as [`sum_of_squares`] adds it, in f32), then every
/// entry `p = p - (lr * g) / (sqrt(s_r) + eps)`. `sums` holds one accumulator per row.
pub fn rowwise_adagrad(
    param: &mut [f32],
    grad: &[f32],
    sums: &mut [f32],
    k: usize,
    rows: &[u32],
    hyper: &StepHyper,
) {
    for &row in rows {
        let entries = row as usize * k..(row as usize + 1) * k;
        sums[row as usize] += sum_of_squares(&grad[entries.clone()]) / k as f32;
        let denominator = sums[row as usize].sqrt() + hyper.eps;
        for e in entries {
            param[e] -= hyper.lr * grad[e] / denominator;
        }
    }
}

/// Sparse (lazy) Adam (SPEC "Scale"): [`adamw`]'s four lines, on the entries of the listed rows
/// only (each once), `k` entries wide, with the global step's bias corrections from `hyper`.
pub fn sparse_adam(
    param: &mut [f32],
    grad: &[f32],
    (m, v): (&mut [f32], &mut [f32]),
    k: usize,
    rows: &[u32],
    hyper: &StepHyper,
) {
    let decay = 1.0 - hyper.lr * hyper.wd;
    for &row in rows {
        for n in row as usize * k..(row as usize + 1) * k {
            let g = grad[n];
            let mut p = param[n] * decay;
            m[n] = hyper.beta1 * m[n] + (1.0 - hyper.beta1) * g;
            v[n] = hyper.beta2 * v[n] + (1.0 - hyper.beta2) * g * g;
            p -= hyper.step_size * m[n] / ((v[n] / hyper.bias_correction2).sqrt() + hyper.eps);
            param[n] = p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_of_squares_adds_eight_lanes_then_pairs() {
        // Ten entries: lanes 0 and 1 take two each (j = 0, 8 and 1, 9).
        let g: Vec<f32> = (1..=10).map(|j| j as f32 * 0.1).collect();
        let sq = |j: usize| g[j] * g[j];
        let lanes: Vec<f32> = (0..8)
            .map(|l| if l < 2 { sq(l) + sq(l + 8) } else { sq(l) })
            .collect();
        let expected = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
            + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
        assert_eq!(sum_of_squares(&g).to_bits(), expected.to_bits());
        assert_eq!(sum_of_squares(&[3.0]), 9.0, "a bias is its own square");
        assert_eq!(sum_of_squares(&[]), 0.0);
    }
}
