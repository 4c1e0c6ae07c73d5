// l2_grad.wgsl: L2 per occurrence (SPEC "Scale", `--l2 λ`, any optimiser), twin of
// `cpu::kernels::l2_grad`: the gradient of every row r of the batch gains (2 λ n_r / B) p_r, at the
// parameters before the update. Runs after the scatter-adds (or forward_backward) and before the
// optimiser, only when λ is not 0. Compiled twice (src/gpu/shaders.rs), after grad_add_cas.wgsl as
// `l2_grad` and after grad_add_float_atomic.wgsl as `l2_grad_float_atomic`, like scatter_add.wgsl.
//
// Each occurrence adds its own share (2 λ / B) p_r, so a row that occurs n_r times receives the
// whole term without counting its occurrences (a count would cost a buffer and one more atomic
// per occurrence in forward_backward). The sum differs from the CPU's one multiply by n_r by
// rounding only.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read), 2 grads (declared by grad_add_*),
//           4 triples (read).
// Dimensions: B = step.batch_len, K = step.factors, U, I; one thread per (side, b, j),
//   2*B*(K+1) threads, j = K being the bias:  grads[e] += (2 λ / B) * params[e]
//   for e = row_entry(side, triple b, j) (common.wgsl).
// Invariants: user_b < U, item_b < I; params do not change in this dispatch.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read> triples: array<Triple>;

@compute @workgroup_size(WORKGROUP)
fn l2_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    let per_side = step.batch_len * (step.factors + 1u);
    if (n >= 2u * per_side) {
        return;
    }
    let side = n / per_side;
    let rem = n % per_side;
    let t = triples[step.batch_start + rem / (step.factors + 1u)];
    let index = row_entry(step, side, t, rem % (step.factors + 1u));
    add_to_grad(index, (2.0 * step.l2 / f32(step.batch_len)) * params[index]);
}
