//! The host side of `shaders/common.wgsl`: the records the kernels read byte for byte
//! ([`StepUniform`], [`Triple`]), the shared binding table ([`binding`]), the buffer lengths the
//! layouts imply, and the workgroup sizes. The workgroup constants are the only source of those
//! numbers: `gpu::shaders::source` writes them into every kernel's prelude as WGSL `const`s of the
//! same names (see [`wgsl_constants`]), so a shader and its dispatch cannot disagree.
//!
//! This module depends on no other part of `gpu`; the device, the pipelines, the buffers and the
//! backend all build on it.

use crate::train::StepHyper;

/// Threads per workgroup of every per-element kernel (`@workgroup_size(WORKGROUP)`); the host
/// dispatches `div_ceil(threads, WORKGROUP)` workgroups. A power of two: `forward_backward` sums
/// each workgroup's squared errors as a tree.
pub const WORKGROUP: u32 = 64;

/// Threads of the one-workgroup tree reductions (`batch_loss`, `eval_partial`, `eval_finish`:
/// `@workgroup_size(REDUCTION_WORKGROUP)`); a power of two, so each halving step pairs every thread.
pub const REDUCTION_WORKGROUP: u32 = 256;

/// The most workgroups `eval_partial` runs (a chunk of `N` ratings runs [`eval_workgroups`] of
/// them): the partial sums the scratch buffer must hold and `eval_finish` adds up. Enough threads
/// (`EVAL_WORKGROUPS * REDUCTION_WORKGROUP`, 262,144) to fill a large GPU, where 64 workgroups
/// left most of it idle during an evaluation.
pub const EVAL_WORKGROUPS: u32 = 1024;

/// The workgroups `eval_partial` runs on a chunk of `n` ratings: one per `REDUCTION_WORKGROUP`
/// ratings, at least one, at most [`EVAL_WORKGROUPS`] (their threads then stride over the chunk).
/// `eval_sse.wgsl` computes the same number to know how many partial sums to add.
pub fn eval_workgroups(n: u32) -> u32 {
    n.div_ceil(REDUCTION_WORKGROUP).clamp(1, EVAL_WORKGROUPS)
}

// WebGPU guarantees 256 invocations per workgroup; the tree sums need a power of two.
const _: () = assert!(WORKGROUP <= 256 && REDUCTION_WORKGROUP <= 256);
const _: () = assert!(REDUCTION_WORKGROUP.is_power_of_two() && WORKGROUP.is_power_of_two());

/// The constants above as WGSL, the first lines of every kernel's source.
pub fn wgsl_constants() -> String {
    format!(
        "// Written by gpu::shaders from gpu::layout, the only source of these numbers.\n\
         const WORKGROUP: u32 = {WORKGROUP}u;\n\
         const REDUCTION_WORKGROUP: u32 = {REDUCTION_WORKGROUP}u;\n\
         const EVAL_WORKGROUPS: u32 = {EVAL_WORKGROUPS}u;\n"
    )
}

/// `struct Step` of shaders/common.wgsl, byte for byte.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepUniform {
    pub batch_start: u32,
    pub batch_len: u32,
    pub slot: u32,
    pub capacity: u32,
    pub users: u32,
    pub items: u32,
    pub factors: u32,
    pub has_y_range: u32,
    pub lo: f32,
    pub hi: f32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub wd: f32,
    pub step_size: f32,
    pub bias_correction2: f32,
    pub param_count: u32,
    /// The fused path's claim tag base for this batch (`sgd_apply`, `rowwise_adagrad_apply`,
    /// `sparse_adam_apply` find a row's owner from the tags, `adamw_vec4` which rows were
    /// touched); 0 means `forward_backward` claims no rows (and `adamw_vec4` reads every gradient).
    pub claim_base: u32,
    /// `λ` of SPEC "Scale"'s L2 per occurrence (`l2_grad`, or the fused optimiser when
    /// `fold_l2`).
    pub l2: f32,
    /// 1: the fused path adds the L2 term in the optimiser instead of a separate `l2_grad`
    /// dispatch: `forward_backward` counts each row's occurrences in the counts binding and the
    /// row's owner in `sgd_apply`, `sgd_apply_vec4` or `rowwise_adagrad_apply` adds
    /// `(2 λ n_r / B) p` to its gradient and zeroes the count. 0: no counting.
    pub fold_l2: u32,
    /// Unused: keeps the record 96 bytes, a multiple of 16 (uniform records of some backends).
    pub padding: [u32; 3],
}

impl StepUniform {
    /// The shape part of a step: `U`, `I`, `K`, the y-range and the batch capacity `C`.
    pub fn shape(
        users: usize,
        items: usize,
        factors: usize,
        y_range: Option<(f32, f32)>,
        capacity: usize,
    ) -> StepUniform {
        let (lo, hi) = y_range.unwrap_or((0.0, 0.0));
        StepUniform {
            capacity: capacity as u32,
            users: users as u32,
            items: items as u32,
            factors: factors as u32,
            has_y_range: y_range.is_some() as u32,
            lo,
            hi,
            param_count: ((users + items) * (factors + 1)) as u32,
            ..Default::default()
        }
    }

    /// This shape with one batch's position and optimiser hyperparameters filled in.
    pub fn with_batch(
        &self,
        batch_start: usize,
        batch_len: usize,
        slot: usize,
        hyper: &StepHyper,
    ) -> StepUniform {
        StepUniform {
            batch_start: batch_start as u32,
            batch_len: batch_len as u32,
            slot: slot as u32,
            lr: hyper.lr,
            beta1: hyper.beta1,
            beta2: hyper.beta2,
            eps: hyper.eps,
            wd: hyper.wd,
            step_size: hyper.step_size,
            bias_correction2: hyper.bias_correction2,
            l2: hyper.l2,
            ..*self
        }
    }

    /// Floats the scratch buffer needs for capacity `C`: `2*C*K + 4*C`, and at least the
    /// evaluation's partial sums.
    pub fn scratch_len(&self) -> usize {
        let c = self.capacity as usize;
        (2 * c * self.factors as usize + 4 * c).max(EVAL_WORKGROUPS as usize)
    }

    /// Floats the scratch buffer needs on the fused path, which keeps only x, pred, g, sq's
    /// region (`4*C`, the front of the layout): the gathered rows never leave the registers.
    pub fn fused_scratch_len(&self) -> usize {
        (4 * self.capacity as usize).max(EVAL_WORKGROUPS as usize)
    }
}

/// `len` floats rounded up to a multiple of 4: the length of the parameter, gradient and each
/// moment's buffer, so that `adamw_vec4` can read them as `vec4`.
pub fn padded_len(len: usize) -> usize {
    len.next_multiple_of(4)
}

/// `struct Triple` of shaders/common.wgsl: one rating as the GPU reads it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Triple {
    pub user: u32,
    pub item: u32,
    pub rating: f32,
}

/// Packs the three columns into GPU triples.
pub fn pack_triples(users: &[u32], items: &[u32], ratings: &[f32]) -> Vec<Triple> {
    users
        .iter()
        .zip(items)
        .zip(ratings)
        .map(|((&user, &item), &rating)| Triple { user, item, rating })
        .collect()
}

/// A batch as `shaders/segment_sums.wgsl` reads it: `2 B` triples, first the batch sorted stably by
/// user, then the same ratings sorted stably by item with each `rating` field holding the bits of
/// the rating's position in the first half (`f32::from_bits(b)`), where that kernel finds its `g`.
pub fn row_sorted_triples(users: &[u32], items: &[u32], ratings: &[f32]) -> Vec<Triple> {
    let mut by_user = pack_triples(users, items, ratings);
    by_user.sort_by_key(|t| t.user);
    let mut by_item: Vec<Triple> = by_user
        .iter()
        .enumerate()
        .map(|(b, t)| Triple {
            rating: f32::from_bits(b as u32),
            ..*t
        })
        .collect();
    by_item.sort_by_key(|t| t.item);
    by_user.extend(by_item);
    by_user
}

/// The binding numbers every kernel uses for the same buffers (see the headers in `shaders/`);
/// a kernel's layout holds the ones it declares.
pub mod binding {
    pub const STEP: u32 = 0;
    pub const PARAMS: u32 = 1;
    pub const GRADS: u32 = 2;
    /// Adam's first moment `m`, the parameters' size.
    pub const FIRST_MOMENT: u32 = 3;
    pub const TRIPLES: u32 = 4;
    pub const SCRATCH: u32 = 5;
    pub const LOSSES: u32 = 6;
    pub const CLAIMS: u32 = 7;
    /// Adam's second moment `v`, the parameters' size. Last, so the others kept their numbers
    /// when `m` and `v` stopped sharing one buffer (which bound twice the parameters' bytes).
    pub const SECOND_MOMENT: u32 = 8;
    /// Each row's occurrences in the batch (`U + I` u32s, zero between batches), counted by
    /// `forward_backward` for the optimisers that fold in the L2 term (`StepUniform::fold_l2`).
    pub const COUNTS: u32 = 9;
}

/// The most storage buffers one kernel may declare (each kernel's layout holds only the
/// bindings it declares; `gpu::shaders` tests that none declares more). The adapter's
/// `max_storage_buffers_per_shader_stage` must allow them (WebGPU guarantees 8; see
/// `Device::new`).
pub const STORAGE_BINDINGS: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_sorted_triples_hold_the_batch_by_user_then_by_item_pointing_back() {
        let users = [2, 0, 2, 1, 0];
        let items = [1, 1, 0, 2, 0];
        let ratings = [1.0, 2.0, 3.0, 4.0, 5.0];
        let sorted = row_sorted_triples(&users, &items, &ratings);
        let (by_user, by_item) = sorted.split_at(5);
        // Stable: equal users keep the batch's order.
        let firsts: Vec<(u32, f32)> = by_user.iter().map(|t| (t.user, t.rating)).collect();
        assert_eq!(firsts, [(0, 2.0), (0, 5.0), (1, 4.0), (2, 1.0), (2, 3.0)]);
        let seconds: Vec<(u32, u32)> = by_item
            .iter()
            .map(|t| (t.item, t.rating.to_bits()))
            .collect();
        assert_eq!(seconds, [(0, 1), (0, 4), (1, 0), (1, 3), (2, 2)]);
        for t in by_item {
            let back = by_user[t.rating.to_bits() as usize];
            assert_eq!((back.user, back.item), (t.user, t.item));
        }
    }

    #[test]
    fn records_have_the_sizes_the_shaders_expect() {
        assert_eq!(size_of::<StepUniform>(), 96, "struct Step in common.wgsl");
        assert_eq!(size_of::<StepUniform>() % 16, 0);
        assert_eq!(size_of::<Triple>(), 12, "struct Triple in common.wgsl");
    }

    #[test]
    fn evaluation_runs_a_workgroup_per_reduction_width_up_to_its_most() {
        assert_eq!(eval_workgroups(1), 1);
        assert_eq!(eval_workgroups(REDUCTION_WORKGROUP), 1);
        assert_eq!(eval_workgroups(REDUCTION_WORKGROUP + 1), 2);
        assert_eq!(eval_workgroups(u32::MAX), EVAL_WORKGROUPS);
    }

    #[test]
    fn wgsl_constants_carry_the_host_numbers() {
        let text = wgsl_constants();
        assert!(text.contains(&format!("const WORKGROUP: u32 = {WORKGROUP}u;")));
        assert!(text.contains(&format!(
            "const REDUCTION_WORKGROUP: u32 = {REDUCTION_WORKGROUP}u;"
        )));
        assert!(text.contains(&format!("const EVAL_WORKGROUPS: u32 = {EVAL_WORKGROUPS}u;")));
    }
}
