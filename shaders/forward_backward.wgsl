// forward_backward.wgsl: the fused training step of one batch, one thread per rating: gather, dot,
// bias_add, sigmoid_range, mse_grad, the scatter-adds of gradients and each workgroup's part of the
// batch loss in one dispatch, plus the row claims (the tags that tell the fused optimisers which
// rows the batch touched). Same math as the single-op kernels, whose CPU twins are `cpu::kernels::{gather,
// dot, bias_add, sigmoid_range, mse_grad, scatter_add, scatter_add_bias}`; tested as their
// composition (tests/gpu_kernels.rs `forward_backward_*`). Compiled twice (src/gpu/shaders.rs):
// after grad_add_cas.wgsl (compare-and-swap adds, every adapter) as `forward_backward`, and after
// grad_add_float_atomic.wgsl (native float atomics) as `forward_backward_float_atomic`, each then
// after row_owner.wgsl, whose `mark_rows` leaves the claims and row counts.
// A thread loops over K itself (no subgroups, no workgroup memory), so any K works; on a real GPU
// the rows of P and Q it reads are contiguous and mostly served by cache. This is the fallback:
// where the device has `SUBGROUP`, forward_backward_subgroup.wgsl runs in its place (a subgroup
// per rating, the same bindings, dispatch and results up to the dot product's summation order),
// unless `GpuOptions::thread_per_rating`.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read), 2 grads (declared by grad_add_*),
//           4 triples (read), 6 losses (write the batch's partial sums), 7 claims (atomicMax),
//           9 counts (atomicAdd, only with step.fold_l2); 4, 7 and 9 declared by row_owner.wgsl,
//           whose `mark_rows` leaves the claims and counts.
// Dimensions: B = step.batch_len, K = step.factors, U, I; one thread per b, B threads.
//   x = dot(P[u_b], Q[i_b]) + (bu[u_b] + bi[i_b]); pred = lo + (hi - lo) * sigmoid(x) (or x)
//   g = (2/B) * (pred - r_b) * (hi - lo) * s * (1 - s) (or (2/B) * (pred - r_b))
//   losses[step.slot + w] = sum of (pred - r_b)^2 over the ratings of workgroup w (a tree sum), for
//   each of the ceil(B / WORKGROUP) workgroups that hold ratings; the host adds them up in order
//   and divides by B (`gpu::queue::batch_loss`), so the loss costs no dispatch of its own and no
//   atomics, and comes out the same every run.
//   dP[u_b] += g * Q[i_b]; dQ[i_b] += g * P[u_b]; dbu[u_b] += g; dbi[i_b] += g
//   if step.claim_base != 0: claims[u_b] and claims[U + i_b] = max(., claim_base + C - 1 - b)
//   if step.fold_l2 != 0: counts[u_b] and counts[U + i_b] += 1 (the optimiser's L2 term reads them)
// Invariants: u_b < U, i_b < I; grads hold zeros (or what should be added to) before the batch;
// counts hold zeros before the batch (the folding optimiser zeroes what it read);
// claim_base > every tag left in claims (the host restarts the tags by clearing claims to 0).

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(6) var<storage, read_write> losses: array<f32>;

var<workgroup> partial: array<f32, WORKGROUP>;

@compute @workgroup_size(WORKGROUP)
fn forward_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = thread_index(wid, lid, nwg);
    // Every thread reaches the loss sum's barriers; only those with a rating train.
    var sq = 0.0;
    if (b < step.batch_len) {
        sq = train_rating(b);
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

// Rating b's forward and backward pass; returns its squared error.
fn train_rating(b: u32) -> f32 {
    let t = triples[step.batch_start + b];
    let k = step.factors;
    let p = p_offset(step) + t.user * k;
    let q = q_offset(step) + t.item * k;
    let bu = bu_offset(step) + t.user;
    let bi = bi_offset(step) + t.item;
    // Forward, in the CPU's order: dot in j order, then + (bu + bi), then the y-range.
    var x = 0.0;
    for (var j = 0u; j < k; j++) {
        x += params[p + j] * params[q + j];
    }
    x += params[bu] + params[bi];
    // The y-range and the MSE gradient with respect to x, as sigmoid_range and mse_grad.
    let loss = rating_loss(step, x, t.rating);
    let g = loss.g;
    // Backward: parameters are only read in this dispatch, so every rating sees the values from
    // before the batch's update (SPEC), and gradients only accumulate.
    for (var j = 0u; j < k; j++) {
        let pj = params[p + j];
        let qj = params[q + j];
        add_to_grad(p + j, g * qj);
        add_to_grad(q + j, g * pj);
    }
    add_to_grad(bu, g);
    add_to_grad(bi, g);
    // The claim tags and row counts the fused optimisers read (row_owner.wgsl).
    mark_rows(t, b);
    return loss.squared_error;
}
