// scatter_add.wgsl: gradient scatter-add, twin of `cpu::kernels::scatter_add` (entry `scatter_add`)
// and `cpu::kernels::scatter_add_bias` (entry `scatter_add_bias`). Compiled twice
// (src/gpu/shaders.rs): after grad_add_cas.wgsl (a compare-and-swap loop, every adapter) as
// `scatter_add`, and after grad_add_float_atomic.wgsl (native float atomics) as
// `scatter_add_float_atomic`; same entries, same math.
//
// Bindings: 0 step (uniform, dynamic offset), 2 grads (declared by grad_add_*), 4 triples
//           (read), 5 scratch (read pu, qi, g).
// Dimensions: B = step.batch_len, K = step.factors, U, I.
//   scatter_add:      2*B*K threads, one per (side, b, j):
//                     side 0: dP[user_b, j] += g[b] * qi[b, j]
//                     side 1: dQ[item_b, j] += g[b] * pu[b, j]
//   scatter_add_bias: 2*B threads, one per (side, b): dbu[user_b] += g[b], dbi[item_b] += g[b]
// Invariants: a row may occur many times in one batch (one user 64 times); the atomics make every
// occurrence count. The order of additions is not fixed, so sums differ from the CPU's by rounding.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(4) var<storage, read> triples: array<Triple>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn scatter_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    let k = step.factors;
    let per_side = step.batch_len * k;
    if (n >= 2u * per_side) {
        return;
    }
    let side = n / per_side;
    let rem = n % per_side;
    let b = rem / k;
    let j = rem % k;
    let t = triples[step.batch_start + b];
    let g = scratch[g_offset(step) + b];
    if (side == 0u) {
        add_to_grad(p_offset(step) + t.user * k + j, g * scratch[qi_offset(step) + rem]);
    } else {
        add_to_grad(q_offset(step) + t.item * k + j, g * scratch[pu_offset(step) + rem]);
    }
}

@compute @workgroup_size(WORKGROUP)
fn scatter_add_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= 2u * step.batch_len) {
        return;
    }
    let b = n % step.batch_len;
    let t = triples[step.batch_start + b];
    let g = scratch[g_offset(step) + b];
    if (n < step.batch_len) {
        add_to_grad(bu_offset(step) + t.user, g);
    } else {
        add_to_grad(bi_offset(step) + t.item, g);
    }
}
