// grad_add_float_atomic.wgsl: the `grads` binding and `add_to_grad` with native float atomics.
// Not a kernel: src/gpu/shaders.rs puts it between common.wgsl and a kernel that scatter-adds
// gradients (scatter_add.wgsl, forward_backward.wgsl), making the `_float_atomic` variant of that
// kernel, which runs where the adapter has `SHADER_FLOAT32_ATOMIC` (Vulkan with
// VK_EXT_shader_atomic_float, e.g. lavapipe and most desktop GPUs; Metal 3 on Apple7+/Mac2). Not
// expressible in HLSL (DX12), which has no float atomic add on buffers; grad_add_cas.wgsl runs
// there.
//
// Bindings: 2 grads (read/write, as atomic<f32>).
// Invariant: as grad_add_cas.wgsl.

@group(0) @binding(2) var<storage, read_write> grads: array<atomic<f32>>;

fn add_to_grad(index: u32, value: f32) {
    atomicAdd(&grads[index], value);
}
