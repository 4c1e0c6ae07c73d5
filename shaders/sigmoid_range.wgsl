// sigmoid_range.wgsl: the y-range, twin of `cpu::kernels::sigmoid_range`.
//
// Bindings: 0 step (uniform, dynamic offset), 5 scratch (read x, write pred).
// Dimensions: B = step.batch_len; one thread per b, B threads.
//   pred[b] = lo + (hi - lo) * sigmoid(x[b]), or x[b] when step.has_y_range == 0.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn sigmoid_range(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = thread_index(wid, lid, nwg);
    if (b >= step.batch_len) {
        return;
    }
    let x = scratch[x_offset(step) + b];
    var pred = x;
    if (step.has_y_range != 0u) {
        pred = step.lo + (step.hi - step.lo) * sigmoid(x);
    }
    scratch[pred_offset(step) + b] = pred;
}
