// adamw.wgsl: dense AdamW step, one thread per parameter (adamw_vec4.wgsl is the training path's
// four-per-thread version), over every parameter, twin of `cpu::kernels::adamw` (SPEC
// "Optimisers"), in the CPU's order: decoupled weight decay, first moment, second moment,
// bias-corrected step. It also zeroes each gradient after reading it, so the next batch's
// scatter-add starts from zero without a separate clear.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read/write), 2 grads (read, then zeroed),
//           3 moments (read/write: m = [0, N), v = [S, S + N) with N = step.param_count,
//           S = step.moments_stride).
// Dimensions: N = step.param_count = (U + I) * (K + 1); one thread per parameter, N threads.
// Invariants: step_size = lr / (1 - beta1^t) and bias_correction2 = 1 - beta2^t (host, f64 -> f32).

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> moments: array<f32>;

@compute @workgroup_size(64)
fn adamw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= step.param_count) {
        return;
    }
    let g = grads[n];
    grads[n] = 0.0;
    var p = params[n] * (1.0 - step.lr * step.wd);
    let m = step.beta1 * moments[n] + (1.0 - step.beta1) * g;
    let v = step.beta2 * moments[step.moments_stride + n] + (1.0 - step.beta2) * g * g;
    moments[n] = m;
    moments[step.moments_stride + n] = v;
    p -= step.step_size * m / (sqrt(v / step.bias_correction2) + step.eps);
    params[n] = p;
}
