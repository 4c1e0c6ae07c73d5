// dot.wgsl: dot product of matching rows, twin of `cpu::kernels::dot`.
//
// Bindings: 0 step (uniform, dynamic offset), 5 scratch (read pu, qi; write x).
// Dimensions: B = step.batch_len, K = step.factors; one thread per b, B threads.
//   x[b] = sum_j pu[b, j] * qi[b, j], summed in j order as the CPU does.
// Invariants: pu and qi hold this batch's gathered rows (gather ran first).

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn dot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = thread_index(wid, lid, nwg);
    if (b >= step.batch_len) {
        return;
    }
    let k = step.factors;
    let pu = pu_offset(step) + b * k;
    let qi = qi_offset(step) + b * k;
    var sum = 0.0;
    for (var j = 0u; j < k; j++) {
        sum += scratch[pu + j] * scratch[qi + j];
    }
    scratch[x_offset(step) + b] = sum;
}
