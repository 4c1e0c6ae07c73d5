// adamw.wgsl: dense AdamW step, one thread per parameter (adamw_vec4.wgsl is the training path's
// four-per-thread version), over every parameter, twin of `cpu::kernels::adamw` (SPEC
// "Optimisers"), in the CPU's order: decoupled weight decay, first moment, second moment,
// bias-corrected step. It also zeroes each gradient after reading it, so the next batch's
// scatter-add starts from zero without a separate clear.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read/write), 2 grads (read, then zeroed),
//           3 first_moment m (read/write), 8 second_moment v (read/write). m and v are two buffers,
//           each the parameters' size, so that no binding is larger than the parameters (one
//           [m | v] buffer would pass the adapter's binding limit first).
// Dimensions: N = step.param_count = (U + I) * (K + 1); one thread per parameter, N threads.
// Invariants: params, grads, m and v hold at least N floats; step_size = lr / (1 - beta1^t) and
// bias_correction2 = 1 - beta2^t (host, f64 -> f32).

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> first_moment: array<f32>;
@group(0) @binding(8) var<storage, read_write> second_moment: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn adamw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= step.param_count) {
        return;
    }
    let g = grads[n];
    grads[n] = 0.0;
    var p = params[n] * (1.0 - step.lr * step.wd);
    let m = step.beta1 * first_moment[n] + (1.0 - step.beta1) * g;
    let v = step.beta2 * second_moment[n] + (1.0 - step.beta2) * g * g;
    first_moment[n] = m;
    second_moment[n] = v;
    p -= step.step_size * m / (sqrt(v / step.bias_correction2) + step.eps);
    params[n] = p;
}
