// adamw_vec4.wgsl: the dense AdamW step of adamw.wgsl, four parameters per thread through vec4
// loads and stores: a quarter of the threads and 16-byte memory transactions for the one kernel
// that touches every parameter every batch. Twin of `cpu::kernels::adamw`, same order of
// operations per element: decoupled weight decay, first moment, second moment, bias-corrected step;
// it zeroes each gradient after reading it.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read/write, as vec4), 2 grads (read, then
//           zeroed), 3 first_moment m, 8 second_moment v (read/write; two buffers of the
//           parameters' size, so no binding is larger than the parameters).
// Dimensions: N = step.param_count = (U + I) * (K + 1); one thread per 4 parameters, ceil(N/4)
//             threads.
// Invariants: params, grads, m and v each hold at least ceil(N/4)*4 floats, the padding all zeros
// (it stays zero: zero gradient, zero moments, zero parameter).

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> grads: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> first_moment: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> second_moment: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP)
fn adamw_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= (step.param_count + 3u) / 4u) {
        return;
    }
    let g = grads[n];
    grads[n] = vec4<f32>(0.0);
    var p = params[n] * (1.0 - step.lr * step.wd);
    let m = step.beta1 * first_moment[n] + (1.0 - step.beta1) * g;
    let v = step.beta2 * second_moment[n] + (1.0 - step.beta2) * g * g;
    first_moment[n] = m;
    second_moment[n] = v;
    p -= step.step_size * m / (sqrt(v / step.bias_correction2) + step.eps);
    params[n] = p;
}
