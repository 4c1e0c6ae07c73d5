// grad_add_cas.wgsl: the `grads` binding and `add_to_grad` for adapters without float atomics.
// Not a kernel: src/gpu/shaders.rs puts it between common.wgsl and a kernel that scatter-adds
// gradients (scatter_add.wgsl, forward_backward.wgsl), making the portable variant of that kernel;
// grad_add_float_atomic.wgsl makes the other. Every adapter can run this one (Vulkan, Metal, DX12,
// GL): a float is added through a compare-and-swap loop on its bits in an `atomic<u32>`.
//
// Bindings: 2 grads (read/write, as atomic<u32>).
// Invariant: `add_to_grad(index, value)` adds `value` to grads[index] exactly once, whatever other
// threads add to the same entry; the order of the additions is not fixed.

@group(0) @binding(2) var<storage, read_write> grads: array<atomic<u32>>;

fn add_to_grad(index: u32, value: f32) {
    var old = atomicLoad(&grads[index]);
    loop {
        let new_bits = bitcast<u32>(bitcast<f32>(old) + value);
        let result = atomicCompareExchangeWeak(&grads[index], old, new_bits);
        if (result.exchanged) {
            break;
        }
        old = result.old_value;
    }
}
