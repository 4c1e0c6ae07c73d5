//! Each WGSL kernel against its CPU twin of the same name (`collabgpu::cpu::kernels`), on seeded
//! random inputs at batch sizes 3, one more than a workgroup (65) and a large odd size (1001),
//! where one user and one item occur 64 times in the batch (the scatter-add race). The fused
//! kernels (`forward_backward`, `adamw_vec4`, and `sgd_apply`, `sgd_apply_vec4`, `rowwise_adagrad_apply`,
//! `sparse_adam_apply` on `forward_backward`'s claims) are checked against the composition of
//! the same CPU twins. `forward_backward` is checked on both of its paths (a subgroup per rating
//! where the adapter has `SUBGROUP`, one thread per rating) and, on the subgroup path, at K below,
//! at and above the subgroup size and at K no multiple of it. The sorted-batch gradients
//! (`segment_g`, `segment_sums`, measured against `forward_backward` in benches/kernels.rs) are
//! checked against the same composition, and for the same bits on every run.

mod support;

use std::sync::{Arc, OnceLock};

use collabgpu::cpu::kernels as cpu;
use collabgpu::gpu::buffers::{HarnessInputs, KernelHarness};
use collabgpu::gpu::kernels::{Kernel, Kernels};
use collabgpu::gpu::layout::{
    EVAL_WORKGROUPS, REDUCTION_WORKGROUP, StepUniform, Triple, WORKGROUP, pack_triples, padded_len,
    row_sorted_triples,
};
use collabgpu::gpu::queue::LossLayout;
use collabgpu::gpu::{Device, GpuBackend, GpuOptions};
use collabgpu::train::StepHyper;
use support::{assert_close, gpu_device, random_f32, random_indices_with_repeats};

const K: usize = 5;
const Y_RANGE: Option<(f32, f32)> = Some((0.0, 5.5));

/// The device with both scatter-add paths compiled: `(device, default kernels, CAS kernels)`.
fn setup() -> Option<(Arc<Device>, &'static Kernels, &'static Kernels)> {
    let (device, [native, cas, _, _]) = setup_paths()?;
    Some((device, native, cas))
}

/// The device with every path compiled: the default kernels, the CAS ones, and both again with
/// `forward_backward` one thread per rating.
fn setup_paths() -> Option<(Arc<Device>, [&'static Kernels; 4])> {
    static KERNELS: OnceLock<[Kernels; 4]> = OnceLock::new();
    let device = gpu_device()?;
    let kernels = KERNELS.get_or_init(|| {
        [(false, false), (true, false), (false, true), (true, true)].map(
            |(force_cas_atomics, thread_per_rating)| {
                let options = GpuOptions {
                    force_cas_atomics,
                    thread_per_rating,
                    ..GpuOptions::default()
                };
                Kernels::new(&device, &options)
            },
        )
    });
    Some((device, kernels.each_ref()))
}

/// A random problem of batch size `b`: parameters, a batch with repeated rows, filled scratch.
struct Case {
    users: usize,
    items: usize,
    b: usize,
    /// K; [`K`] but for the `forward_backward` cases that vary it.
    k: usize,
    params: Vec<f32>,
    batch_users: Vec<u32>,
    batch_items: Vec<u32>,
    ratings: Vec<f32>,
    step: StepUniform,
}

impl Case {
    fn new(b: usize, seed: u64) -> Case {
        Case::with_factors(b, K, seed)
    }

    fn with_factors(b: usize, k: usize, seed: u64) -> Case {
        let (users, items) = (b / 4 + 3, b / 3 + 5);
        let params = random_f32((users + items) * (k + 1), -0.5, 0.5, seed);
        let batch_users = random_indices_with_repeats(b, users as u32, seed + 1);
        let batch_items = random_indices_with_repeats(b, items as u32, seed + 2);
        let ratings = random_f32(b, 0.5, 5.0, seed + 3);
        let shape = StepUniform::shape(users, items, k, Y_RANGE, b);
        let hyper = hyper();
        let step = shape.with_batch(0, b, 0, &hyper);
        Case {
            users,
            items,
            b,
            k,
            params,
            batch_users,
            batch_items,
            ratings,
            step,
        }
    }

    fn triples(&self) -> Vec<Triple> {
        pack_triples(&self.batch_users, &self.batch_items, &self.ratings)
    }

    /// `(P, Q, bu, bi)` slices of a flat parameter-shaped vector.
    fn split<'a>(&self, flat: &'a [f32]) -> (&'a [f32], &'a [f32], &'a [f32], &'a [f32]) {
        let (p, rest) = flat.split_at(self.users * self.k);
        let (q, rest) = rest.split_at(self.items * self.k);
        let (bu, bi) = rest.split_at(self.users);
        (p, q, bu, bi)
    }

    fn inputs(&self, scratch: Vec<f32>) -> HarnessInputs {
        let n = self.params.len();
        HarnessInputs {
            params: self.params.clone(),
            grads: vec![0.0; n],
            first_moment: vec![0.0; n],
            second_moment: vec![0.0; n],
            triples: self.triples(),
            scratch,
            losses: vec![0.0; 4],
            claims: vec![u32::MAX; self.users + self.items],
            counts: vec![0; self.users + self.items],
        }
    }

    fn scratch_region(&self, scratch: &[f32], region: usize) -> Vec<f32> {
        let (c, b) = (self.b, self.b);
        // shaders/common.wgsl: x, pred, g, sq, then pu, qi.
        let start = match region {
            0 => 4 * c,         // pu
            1 => 4 * c + c * K, // qi
            r => (r - 2) * c,   // x, pred, g, sq
        };
        let len = if region < 2 { b * K } else { b };
        scratch[start..start + len].to_vec()
    }
}

fn hyper() -> StepHyper {
    StepHyper {
        t: 3,
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-5,
        wd: 0.1,
        l2: 0.0,
        step_size: 0.01 / (1.0 - 0.9f32.powi(3)),
        bias_correction2: 1.0 - 0.99f32.powi(3),
    }
}

fn random_scratch(case: &Case, seed: u64) -> Vec<f32> {
    random_f32(case.step.scratch_len(), -1.0, 1.0, seed)
}

fn check_gather(b: usize) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    let case = Case::new(b, 10);
    let harness = KernelHarness::new(&device, &case.inputs(vec![0.0; case.step.scratch_len()]));
    harness
        .run(&device, kernels, &[Kernel::Gather], &case.step)
        .unwrap();
    let scratch = harness.read_scratch(&device).unwrap();
    let (p, q, _, _) = case.split(&case.params);
    let mut pu = vec![0.0; b * K];
    let mut qi = vec![0.0; b * K];
    cpu::gather(p, K, &case.batch_users, &mut pu);
    cpu::gather(q, K, &case.batch_items, &mut qi);
    assert_close(
        "pu (gathered P rows)",
        &case.scratch_region(&scratch, 0),
        &pu,
        0.0,
        0.0,
    );
    assert_close(
        "qi (gathered Q rows)",
        &case.scratch_region(&scratch, 1),
        &qi,
        0.0,
        0.0,
    );
}

fn check_dot(b: usize) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    let case = Case::new(b, 20);
    let scratch = random_scratch(&case, 21);
    let harness = KernelHarness::new(&device, &case.inputs(scratch.clone()));
    harness
        .run(&device, kernels, &[Kernel::Dot], &case.step)
        .unwrap();
    let got = harness.read_scratch(&device).unwrap();
    let mut x = vec![0.0; b];
    cpu::dot(
        &case.scratch_region(&scratch, 0),
        &case.scratch_region(&scratch, 1),
        K,
        &mut x,
    );
    assert_close("x (dot)", &case.scratch_region(&got, 2), &x, 1e-6, 1e-5);
}

fn check_bias_add(b: usize) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    let case = Case::new(b, 30);
    let scratch = random_scratch(&case, 31);
    let harness = KernelHarness::new(&device, &case.inputs(scratch.clone()));
    harness
        .run(&device, kernels, &[Kernel::BiasAdd], &case.step)
        .unwrap();
    let got = harness.read_scratch(&device).unwrap();
    let mut x = case.scratch_region(&scratch, 2);
    let (_, _, bu, bi) = case.split(&case.params);
    cpu::bias_add(&mut x, bu, bi, &case.batch_users, &case.batch_items);
    assert_close(
        "x (bias_add)",
        &case.scratch_region(&got, 2),
        &x,
        1e-6,
        1e-6,
    );
}

fn check_sigmoid_range(b: usize) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    for y_range in [Y_RANGE, None] {
        let mut case = Case::new(b, 40);
        case.step =
            StepUniform::shape(case.users, case.items, K, y_range, b).with_batch(0, b, 0, &hyper());
        let scratch = random_f32(case.step.scratch_len(), -4.0, 4.0, 41);
        let harness = KernelHarness::new(&device, &case.inputs(scratch.clone()));
        harness
            .run(&device, kernels, &[Kernel::SigmoidRange], &case.step)
            .unwrap();
        let got = harness.read_scratch(&device).unwrap();
        let mut pred = vec![0.0; b];
        cpu::sigmoid_range(&case.scratch_region(&scratch, 2), y_range, &mut pred);
        assert_close(
            &format!("pred (sigmoid_range {y_range:?})"),
            &case.scratch_region(&got, 3),
            &pred,
            1e-6,
            1e-5,
        );
    }
}

fn check_mse_grad(b: usize) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    for y_range in [Y_RANGE, None] {
        let mut case = Case::new(b, 50);
        case.step =
            StepUniform::shape(case.users, case.items, K, y_range, b).with_batch(0, b, 0, &hyper());
        let mut scratch = random_f32(case.step.scratch_len(), -2.0, 2.0, 51);
        // pred must be the sigmoid range of x, as in training.
        let x = case.scratch_region(&scratch, 2);
        let mut pred = vec![0.0; b];
        cpu::sigmoid_range(&x, y_range, &mut pred);
        let pred_start = b;
        scratch[pred_start..pred_start + b].copy_from_slice(&pred);
        let harness = KernelHarness::new(&device, &case.inputs(scratch.clone()));
        harness
            .run(
                &device,
                kernels,
                &[Kernel::MseGrad, Kernel::BatchLoss],
                &case.step,
            )
            .unwrap();
        let got = harness.read_scratch(&device).unwrap();
        let mut g = vec![0.0; b];
        let loss = cpu::mse_grad(&x, &pred, &case.ratings, y_range, &mut g);
        assert_close(
            &format!("g (mse_grad {y_range:?})"),
            &case.scratch_region(&got, 4),
            &g,
            1e-7,
            1e-5,
        );
        let losses = harness.read_losses(&device).unwrap();
        assert_close("batch loss", &losses[..1], &[loss], 1e-6, 1e-5);
    }
}

fn check_scatter_add(b: usize, cas: bool) {
    let Some((device, native, cas_kernels)) = setup() else {
        return;
    };
    let kernels = if cas { cas_kernels } else { native };
    if !cas && !kernels.float_atomics {
        eprintln!("this adapter has no SHADER_FLOAT32_ATOMIC; the native path is not tested here");
        return;
    }
    let case = Case::new(b, 60);
    let scratch = random_scratch(&case, 61);
    let mut inputs = case.inputs(scratch.clone());
    // Gradients that already hold something: the scatter-add must add to them, not overwrite.
    inputs.grads = random_f32(case.params.len(), -0.1, 0.1, 62);
    let harness = KernelHarness::new(&device, &inputs);
    harness
        .run(
            &device,
            kernels,
            &[Kernel::ScatterAdd, Kernel::ScatterAddBias],
            &case.step,
        )
        .unwrap();
    let got = harness.read_grads(&device).unwrap();
    let mut want = inputs.grads.clone();
    let (users, items) = (case.users, case.items);
    let (pu, qi, g) = (
        case.scratch_region(&scratch, 0),
        case.scratch_region(&scratch, 1),
        case.scratch_region(&scratch, 4),
    );
    {
        let (dp, rest) = want.split_at_mut(users * K);
        let (dq, rest) = rest.split_at_mut(items * K);
        let (dbu, dbi) = rest.split_at_mut(users);
        cpu::scatter_add(dp, K, &case.batch_users, &g, &qi);
        cpu::scatter_add(dq, K, &case.batch_items, &g, &pu);
        cpu::scatter_add_bias(dbu, &case.batch_users, &g);
        cpu::scatter_add_bias(dbi, &case.batch_items, &g);
    }
    let path = if cas { "cas" } else { "float-atomic" };
    let (gp, gq, gbu, gbi) = case.split(&got);
    let (wp, wq, wbu, wbi) = case.split(&want);
    // Up to 64+ additions in another order: rounding grows with the count.
    assert_close(&format!("dL/dP (scatter_add, {path})"), gp, wp, 1e-5, 1e-4);
    assert_close(&format!("dL/dQ (scatter_add, {path})"), gq, wq, 1e-5, 1e-4);
    assert_close(
        &format!("dL/dbu (scatter_add_bias, {path})"),
        gbu,
        wbu,
        1e-5,
        1e-4,
    );
    assert_close(
        &format!("dL/dbi (scatter_add_bias, {path})"),
        gbi,
        wbi,
        1e-5,
        1e-4,
    );
}

/// `adamw` and `adamw_vec4` on the backend's layout: parameters, gradients, m and v each in a
/// buffer of its own, padded with zeros to a multiple of 4 floats. The padding must stay zero, and
/// m and v must not be mixed up (they start from different values).
fn check_adamw(b: usize, kernel: Kernel) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    let case = Case::new(b, 70);
    let n = case.params.len();
    let padded = padded_len(n);
    let pad = |mut v: Vec<f32>| {
        v.resize(padded, 0.0);
        v
    };
    let mut inputs = case.inputs(vec![0.0; case.step.scratch_len()]);
    inputs.params = pad(case.params.clone());
    inputs.grads = pad(random_f32(n, -0.2, 0.2, 71));
    let m = random_f32(n, -0.05, 0.05, 72);
    let v = random_f32(n, 0.0, 0.01, 73);
    inputs.first_moment = pad(m.clone());
    inputs.second_moment = pad(v.clone());
    let harness = KernelHarness::new(&device, &inputs);
    harness
        .run(&device, kernels, &[kernel], &case.step)
        .unwrap();
    let (mut p, mut m, mut v) = (case.params.clone(), m, v);
    cpu::adamw(&mut p, &inputs.grads[..n], &mut m, &mut v, &hyper());
    let first_moment = harness.read_first_moment(&device).unwrap();
    let second_moment = harness.read_second_moment(&device).unwrap();
    let params = harness.read_params(&device).unwrap();
    assert_close(
        &format!("params ({kernel:?})"),
        &params[..n],
        &p,
        1e-6,
        1e-5,
    );
    assert_close(
        &format!("m ({kernel:?})"),
        &first_moment[..n],
        &m,
        1e-7,
        1e-5,
    );
    assert_close(
        &format!("v ({kernel:?})"),
        &second_moment[..n],
        &v,
        1e-8,
        1e-5,
    );
    let padding = [&params[n..], &first_moment[n..], &second_moment[n..]].concat();
    assert_close(
        &format!("padding after {kernel:?}"),
        &padding,
        &vec![0.0; padding.len()],
        0.0,
        0.0,
    );
    assert_close(
        &format!("grads zeroed by {kernel:?}"),
        &harness.read_grads(&device).unwrap(),
        &vec![0.0; padded],
        0.0,
        0.0,
    );
}

/// Which vec4 groups of the flat parameters hold only rows the batch did not touch, by the slot
/// rule of shaders/adamw_vec4.wgsl (P and Q: f / K; bu and bi: f - (U + I) K); padding counts as
/// untouched.
fn untouched_vec4s(case: &Case, padded: usize) -> Vec<bool> {
    let mut touched = vec![false; case.users + case.items];
    for b in 0..case.b {
        touched[case.batch_users[b] as usize] = true;
        touched[case.users + case.batch_items[b] as usize] = true;
    }
    let factor_count = (case.users + case.items) * K;
    let slot_touched = |f: usize| {
        f < case.params.len()
            && touched[if f < factor_count {
                f / K
            } else {
                f - factor_count
            }]
    };
    (0..padded / 4)
        .map(|n| !(4 * n..4 * n + 4).any(slot_touched))
        .collect()
}

/// `adamw_vec4` on `forward_backward`'s claim tags (this batch's at `claim_base`, stale ones
/// below it): every parameter and moment still moves, and the result is the very same bits as
/// with `claim_base == 0`, where the kernel reads every gradient; and the kernel neither reads nor
/// zeroes the gradient of a vec4 that holds only untouched rows. The engine keeps those gradients
/// zero; here they hold garbage (a NaN among them), which must stay where it is and reach no
/// parameter. The batch leaves the last two users and items untouched, so such vec4s exist.
fn check_adamw_vec4_skips_untouched(b: usize) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    let mut case = Case::new(b, 75);
    let (users, items) = (case.users as u32, case.items as u32);
    case.batch_users.iter_mut().for_each(|u| *u %= users - 2);
    case.batch_items.iter_mut().for_each(|i| *i %= items - 2);
    let n = case.params.len();
    let padded = padded_len(n);
    let pad = |mut v: Vec<f32>| {
        v.resize(padded, 0.0);
        v
    };
    let untouched = untouched_vec4s(&case, padded);
    assert!(
        untouched[..n / 4].iter().any(|&u| u),
        "the case must have a vec4 of untouched rows"
    );
    // The gradients the engine would hold: nonzero only in touched vec4s.
    let mut grads = pad(random_f32(n, -0.2, 0.2, 76));
    for (vec4, &skip) in grads.chunks_mut(4).zip(&untouched) {
        if skip {
            vec4.fill(0.0);
        }
    }
    let mut inputs = case.inputs(vec![0.0; case.step.scratch_len()]);
    inputs.params = pad(case.params.clone());
    inputs.grads = grads.clone();
    let m = random_f32(n, -0.05, 0.05, 77);
    let v = random_f32(n, 0.0, 0.01, 78);
    inputs.first_moment = pad(m.clone());
    inputs.second_moment = pad(v.clone());
    let claim_base = 5 * case.step.capacity;
    inputs.claims = expected_claims(&case, claim_base, claim_base - 1);
    let run = |inputs: &HarnessInputs, claim_base: u32| {
        let step = StepUniform {
            claim_base,
            ..case.step
        };
        let harness = KernelHarness::new(&device, inputs);
        harness
            .run(&device, kernels, &[Kernel::AdamwVec4], &step)
            .unwrap();
        let read = [
            harness.read_params(&device).unwrap(),
            harness.read_first_moment(&device).unwrap(),
            harness.read_second_moment(&device).unwrap(),
            harness.read_grads(&device).unwrap(),
        ];
        assert_eq!(
            harness.read_claims(&device).unwrap(),
            inputs.claims,
            "adamw_vec4 must not change the claims"
        );
        read
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let every = run(&inputs, 0);
    let tagged = run(&inputs, claim_base);
    for (name, (a, b)) in ["params", "m", "v", "grads"]
        .iter()
        .zip(every.iter().zip(&tagged))
    {
        assert!(
            bits(a) == bits(b),
            "{name}: adamw_vec4 on claim tags differs in its bits from reading every gradient"
        );
    }
    let (mut p, mut want_m, mut want_v) = (case.params.clone(), m, v);
    cpu::adamw(&mut p, &grads[..n], &mut want_m, &mut want_v, &hyper());
    assert_close(
        "params (adamw_vec4, tagged)",
        &tagged[0][..n],
        &p,
        1e-6,
        1e-5,
    );
    assert_close(
        "m (adamw_vec4, tagged)",
        &tagged[1][..n],
        &want_m,
        1e-7,
        1e-5,
    );
    assert_close(
        "v (adamw_vec4, tagged)",
        &tagged[2][..n],
        &want_v,
        1e-8,
        1e-5,
    );

    // Garbage in every untouched vec4's gradient (not the padding, which must stay zero).
    let garbage = random_f32(padded, 1e3, 1e4, 79);
    let mut planted = grads.clone();
    for (n4, &skip) in untouched.iter().enumerate() {
        if skip && 4 * n4 + 4 <= n {
            planted[4 * n4..4 * n4 + 4].copy_from_slice(&garbage[4 * n4..4 * n4 + 4]);
        }
    }
    let first_planted = untouched.iter().position(|&u| u).unwrap();
    planted[4 * first_planted] = f32::NAN;
    inputs.grads = planted.clone();
    let with_garbage = run(&inputs, claim_base);
    for (name, (a, b)) in ["params", "m", "v"]
        .iter()
        .zip(tagged.iter().zip(&with_garbage))
    {
        assert!(
            bits(a) == bits(b),
            "{name}: an untouched row's gradient reached adamw_vec4's step"
        );
    }
    let mut want_grads = planted;
    for (vec4, &skip) in want_grads.chunks_mut(4).zip(&untouched) {
        if !skip {
            vec4.fill(0.0);
        }
    }
    assert!(
        bits(&with_garbage[3]) == bits(&want_grads),
        "adamw_vec4 must zero the touched gradients and leave the untouched ones unread"
    );
}

/// The claim tags `forward_backward` leaves for a batch whose tag base is `claim_base`: for every
/// row the batch touches, `claim_base + C - 1 - b` of its first occurrence b; other slots keep
/// `stale`.
fn expected_claims(case: &Case, claim_base: u32, stale: u32) -> Vec<u32> {
    let mut claims = vec![stale; case.users + case.items];
    let c = case.step.capacity;
    for b in (0..case.b).rev() {
        let tag = claim_base + c - 1 - b as u32;
        claims[case.batch_users[b] as usize] = tag;
        claims[case.users + case.batch_items[b] as usize] = tag;
    }
    claims
}

/// The single-op `sgd_claim`, `sgd`, `sgd_release` (`fused == false`) or the fused path's
/// `sgd_apply` on claims tagged as `forward_backward` leaves them, with stale tags of an earlier
/// batch in the untouched slots.
fn check_sgd(b: usize, fused: bool) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    let mut case = Case::new(b, 80);
    let n = case.params.len();
    let mut inputs = case.inputs(vec![0.0; case.step.scratch_len()]);
    inputs.grads = random_f32(n, -0.2, 0.2, 81);
    let claim_base = 7 * case.step.capacity;
    if fused {
        case.step.claim_base = claim_base;
        inputs.claims = expected_claims(&case, claim_base, claim_base - case.step.capacity);
    }
    let harness = KernelHarness::new(&device, &inputs);
    let sequence: &[Kernel] = if fused {
        &[Kernel::SgdApply]
    } else {
        &[Kernel::SgdClaim, Kernel::Sgd, Kernel::SgdRelease]
    };
    harness.run(&device, kernels, sequence, &case.step).unwrap();
    let distinct = |indices: &[u32]| {
        let mut rows = indices.to_vec();
        rows.sort_unstable();
        rows.dedup();
        rows
    };
    let (users, items) = (distinct(&case.batch_users), distinct(&case.batch_items));
    let mut want = case.params.clone();
    // The GPU zeroes the gradients of the rows it moved, for the next batch.
    let want_grads = touched_grads_zeroed(&case, &inputs.grads);
    {
        let h = hyper();
        let (p, rest) = want.split_at_mut(case.users * K);
        let (q, rest) = rest.split_at_mut(case.items * K);
        let (bu, bi) = rest.split_at_mut(case.users);
        let (gp, gq, gbu, gbi) = case.split(&inputs.grads);
        cpu::sgd(p, gp, K, &users, &h);
        cpu::sgd(q, gq, K, &items, &h);
        cpu::sgd(bu, gbu, 1, &users, &h);
        cpu::sgd(bi, gbi, 1, &items, &h);
    }
    assert_close(
        "params (sgd, each touched row once)",
        &harness.read_params(&device).unwrap(),
        &want,
        1e-7,
        1e-6,
    );
    assert_close(
        "grads of touched rows zeroed (sgd)",
        &harness.read_grads(&device).unwrap(),
        &want_grads,
        0.0,
        0.0,
    );
    let claims = harness.read_claims(&device).unwrap();
    if fused {
        assert_eq!(
            claims, inputs.claims,
            "sgd_apply must not change the claims"
        );
    } else {
        assert!(
            claims.iter().all(|&c| c == u32::MAX),
            "sgd_release must leave every claim slot unclaimed"
        );
    }
}

/// The fused path's `sgd_apply_vec4` (K a multiple of 4: rows aligned to vec4s) against the CPU
/// `sgd` of each touched row once, and against `sgd_apply` on the same inputs, on the backend's
/// padded buffers; the other rows, the padding and the claims must not change.
fn check_sgd_apply_vec4(b: usize) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    const K4: usize = 8;
    let (users, items) = (b / 4 + 3, b / 3 + 5);
    let n = (users + items) * (K4 + 1);
    let padded = padded_len(n);
    let pad = |mut v: Vec<f32>| {
        v.resize(padded, 0.0);
        v
    };
    let params = random_f32(n, -0.5, 0.5, 90);
    let grads = random_f32(n, -0.2, 0.2, 91);
    let batch_users = random_indices_with_repeats(b, users as u32, 92);
    let batch_items = random_indices_with_repeats(b, items as u32, 93);
    let mut step = StepUniform::shape(users, items, K4, Y_RANGE, b).with_batch(0, b, 0, &hyper());
    let claim_base = 7 * step.capacity;
    step.claim_base = claim_base;
    let mut claims = vec![claim_base - step.capacity; users + items];
    for i in (0..b).rev() {
        let tag = claim_base + step.capacity - 1 - i as u32;
        claims[batch_users[i] as usize] = tag;
        claims[users + batch_items[i] as usize] = tag;
    }
    let inputs = HarnessInputs {
        params: pad(params.clone()),
        grads: pad(grads.clone()),
        first_moment: vec![0.0; 4],
        second_moment: vec![0.0; 4],
        triples: pack_triples(&batch_users, &batch_items, &vec![1.0; b]),
        scratch: vec![0.0; step.scratch_len()],
        losses: vec![0.0; 4],
        claims: claims.clone(),
        counts: Vec::new(),
    };
    let run = |kernel: Kernel| {
        let harness = KernelHarness::new(&device, &inputs);
        harness.run(&device, kernels, &[kernel], &step).unwrap();
        assert_eq!(
            harness.read_claims(&device).unwrap(),
            claims,
            "{kernel:?} must not change the claims"
        );
        (
            harness.read_params(&device).unwrap(),
            harness.read_grads(&device).unwrap(),
        )
    };
    let (got, got_grads) = run(Kernel::SgdApplyVec4);
    let (scalar, scalar_grads) = run(Kernel::SgdApply);
    let distinct = |indices: &[u32]| {
        let mut rows = indices.to_vec();
        rows.sort_unstable();
        rows.dedup();
        rows
    };
    let (us, is) = (distinct(&batch_users), distinct(&batch_items));
    let mut want = params.clone();
    let mut want_grads = grads.clone();
    {
        let h = hyper();
        let (p, rest) = want.split_at_mut(users * K4);
        let (q, rest) = rest.split_at_mut(items * K4);
        let (bu, bi) = rest.split_at_mut(users);
        let (gp, rest) = grads.split_at(users * K4);
        let (gq, rest) = rest.split_at(items * K4);
        let (gbu, gbi) = rest.split_at(users);
        cpu::sgd(p, gp, K4, &us, &h);
        cpu::sgd(q, gq, K4, &is, &h);
        cpu::sgd(bu, gbu, 1, &us, &h);
        cpu::sgd(bi, gbi, 1, &is, &h);
        let (gp, rest) = want_grads.split_at_mut(users * K4);
        let (gq, rest) = rest.split_at_mut(items * K4);
        let (gbu, gbi) = rest.split_at_mut(users);
        for &u in &us {
            gp[u as usize * K4..(u as usize + 1) * K4].fill(0.0);
            gbu[u as usize] = 0.0;
        }
        for &i in &is {
            gq[i as usize * K4..(i as usize + 1) * K4].fill(0.0);
            gbi[i as usize] = 0.0;
        }
    }
    let want = pad(want);
    let want_grads = pad(want_grads);
    assert_close("params (sgd_apply_vec4)", &got, &want, 1e-7, 1e-6);
    assert_close(
        "params (sgd_apply_vec4 vs sgd_apply)",
        &got,
        &scalar,
        1e-7,
        1e-6,
    );
    assert_close("grads (sgd_apply_vec4)", &got_grads, &want_grads, 0.0, 0.0);
    assert_close("grads (sgd_apply)", &scalar_grads, &want_grads, 0.0, 0.0);
}

/// `forward_backward` against the CPU composition gather, dot, bias_add, sigmoid_range, mse_grad
/// (its loss from the partial sums the kernel leaves, one per workgroup), scatter_add,
/// scatter_add_bias (with and without a y-range), on gradients that already hold something, and
/// the claim tags it leaves, on the default path (a subgroup per rating where the adapter has
/// `SUBGROUP`).
fn check_forward_backward(b: usize, cas: bool) {
    check_forward_backward_on(b, K, cas, false);
}

/// [`check_forward_backward`] with `forward_backward` one thread per rating.
fn check_forward_backward_thread_per_rating(b: usize, cas: bool) {
    check_forward_backward_on(b, K, cas, true);
}

/// [`check_forward_backward`] at batch size `b` and `k` factors, with CAS scatter-adds or not,
/// one thread per rating or the default path.
/// What `forward_backward` must leave, by the composition of its CPU twins: `grads` plus the
/// batch's gradients, and the batch loss.
fn cpu_forward_backward(
    case: &Case,
    grads: &[f32],
    y_range: Option<(f32, f32)>,
) -> (Vec<f32>, f32) {
    let (b, k) = (case.b, case.k);
    let (p, q, bu, bi) = case.split(&case.params);
    let (mut pu, mut qi) = (vec![0.0; b * k], vec![0.0; b * k]);
    cpu::gather(p, k, &case.batch_users, &mut pu);
    cpu::gather(q, k, &case.batch_items, &mut qi);
    let mut x = vec![0.0; b];
    cpu::dot(&pu, &qi, k, &mut x);
    cpu::bias_add(&mut x, bu, bi, &case.batch_users, &case.batch_items);
    let mut pred = vec![0.0; b];
    cpu::sigmoid_range(&x, y_range, &mut pred);
    let mut g = vec![0.0; b];
    let loss = cpu::mse_grad(&x, &pred, &case.ratings, y_range, &mut g);
    let mut want = grads.to_vec();
    let (dp, rest) = want.split_at_mut(case.users * k);
    let (dq, rest) = rest.split_at_mut(case.items * k);
    let (dbu, dbi) = rest.split_at_mut(case.users);
    cpu::scatter_add(dp, k, &case.batch_users, &g, &qi);
    cpu::scatter_add(dq, k, &case.batch_items, &g, &pu);
    cpu::scatter_add_bias(dbu, &case.batch_users, &g);
    cpu::scatter_add_bias(dbi, &case.batch_items, &g);
    (want, loss)
}

/// The sorted-batch gradients (`segment_g`, `segment_sums`: no atomics) add what the CPU's
/// scatter-adds add, and the same bits on every run.
fn check_segment_sums(b: usize) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    let case = Case::new(b, 120);
    let mut inputs = case.inputs(vec![0.0; case.step.scratch_len()]);
    inputs.grads = random_f32(case.params.len(), -0.1, 0.1, 121);
    inputs.triples = row_sorted_triples(&case.batch_users, &case.batch_items, &case.ratings);
    let run = || {
        let harness = KernelHarness::new(&device, &inputs);
        harness
            .run(
                &device,
                kernels,
                &[Kernel::SegmentG, Kernel::SegmentSums],
                &case.step,
            )
            .unwrap();
        (
            harness.read_grads(&device).unwrap(),
            harness.read_scratch(&device).unwrap(),
        )
    };
    let (got, scratch) = run();
    let (want, loss) = cpu_forward_backward(&case, &inputs.grads, Y_RANGE);
    let (gp, gq, gbu, gbi) = case.split(&got);
    let (wp, wq, wbu, wbi) = case.split(&want);
    assert_close("dL/dP (segment_sums)", gp, wp, 1e-5, 1e-4);
    assert_close("dL/dQ (segment_sums)", gq, wq, 1e-5, 1e-4);
    assert_close("dL/dbu (segment_sums)", gbu, wbu, 1e-5, 1e-4);
    assert_close("dL/dbi (segment_sums)", gbi, wbi, 1e-5, 1e-4);
    let squares = &scratch[3 * case.step.capacity as usize..][..b];
    let got_loss = squares.iter().map(|&s| s as f64).sum::<f64>() / b as f64;
    assert_close(
        "batch loss (segment_g)",
        &[got_loss as f32],
        &[loss],
        1e-6,
        1e-5,
    );
    for _ in 0..3 {
        let (again, _) = run();
        assert!(
            again
                .iter()
                .zip(&got)
                .all(|(a, g)| a.to_bits() == g.to_bits()),
            "segment_sums left other bits on a second run: the sums must not depend on timing"
        );
    }
}

fn check_forward_backward_on(b: usize, k: usize, cas: bool, thread_per_rating: bool) {
    let Some((device, kernels)) = setup_paths() else {
        return;
    };
    let kernels = kernels[cas as usize + 2 * thread_per_rating as usize];
    if !cas && !kernels.float_atomics {
        eprintln!("this adapter has no SHADER_FLOAT32_ATOMIC; the native path is not tested here");
        return;
    }
    let atomics = if cas { "cas" } else { "float-atomic" };
    let rows = if kernels.subgroups {
        "subgroup"
    } else {
        "thread-per-rating"
    };
    let path = format!("{atomics}, {rows}, K = {k}");
    for y_range in [Y_RANGE, None] {
        let mut case = Case::with_factors(b, k, 100);
        case.step =
            StepUniform::shape(case.users, case.items, k, y_range, b).with_batch(0, b, 0, &hyper());
        let claim_base = 3 * case.step.capacity;
        case.step.claim_base = claim_base;
        let mut inputs = case.inputs(vec![0.0; case.step.scratch_len()]);
        inputs.grads = random_f32(case.params.len(), -0.1, 0.1, 101);
        // One partial sum per workgroup, and a sentinel after them that must stay.
        let layout = LossLayout::new(true, b);
        inputs.losses = vec![-1.0; layout.stride() + 1];
        // Tags of an earlier batch, which this batch's tags must beat.
        inputs.claims = vec![claim_base - 1; case.users + case.items];
        let harness = KernelHarness::new(&device, &inputs);
        harness
            .run(&device, kernels, &[Kernel::ForwardBackward], &case.step)
            .unwrap();

        let (want, loss) = cpu_forward_backward(&case, &inputs.grads, y_range);
        let what = format!("forward_backward, {path}, {y_range:?}");
        let got = harness.read_grads(&device).unwrap();
        let (gp, gq, gbu, gbi) = case.split(&got);
        let (wp, wq, wbu, wbi) = case.split(&want);
        assert_close(&format!("dL/dP ({what})"), gp, wp, 1e-5, 1e-4);
        assert_close(&format!("dL/dQ ({what})"), gq, wq, 1e-5, 1e-4);
        assert_close(&format!("dL/dbu ({what})"), gbu, wbu, 1e-5, 1e-4);
        assert_close(&format!("dL/dbi ({what})"), gbi, wbi, 1e-5, 1e-4);
        let losses = harness.read_losses(&device).unwrap();
        assert_close(
            &format!("batch loss ({what})"),
            &[layout.batch_loss(&losses, 0, b)],
            &[loss],
            1e-6,
            1e-5,
        );
        assert_eq!(
            losses[layout.stride()],
            -1.0,
            "{what} wrote past its partial sums"
        );
        assert_eq!(
            harness.read_claims(&device).unwrap(),
            expected_claims(&case, claim_base, claim_base - 1),
            "claim tags after {what}"
        );
        assert_close(
            &format!("params untouched by {what}"),
            &harness.read_params(&device).unwrap(),
            &case.params,
            0.0,
            0.0,
        );
    }
}

/// The subgroup path at K below, at and above the adapter's subgroup size S, and at K no multiple
/// of it (S - 1, S + 1, 3S + 5): lanes with no entry, lanes with one more entry than others. On
/// both scatter-add paths, at a batch that spills into a second workgroup. Without `SUBGROUP` it
/// checks the one-thread-per-rating kernel at the same K.
#[test]
fn forward_backward_subgroup_matches_cpu_composition_for_k_around_the_subgroup_size() {
    let Some((device, _)) = setup_paths() else {
        return;
    };
    let (smallest, largest) = device.subgroup_sizes();
    eprintln!(
        "{}: SUBGROUP {}, subgroup sizes {smallest}..={largest}",
        device.adapter_name(),
        device.has_subgroups()
    );
    let mut ks = vec![1, 2];
    for s in [smallest as usize, largest as usize] {
        ks.extend([s - 1, s, s + 1, 2 * s, 3 * s + 5]);
    }
    ks.sort();
    ks.dedup();
    ks.retain(|&k| k > 0);
    for k in ks {
        for cas in [false, true] {
            check_forward_backward_on(WORKGROUP as usize + 1, k, cas, false);
        }
    }
}

/// Where the adapter has `SUBGROUP`, `forward_backward` is the subgroup kernel unless the options
/// ask for one thread per rating; a training backend reports the path it runs. lavapipe has it.
#[test]
fn forward_backward_runs_a_subgroup_per_rating_where_the_adapter_has_subgroup() {
    let Some((device, [native, cas, native_thread, cas_thread])) = setup_paths() else {
        return;
    };
    if device.adapter_name().contains("llvmpipe") {
        assert!(
            device.has_subgroups(),
            "lavapipe offers SUBGROUP; the device was opened without it"
        );
    }
    let has = device.has_subgroups();
    assert_eq!((native.subgroups, cas.subgroups), (has, has));
    assert!(!native_thread.subgroups && !cas_thread.subgroups);
    let backend = GpuBackend::with_device(device.clone(), &GpuOptions::default());
    let want = if has { "subgroup" } else { "thread-per-rating" };
    assert_eq!(backend.forward_backward_path(), want);
    let thread = GpuOptions {
        thread_per_rating: true,
        ..GpuOptions::default()
    };
    let backend = GpuBackend::with_device(device, &thread);
    assert_eq!(backend.forward_backward_path(), "thread-per-rating");
}

/// With `claim_base == 0` (no tags: kernel harnesses; the fused path always sets one)
/// `forward_backward` leaves the claims alone.
#[test]
fn forward_backward_without_claim_base_claims_nothing() {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    let case = Case::new(WORKGROUP as usize + 1, 110);
    let inputs = case.inputs(vec![0.0; case.step.scratch_len()]);
    let harness = KernelHarness::new(&device, &inputs);
    harness
        .run(&device, kernels, &[Kernel::ForwardBackward], &case.step)
        .unwrap();
    assert_eq!(harness.read_claims(&device).unwrap(), inputs.claims);
}

fn check_eval_sse(b: usize) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    let case = Case::new(b, 90);
    let harness = KernelHarness::new(&device, &case.inputs(vec![0.0; case.step.scratch_len()]));
    harness
        .run(
            &device,
            kernels,
            &[Kernel::EvalPartial, Kernel::EvalFinish],
            &case.step,
        )
        .unwrap();
    let got = harness.read_losses(&device).unwrap()[0];
    let (p, q, bu, bi) = case.split(&case.params);
    let params = collabgpu::model::Params {
        factors: K,
        user_factors: p.to_vec(),
        item_factors: q.to_vec(),
        user_bias: bu.to_vec(),
        item_bias: bi.to_vec(),
    };
    let want: f64 = (0..b)
        .map(|n| {
            let err =
                params.predict(case.batch_users[n], case.batch_items[n], Y_RANGE) - case.ratings[n];
            (err * err) as f64
        })
        .sum();
    assert_close(
        "validation sum of squared errors (eval_sse)",
        &[got],
        &[want as f32],
        1e-4,
        1e-5,
    );
}

macro_rules! sizes {
    ($check:ident, $small:ident, $workgroup:ident, $large:ident $(, $extra:expr)?) => {
        #[test]
        fn $small() {
            $check(3 $(, $extra)?);
        }
        #[test]
        fn $workgroup() {
            $check(WORKGROUP as usize + 1 $(, $extra)?);
        }
        #[test]
        fn $large() {
            $check(1001 $(, $extra)?);
        }
    };
}

sizes!(
    check_gather,
    gather_matches_cpu_3,
    gather_matches_cpu_workgroup_plus_one,
    gather_matches_cpu_large_odd
);
sizes!(
    check_dot,
    dot_matches_cpu_3,
    dot_matches_cpu_workgroup_plus_one,
    dot_matches_cpu_large_odd
);
sizes!(
    check_bias_add,
    bias_add_matches_cpu_3,
    bias_add_matches_cpu_workgroup_plus_one,
    bias_add_matches_cpu_large_odd
);
sizes!(
    check_sigmoid_range,
    sigmoid_range_matches_cpu_3,
    sigmoid_range_matches_cpu_workgroup_plus_one,
    sigmoid_range_matches_cpu_large_odd
);
sizes!(
    check_mse_grad,
    mse_grad_matches_cpu_3,
    mse_grad_matches_cpu_workgroup_plus_one,
    mse_grad_matches_cpu_large_odd
);
sizes!(
    check_scatter_add,
    scatter_add_float_atomic_matches_cpu_with_repeated_rows_3,
    scatter_add_float_atomic_matches_cpu_with_repeated_rows_workgroup_plus_one,
    scatter_add_float_atomic_matches_cpu_with_repeated_rows_large_odd,
    false
);
sizes!(
    check_scatter_add,
    scatter_add_cas_matches_cpu_with_repeated_rows_3,
    scatter_add_cas_matches_cpu_with_repeated_rows_workgroup_plus_one,
    scatter_add_cas_matches_cpu_with_repeated_rows_large_odd,
    true
);
sizes!(
    check_adamw,
    adamw_matches_cpu_3,
    adamw_matches_cpu_workgroup_plus_one,
    adamw_matches_cpu_large_odd,
    Kernel::Adamw
);
sizes!(
    check_adamw,
    adamw_vec4_matches_cpu_3,
    adamw_vec4_matches_cpu_workgroup_plus_one,
    adamw_vec4_matches_cpu_large_odd,
    Kernel::AdamwVec4
);
sizes!(
    check_adamw_vec4_skips_untouched,
    adamw_vec4_reads_only_touched_gradients_3,
    adamw_vec4_reads_only_touched_gradients_workgroup_plus_one,
    adamw_vec4_reads_only_touched_gradients_large_odd
);
sizes!(
    check_sgd,
    sgd_moves_each_touched_row_once_3,
    sgd_moves_each_touched_row_once_workgroup_plus_one,
    sgd_moves_each_touched_row_once_large_odd,
    false
);
sizes!(
    check_sgd,
    sgd_apply_moves_each_touched_row_once_3,
    sgd_apply_moves_each_touched_row_once_workgroup_plus_one,
    sgd_apply_moves_each_touched_row_once_large_odd,
    true
);
sizes!(
    check_sgd_apply_vec4,
    sgd_apply_vec4_moves_each_touched_row_once_3,
    sgd_apply_vec4_moves_each_touched_row_once_workgroup_plus_one,
    sgd_apply_vec4_moves_each_touched_row_once_large_odd
);
sizes!(
    check_forward_backward,
    forward_backward_float_atomic_matches_cpu_composition_3,
    forward_backward_float_atomic_matches_cpu_composition_workgroup_plus_one,
    forward_backward_float_atomic_matches_cpu_composition_large_odd,
    false
);
sizes!(
    check_forward_backward,
    forward_backward_cas_matches_cpu_composition_3,
    forward_backward_cas_matches_cpu_composition_workgroup_plus_one,
    forward_backward_cas_matches_cpu_composition_large_odd,
    true
);
sizes!(
    check_forward_backward_thread_per_rating,
    forward_backward_thread_per_rating_float_atomic_matches_cpu_composition_3,
    forward_backward_thread_per_rating_float_atomic_matches_cpu_composition_workgroup_plus_one,
    forward_backward_thread_per_rating_float_atomic_matches_cpu_composition_large_odd,
    false
);
sizes!(
    check_forward_backward_thread_per_rating,
    forward_backward_thread_per_rating_cas_matches_cpu_composition_3,
    forward_backward_thread_per_rating_cas_matches_cpu_composition_workgroup_plus_one,
    forward_backward_thread_per_rating_cas_matches_cpu_composition_large_odd,
    true
);
/// A chunk longer than the most workgroups' threads: every thread strides over it, and
/// `eval_finish` adds exactly the partial sums `eval_partial` wrote.
#[test]
fn eval_sse_strides_past_its_most_workgroups() {
    check_eval_sse((EVAL_WORKGROUPS * REDUCTION_WORKGROUP) as usize + 1001);
}

sizes!(
    check_eval_sse,
    eval_sse_matches_cpu_3,
    eval_sse_matches_cpu_workgroup_plus_one,
    eval_sse_matches_cpu_large_odd
);

/// Parameter uploads and read-backs go through the queue in pieces of `TRANSFER_CHUNK_BYTES`
/// (so the host holds no second whole copy of a 114 MB tensor); a tensor that spans more than two
/// pieces, written at an offset, must come back bit for bit and leave the bytes before it alone.
#[test]
fn transfers_larger_than_one_piece_arrive_whole_at_their_offset() {
    use collabgpu::gpu::buffers::{
        STORAGE_USAGE, TRANSFER_CHUNK_BYTES, empty_buffer, read_f32_into, write_f32,
    };
    let Some(device) = gpu_device() else { return };
    let len = 2 * TRANSFER_CHUNK_BYTES / 4 + 3;
    let data = random_f32(len, -1.0, 1.0, 90);
    let offset = 8;
    let buffer = empty_buffer(&device, "transfer", offset + len as u64 * 4, STORAGE_USAGE);
    write_f32(&device, &buffer, offset, &data).unwrap();
    let mut back = vec![f32::NAN; len];
    read_f32_into(&device, &buffer, offset, &mut back).unwrap();
    assert!(
        back.iter()
            .zip(&data)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "a transfer of {len} floats in pieces of {TRANSFER_CHUNK_BYTES} bytes came back changed"
    );
    let mut before = vec![f32::NAN; 2];
    read_f32_into(&device, &buffer, 0, &mut before).unwrap();
    assert_eq!(before, [0.0, 0.0], "the write spilled before its offset");
}

/// `[P, Q, bu, bi]` of a flat vector whose tensors hold `[U * width, I * width, U, I]` floats:
/// the parameter layout for `width = K`, the row sums' for `width = 1`.
fn tensors_mut<'a>(case: &Case, flat: &'a mut [f32], width: usize) -> [&'a mut [f32]; 4] {
    let (p, rest) = flat.split_at_mut(case.users * width);
    let (q, rest) = rest.split_at_mut(case.items * width);
    let (bu, rest) = rest.split_at_mut(case.users);
    let (bi, _) = rest.split_at_mut(case.items);
    [p, q, bu, bi]
}

/// Each tensor's row width and the distinct rows of the batch in it, in `tensors_mut`'s order.
fn widths_and_rows(case: &Case) -> [(usize, Vec<u32>); 4] {
    let distinct = |indices: &[u32]| -> Vec<u32> {
        cpu::occurrences(indices)
            .into_iter()
            .map(|(row, _)| row)
            .collect()
    };
    let (users, items) = (distinct(&case.batch_users), distinct(&case.batch_items));
    [
        (K, users.clone()),
        (K, items.clone()),
        (1, users),
        (1, items),
    ]
}

/// A batch for one of the row-sparse optimisers on random gradients, with the claims its path
/// reads: the fused `*_apply` entries the tags `forward_backward` leaves (stale tags of an earlier
/// batch elsewhere), the single-op entries nothing (`sgd_claim` runs first). Returns the case, its
/// inputs and the kernels to run.
fn sparse_optimizer_case(
    b: usize,
    seed: u64,
    kernel: Kernel,
    apply: Kernel,
    fused: bool,
) -> (Case, HarnessInputs, Vec<Kernel>) {
    let mut case = Case::new(b, seed);
    let mut inputs = case.inputs(vec![0.0; case.step.scratch_len()]);
    inputs.grads = random_f32(case.params.len(), -0.2, 0.2, seed + 1);
    let sequence = if fused {
        let claim_base = 7 * case.step.capacity;
        case.step.claim_base = claim_base;
        inputs.claims = expected_claims(&case, claim_base, claim_base - case.step.capacity);
        vec![apply]
    } else {
        vec![Kernel::SgdClaim, kernel, Kernel::SgdRelease]
    };
    (case, inputs, sequence)
}

/// The gradients after a sparse optimiser: those of the rows it moved zeroed for the next batch.
fn touched_grads_zeroed(case: &Case, grads: &[f32]) -> Vec<f32> {
    let mut want = grads.to_vec();
    for (tensor, (width, rows)) in tensors_mut(case, &mut want, K)
        .into_iter()
        .zip(widths_and_rows(case))
    {
        for row in rows {
            tensor[row as usize * width..(row as usize + 1) * width].fill(0.0);
        }
    }
    want
}

/// What a sparse optimiser leaves besides the parameters and its state: the gradients of the rows
/// it moved zeroed, and the claims (the fused path's tags unchanged, the single-op path's all
/// released).
fn assert_sparse_leftovers(
    device: &Device,
    harness: &KernelHarness,
    case: &Case,
    inputs: &HarnessInputs,
    fused: bool,
    what: &str,
) {
    assert_close(
        &format!("grads of touched rows zeroed ({what})"),
        &harness.read_grads(device).unwrap(),
        &touched_grads_zeroed(case, &inputs.grads),
        0.0,
        0.0,
    );
    let claims = harness.read_claims(device).unwrap();
    if fused {
        assert_eq!(claims, inputs.claims, "{what} must not change the claims");
    } else {
        assert!(
            claims.iter().all(|&c| c == u32::MAX),
            "sgd_release after {what} must leave every claim slot unclaimed"
        );
    }
}

/// `rowwise_adagrad` between `sgd_claim` and `sgd_release` (`fused == false`) or the fused path's
/// `rowwise_adagrad_apply` against `cpu::rowwise_adagrad`, per tensor on the batch's distinct rows,
/// from accumulators that already hold something (a resumed run's).
fn check_rowwise_adagrad(b: usize, fused: bool) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    let (case, mut inputs, sequence) = sparse_optimizer_case(
        b,
        120,
        Kernel::RowwiseAdagrad,
        Kernel::RowwiseAdagradApply,
        fused,
    );
    let sums_len = 2 * (case.users + case.items);
    let sums = random_f32(sums_len, 0.0, 0.01, 122);
    inputs.first_moment = sums.clone();
    let harness = KernelHarness::new(&device, &inputs);
    harness
        .run(&device, kernels, &sequence, &case.step)
        .unwrap();
    let (mut want, mut want_sums) = (case.params.clone(), sums);
    let mut grads = inputs.grads.clone();
    let h = hyper();
    for (((p, s), g), (width, rows)) in tensors_mut(&case, &mut want, K)
        .into_iter()
        .zip(tensors_mut(&case, &mut want_sums, 1))
        .zip(tensors_mut(&case, &mut grads, K))
        .zip(widths_and_rows(&case))
    {
        cpu::rowwise_adagrad(p, g, s, width, &rows, &h);
    }
    let what = format!("{:?}", sequence[sequence.len() / 2]);
    assert_close(
        &format!("params ({what}, each touched row once)"),
        &harness.read_params(&device).unwrap(),
        &want,
        1e-6,
        1e-5,
    );
    assert_close(
        &format!("row sums ({what})"),
        &harness.read_first_moment(&device).unwrap()[..sums_len],
        &want_sums,
        1e-9,
        1e-5,
    );
    assert_sparse_leftovers(&device, &harness, &case, &inputs, fused, &what);
}

/// `sparse_adam` (single-op, between the claims) or `sparse_adam_apply` (fused) against
/// `cpu::sparse_adam`: only the batch's rows and their moments move, from moments that already
/// hold something.
fn check_sparse_adam(b: usize, fused: bool) {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    let (case, mut inputs, sequence) =
        sparse_optimizer_case(b, 130, Kernel::SparseAdam, Kernel::SparseAdamApply, fused);
    let n = case.params.len();
    inputs.first_moment = random_f32(n, -0.05, 0.05, 132);
    inputs.second_moment = random_f32(n, 0.0, 0.01, 133);
    let harness = KernelHarness::new(&device, &inputs);
    harness
        .run(&device, kernels, &sequence, &case.step)
        .unwrap();
    let mut want = case.params.clone();
    let (mut m, mut v) = (inputs.first_moment.clone(), inputs.second_moment.clone());
    let mut grads = inputs.grads.clone();
    let h = hyper();
    for ((((p, m), v), g), (width, rows)) in tensors_mut(&case, &mut want, K)
        .into_iter()
        .zip(tensors_mut(&case, &mut m, K))
        .zip(tensors_mut(&case, &mut v, K))
        .zip(tensors_mut(&case, &mut grads, K))
        .zip(widths_and_rows(&case))
    {
        cpu::sparse_adam(p, g, (m, v), width, &rows, &h);
    }
    let what = format!("{:?}", sequence[sequence.len() / 2]);
    let got = [
        ("params", harness.read_params(&device).unwrap(), want, 1e-6),
        ("m", harness.read_first_moment(&device).unwrap(), m, 1e-7),
        ("v", harness.read_second_moment(&device).unwrap(), v, 1e-8),
    ];
    for (name, got, want, atol) in got {
        assert_close(&format!("{name} ({what})"), &got, &want, atol, 1e-5);
    }
    assert_sparse_leftovers(&device, &harness, &case, &inputs, fused, &what);
}

/// `l2_grad` against `cpu::l2_grad` on gradients that already hold the scatter-adds' sums: every
/// occurrence adds its share, so a row that occurs 64 times gets 64 shares (the race the atomics
/// must survive), and the parameters stay as they were.
fn check_l2_grad(b: usize, cas: bool) {
    let Some((device, native, cas_kernels)) = setup() else {
        return;
    };
    let kernels = if cas { cas_kernels } else { native };
    if !cas && !kernels.float_atomics {
        eprintln!("this adapter has no SHADER_FLOAT32_ATOMIC; the native path is not tested here");
        return;
    }
    let mut case = Case::new(b, 140);
    let l2 = 0.3;
    case.step.l2 = l2;
    let mut inputs = case.inputs(vec![0.0; case.step.scratch_len()]);
    inputs.grads = random_f32(case.params.len(), -0.2, 0.2, 141);
    let harness = KernelHarness::new(&device, &inputs);
    harness
        .run(&device, kernels, &[Kernel::L2Grad], &case.step)
        .unwrap();
    let mut want = inputs.grads.clone();
    let mut params = case.params.clone();
    let counts = [
        cpu::occurrences(&case.batch_users),
        cpu::occurrences(&case.batch_items),
    ];
    for (((g, p), width), rows) in tensors_mut(&case, &mut want, K)
        .into_iter()
        .zip(tensors_mut(&case, &mut params, K))
        .zip([K, K, 1, 1])
        .zip([&counts[0], &counts[1], &counts[0], &counts[1]])
    {
        cpu::l2_grad(g, p, width, rows, l2, b);
    }
    let path = if cas { "cas" } else { "float atomic" };
    assert_close(
        &format!("grads + L2 per occurrence (l2_grad, {path})"),
        &harness.read_grads(&device).unwrap(),
        &want,
        1e-6,
        1e-5,
    );
    assert_close(
        "params untouched by l2_grad",
        &harness.read_params(&device).unwrap(),
        &case.params,
        0.0,
        0.0,
    );
}

sizes!(
    check_rowwise_adagrad,
    rowwise_adagrad_moves_each_touched_row_once_3,
    rowwise_adagrad_moves_each_touched_row_once_workgroup_plus_one,
    rowwise_adagrad_moves_each_touched_row_once_large_odd,
    false
);
sizes!(
    check_rowwise_adagrad,
    rowwise_adagrad_apply_moves_each_touched_row_once_3,
    rowwise_adagrad_apply_moves_each_touched_row_once_workgroup_plus_one,
    rowwise_adagrad_apply_moves_each_touched_row_once_large_odd,
    true
);
sizes!(
    check_sparse_adam,
    sparse_adam_moves_each_touched_row_once_3,
    sparse_adam_moves_each_touched_row_once_workgroup_plus_one,
    sparse_adam_moves_each_touched_row_once_large_odd,
    false
);
sizes!(
    check_sparse_adam,
    sparse_adam_apply_moves_each_touched_row_once_3,
    sparse_adam_apply_moves_each_touched_row_once_workgroup_plus_one,
    sparse_adam_apply_moves_each_touched_row_once_large_odd,
    true
);
sizes!(
    check_l2_grad,
    l2_grad_float_atomic_matches_cpu_with_repeated_rows_3,
    l2_grad_float_atomic_matches_cpu_with_repeated_rows_workgroup_plus_one,
    l2_grad_float_atomic_matches_cpu_with_repeated_rows_large_odd,
    false
);
sizes!(
    check_l2_grad,
    l2_grad_cas_matches_cpu_with_repeated_rows_3,
    l2_grad_cas_matches_cpu_with_repeated_rows_workgroup_plus_one,
    l2_grad_cas_matches_cpu_with_repeated_rows_large_odd,
    true
);
sizes!(
    check_segment_sums,
    segment_sums_match_cpu_and_repeat_3,
    segment_sums_match_cpu_and_repeat_workgroup_plus_one,
    segment_sums_match_cpu_and_repeat_large_odd
);

/// With `fold_l2`, `forward_backward` counts each row's occurrences and the fused optimisers that
/// move a row from one thread (`sgd_apply`, `sgd_apply_vec4`, `rowwise_adagrad_apply`) add the
/// L2 term from the counts themselves: the same step as `l2_grad` before them, up to rounding
/// (one multiply by n_r instead of n_r additions), and the counts are zero again after it.
#[test]
fn folded_l2_counts_rows_and_matches_l2_grad_then_the_optimiser() {
    let Some((device, kernels, _)) = setup() else {
        return;
    };
    for (apply, k) in [
        (Kernel::SgdApply, 5),
        (Kernel::SgdApplyVec4, 8),
        (Kernel::RowwiseAdagradApply, 5),
    ] {
        let b = 1001;
        let mut case = Case::with_factors(b, k, 150);
        let claim_base = 3 * case.step.capacity;
        case.step.claim_base = claim_base;
        case.step.l2 = 0.3;
        let pad = |mut v: Vec<f32>| {
            v.resize(padded_len(v.len()), 0.0);
            v
        };
        let mut inputs = case.inputs(vec![0.0; case.step.scratch_len()]);
        inputs.params = pad(inputs.params);
        inputs.grads = vec![0.0; inputs.params.len()];
        inputs.first_moment = pad(random_f32(2 * (case.users + case.items), 0.0, 0.01, 151));
        inputs.claims = vec![claim_base - 1; case.users + case.items];
        let run = |sequence: &[Kernel], fold: bool| {
            let step = StepUniform {
                fold_l2: fold as u32,
                ..case.step
            };
            let harness = KernelHarness::new(&device, &inputs);
            harness.run(&device, kernels, sequence, &step).unwrap();
            (
                harness.read_params(&device).unwrap(),
                harness.read_first_moment(&device).unwrap(),
                harness.read_counts(&device).unwrap(),
            )
        };
        let what = format!("{apply:?}, K = {k}");
        let (_, _, counted) = run(&[Kernel::ForwardBackward], true);
        let mut occurrences = vec![0u32; case.users + case.items];
        for n in 0..b {
            occurrences[case.batch_users[n] as usize] += 1;
            occurrences[case.users + case.batch_items[n] as usize] += 1;
        }
        assert_eq!(
            counted, occurrences,
            "forward_backward's row counts ({what})"
        );
        let (_, _, uncounted) = run(&[Kernel::ForwardBackward], false);
        assert!(
            uncounted.iter().all(|&n| n == 0),
            "without fold_l2 forward_backward counts nothing ({what})"
        );
        let (params, sums, counts) = run(&[Kernel::ForwardBackward, apply], true);
        let (want_params, want_sums, _) =
            run(&[Kernel::ForwardBackward, Kernel::L2Grad, apply], false);
        assert_close(
            &format!("params ({what})"),
            &params,
            &want_params,
            1e-6,
            1e-5,
        );
        assert_close(&format!("row sums ({what})"), &sums, &want_sums, 1e-9, 1e-5);
        assert!(
            counts.iter().all(|&n| n == 0),
            "{what} must zero the counts it read for the next batch"
        );
        // Not vacuous: without the term the step lands elsewhere.
        let (without, _, _) = run(&[Kernel::ForwardBackward, apply], false);
        let moved = without
            .iter()
            .zip(&want_params)
            .filter(|(a, w)| (*a - *w).abs() > 1e-5)
            .count();
        assert!(
            moved > 100,
            "the L2 term moved only {moved} parameters ({what})"
        );
    }
}
