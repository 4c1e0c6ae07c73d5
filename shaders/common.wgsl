// common.wgsl: prepended by the host to every kernel in this folder (see `gpu::shaders::source`).
//
// Before it the host writes the workgroup sizes from `gpu::layout`, their only source:
//   WORKGROUP            threads per workgroup of the per-element kernels
//   REDUCTION_WORKGROUP  threads of the one-workgroup tree sums (a power of two)
//   EVAL_WORKGROUPS      the most workgroups of eval_partial, and of the partial sums it leaves in scratch
//
// One `Step` record per dispatch, read through a uniform binding with a dynamic offset, so that a
// command buffer can hold many batches and each batch finds its own slice of triples, its loss slot
// and its optimiser hyperparameters (precomputed on the host, SPEC "Optimisers").
//
// Glossary: B batch size (`batch_len`), K factors, U users, I items.
// Parameter layout (one flat f32 buffer, also for gradients and for each Adam moment, m and v in
// buffers of their own; every one padded with zeros to a multiple of 4 floats):
//   P  = [0, U*K)            user factors, row-major
//   Q  = [U*K, (U+I)*K)      item factors
//   bu = [(U+I)*K, +U)       user biases
//   bi = [(U+I)*K+U, +I)     item biases
// Scratch layout for a batch capacity C (C >= B), the per-rating scalars first so that the fused
// path (which keeps only sq) needs just the first 4*C floats:
//   x = [0, C)  pred = [C, 2C)  g = [2C, 3C)  sq = [3C, 4C)  pu = [4C, 4C + C*K)  qi = [+C*K)

struct Step {
    batch_start: u32,      // first triple of this batch in the bound triples chunk
    batch_len: u32,        // B of this batch (the last batch of an epoch may be short)
    slot: u32,             // where this batch writes its loss (index into `losses`; forward_backward's partial sums start there)
    capacity: u32,         // C, the batch capacity the scratch buffer is laid out for
    users: u32,            // U
    items: u32,            // I
    factors: u32,          // K
    has_y_range: u32,      // 1: pred = lo + (hi - lo) * sigmoid(x); 0: pred = x
    lo: f32,
    hi: f32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    wd: f32,
    step_size: f32,        // Adam's lr / (1 - beta1^t)
    bias_correction2: f32, // Adam's 1 - beta2^t
    param_count: u32,      // N = (U + I) * (K + 1)
    claim_base: u32,       // the fused path's tag base for this batch (0: forward_backward claims nothing, adamw_vec4 reads every gradient)
    l2: f32,               // lambda of SPEC "Scale"'s L2 per occurrence (l2_grad.wgsl); 0 without --l2
    fold_l2: u32,          // 1: forward_backward counts rows, the fused optimiser adds the L2 term (l2_factor)
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

struct Triple {
    user: u32,
    item: u32,
    rating: f32,
}

// Dispatches wider than the 65535-workgroup limit spill into y; this flattens them back.
fn thread_index(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WORKGROUP + lid.x;
}

fn p_offset(s: Step) -> u32 { return 0u; }
fn q_offset(s: Step) -> u32 { return s.users * s.factors; }
fn bu_offset(s: Step) -> u32 { return (s.users + s.items) * s.factors; }
fn bi_offset(s: Step) -> u32 { return (s.users + s.items) * s.factors + s.users; }

// The flat parameter index of entry j of one side of a rating's rows: side 0 the user's row of P
// (j < K) or its bias bu (j = K), side 1 the item's row of Q or bi. The kernels that run one thread
// per (side, b, j) of a batch (sparse_adam.wgsl, l2_grad.wgsl) find their entry with it.
fn row_entry(s: Step, side: u32, t: Triple, j: u32) -> u32 {
    if (side == 0u) {
        if (j < s.factors) {
            return p_offset(s) + t.user * s.factors + j;
        }
        return bu_offset(s) + t.user;
    }
    if (j < s.factors) {
        return q_offset(s) + t.item * s.factors + j;
    }
    return bi_offset(s) + t.item;
}

fn x_offset(s: Step) -> u32 { return 0u; }
fn pred_offset(s: Step) -> u32 { return s.capacity; }
fn g_offset(s: Step) -> u32 { return 2u * s.capacity; }
fn sq_offset(s: Step) -> u32 { return 3u * s.capacity; }
fn pu_offset(s: Step) -> u32 { return 4u * s.capacity; }
fn qi_offset(s: Step) -> u32 { return 4u * s.capacity + s.capacity * s.factors; }

// The L2 term's factor for a row that occurs n times in the batch, 2 λ n / B, in the CPU's order
// (`cpu::kernels::l2_factor`): a row's gradient gains l2_factor * p, entry by entry.
fn l2_factor(s: Step, n: u32) -> f32 {
    return 2.0 * s.l2 * f32(n) / f32(s.batch_len);
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// What a fused kernel needs of one rating once its x is known: the squared error and
// g = dL/dx, computed as sigmoid_range.wgsl and mse_grad.wgsl compute them.
struct RatingLoss {
    squared_error: f32,
    g: f32,
}

fn rating_loss(s: Step, x: f32, rating: f32) -> RatingLoss {
    var pred = x;
    if (s.has_y_range != 0u) {
        pred = s.lo + (s.hi - s.lo) * sigmoid(x);
    }
    let err = pred - rating;
    let scale = 2.0 / f32(s.batch_len);
    var g = scale * err;
    if (s.has_y_range != 0u) {
        let sig = sigmoid(x);
        g = scale * err * (s.hi - s.lo) * sig * (1.0 - sig);
    }
    return RatingLoss(err * err, g);
}
