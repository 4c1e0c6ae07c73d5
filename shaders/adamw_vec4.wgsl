// adamw_vec4.wgsl: the dense AdamW step of adamw.wgsl, four parameters per thread through vec4
// loads and stores: a quarter of the threads and 16-byte memory transactions for the one kernel
// that touches every parameter every batch. Twin of `cpu::kernels::adamw`, same order of
// operations per element: decoupled weight decay, first moment, second moment, bias-corrected step;
// it zeroes each gradient after reading it.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read/write, as vec4), 2 grads (read, then
//           zeroed), 3 moments (m = [0, N), v = [S, S + N), S = step.moments_stride).
// Dimensions: N = step.param_count = (U + I) * (K + 1); one thread per 4 parameters, ceil(N/4)
//             threads.
// Invariants: params and grads hold at least ceil(N/4)*4 floats and moments 2*S, S a multiple of 4,
// the padding all zeros (it stays zero: zero gradient, zero moments, zero parameter).

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> grads: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> moments: array<vec4<f32>>;

@compute @workgroup_size(64)
fn adamw_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= (step.param_count + 3u) / 4u) {
        return;
    }
    let v_at = step.moments_stride / 4u + n;
    let g = grads[n];
    grads[n] = vec4<f32>(0.0);
    var p = params[n] * (1.0 - step.lr * step.wd);
    let m = step.beta1 * moments[n] + (1.0 - step.beta1) * g;
    let v = step.beta2 * moments[v_at] + (1.0 - step.beta2) * g * g;
    moments[n] = m;
    moments[v_at] = v;
    p -= step.step_size * m / (sqrt(v / step.bias_correction2) + step.eps);
    params[n] = p;
}
