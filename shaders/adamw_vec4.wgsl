// adamw_vec4.wgsl: the dense AdamW step of adamw.wgsl, four parameters per thread through vec4
// loads and stores: a quarter of the threads and 16-byte memory transactions for the one kernel
// that touches every parameter every batch. Twin of `cpu::kernels::adamw`, same order of
// operations per element: decoupled weight decay, first moment, second moment, bias-corrected step.
// Every parameter and both its moments move every step (SPEC: adamw is dense), but a gradient is
// read (and zeroed after) only where this batch touched its row: a row the batch never touched has
// gradient exactly zero, so its step uses g = 0 without reading it. Which rows were touched comes
// from the claim tags forward_backward.wgsl leaves (the sparse optimisers' tags, see row_owner.wgsl):
// this batch's tags are the ones at or above step.claim_base, every earlier tag is below it. With
// claim_base = 0 every row counts as touched and every gradient is read, as before the tags.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read/write, as vec4), 2 grads (read, then
//           zeroed, where touched), 3 first_moment m, 8 second_moment v (read/write; two buffers of
//           the parameters' size, so no binding is larger than the parameters), 7 claims (read:
//           users at [0, U), items at [U, U+I)).
// Dimensions: N = step.param_count = (U + I) * (K + 1); one thread per 4 parameters, ceil(N/4)
//             threads. Parameter f's claim slot is f / K in P and Q (user u's row is slot u, item
//             i's slot U + i) and f - (U + I) * K in bu and bi (the same slots, in the same order).
// Invariants: params, grads, m and v each hold at least ceil(N/4)*4 floats, the padding all zeros
// (it stays zero: zero gradient, zero moments, zero parameter); the gradient of every row whose
// claim is below claim_base is zero (only forward_backward and l2_grad add to gradients, both only
// to the rows they claim, and this kernel zeroes what it read).

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> grads: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> first_moment: array<vec4<f32>>;
// Plain loads: forward_backward's atomicMax writes finished in the dispatch before this one, and
// a u32 load of the same word is what an atomicLoad reads, without the atomic's cost per lane.
@group(0) @binding(7) var<storage, read> claims: array<u32>;
@group(0) @binding(8) var<storage, read_write> second_moment: array<vec4<f32>>;

// Whether this batch claimed any of the slots first ..= last.
fn any_claimed(first: u32, last: u32) -> bool {
    for (var slot = first; slot <= last; slot++) {
        if (claims[slot] >= step.claim_base) {
            return true;
        }
    }
    return false;
}

// Whether this batch touched a row of the parameters 4n .. 4n + 3 (padding belongs to no row).
// Their slots are one range (at most two rows for K >= 3; four biases), or two where the vec4
// straddles the end of Q and the start of bu: per thread at most two divisions and one or two
// claim loads in P and Q, four among the biases.
fn touched(n: u32) -> bool {
    let factor_count = (step.users + step.items) * step.factors;
    let first = 4u * n;
    let last = min(first + 3u, step.param_count - 1u);
    if (last < factor_count) {
        return any_claimed(first / step.factors, last / step.factors);
    }
    if (first >= factor_count) {
        return any_claimed(first - factor_count, last - factor_count);
    }
    return any_claimed(first / step.factors, step.users + step.items - 1u)
        || any_claimed(0u, last - factor_count);
}

@compute @workgroup_size(WORKGROUP)
fn adamw_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= (step.param_count + 3u) / 4u) {
        return;
    }
    var g = vec4<f32>(0.0);
    if (touched(n)) {
        g = grads[n];
        grads[n] = vec4<f32>(0.0);
    }
    var p = params[n] * (1.0 - step.lr * step.wd);
    let m = step.beta1 * first_moment[n] + (1.0 - step.beta1) * g;
    let v = step.beta2 * second_moment[n] + (1.0 - step.beta2) * g * g;
    first_moment[n] = m;
    second_moment[n] = v;
    p -= step.step_size * m / (sqrt(v / step.bias_correction2) + step.eps);
    params[n] = p;
}
