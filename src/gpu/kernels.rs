//! One compute pipeline per WGSL entry point, each with the bind-group layout its source declares
//! (read-only where the kernel only reads), and how many workgroups each dispatch runs. The
//! records and the binding numbers they use are in [`super::layout`].

use super::device::{Device, GpuOptions};
use super::layout::{StepUniform, WORKGROUP, binding, eval_workgroups};
use super::shaders::{self, Access};
use crate::train::OptimizerKind;

/// Every kernel the engine dispatches. Names match the CPU twins in [`crate::cpu::kernels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    Gather,
    Dot,
    BiasAdd,
    SigmoidRange,
    MseGrad,
    BatchLoss,
    ScatterAdd,
    ScatterAddBias,
    Adamw,
    SgdClaim,
    Sgd,
    SgdRelease,
    EvalPartial,
    EvalFinish,
    /// The fused path: gather .. scatter-add (and the sgd claim) of one batch in one dispatch.
    ForwardBackward,
    /// The fused path's dense AdamW, four parameters per thread, reading only the gradients of
    /// the rows `forward_backward` claimed.
    AdamwVec4,
    /// The fused path's sparse SGD: owners found from `forward_backward`'s tagged claims.
    SgdApply,
    /// `SgdApply` with a row's factors moved as vec4s, for K a multiple of 4.
    SgdApplyVec4,
    /// L2 per occurrence (`--l2`), added to the gradients before any optimiser.
    L2Grad,
    /// Row-wise Adagrad on the single-op path, between `SgdClaim` and `SgdRelease`.
    RowwiseAdagrad,
    /// The fused path's row-wise Adagrad, on `forward_backward`'s tagged claims.
    RowwiseAdagradApply,
    /// Lazy Adam on the single-op path, between `SgdClaim` and `SgdRelease`.
    SparseAdam,
    /// The fused path's lazy Adam, on `forward_backward`'s tagged claims.
    SparseAdamApply,
    /// Each rating's `g` of a batch sorted by row (`shaders/segment_sums.wgsl`): the first half
    /// of the gradients without atomics, measured against `ForwardBackward`, not trained with.
    SegmentG,
    /// Each row's gradient summed over its segment of the sorted batch, after `SegmentG`.
    SegmentSums,
}

impl Kernel {
    pub const ALL: [Kernel; 25] = [
        Kernel::Gather,
        Kernel::Dot,
        Kernel::BiasAdd,
        Kernel::SigmoidRange,
        Kernel::MseGrad,
        Kernel::BatchLoss,
        Kernel::ScatterAdd,
        Kernel::ScatterAddBias,
        Kernel::Adamw,
        Kernel::SgdClaim,
        Kernel::Sgd,
        Kernel::SgdRelease,
        Kernel::EvalPartial,
        Kernel::EvalFinish,
        Kernel::ForwardBackward,
        Kernel::AdamwVec4,
        Kernel::SgdApply,
        Kernel::SgdApplyVec4,
        Kernel::L2Grad,
        Kernel::RowwiseAdagrad,
        Kernel::RowwiseAdagradApply,
        Kernel::SparseAdam,
        Kernel::SparseAdamApply,
        Kernel::SegmentG,
        Kernel::SegmentSums,
    ];

    /// `(shader file stem, entry point)`; the gradient adders (scatter-adds, `forward_backward`,
    /// `l2_grad`) name the portable file, and `forward_backward` its one-thread-per-rating file
    /// (where the device has `SUBGROUP`, [`Kernels::new`] compiles `forward_backward_subgroup`).
    pub fn entry(self) -> (&'static str, &'static str) {
        match self {
            Kernel::Gather => ("gather", "gather"),
            Kernel::Dot => ("dot", "dot"),
            Kernel::BiasAdd => ("bias_add", "bias_add"),
            Kernel::SigmoidRange => ("sigmoid_range", "sigmoid_range"),
            Kernel::MseGrad => ("mse_grad", "mse_grad"),
            Kernel::BatchLoss => ("mse_grad", "batch_loss"),
            Kernel::ScatterAdd => ("scatter_add", "scatter_add"),
            Kernel::ScatterAddBias => ("scatter_add", "scatter_add_bias"),
            Kernel::Adamw => ("adamw", "adamw"),
            Kernel::SgdClaim => ("sgd", "sgd_claim"),
            Kernel::Sgd => ("sgd", "sgd"),
            Kernel::SgdRelease => ("sgd", "sgd_release"),
            Kernel::EvalPartial => ("eval_sse", "eval_partial"),
            Kernel::EvalFinish => ("eval_sse", "eval_finish"),
            Kernel::ForwardBackward => ("forward_backward", "forward_backward"),
            Kernel::AdamwVec4 => ("adamw_vec4", "adamw_vec4"),
            Kernel::SgdApply => ("sgd", "sgd_apply"),
            Kernel::SgdApplyVec4 => ("sgd_vec4", "sgd_apply_vec4"),
            Kernel::L2Grad => ("l2_grad", "l2_grad"),
            Kernel::RowwiseAdagrad => ("rowwise_adagrad", "rowwise_adagrad"),
            Kernel::RowwiseAdagradApply => ("rowwise_adagrad", "rowwise_adagrad_apply"),
            Kernel::SparseAdam => ("sparse_adam", "sparse_adam"),
            Kernel::SparseAdamApply => ("sparse_adam", "sparse_adam_apply"),
            Kernel::SegmentG => ("segment_sums", "segment_g"),
            Kernel::SegmentSums => ("segment_sums", "segment_sums"),
        }
    }

    /// The workgroups to dispatch for `step`: `div_ceil` of the thread count by the workgroup
    /// size, spilling into y past the adapter's per-dimension limit.
    pub fn workgroups(self, step: &StepUniform, max_per_dimension: u32) -> (u32, u32) {
        let b = step.batch_len as u64;
        let k = step.factors as u64;
        let threads = match self {
            Kernel::Gather | Kernel::ScatterAdd => 2 * b * k,
            Kernel::Dot
            | Kernel::BiasAdd
            | Kernel::SigmoidRange
            | Kernel::MseGrad
            | Kernel::ForwardBackward
            | Kernel::SegmentG => b,
            Kernel::ScatterAddBias
            | Kernel::SgdClaim
            | Kernel::SgdRelease
            | Kernel::SgdApply
            | Kernel::SgdApplyVec4
            | Kernel::RowwiseAdagrad
            | Kernel::RowwiseAdagradApply
            | Kernel::SegmentSums => 2 * b,
            Kernel::Sgd | Kernel::L2Grad | Kernel::SparseAdam | Kernel::SparseAdamApply => {
                2 * b * (k + 1)
            }
            Kernel::AdamwVec4 => (step.param_count as u64).div_ceil(4),
            Kernel::Adamw => step.param_count as u64,
            Kernel::BatchLoss | Kernel::EvalFinish => return (1, 1),
            Kernel::EvalPartial => return (eval_workgroups(step.batch_len), 1),
        };
        let groups = threads.div_ceil(WORKGROUP as u64).max(1);
        let x = groups.min(max_per_dimension as u64);
        (x as u32, groups.div_ceil(x) as u32)
    }
}

/// The buffers a training step's bind groups point at, one per binding of the shared numbering
/// ([`binding`]); each kernel's bind group takes the ones its source declares.
#[derive(Debug, Clone, Copy)]
pub struct Bindings<'a> {
    /// Holds `StepUniform` records at multiples of [`Kernels::step_stride`].
    pub steps: &'a wgpu::Buffer,
    pub params: &'a wgpu::Buffer,
    pub grads: &'a wgpu::Buffer,
    /// Adam's `m`, or `rowwise-adagrad`'s row sums (16 bytes for `sgd`, a binding may not be
    /// empty).
    pub first_moment: &'a wgpu::Buffer,
    /// Adam's `v`, likewise.
    pub second_moment: &'a wgpu::Buffer,
    pub triples: &'a wgpu::Buffer,
    pub scratch: &'a wgpu::Buffer,
    pub losses: &'a wgpu::Buffer,
    pub claims: &'a wgpu::Buffer,
    /// `U + I` u32s, zero between batches (see [`binding::COUNTS`]).
    pub counts: &'a wgpu::Buffer,
}

impl<'a> Bindings<'a> {
    /// The buffer at binding number `number` of the shared numbering.
    fn buffer(&self, number: u32) -> &'a wgpu::Buffer {
        match number {
            binding::STEP => self.steps,
            binding::PARAMS => self.params,
            binding::GRADS => self.grads,
            binding::FIRST_MOMENT => self.first_moment,
            binding::SECOND_MOMENT => self.second_moment,
            binding::TRIPLES => self.triples,
            binding::SCRATCH => self.scratch,
            binding::LOSSES => self.losses,
            binding::CLAIMS => self.claims,
            binding::COUNTS => self.counts,
            _ => unreachable!("shaders/ declare only the bindings of gpu::layout::binding"),
        }
    }
}

/// One bind-group layout: the bindings some kernels declare, with their access.
#[derive(Debug)]
struct Layout {
    declared: Vec<(u32, Access)>,
    bind_group_layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
}

impl Layout {
    /// The bind-group and pipeline layouts for `declared`: the step record as a uniform with a
    /// dynamic offset (many batches' records in one buffer), the rest storage buffers, read-only
    /// where the kernels declare them so.
    fn new(gpu: &wgpu::Device, declared: Vec<(u32, Access)>) -> Layout {
        let entries: Vec<wgpu::BindGroupLayoutEntry> = declared
            .iter()
            .map(|&(number, access)| wgpu::BindGroupLayoutEntry {
                binding: number,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match access {
                        Access::Uniform => wgpu::BufferBindingType::Uniform,
                        Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: access == Access::Uniform,
                    min_binding_size: match access {
                        Access::Uniform => wgpu::BufferSize::new(size_of::<StepUniform>() as u64),
                        _ => None,
                    },
                },
                count: None,
            })
            .collect();
        let bind_group_layout = gpu.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("collabgpu step"),
            entries: &entries,
        });
        let pipeline_layout = gpu.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("collabgpu step"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        Layout {
            declared,
            bind_group_layout,
            pipeline_layout,
        }
    }
}

/// The bind groups of one set of [`Bindings`], one per layout of [`Kernels`] (see
/// [`Kernels::bind_groups`]).
#[derive(Debug)]
pub struct BindGroups(Vec<wgpu::BindGroup>);

/// The compiled pipelines and their layouts. Built once per device.
///
/// Every kernel's layout holds exactly the bindings its source declares, with the declared
/// access ([`shaders::declared_bindings`]): a kernel that only reads a buffer (the parameters in
/// `forward_backward`, `eval_sse`, `l2_grad`) binds it read-only, which the driver may serve
/// through its read-only cache path and need not order against other reads. Kernels that
/// declare the same bindings share a layout; a step sets a bind group only when the next
/// kernel's layout differs from the last one's (the fused step: two).
#[derive(Debug)]
pub struct Kernels {
    layouts: Vec<Layout>,
    /// Each kernel, the index of its layout in `layouts`, and its pipeline.
    pipelines: Vec<(Kernel, usize, wgpu::ComputePipeline)>,
    /// Bytes between two `StepUniform` records (the adapter's uniform offset alignment).
    pub step_stride: u64,
    max_per_dimension: u32,
    /// Whether scatter-adds use native float atomics (else the compare-and-swap loop).
    pub float_atomics: bool,
    /// Whether `forward_backward` runs a subgroup per rating
    /// (`shaders/forward_backward_subgroup.wgsl`, else one thread per rating).
    pub subgroups: bool,
}

impl Kernels {
    /// Compiles every kernel. Scatter-adds use native float atomics when the device has them,
    /// unless `options.force_cas_atomics`; `forward_backward` runs a subgroup per rating when the
    /// device has `SUBGROUP`, unless `options.thread_per_rating`. The dispatches are the same
    /// either way.
    pub fn new(device: &Device, options: &GpuOptions) -> Kernels {
        let float_atomics = device.has_float_atomics() && !options.force_cas_atomics;
        let subgroups = device.has_subgroups() && !options.thread_per_rating;
        let gpu = &device.device;
        let mut layouts: Vec<Layout> = Vec::new();
        let mut modules = std::collections::HashMap::new();
        let mut pipelines = Vec::new();
        for kernel in Kernel::ALL {
            let (file, entry) = kernel.entry();
            let file = match (kernel, subgroups) {
                (Kernel::ForwardBackward, true) => "forward_backward_subgroup",
                _ => file,
            };
            let stem = match float_atomics && shaders::GRAD_ADDERS.contains(&file) {
                true => format!("{file}_float_atomic"),
                false => file.to_string(),
            };
            let (module, declared) = modules.entry(stem).or_insert_with_key(|stem| {
                let source = shaders::source(stem).expect("every kernel names a file in shaders/");
                let declared = shaders::declared_bindings(&source);
                let module = gpu.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(stem.as_str()),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
                (module, declared)
            });
            let layout = match layouts.iter().position(|l| l.declared == *declared) {
                Some(index) => index,
                None => {
                    layouts.push(Layout::new(gpu, declared.clone()));
                    layouts.len() - 1
                }
            };
            let pipeline = gpu.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&layouts[layout].pipeline_layout),
                module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
            pipelines.push((kernel, layout, pipeline));
        }
        let limits = gpu.limits();
        let align = limits.min_uniform_buffer_offset_alignment as u64;
        Kernels {
            layouts,
            pipelines,
            step_stride: (size_of::<StepUniform>() as u64).div_ceil(align) * align,
            max_per_dimension: limits.max_compute_workgroups_per_dimension,
            float_atomics,
            subgroups,
        }
    }

    /// The bind groups over `buffers`, one per layout.
    pub fn bind_groups(&self, device: &Device, buffers: &Bindings<'_>) -> BindGroups {
        let groups = self.layouts.iter().map(|layout| {
            let entries: Vec<wgpu::BindGroupEntry<'_>> = layout
                .declared
                .iter()
                .map(|&(number, access)| wgpu::BindGroupEntry {
                    binding: number,
                    resource: match access {
                        Access::Uniform => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: buffers.buffer(number),
                            offset: 0,
                            size: wgpu::BufferSize::new(size_of::<StepUniform>() as u64),
                        }),
                        Access::Read | Access::ReadWrite => {
                            buffers.buffer(number).as_entire_binding()
                        }
                    },
                })
                .collect();
            device.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("collabgpu step"),
                layout: &layout.bind_group_layout,
                entries: &entries,
            })
        });
        BindGroups(groups.collect())
    }

    /// How many distinct layouts the kernels use (each [`BindGroups`] holds as many groups).
    pub fn layout_count(&self) -> usize {
        self.layouts.len()
    }

    /// Records `kernel` for the step record at `step_index` (its byte offset is
    /// `step_index * step_stride`) into `pass`.
    pub fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        kernel: Kernel,
        bind_groups: &BindGroups,
        step_index: usize,
        step: &StepUniform,
    ) {
        self.dispatch_step(pass, &[kernel], bind_groups, step_index, step);
    }

    /// Records one batch: for each kernel in turn, sets its bind group at the step record
    /// `step_index` when its layout differs from the previous kernel's (a bind group survives
    /// pipeline changes between pipelines of one layout), then its pipeline, then dispatches it.
    pub fn dispatch_step(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        sequence: &[Kernel],
        bind_groups: &BindGroups,
        step_index: usize,
        step: &StepUniform,
    ) {
        let offset = (step_index as u64 * self.step_stride) as u32;
        let mut bound = None;
        for &kernel in sequence {
            let (layout, pipeline) = self.pipeline(kernel);
            if bound != Some(layout) {
                pass.set_bind_group(0, &bind_groups.0[layout], &[offset]);
                bound = Some(layout);
            }
            pass.set_pipeline(pipeline);
            let (x, y) = kernel.workgroups(step, self.max_per_dimension);
            pass.dispatch_workgroups(x, y, 1);
        }
    }

    /// `kernel`'s layout index and pipeline.
    fn pipeline(&self, kernel: Kernel) -> (usize, &wgpu::ComputePipeline) {
        self.pipelines
            .iter()
            .find(|(k, _, _)| *k == kernel)
            .map(|(_, layout, pipeline)| (*layout, pipeline))
            .expect("every kernel has a pipeline")
    }

    /// The layout index `kernel` binds through (kernels with equal declarations share one).
    pub fn layout_of(&self, kernel: Kernel) -> usize {
        self.pipeline(kernel).0
    }

    /// The step records laid out at `step_stride` for upload.
    pub fn step_bytes(&self, steps: &[StepUniform]) -> Vec<u8> {
        let stride = self.step_stride as usize;
        let mut bytes = vec![0u8; steps.len().max(1) * stride];
        for (s, step) in steps.iter().enumerate() {
            bytes[s * stride..s * stride + size_of::<StepUniform>()]
                .copy_from_slice(bytemuck::bytes_of(step));
        }
        bytes
    }

    /// The training kernels of one batch, in order, for `optimizer`, with `l2_grad` before the
    /// optimiser when `l2` (SPEC "Scale"'s L2 per occurrence is on). The sparse optimisers find the
    /// rows they own through `sgd_claim` and free them with `sgd_release`.
    pub fn train_step(optimizer: OptimizerKind, l2: bool) -> Vec<Kernel> {
        use Kernel::*;
        let mut sequence = vec![
            Gather,
            Dot,
            BiasAdd,
            SigmoidRange,
            MseGrad,
            BatchLoss,
            ScatterAdd,
            ScatterAddBias,
        ];
        if l2 {
            sequence.push(L2Grad);
        }
        sequence.extend_from_slice(match optimizer {
            OptimizerKind::AdamW => &[Adamw][..],
            OptimizerKind::Sgd => &[SgdClaim, Sgd, SgdRelease],
            OptimizerKind::RowwiseAdagrad => &[SgdClaim, RowwiseAdagrad, SgdRelease],
            OptimizerKind::SparseAdam => &[SgdClaim, SparseAdam, SgdRelease],
        });
        sequence
    }

    /// Whether `optimizer`'s fused kernel adds the L2 term itself (`StepUniform::fold_l2`): the
    /// ones where one thread moves a whole row (`sgd_apply`, `sgd_apply_vec4`,
    /// `rowwise_adagrad_apply`), which can read and zero the row's count alone. `adamw_vec4` and
    /// `sparse_adam_apply` move a row from several threads, so they keep `l2_grad`.
    pub fn folds_l2(optimizer: OptimizerKind) -> bool {
        matches!(
            optimizer,
            OptimizerKind::Sgd | OptimizerKind::RowwiseAdagrad
        )
    }

    /// The fused training kernels of one batch: `forward_backward` (which also leaves the batch
    /// loss's partial sums), `l2_grad` when `l2` and the optimiser does not fold it in
    /// ([`Kernels::folds_l2`]), and the optimiser; two dispatches (three with `l2` for `adamw`
    /// and `sparse-adam`) instead of nine (`adamw`) or eleven (the sparse optimisers). Every optimiser here
    /// needs the step's `claim_base` set and the claims buffer below it (see shaders/sgd.wgsl):
    /// the sparse ones find each row's owner from the tags, `adamw_vec4` the rows it must read
    /// gradients for. `sgd` moves rows as vec4s when `factors` (K) is a multiple of 4, which
    /// aligns every row of P and Q to a vec4.
    pub fn fused_train_step(optimizer: OptimizerKind, l2: bool, factors: u32) -> Vec<Kernel> {
        use Kernel::*;
        let mut sequence = vec![ForwardBackward];
        if l2 && !Kernels::folds_l2(optimizer) {
            sequence.push(L2Grad);
        }
        sequence.push(match optimizer {
            OptimizerKind::AdamW => AdamwVec4,
            OptimizerKind::Sgd if factors.is_multiple_of(4) => SgdApplyVec4,
            OptimizerKind::Sgd => SgdApply,
            OptimizerKind::RowwiseAdagrad => RowwiseAdagradApply,
            OptimizerKind::SparseAdam => SparseAdamApply,
        });
        sequence
    }
}
