// segment_sums.wgsl: the gradients of one batch without atomics, from a batch sorted by row: the
// alternative to forward_backward.wgsl's scatter-adds that issue 15 asks to measure (benches/kernels.rs,
// group `forward_backward`, case `gpu_segment_sums` beside `gpu_forward_backward_*`; the host's sort
// is timed there as `cpu_sort_for_segments`). Not on the training path until a real GPU's figures
// say it wins. Same math as forward_backward up to the gradients; tested against the CPU's
// `scatter_add` composition (tests/gpu_kernels.rs `segment_sums_*`).
//
// The batch comes twice in the bound triples (`gpu::layout::row_sorted_triples` builds them):
//   [0, B)    the batch sorted stably by user: (u, i, r) as the kernels read any batch;
//   [B, 2B)   the same ratings sorted stably by item, each with `rating` holding the bits of its
//             position b in the first half (a u32 through bitcast), where its g is found.
// Two dispatches, one after the other:
//   segment_g:    B threads, one per b of the first half: x, the y-range and g = dL/dx exactly as
//                 forward_backward (common.wgsl `rating_loss`); scratch g[b] = g, sq[b] = the
//                 squared error (left per rating: the measurement is about the gradients).
//   segment_sums: 2*B threads, one per (side, c): side 0 the user-sorted half, side 1 the
//                 item-sorted half. Only the first c of each run of equal rows (a segment) works:
//                 for each rating of its segment in ascending c it adds g * (the other side's
//                 row) to its own row's gradient and g to its bias' gradient, in the CPU's order
//                 (`scatter_add`: ascending b). Each row has one segment, so one thread writes it:
//                 plain loads and stores, no atomics, and the same sums in the same order every run.
//
// Bindings: 0 step (uniform, dynamic offset), 1 params (read), 2 grads (read/write, plain),
//           4 triples (read: 2*B from step.batch_start, as above), 5 scratch (g and sq regions).
// Dimensions: B = step.batch_len, K = step.factors, U, I.
// Invariants: both halves hold the same B ratings; u < U, i < I; C = step.capacity >= B.

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(4) var<storage, read> triples: array<Triple>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn segment_g(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = thread_index(wid, lid, nwg);
    if (b >= step.batch_len) {
        return;
    }
    let t = triples[step.batch_start + b];
    let k = step.factors;
    let p = p_offset(step) + t.user * k;
    let q = q_offset(step) + t.item * k;
    var x = 0.0;
    for (var j = 0u; j < k; j++) {
        x += params[p + j] * params[q + j];
    }
    x += params[bu_offset(step) + t.user] + params[bi_offset(step) + t.item];
    let loss = rating_loss(step, x, t.rating);
    scratch[g_offset(step) + b] = loss.g;
    scratch[sq_offset(step) + b] = loss.squared_error;
}

// The row of side `side` (0 user, 1 item) of the c-th triple of that side's half.
fn segment_row(side: u32, c: u32) -> u32 {
    let t = triples[step.batch_start + side * step.batch_len + c];
    if (side == 0u) {
        return t.user;
    }
    return t.item;
}

@compute @workgroup_size(WORKGROUP)
fn segment_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let index = thread_index(wid, lid, nwg);
    let n = step.batch_len;
    if (index >= 2u * n) {
        return;
    }
    let side = index / n;
    let c = index % n;
    let row = segment_row(side, c);
    if (c > 0u && segment_row(side, c - 1u) == row) {
        return;
    }
    var end = c + 1u;
    while (end < n && segment_row(side, end) == row) {
        end++;
    }
    let k = step.factors;
    let half = step.batch_start + side * n;
    var own = p_offset(step) + row * k;
    var bias = bu_offset(step) + row;
    if (side == 1u) {
        own = q_offset(step) + row * k;
        bias = bi_offset(step) + row;
    }
    // In ascending c, each rating's share added to the row's gradient in place, as the CPU's
    // scatter_add adds it: the row is this thread's alone, so plain loads and stores suffice.
    for (var e = c; e < end; e++) {
        let t = triples[half + e];
        var b = e;
        var other = q_offset(step) + t.item * k;
        if (side == 1u) {
            b = bitcast<u32>(t.rating);
            other = p_offset(step) + t.user * k;
        }
        let g = scratch[g_offset(step) + b];
        for (var j = 0u; j < k; j++) {
            grads[own + j] += g * params[other + j];
        }
        grads[bias] += g;
    }
}
