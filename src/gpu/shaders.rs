//! The WGSL sources in `shaders/`, embedded at build time, and how they make kernels. Every kernel
//! is compiled after the workgroup constants of [`super::layout`] (written as WGSL `const`s, so the
//! Rust constants are their only source and each shader says `@workgroup_size(WORKGROUP)`) and
//! `shaders/common.wgsl` (the `Step` record, the layouts and small helpers); the kernels that
//! scatter-add gradients are compiled twice, once after each `grad_add_*.wgsl` piece (WGSL has no
//! preprocessor, so the one difference, how a float is added atomically, lives in its own file),
//! and the sparse optimisers that find a row's owner from the claims, and the `forward_backward`
//! kernels that leave those claims, come after `shaders/row_owner.wgsl` (after the `grad_add_*`
//! piece where both apply). The runtime and the portability test see exactly the same text.

use super::layout::wgsl_constants;

/// The shared prelude prepended to every kernel, after [`wgsl_constants`].
pub const COMMON: &str = include_str!("../../shaders/common.wgsl");

/// The `grads` binding and `add_to_grad` through a compare-and-swap loop (every adapter).
pub const GRAD_ADD_CAS: &str = include_str!("../../shaders/grad_add_cas.wgsl");

/// The `grads` binding and `add_to_grad` through native float atomics (`SHADER_FLOAT32_ATOMIC`).
pub const GRAD_ADD_FLOAT_ATOMIC: &str = include_str!("../../shaders/grad_add_float_atomic.wgsl");

/// The claims binding and which occurrence of a row owns its update (the sparse optimisers').
pub const ROW_OWNER: &str = include_str!("../../shaders/row_owner.wgsl");

/// The files of `shaders/` that are pieces of kernels rather than kernels.
pub const PIECE_FILES: [&str; 4] = [
    "common",
    "grad_add_cas",
    "grad_add_float_atomic",
    "row_owner",
];

/// Every kernel file: `(file stem, source without the pieces)`.
pub const KERNEL_FILES: [(&str, &str); 18] = [
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
    ("adamw", include_str!("../../shaders/adamw.wgsl")),
    ("adamw_vec4", include_str!("../../shaders/adamw_vec4.wgsl")),
    (
        "forward_backward",
        include_str!("../../shaders/forward_backward.wgsl"),
    ),
    (
        "forward_backward_subgroup",
        include_str!("../../shaders/forward_backward_subgroup.wgsl"),
    ),
    ("sgd", include_str!("../../shaders/sgd.wgsl")),
    ("sgd_vec4", include_str!("../../shaders/sgd_vec4.wgsl")),
    (
        "rowwise_adagrad",
        include_str!("../../shaders/rowwise_adagrad.wgsl"),
    ),
    (
        "sparse_adam",
        include_str!("../../shaders/sparse_adam.wgsl"),
    ),
    ("l2_grad", include_str!("../../shaders/l2_grad.wgsl")),
    ("eval_sse", include_str!("../../shaders/eval_sse.wgsl")),
    (
        "gather_triples",
        include_str!("../../shaders/gather_triples.wgsl"),
    ),
    (
        "segment_sums",
        include_str!("../../shaders/segment_sums.wgsl"),
    ),
];

/// The kernel files that scatter-add gradients: each is also compiled as `STEM_float_atomic`.
pub const GRAD_ADDERS: [&str; 4] = [
    "scatter_add",
    "forward_backward",
    "forward_backward_subgroup",
    "l2_grad",
];

/// The kernel files that come after [`ROW_OWNER`]: the sparse optimisers, and the
/// `forward_backward` kernels that leave the claims and counts they read.
pub const ROW_OWNERS: [&str; 6] = [
    "sgd",
    "rowwise_adagrad",
    "sparse_adam",
    "sgd_vec4",
    "forward_backward",
    "forward_backward_subgroup",
];

/// Suffix of the kernels compiled with native float atomics.
const FLOAT_ATOMIC: &str = "_float_atomic";

/// The kernel files that use subgroup operations, and so run only where the device has
/// `SUBGROUP`. They carry no `enable subgroups;`: naga 30 (wgpu 30) rejects that directive as
/// not yet supported and takes the subgroup built-ins without it, behind the `SUBGROUP` feature.
pub const SUBGROUP_KERNELS: [&str; 1] = ["forward_backward_subgroup"];

/// Every kernel the engine can compile: each kernel file, and each gradient adder's float-atomic
/// variant.
pub fn kernels() -> Vec<String> {
    let files = KERNEL_FILES.iter().map(|(stem, _)| stem.to_string());
    let variants = GRAD_ADDERS
        .iter()
        .map(|stem| format!("{stem}{FLOAT_ATOMIC}"));
    files.chain(variants).collect()
}

/// The full source of `kernel` (a kernel file stem, or a gradient adder's stem with
/// `_float_atomic`): the workgroup constants, `common.wgsl`, the `grad_add_*` piece for gradient
/// adders, `row_owner.wgsl` for the kernels of [`ROW_OWNERS`], then the kernel file. `None` for an
/// unknown name.
pub fn source(kernel: &str) -> Option<String> {
    let (stem, float_atomic) = match kernel.strip_suffix(FLOAT_ATOMIC) {
        Some(stem) => (stem, true),
        None => (kernel, false),
    };
    let (_, text) = KERNEL_FILES.iter().find(|(name, _)| *name == stem)?;
    let adds_grads = GRAD_ADDERS.contains(&stem);
    if float_atomic && !adds_grads {
        return None;
    }
    let constants = wgsl_constants();
    let mut pieces = vec![constants.as_str(), COMMON];
    if adds_grads {
        pieces.push(match float_atomic {
            true => GRAD_ADD_FLOAT_ATOMIC,
            false => GRAD_ADD_CAS,
        });
    }
    if ROW_OWNERS.contains(&stem) {
        pieces.push(ROW_OWNER);
    }
    pieces.push(text);
    Some(pieces.join("\n"))
}

/// Whether `kernel` needs `SHADER_FLOAT32_ATOMIC` (and so has no HLSL translation).
pub fn needs_float_atomics(kernel: &str) -> bool {
    kernel.ends_with(FLOAT_ATOMIC)
}

/// Whether `kernel` uses subgroup operations, and so runs only where the device has `SUBGROUP`.
pub fn needs_subgroups(kernel: &str) -> bool {
    let stem = kernel.strip_suffix(FLOAT_ATOMIC).unwrap_or(kernel);
    SUBGROUP_KERNELS.contains(&stem)
}

/// How a kernel declares one of its bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// `var<uniform>`: the step record.
    Uniform,
    /// `var<storage, read>`: the kernel only reads it.
    Read,
    /// `var<storage, read_write>`: the kernel may write it (atomics included).
    ReadWrite,
}

/// The bindings a kernel's full source (see [`source`]) declares, by binding number, with their
/// access: what its bind-group layout must say, entry for entry, since wgpu requires a layout's
/// access to equal the shader's. Read from the `@group(0) @binding(N) var<...>` lines, the only
/// way the files in `shaders/` declare bindings.
pub fn declared_bindings(source: &str) -> Vec<(u32, Access)> {
    let mut declared: Vec<(u32, Access)> = source
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("@group(0) @binding(")?;
            let (number, rest) = rest.split_once(')')?;
            let number = number.parse().ok()?;
            let access = if rest.contains("var<uniform>") {
                Access::Uniform
            } else if rest.contains("var<storage, read_write>") {
                Access::ReadWrite
            } else if rest.contains("var<storage, read>") {
                Access::Read
            } else {
                return None;
            };
            Some((number, access))
        })
        .collect();
    declared.sort_by_key(|&(number, _)| number);
    declared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_adders_differ_only_in_their_atomic_add() {
        for stem in GRAD_ADDERS {
            let portable = source(stem).unwrap();
            let native = source(&format!("{stem}_float_atomic")).unwrap();
            assert!(
                portable.contains("atomicCompareExchangeWeak")
                    && !portable.contains("atomicAdd(&grads")
            );
            assert!(
                native.contains("atomicAdd(&grads")
                    && !native.contains("atomicCompareExchangeWeak")
            );
            assert_eq!(
                portable.replace(GRAD_ADD_CAS, ""),
                native.replace(GRAD_ADD_FLOAT_ATOMIC, "")
            );
        }
        assert_eq!(source("gather_float_atomic"), None);
        assert!(needs_subgroups("forward_backward_subgroup_float_atomic"));
        assert!(!needs_subgroups("forward_backward"));
        assert_eq!(source("no_such_kernel"), None);
        assert_eq!(kernels().len(), KERNEL_FILES.len() + GRAD_ADDERS.len());
    }

    /// The workgroup sizes live in `gpu::layout` only: a number written into a shader would
    /// silently disagree with the dispatch the host computes the day one of them changes.
    #[test]
    fn shaders_take_their_workgroup_sizes_from_the_host_constants() {
        let files = KERNEL_FILES
            .iter()
            .copied()
            .chain([("common", COMMON), ("grad_add_cas", GRAD_ADD_CAS)])
            .chain([("grad_add_float_atomic", GRAD_ADD_FLOAT_ATOMIC)])
            .chain([("row_owner", ROW_OWNER)]);
        for (stem, text) in files {
            for (at, _) in text.match_indices("@workgroup_size(") {
                let size = &text[at + "@workgroup_size(".len()..];
                assert!(
                    size.starts_with("WORKGROUP)") || size.starts_with("REDUCTION_WORKGROUP)"),
                    "shaders/{stem}.wgsl: @workgroup_size takes WORKGROUP or REDUCTION_WORKGROUP"
                );
            }
            for name in ["WORKGROUP", "REDUCTION_WORKGROUP", "EVAL_WORKGROUPS"] {
                assert!(
                    !text.contains(&format!("const {name}:")),
                    "shaders/{stem}.wgsl defines {name}; gpu::layout writes it into every kernel"
                );
            }
        }
        for kernel in kernels() {
            assert!(source(&kernel).unwrap().starts_with(&wgsl_constants()));
        }
    }

    /// The layouts come from these declarations: a kernel that only reads the parameters says
    /// so, and one that writes them says that.
    #[test]
    fn declared_bindings_say_what_each_kernel_reads_and_writes() {
        use Access::*;
        assert_eq!(
            declared_bindings(&source("forward_backward").unwrap()),
            [
                (0, Uniform),
                (1, Read),
                (2, ReadWrite),
                (4, Read),
                (6, ReadWrite),
                (7, ReadWrite),
                (9, ReadWrite)
            ]
        );
        assert_eq!(
            declared_bindings(&source("sgd_vec4").unwrap()),
            [
                (0, Uniform),
                (1, ReadWrite),
                (2, ReadWrite),
                (4, Read),
                (7, ReadWrite),
                (9, ReadWrite)
            ]
        );
        for kernel in kernels() {
            let declared = declared_bindings(&source(&kernel).unwrap());
            let numbers: Vec<u32> = declared.iter().map(|&(n, _)| n).collect();
            let mut unique = numbers.clone();
            unique.dedup();
            assert_eq!(numbers, unique, "{kernel} declares a binding twice");
            assert!(
                declared.iter().filter(|(_, a)| *a != Uniform).count()
                    <= super::super::layout::STORAGE_BINDINGS as usize,
                "{kernel} declares more storage bindings than WebGPU guarantees"
            );
        }
    }
}
