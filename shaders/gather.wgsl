// gather.wgsl: embedding gather, twin of `cpu::kernels::gather` (run once per side).
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read), 4 triples (read), 5 scratch (write).
// Dimensions: B = step.batch_len, K = step.factors; one thread per (side, b, j), 2*B*K threads.
//   side 0: pu[b, j] = P[user_b, j]      side 1: qi[b, j] = Q[item_b, j]
// Invariants: user_b < U, item_b < I; batch_start + B <= number of triples bound.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read> triples: array<Triple>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
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
    if (side == 0u) {
        scratch[pu_offset(step) + rem] = params[p_offset(step) + t.user * k + j];
    } else {
        scratch[qi_offset(step) + rem] = params[q_offset(step) + t.item * k + j];
    }
}
