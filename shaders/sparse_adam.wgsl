// sparse_adam.wgsl: lazy Adam (SPEC "Scale"; PyTorch's SparseAdam), twin of
// `cpu::kernels::sparse_adam`: adamw.wgsl's four lines, on the entries of the rows a batch touched
// only, once each, with the global step's bias corrections:
//   p = p * (1 - lr * wd); m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
//   p = p - step_size * m / (sqrt(v / bias_correction2) + eps)
// Each owner also zeroes the gradient it read for the next batch. Two entries, one per path:
//   sparse_adam:       single-op path, between sgd.wgsl's `sgd_claim` and `sgd_release`;
//   sparse_adam_apply: fused path, on forward_backward's claim tags (see row_owner.wgsl).
// One thread per (side, b, j), 2*B*(K+1) threads, j = K being the bias.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read/write), 2 grads (read, then zeroed),
//           3 first_moment m and 8 second_moment v (read/write, the parameters' layout),
//           4 triples and 7 claims (declared by row_owner.wgsl).
// Dimensions: B = step.batch_len, K = step.factors, U, I.
// Invariants: row_owner.wgsl's; step_size = lr / (1 - beta1^t), bias_correction2 = 1 - beta2^t
// with the global t (host, f64 -> f32); user_b < U, item_b < I.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> first_moment: array<f32>;
@group(0) @binding(8) var<storage, read_write> second_moment: array<f32>;

// Entry n = (side, b, j): moves if occurrence b owns its row.
fn update_entry(n: u32, tagged: bool) {
    let per_side = step.batch_len * (step.factors + 1u);
    let side = n / per_side;
    let rem = n % per_side;
    let b = rem / (step.factors + 1u);
    if (!owns_row(side, b, tagged)) {
        return;
    }
    let index = row_entry(step, side, triples[step.batch_start + b], rem % (step.factors + 1u));
    let g = grads[index];
    grads[index] = 0.0;
    var p = params[index] * (1.0 - step.lr * step.wd);
    let m = step.beta1 * first_moment[index] + (1.0 - step.beta1) * g;
    let v = step.beta2 * second_moment[index] + (1.0 - step.beta2) * g * g;
    first_moment[index] = m;
    second_moment[index] = v;
    p -= step.step_size * m / (sqrt(v / step.bias_correction2) + step.eps);
    params[index] = p;
}

@compute @workgroup_size(WORKGROUP)
fn sparse_adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= 2u * step.batch_len * (step.factors + 1u)) {
        return;
    }
    update_entry(n, false);
}

@compute @workgroup_size(WORKGROUP)
fn sparse_adam_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= 2u * step.batch_len * (step.factors + 1u)) {
        return;
    }
    update_entry(n, true);
}
