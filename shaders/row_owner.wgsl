// row_owner.wgsl: which occurrence of a row owns its update, for the sparse optimisers that move
// each row of a batch once (sgd.wgsl, rowwise_adagrad.wgsl, sparse_adam.wgsl, sgd_vec4.wgsl), the
// L2 term's factor that an owner folds into its row's step (`take_l2_factor`), and the marks the
// fused forward_backward kernels leave for them (`mark_rows`: claim tags and row counts). Not a
// kernel: src/gpu/shaders.rs puts it between common.wgsl and those kernel files (after the
// grad_add_* piece for the forward_backward kernels). The rule is sgd.wgsl's, and its claims are
// reused as they are:
//   single-op path: sgd.wgsl's `sgd_claim` left in claims[row] the smallest b among the row's
//                   occurrences (atomicMin), and its `sgd_release` runs after the optimiser;
//   fused path:     forward_backward.wgsl left the largest tag claim_base + C - 1 - b, the tag of
//                   that same smallest b; tags grow from batch to batch, so nothing is released.
//
// Bindings: 4 triples (read), 7 claims (read/write, atomic<u32>: users at [0, U), items at [U, U+I)),
//           9 counts (read/write, atomic<u32>: each row's occurrences in the batch at its claim slot,
//           counted by forward_backward.wgsl when step.fold_l2; the owner reads and zeroes its row's
//           count).
// Dimensions: B = step.batch_len, C = step.capacity, U.
// Invariants: the claims hold this batch's claims as described above; user_b < U, item_b < I.

@group(0) @binding(4) var<storage, read> triples: array<Triple>;
@group(0) @binding(7) var<storage, read_write> claims: array<atomic<u32>>;
@group(0) @binding(9) var<storage, read_write> counts: array<atomic<u32>>;

// The claim slot of (side, b): the user row for side 0, U + the item row for side 1.
fn claim_index(side: u32, b: u32) -> u32 {
    let t = triples[step.batch_start + b];
    if (side == 0u) {
        return t.user;
    }
    return step.users + t.item;
}

// Occurrence n of the 2*B that the row-per-thread kernels run: users first (side 0, b = n), then
// items (side 1, b = n - B); no division needed to split n.
struct Occurrence {
    side: u32,
    b: u32,
}

fn occurrence(n: u32) -> Occurrence {
    if (n >= step.batch_len) {
        return Occurrence(1u, n - step.batch_len);
    }
    return Occurrence(0u, n);
}

// What forward_backward leaves of rating b (triple t) on the fused path: the claim tag (the
// largest tag, the smallest b, owns the row; only with step.claim_base) and, for an optimiser
// that adds the L2 term itself (step.fold_l2), one more occurrence in each of its rows' counts.
fn mark_rows(t: Triple, b: u32) {
    if (step.claim_base != 0u) {
        let tag = step.claim_base + (step.capacity - 1u - b);
        atomicMax(&claims[t.user], tag);
        atomicMax(&claims[step.users + t.item], tag);
    }
    if (step.fold_l2 != 0u) {
        atomicAdd(&counts[t.user], 1u);
        atomicAdd(&counts[step.users + t.item], 1u);
    }
}

// Whether occurrence b owns its side's row: `tagged` on the fused path (claims hold tags), else the
// single-op path (claims hold the smallest b).
fn owns_row(side: u32, b: u32, tagged: bool) -> bool {
    var owner = b;
    if (tagged) {
        owner = step.claim_base + (step.capacity - 1u - b);
    }
    return atomicLoad(&claims[claim_index(side, b)]) == owner;
}

// The L2 term's factor for the row at claim slot `slot`, which the calling thread owns: with
// fold_l2, 2 λ n / B for the n occurrences forward_backward counted, and the count zeroed for the
// next batch (one owner per row, so no other thread touches the count in this dispatch); without
// it, 0.
fn take_l2_factor(slot: u32) -> f32 {
    if (step.fold_l2 == 0u) {
        return 0.0;
    }
    let n = atomicLoad(&counts[slot]);
    atomicStore(&counts[slot], 0u);
    return l2_factor(step, n);
}
