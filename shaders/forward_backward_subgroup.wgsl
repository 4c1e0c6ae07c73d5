// forward_backward_subgroup.wgsl: forward_backward.wgsl's fused training step with one subgroup
// per rating instead of one thread: the lanes of a subgroup take its ratings in turn, stride over
// K together (lane l reads and scatter-adds entries l, l + lanes, ...: neighbouring addresses, so
// a row is read and its gradient added in whole cache lines) and sum the dot product with
// `subgroupAdd`. Everything else is forward_backward.wgsl's: the same bindings, the same threads
// and workgroups per batch (one invocation per rating, WORKGROUP per workgroup, so
// `Kernel::ForwardBackward`'s dispatch and `gpu::queue::LossLayout`'s partial sums are unchanged),
// the same scatter-adds (compiled after grad_add_cas.wgsl and after grad_add_float_atomic.wgsl, as
// `forward_backward_subgroup` and `forward_backward_subgroup_float_atomic`), the same claims.
// The host compiles it in place of forward_backward.wgsl where the device has `SUBGROUP`
// (`gpu::kernels::Kernels::new`). No `enable subgroups;`: naga 30 rejects the directive as not yet
// supported and takes the subgroup built-ins without it (gpu::shaders::SUBGROUP_KERNELS).
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read), 2 grads (declared by grad_add_*),
//           4 triples (read), 6 losses (write the batch's partial sums), 7 claims (atomicMax),
//           9 counts (atomicAdd, only with step.fold_l2); 4, 7 and 9 declared by row_owner.wgsl,
//           whose `mark_rows` leaves the claims and counts.
// Dimensions: B = step.batch_len, K = step.factors, U, I; one invocation per b, B invocations,
//   each subgroup of `lanes` invocations trains its `lanes` ratings one after the other.
//   x = subgroupAdd(sum over j = l, l + lanes, .. < K of P[u_b][j] * Q[i_b][j]) + (bu[u_b] + bi[i_b])
//   pred, g, the partial sums, the scatter-adds and the claims as forward_backward.wgsl; lane 0
//   adds the bias gradients, makes the claims and counts the rows, and the invocation whose rating it was keeps
//   its squared error for the workgroup's tree sum.
// Invariants: forward_backward.wgsl's, and a subgroup's invocations are numbered 0 .. lanes - 1
// (`subgroup_invocation_id`), `lanes` counted with subgroupAdd so that a subgroup wider than the
// workgroup (64 of 128 lanes running) still covers K.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(6) var<storage, read_write> losses: array<f32>;

var<workgroup> partial: array<f32, WORKGROUP>;

@compute @workgroup_size(WORKGROUP)
fn forward_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(subgroup_invocation_id) lane: u32) {
    let b = thread_index(wid, lid, nwg);
    let lanes = subgroupAdd(1u);
    // Every lane runs every rating of its subgroup (the guard is the same for all of them), so the
    // subgroup operations see the whole subgroup; each keeps the squared error of its own rating.
    var sq = 0.0;
    for (var r = 0u; r < lanes; r++) {
        let rating_b = subgroupShuffle(b, r);
        if (rating_b < step.batch_len) {
            let err2 = train_rating(rating_b, lane, lanes);
            if (lane == r) {
                sq = err2;
            }
        }
    }
    partial[lid.x] = sq;
    workgroupBarrier();
    for (var width = WORKGROUP / 2u; width > 0u; width /= 2u) {
        if (lid.x < width) {
            partial[lid.x] += partial[lid.x + width];
        }
        workgroupBarrier();
    }
    let w = wid.y * nwg.x + wid.x;
    if (lid.x == 0u && w * WORKGROUP < step.batch_len) {
        losses[step.slot + w] = partial[0];
    }
}

// Rating b's forward and backward pass by the whole subgroup, this invocation lane `lane` of
// `lanes`; returns its squared error (the same in every lane).
fn train_rating(b: u32, lane: u32, lanes: u32) -> f32 {
    let t = triples[step.batch_start + b];
    let k = step.factors;
    let p = p_offset(step) + t.user * k;
    let q = q_offset(step) + t.item * k;
    let bu = bu_offset(step) + t.user;
    let bi = bi_offset(step) + t.item;
    // Forward: each lane's share of the dot, the subgroup's sum, then + (bu + bi) and the y-range.
    var share = 0.0;
    for (var j = lane; j < k; j += lanes) {
        share += params[p + j] * params[q + j];
    }
    var x = subgroupAdd(share);
    x += params[bu] + params[bi];
    // The y-range and the MSE gradient with respect to x, as sigmoid_range and mse_grad.
    let loss = rating_loss(step, x, t.rating);
    let g = loss.g;
    // Backward: parameters are only read in this dispatch (SPEC), gradients only accumulate.
    for (var j = lane; j < k; j += lanes) {
        let pj = params[p + j];
        let qj = params[q + j];
        add_to_grad(p + j, g * qj);
        add_to_grad(q + j, g * pj);
    }
    if (lane == 0u) {
        add_to_grad(bu, g);
        add_to_grad(bi, g);
        // The claim tags and row counts the fused optimisers read (row_owner.wgsl).
        mark_rows(t, b);
    }
    return loss.squared_error;
}
