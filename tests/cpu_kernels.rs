//! The reference kernels against numbers computed by hand (in f64, from SPEC's formulas), and the
//! analytic gradient against a finite-difference gradient of an f64 loss.

use collabgpu::cpu::backend::adamw_slices;
use collabgpu::cpu::kernels;
use collabgpu::train::StepHyper;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Asserts `actual` matches `expected` within `abs + rel * |expected|`, naming the tensor and
/// printing the first mismatches and the largest difference.
fn assert_close(name: &str, actual: &[f32], expected: &[f64], abs: f64, rel: f64) {
    assert_eq!(actual.len(), expected.len(), "{name}: length");
    let mut worst = (0.0f64, 0usize);
    let mut bad = Vec::new();
    for (n, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let diff = (a as f64 - e).abs();
        if diff > worst.0 {
            worst = (diff, n);
        }
        if diff > abs + rel * e.abs() {
            bad.push(format!("[{n}] got {a}, expected {e}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: {} mismatches, first: {:?}; largest difference {} at [{}]",
        bad.len(),
        &bad[..bad.len().min(5)],
        worst.0,
        worst.1
    );
}

/// The tiny model of the hand computation: K = 2, U = 2, I = 2.
struct Tiny {
    p: Vec<f32>,
    q: Vec<f32>,
    bu: Vec<f32>,
    bi: Vec<f32>,
}

fn tiny() -> Tiny {
    Tiny {
        p: vec![0.1, 0.2, 0.3, -0.1],
        q: vec![0.5, -0.2, 0.1, 0.4],
        bu: vec![0.05, -0.05],
        bi: vec![0.1, 0.0],
    }
}

/// Forward, loss and every gradient of one batch, composed from the kernels as a step does.
struct Pass {
    x: Vec<f32>,
    pred: Vec<f32>,
    loss: f32,
    g: Vec<f32>,
    grad_p: Vec<f32>,
    grad_q: Vec<f32>,
    grad_bu: Vec<f32>,
    grad_bi: Vec<f32>,
}

#[allow(clippy::too_many_arguments)]
fn pass(
    p: &[f32],
    q: &[f32],
    bu: &[f32],
    bi: &[f32],
    k: usize,
    users: &[u32],
    items: &[u32],
    ratings: &[f32],
    y_range: Option<(f32, f32)>,
) -> Pass {
    let b = users.len();
    let (mut pu, mut qi) = (vec![0.0; b * k], vec![0.0; b * k]);
    kernels::gather(p, k, users, &mut pu);
    kernels::gather(q, k, items, &mut qi);
    let mut x = vec![0.0; b];
    kernels::dot(&pu, &qi, k, &mut x);
    kernels::bias_add(&mut x, bu, bi, users, items);
    let mut pred = vec![0.0; b];
    kernels::sigmoid_range(&x, y_range, &mut pred);
    let mut g = vec![0.0; b];
    let loss = kernels::mse_grad(&x, &pred, ratings, y_range, &mut g);
    let (mut grad_p, mut grad_q) = (vec![0.0; p.len()], vec![0.0; q.len()]);
    let (mut grad_bu, mut grad_bi) = (vec![0.0; bu.len()], vec![0.0; bi.len()]);
    kernels::scatter_add(&mut grad_p, k, users, &g, &qi);
    kernels::scatter_add(&mut grad_q, k, items, &g, &pu);
    kernels::scatter_add_bias(&mut grad_bu, users, &g);
    kernels::scatter_add_bias(&mut grad_bi, items, &g);
    Pass {
        x,
        pred,
        loss,
        g,
        grad_p,
        grad_q,
        grad_bu,
        grad_bi,
    }
}

#[test]
fn forward_and_gradients_match_hand_computation_with_a_repeated_user() {
    let t = tiny();
    // User 0 occurs twice and item 0 twice: their gradients are sums.
    let (users, items, ratings) = ([0u32, 1, 0], [1u32, 0, 0], [4.0f32, 2.0, 3.0]);
    let out = pass(
        &t.p,
        &t.q,
        &t.bu,
        &t.bi,
        2,
        &users,
        &items,
        &ratings,
        Some((0.0, 5.5)),
    );
    // x(0,1) = 0.1*0.1 + 0.2*0.4 + 0.05 + 0.0 = 0.14, and so on.
    assert_close("x", &out.x, &[0.14, 0.22, 0.16], 1e-6, 0.0);
    assert_close(
        "pred",
        &out.pred,
        &[2.94218619837018, 3.0512857930896815, 2.969531865055611],
        1e-5,
        1e-6,
    );
    assert_close("loss", &[out.loss], &[0.7417000549725743], 1e-6, 1e-6);
    assert_close(
        "g",
        &out.g,
        &[
            -0.9649267825814511,
            0.9521115526309097,
            -0.027751137201932195,
        ],
        1e-6,
        1e-5,
    );
    assert_close(
        "dL/dP",
        &out.grad_p,
        &[
            -0.11036824685911122,
            -0.38042048559219405,
            0.47605577631545487,
            -0.19042231052618197,
        ],
        1e-6,
        1e-5,
    );
    assert_close(
        "dL/dQ",
        &out.grad_q,
        &[
            0.28285835206907967,
            -0.10076138270347743,
            -0.09649267825814511,
            -0.19298535651629023,
        ],
        1e-6,
        1e-5,
    );
    assert_close(
        "dL/dbu",
        &out.grad_bu,
        &[-0.9926779197833834, 0.9521115526309097],
        1e-6,
        1e-5,
    );
    assert_close(
        "dL/dbi",
        &out.grad_bi,
        &[0.9243604154289775, -0.9649267825814511],
        1e-6,
        1e-5,
    );
}

#[test]
fn without_y_range_the_prediction_is_the_raw_score() {
    let t = tiny();
    let out = pass(&t.p, &t.q, &t.bu, &t.bi, 2, &[0], &[1], &[1.0], None);
    assert_close("pred", &out.pred, &[0.14], 1e-6, 0.0);
    // (0.14 - 1)^2 and g = 2 * (0.14 - 1).
    assert_close("loss", &[out.loss], &[0.7396], 1e-6, 0.0);
    assert_close("g", &out.g, &[-1.72], 1e-6, 0.0);
}

/// The batch loss in f64 at the given parameters, straight from SPEC's formulas.
#[allow(clippy::too_many_arguments)]
fn loss_f64(
    p: &[f64],
    q: &[f64],
    bu: &[f64],
    bi: &[f64],
    k: usize,
    users: &[u32],
    items: &[u32],
    ratings: &[f32],
    (lo, hi): (f64, f64),
) -> f64 {
    let mut sum = 0.0;
    for b in 0..users.len() {
        let (u, i) = (users[b] as usize, items[b] as usize);
        let mut x = bu[u] + bi[i];
        for j in 0..k {
            x += p[u * k + j] * q[i * k + j];
        }
        let pred = lo + (hi - lo) / (1.0 + (-x).exp());
        sum += (pred - ratings[b] as f64).powi(2);
    }
    sum / users.len() as f64
}

#[test]
fn analytic_gradient_matches_finite_differences_on_a_random_model() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (u, i, k, b) = (5, 4, 3, 12);
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-0.6..0.6)).collect() };
    let (p, q, bu, bi) = (draw(u * k), draw(i * k), draw(u), draw(i));
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    // Twelve ratings over five users and four items: rows repeat.
    let users: Vec<u32> = (0..b).map(|_| rng.random_range(0..u as u32)).collect();
    let items: Vec<u32> = (0..b).map(|_| rng.random_range(0..i as u32)).collect();
    let ratings: Vec<f32> = (0..b).map(|_| rng.random_range(1..=5) as f32).collect();
    let y_range = (0.0f32, 5.5f32);
    let out = pass(&p, &q, &bu, &bi, k, &users, &items, &ratings, Some(y_range));

    let wide = |v: &[f32]| -> Vec<f64> { v.iter().map(|&x| x as f64).collect() };
    let tensors = [wide(&p), wide(&q), wide(&bu), wide(&bi)];
    let analytic = [&out.grad_p, &out.grad_q, &out.grad_bu, &out.grad_bi];
    let names = ["dL/dP", "dL/dQ", "dL/dbu", "dL/dbi"];
    let h = 1e-6;
    for t in 0..4 {
        let mut numeric = Vec::new();
        for n in 0..tensors[t].len() {
            let at = |delta: f64| {
                let mut moved = tensors.clone();
                moved[t][n] += delta;
                loss_f64(
                    &moved[0],
                    &moved[1],
                    &moved[2],
                    &moved[3],
                    k,
                    &users,
                    &items,
                    &ratings,
                    (y_range.0 as f64, y_range.1 as f64),
                )
            };
            numeric.push((at(h) - at(-h)) / (2.0 * h));
        }
        assert!(
            numeric.iter().any(|g| g.abs() > 1e-2),
            "{}: gradient too small to test",
            names[t]
        );
        assert_close(names[t], analytic[t], &numeric, 2e-5, 1e-3);
    }
}

fn hyper(t: u64, lr: f32, beta1: f32, wd: f32) -> StepHyper {
    StepHyper {
        t,
        lr,
        beta1,
        beta2: 0.99,
        eps: 1e-5,
        wd,
        l2: 0.0,
        step_size: (lr as f64 / (1.0 - (beta1 as f64).powi(t as i32))) as f32,
        bias_correction2: (1.0 - 0.99f64.powi(t as i32)) as f32,
    }
}

#[test]
fn one_adamw_step_matches_hand_computation() {
    // Second step (t = 2) from non-zero moments; the middle entry has no gradient but still moves
    // (dense AdamW), the last starts at zero and moves by its momentum alone.
    let mut param = vec![0.3f32, -0.2, 0.0];
    let grad = [0.5f32, 0.0, -1.0];
    let mut m = vec![0.05f32, 0.1, 0.0];
    let mut v = vec![0.002f32, 0.01, 0.0];
    let h = hyper(2, 0.01, 0.9, 0.1);
    kernels::adamw(&mut param, &grad, &mut m, &mut v, &h);
    assert_close("m", &m, &[0.095, 0.09, -0.1], 1e-7, 1e-6);
    assert_close("v", &v, &[0.00448, 0.0099, 0.01], 1e-8, 1e-5);
    assert_close(
        "param",
        &param,
        &[
            0.2891622380765187,
            -0.20651570625893248,
            0.007424493148670048,
        ],
        1e-6,
        1e-5,
    );
}

#[test]
fn one_sgd_step_moves_only_the_listed_rows() {
    let mut param = vec![0.1f32, 0.2, 0.3, -0.1];
    let grad = [0.5f32, 0.5, -1.0, 2.0];
    kernels::sgd(&mut param, &grad, 2, &[1], &hyper(1, 0.1, 0.9, 0.01));
    // Row 0 has a gradient but is not in the batch: untouched, no weight decay (lazy).
    assert_eq!(&param[..2], &[0.1, 0.2]);
    assert_close("param", &param[2..], &[0.3997, -0.2999], 1e-7, 1e-6);
}

#[test]
fn fast_adamw_is_bit_identical_to_the_reference_kernel() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // An odd length crosses every vector width; zeros in the gradient are the common case.
    let n = 1003;
    let param: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let grad: Vec<f32> = (0..n)
        .map(|j| {
            if j % 3 == 0 {
                0.0
            } else {
                rng.random_range(-2.0..2.0)
            }
        })
        .collect();
    let m: Vec<f32> = (0..n).map(|_| rng.random_range(-0.1..0.1)).collect();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(0.0..0.1)).collect();
    let h = hyper(17, 3e-3, 0.87, 0.1);
    let (mut p_ref, mut m_ref, mut v_ref) = (param.clone(), m.clone(), v.clone());
    kernels::adamw(&mut p_ref, &grad, &mut m_ref, &mut v_ref, &h);
    for use_avx2 in [false, true] {
        let (mut p, mut m, mut v) = (param.clone(), m.clone(), v.clone());
        adamw_slices(&mut p, &grad, &mut m, &mut v, &h, use_avx2 && avx2());
        let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p), bits(&p_ref), "param (avx2 {use_avx2})");
        assert_eq!(bits(&m), bits(&m_ref), "m (avx2 {use_avx2})");
        assert_eq!(bits(&v), bits(&v_ref), "v (avx2 {use_avx2})");
    }
}

fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
