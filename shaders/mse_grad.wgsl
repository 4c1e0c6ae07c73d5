// mse_grad.wgsl: the MSE gradient with respect to x and the batch loss, twin of
// `cpu::kernels::mse_grad` (which returns the loss; here `batch_loss` writes it).
//
// Bindings: 0 step (uniform, dynamic offset), 4 triples (read ratings), 5 scratch (read x, pred;
//           write g, sq), 6 losses (write losses[step.slot]).
// Dimensions: B = step.batch_len.
//   mse_grad:   one thread per b, B threads.
//               g[b] = (2/B) * (pred - r) * (hi - lo) * s * (1 - s), s = sigmoid(x[b])
//               (2/B) * (pred - r) without a y-range; sq[b] = (pred - r)^2
//   batch_loss: exactly one workgroup of REDUCTION_WORKGROUP threads (see common.wgsl);
//               losses[slot] = (1/B) * sum_b sq[b]
//               (a tree sum, so it differs from the CPU's in-order sum by rounding only).

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(4) var<storage, read> triples: array<Triple>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(6) var<storage, read_write> losses: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn mse_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = thread_index(wid, lid, nwg);
    if (b >= step.batch_len) {
        return;
    }
    let x = scratch[x_offset(step) + b];
    let err = scratch[pred_offset(step) + b] - triples[step.batch_start + b].rating;
    let scale = 2.0 / f32(step.batch_len);
    var g = scale * err;
    if (step.has_y_range != 0u) {
        let s = sigmoid(x);
        g = scale * err * (step.hi - step.lo) * s * (1.0 - s);
    }
    scratch[g_offset(step) + b] = g;
    scratch[sq_offset(step) + b] = err * err;
}

var<workgroup> partial: array<f32, REDUCTION_WORKGROUP>;

@compute @workgroup_size(REDUCTION_WORKGROUP)
fn batch_loss(@builtin(local_invocation_id) lid: vec3<u32>) {
    let sq = sq_offset(step);
    var sum = 0.0;
    for (var b = lid.x; b < step.batch_len; b += REDUCTION_WORKGROUP) {
        sum += scratch[sq + b];
    }
    partial[lid.x] = sum;
    workgroupBarrier();
    for (var width = REDUCTION_WORKGROUP / 2u; width > 0u; width /= 2u) {
        if (lid.x < width) {
            partial[lid.x] += partial[lid.x + width];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        losses[step.slot] = partial[0] / f32(step.batch_len);
    }
}
