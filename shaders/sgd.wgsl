// sgd.wgsl: sparse SGD with lazy weight decay, twin of `cpu::kernels::sgd` (SPEC "Optimisers"):
// only the rows a batch touched move, once each, p = p - lr * (g + wd * p); every other row is
// untouched. Three entries run in this order for each batch:
//   sgd_claim:   2*B threads, one per (side, b): claims[row] = min over the batch's occurrences
//                of b (atomicMin), so exactly one occurrence of each distinct row owns its update.
//   sgd:         2*B*(K+1) threads, one per (side, b, j), j = K being the bias: the owner updates
//                its row's factors and bias and zeroes their gradients for the next batch.
//   sgd_release: 2*B threads: claims[row] = 0xffffffff again (every writer writes the same value).
// The fused training path replaces all three with one entry, since forward_backward.wgsl claims:
//   sgd_apply:   2*B threads, one per (side, b): the owner of a row is the occurrence whose tag
//                claim_base + C - 1 - b is in claims[row] (the largest tag: the smallest b, as with
//                atomicMin), and it moves the whole row, its K factors and its bias, and zeroes
//                their gradients: one ownership test per touched row instead of one per entry.
//                Tags grow from batch to batch, so no release pass is needed. With fold_l2 the
//                owner first adds the L2 term (2 λ n_r / B) p to each entry's gradient, n_r
//                from forward_backward's counts, and zeroes the count (row_owner.wgsl).
// Compiled after row_owner.wgsl (src/gpu/shaders.rs), whose triples and claims bindings, claim
// slots and ownership test all four entries use.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read/write), 2 grads (read, then zeroed),
//           4 triples (read), 7 claims (read/write, atomic<u32>: users at [0, U), items at [U, U+I)),
//           9 counts (row_owner.wgsl).
// Dimensions: B = step.batch_len, K = step.factors, U, I.
// Invariants: for sgd_claim/sgd/sgd_release, claims are all 0xffffffff between batches (buffer
// created so, restored by sgd_release); for sgd_apply, claims hold tags below this batch's
// claim_base except the ones forward_backward just wrote. user_b < U, item_b < I.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;

const UNCLAIMED: u32 = 0xffffffffu;

@compute @workgroup_size(WORKGROUP)
fn sgd_claim(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= 2u * step.batch_len) {
        return;
    }
    let b = n % step.batch_len;
    atomicMin(&claims[claim_index(n / step.batch_len, b)], b);
}

// Moves one entry (side, b, j) of the batch's rows if occurrence b owns the row (`claims` holds
// b, as sgd_claim left it), and zeroes its gradient for the next batch.
fn update_entry(n: u32) {
    let k = step.factors;
    let per_side = step.batch_len * (k + 1u);
    let side = n / per_side;
    let rem = n % per_side;
    let b = rem / (k + 1u);
    let j = rem % (k + 1u);
    if (!owns_row(side, b, false)) {
        return;
    }
    move_entry(entry_index(side, triples[step.batch_start + b], j), 0.0);
}

// The parameter index of entry j (j = K: the bias) of the row that side `side` of triple t touches.
fn entry_index(side: u32, t: Triple, j: u32) -> u32 {
    let k = step.factors;
    if (side == 0u) {
        if (j < k) {
            return p_offset(step) + t.user * k + j;
        }
        return bu_offset(step) + t.user;
    }
    if (j < k) {
        return q_offset(step) + t.item * k + j;
    }
    return bi_offset(step) + t.item;
}

// One entry's SGD step, its gradient first gaining l2 * p (the L2 term's factor, 0 but for
// sgd_apply with fold_l2), and its gradient zeroed for the next batch.
fn move_entry(index: u32, l2: f32) {
    let p = params[index];
    let g = grads[index] + l2 * p;
    params[index] = p - step.lr * (g + step.wd * p);
    grads[index] = 0.0;
}

@compute @workgroup_size(WORKGROUP)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= 2u * step.batch_len * (step.factors + 1u)) {
        return;
    }
    update_entry(n);
}

@compute @workgroup_size(WORKGROUP)
fn sgd_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
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
    let l2 = take_l2_factor(claim_index(o.side, o.b));
    for (var j = 0u; j <= step.factors; j++) {
        move_entry(entry_index(o.side, t, j), l2);
    }
}

@compute @workgroup_size(WORKGROUP)
fn sgd_release(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= 2u * step.batch_len) {
        return;
    }
    atomicStore(&claims[claim_index(n / step.batch_len, n % step.batch_len)], UNCLAIMED);
}
