// gather_triples.wgsl: one chunk's training triples gathered on the GPU from the resident training
// set by the epoch's order, twin of the CPU backend's `gather_triples` (`run = train[order]`).
// The training set is uploaded once per run (`gpu::queue::TrainSet`); per chunk only the order,
// 4 bytes a rating, crosses to the GPU. A training set larger than one binding is split into
// pieces, and the chunk is gathered by one dispatch per piece, each writing the entries whose
// index falls in its piece.
//
// Bindings (its own numbering and layout, `gpu::queue::GatherKernel`): 0 record (uniform,
//           `GatherRecord`), 1 order (read: the chunk's training-set indices), 2 piece (read: the
//           triples of training-set indices [first, first + piece_len)), 3 triples (write: the
//           chunk's triples, which the training kernels read at their binding 4).
// Dimensions: N = record.len entries of the chunk; one thread per entry, N threads.
//   triples[n] = piece[order[n] - first]   where first <= order[n] < first + piece_len
// Invariants: every order[n] lies in exactly one piece of the run's training set.

struct GatherRecord {
    len: u32,        // entries of the chunk's order
    first: u32,      // training-set index of the piece's first triple
    piece_len: u32,  // triples in the piece
    padding: u32,    // unused: keeps the record 16 bytes
}

@group(0) @binding(0) var<uniform> record: GatherRecord;
@group(0) @binding(1) var<storage, read> order: array<u32>;
@group(0) @binding(2) var<storage, read> piece: array<Triple>;
@group(0) @binding(3) var<storage, read_write> triples: array<Triple>;

@compute @workgroup_size(WORKGROUP)
fn gather_triples(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(wid, lid, nwg);
    if (n >= record.len) {
        return;
    }
    let index = order[n];
    if (index < record.first || index - record.first >= record.piece_len) {
        return;
    }
    triples[n] = piece[index - record.first];
}
