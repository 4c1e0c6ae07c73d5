// rowwise_adagrad.wgsl: row-wise Adagrad (SPEC "Scale"; LibMF's per-row rate, TorchRec's
// EXACT_ROWWISE_ADAGRAD), twin of `cpu::kernels::rowwise_adagrad`: only the rows a batch touched
// move, once each. A row is one row of P or Q (K entries) or one bias entry (1 entry), with one
// accumulator s_r:
//   s_r = s_r + (sum_j g_j^2) / width    (summed in eight lanes, j to lane j % 8, then pairwise:
//                                          `cpu::kernels::sum_of_squares`'s order)
//   p   = p - (lr * g) / (sqrt(s_r) + eps)
// Each owner also zeroes its rows' gradients for the next batch. Two entries, one per path:
//   rowwise_adagrad:       single-op path, between sgd.wgsl's `sgd_claim` and `sgd_release`;
//   rowwise_adagrad_apply: fused path, on forward_backward's claim tags (see row_owner.wgsl).
// One thread per (side, b), 2*B threads: the owner of a row runs its whole row (a sum over the
// row comes before any entry moves) and then its bias. With step.fold_l2 (fused entry only) each
// g is first g + (2 λ n_r / B) p, the L2 term `l2_grad.wgsl` would have added, n_r from
// forward_backward's counts (row_owner.wgsl `take_l2_factor`).
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read/write), 2 grads (read, then zeroed),
//           3 row sums (read/write; the first-moment binding, which rowwise-adagrad does not use
//           otherwise), 4 triples, 7 claims and 9 counts (declared by row_owner.wgsl).
// Row sums layout (a `Params` with K = 1, as `TrainState::row_sums`):
//   [0, U) rows of P, [U, U+I) rows of Q, [U+I, 2U+I) bu, [2U+I, 2U+2I) bi.
// Dimensions: B = step.batch_len, K = step.factors, U, I.
// Invariants: row_owner.wgsl's; user_b < U, item_b < I.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> row_sums: array<f32>;

// One row of `width` contiguous entries from `first`, with its accumulator row_sums[sum], each
// entry's gradient first gaining l2 * p (the L2 term's factor; 0 but with fold_l2).
fn step_row(first: u32, width: u32, sum: u32, l2: f32) {
    var lanes = array<f32, 8>();
    for (var j = 0u; j < width; j++) {
        let g = grads[first + j] + l2 * params[first + j];
        lanes[j % 8u] += g * g;
    }
    let squares = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    let s = row_sums[sum] + squares / f32(width);
    row_sums[sum] = s;
    let denominator = sqrt(s) + step.eps;
    for (var j = 0u; j < width; j++) {
        let g = grads[first + j] + l2 * params[first + j];
        params[first + j] -= step.lr * g / denominator;
        grads[first + j] = 0.0;
    }
}

// Occurrence n = (side, b): if it owns its row, steps the factor row and then the bias.
fn update_rows(n: u32, tagged: bool) {
    let o = occurrence(n);
    if (!owns_row(o.side, o.b, tagged)) {
        return;
    }
    let t = triples[step.batch_start + o.b];
    // The row's number in P then Q (its claim slot), which is also its accumulator's index; the
    // biases follow. Only the fused entry folds in L2.
    let row = claim_index(o.side, o.b);
    var l2 = 0.0;
    if (tagged) {
        l2 = take_l2_factor(row);
    }
    step_row(row_entry(step, o.side, t, 0u), step.factors, row, l2);
    step_row(row_entry(step, o.side, t, step.factors), 1u, step.users + step.items + row, l2);
}

@compute @workgroup_size(WORKGROUP)
fn rowwise_adagrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= 2u * step.batch_len) {
        return;
    }
    update_rows(n, false);
}

@compute @workgroup_size(WORKGROUP)
fn rowwise_adagrad_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= 2u * step.batch_len) {
        return;
    }
    update_rows(n, true);
}
