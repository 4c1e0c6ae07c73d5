// sgd_vec4.wgsl: the fused path's sparse SGD step of sgd.wgsl's `sgd_apply`, with a row's K
// factors moved four at a time through vec4 loads and stores, for K a multiple of 4; the host
// picks it then (`Kernels::fused_train_step`), and `sgd_apply` otherwise. Twin of
// `cpu::kernels::sgd` (SPEC "Optimisers"): the rows a batch touched move once each,
// p = p - lr * (g + wd * p), and their gradients are zeroed for the next batch; every other row is
// untouched.
//   sgd_apply_vec4: 2*B threads, one per (side, b): the owner of a row (row_owner.wgsl, on
//                   forward_backward's tags) moves its K factors as K/4 vec4s and its bias as one
//                   component of the vec4 that holds it.
// A row of P starts at u * K and one of Q at U * K + i * K: with K a multiple of 4 both are
// multiples of 4, so the vec4s are aligned to rows. The bias sits apart (bu, bi after Q), its
// neighbours other rows' biases, so it is moved alone; other threads may move the other components
// of its vec4 in the same dispatch, which is no race (each component is its own memory location).
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read/write, as vec4), 2 grads (read, then
//           zeroed, as vec4), 4 triples (read), 7 claims (read/write, atomic<u32>) and 9 counts
//           (row_owner.wgsl: with step.fold_l2 each gradient first gains the L2 term, as sgd_apply).
// Dimensions: B = step.batch_len, K = step.factors (a multiple of 4), U, I.
// Invariants: K % 4 == 0; params and grads hold at least ceil(N/4)*4 floats (the backend's padded
// buffers); the claims hold this batch's tags as row_owner.wgsl describes; user_b < U, item_b < I.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> grads: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP)
fn sgd_apply_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= 2u * step.batch_len) {
        return;
    }
    let o = occurrence(n);
    if (!owns_row(o.side, o.b, true)) {
        return;
    }
    let t = triples[step.batch_start + o.b];
    let quads = step.factors / 4u;
    var first = (p_offset(step) + t.user * step.factors) / 4u;
    var bias = bu_offset(step) + t.user;
    if (o.side == 1u) {
        first = (q_offset(step) + t.item * step.factors) / 4u;
        bias = bi_offset(step) + t.item;
    }
    let l2 = take_l2_factor(claim_index(o.side, o.b));
    for (var j = first; j < first + quads; j++) {
        let p = params[j];
        let g = grads[j] + l2 * p;
        params[j] = p - step.lr * (g + step.wd * p);
        grads[j] = vec4<f32>(0.0);
    }
    let p = params[bias / 4u][bias % 4u];
    let g = grads[bias / 4u][bias % 4u] + l2 * p;
    params[bias / 4u][bias % 4u] = p - step.lr * (g + step.wd * p);
    grads[bias / 4u][bias % 4u] = 0.0;
}
