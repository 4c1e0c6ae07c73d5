//! The WGSL sources in `shaders/`, embedded at build time. Every kernel file is compiled after
//! `shaders/common.wgsl` (the `Step` record, the layouts and small helpers), so the runtime and the
//! portability test see exactly the same text.

/// The shared prelude prepended to every kernel.
pub const COMMON: &str = include_str!("../../shaders/common.wgsl");

/// Every kernel file: `(file stem, source without the prelude)`.
pub const KERNEL_FILES: [(&str, &str); 13] = [
    ("gather", include_str!("../../shaders/gather.wgsl")),
    ("dot", include_str!("../../shaders/dot.wgsl")),
    ("bias_add", include_str!("../../shaders/bias_add.wgsl")),
    (
        "sigmoid_range",
        include_str!("../../shaders/sigmoid_range.wgsl"),
    ),
    ("mse_grad", include_str!("../../shaders/mse_grad.wgsl")),
    (
        "scatter_add",
        include_str!("../../shaders/scatter_add.wgsl"),
    ),
    (
        "scatter_add_float_atomic",
        include_str!("../../shaders/scatter_add_float_atomic.wgsl"),
    ),
    ("adamw", include_str!("../../shaders/adamw.wgsl")),
    ("adamw_vec4", include_str!("../../shaders/adamw_vec4.wgsl")),
    (
        "forward_backward",
        include_str!("../../shaders/forward_backward.wgsl"),
    ),
    (
        "forward_backward_float_atomic",
        include_str!("../../shaders/forward_backward_float_atomic.wgsl"),
    ),
    ("sgd", include_str!("../../shaders/sgd.wgsl")),
    ("eval_sse", include_str!("../../shaders/eval_sse.wgsl")),
];

/// The full source of the kernel file `stem` (prelude + kernel), or `None` for an unknown name.
pub fn source(stem: &str) -> Option<String> {
    KERNEL_FILES
        .iter()
        .find(|(name, _)| *name == stem)
        .map(|(_, text)| format!("{COMMON}\n{text}"))
}

/// Whether the kernel file needs `SHADER_FLOAT32_ATOMIC` (and so has no HLSL translation).
pub fn needs_float_atomics(stem: &str) -> bool {
    stem.ends_with("_float_atomic")
}
