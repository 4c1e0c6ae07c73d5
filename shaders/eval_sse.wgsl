// eval_sse.wgsl: the validation loss reduced on the GPU, twin of the CPU's
// `sum (pred - r)^2` over the evaluation set (`Backend::eval_sum_squared_error`).
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read), 4 triples (read: one chunk of the
//           evaluation set), 5 scratch (one partial sum per workgroup), 6 losses (write slot).
// Dimensions: N = step.batch_len entries of the chunk from step.batch_start, K, U, I.
//   eval_partial: G = eval_groups() workgroups of REDUCTION_WORKGROUP threads, one workgroup per
//                 REDUCTION_WORKGROUP ratings up to EVAL_WORKGROUPS (the host dispatches the same
//                 number, `gpu::layout::eval_workgroups`); each thread strides over the chunk, computing
//                 pred = lo + (hi - lo) * sigmoid(dot(P[u], Q[i]) + bu[u] + bi[i])
//                 (or the raw score) and summing (pred - r)^2; each workgroup writes one partial.
//   eval_finish:  exactly one workgroup of REDUCTION_WORKGROUP threads: losses[step.slot] = sum of
//                 the G partials.
// Invariants: scratch holds at least EVAL_WORKGROUPS floats; only losses[slot] is read back.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read> triples: array<Triple>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(6) var<storage, read_write> losses: array<f32>;

var<workgroup> partial: array<f32, REDUCTION_WORKGROUP>;

// The workgroups of eval_partial for this chunk, as `gpu::layout::eval_workgroups` counts them.
fn eval_groups() -> u32 {
    return clamp((step.batch_len + REDUCTION_WORKGROUP - 1u) / REDUCTION_WORKGROUP, 1u, EVAL_WORKGROUPS);
}

fn tree_sum(lid: u32) {
    workgroupBarrier();
    for (var width = REDUCTION_WORKGROUP / 2u; width > 0u; width /= 2u) {
        if (lid < width) {
            partial[lid] += partial[lid + width];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(REDUCTION_WORKGROUP)
fn eval_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let k = step.factors;
    var sum = 0.0;
    for (var n = wid.x * REDUCTION_WORKGROUP + lid.x; n < step.batch_len; n += REDUCTION_WORKGROUP * eval_groups()) {
        let t = triples[step.batch_start + n];
        let p = p_offset(step) + t.user * k;
        let q = q_offset(step) + t.item * k;
        var x = 0.0;
        for (var j = 0u; j < k; j++) {
            x += params[p + j] * params[q + j];
        }
        x += params[bu_offset(step) + t.user] + params[bi_offset(step) + t.item];
        var pred = x;
        if (step.has_y_range != 0u) {
            pred = step.lo + (step.hi - step.lo) * sigmoid(x);
        }
        let err = pred - t.rating;
        sum += err * err;
    }
    partial[lid.x] = sum;
    tree_sum(lid.x);
    if (lid.x == 0u) {
        scratch[wid.x] = partial[0];
    }
}

@compute @workgroup_size(REDUCTION_WORKGROUP)
fn eval_finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    var sum = 0.0;
    for (var w = lid.x; w < eval_groups(); w += REDUCTION_WORKGROUP) {
        sum += scratch[w];
    }
    partial[lid.x] = sum;
    tree_sum(lid.x);
    if (lid.x == 0u) {
        losses[step.slot] = partial[0];
    }
}
