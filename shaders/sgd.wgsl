// sgd.wgsl: sparse SGD with lazy weight decay, twin of `cpu::kernels::sgd` (SPEC "Optimisers"):
// only the rows a batch touched move, once each, p = p - lr * (g + wd * p); every other row is
// untouched. Three entries run in this order for each batch:
//   sgd_claim:   2*B threads, one per (side, b): claims[row] = min over the batch's occurrences
//                of b (atomicMin), so exactly one occurrence of each distinct row owns its update.
//   sgd:         2*B*(K+1) threads, one per (side, b, j), j = K being the bias: the owner updates
//                its row's factors and bias and zeroes their gradients for the next batch.
//   sgd_release: 2*B threads: claims[row] = 0xffffffff again (every writer writes the same value).
// The fused training path replaces all three with one entry, since forward_backward.wgsl claims:
//   sgd_apply:   2*B*(K+1) threads like `sgd`; the owner of a row is the occurrence whose tag
//                claim_base + C - 1 - b is in claims[row] (the largest tag: the smallest b, as with
//                atomicMin). Tags grow from batch to batch, so no release pass is needed.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read/write), 2 grads (read, then zeroed),
//           4 triples (read), 7 claims (read/write, atomic<u32>: users at [0, U), items at [U, U+I)).
// Dimensions: B = step.batch_len, K = step.factors, U, I.
// Invariants: for sgd_claim/sgd/sgd_release, claims are all 0xffffffff between batches (buffer
// created so, restored by sgd_release); for sgd_apply, claims hold tags below this batch's
// claim_base except the ones forward_backward just wrote. user_b < U, item_b < I.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(4) var<storage, read> triples: array<Triple>;
@group(0) @binding(7) var<storage, read_write> claims: array<atomic<u32>>;

const UNCLAIMED: u32 = 0xffffffffu;

// The claim slot of (side, b): the user row for side 0, U + the item row for side 1.
fn claim_index(side: u32, b: u32) -> u32 {
    let t = triples[step.batch_start + b];
    if (side == 0u) {
        return t.user;
    }
    return step.users + t.item;
}

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
// `owner`), and zeroes its gradient for the next batch.
fn update_entry(n: u32, owner_tag: u32, tagged: bool) {
    let k = step.factors;
    let per_side = step.batch_len * (k + 1u);
    let side = n / per_side;
    let rem = n % per_side;
    let b = rem / (k + 1u);
    let j = rem % (k + 1u);
    var owner = b;
    if (tagged) {
        owner = owner_tag + (step.capacity - 1u - b);
    }
    if (atomicLoad(&claims[claim_index(side, b)]) != owner) {
        return;
    }
    let t = triples[step.batch_start + b];
    var index: u32;
    if (side == 0u) {
        if (j < k) {
            index = p_offset(step) + t.user * k + j;
        } else {
            index = bu_offset(step) + t.user;
        }
    } else {
        if (j < k) {
            index = q_offset(step) + t.item * k + j;
        } else {
            index = bi_offset(step) + t.item;
        }
    }
    let p = params[index];
    params[index] = p - step.lr * (grads[index] + step.wd * p);
    grads[index] = 0.0;
}

@compute @workgroup_size(WORKGROUP)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= 2u * step.batch_len * (step.factors + 1u)) {
        return;
    }
    update_entry(n, 0u, false);
}

@compute @workgroup_size(WORKGROUP)
fn sgd_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= 2u * step.batch_len * (step.factors + 1u)) {
        return;
    }
    update_entry(n, step.claim_base, true);
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
