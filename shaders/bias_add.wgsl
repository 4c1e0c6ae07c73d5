// bias_add.wgsl: bias addition, twin of `cpu::kernels::bias_add`.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read bu, bi), 4 triples (read),
//           5 scratch (read/write x).
// Dimensions: B = step.batch_len, U, I; one thread per b, B threads.
//   x[b] += bu[user_b] + bi[item_b]
// Invariants: user_b < U, item_b < I.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read> triples: array<Triple>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn bias_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = thread_index(wid, lid, nwg);
    if (b >= step.batch_len) {
        return;
    }
    let t = triples[step.batch_start + b];
    let x = x_offset(step) + b;
    scratch[x] += params[bu_offset(step) + t.user] + params[bi_offset(step) + t.item];
}
