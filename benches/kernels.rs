//! Each kernel alone, `cpu_*` next to `gpu_*`, at a realistic size: the ML-25M shape
//! (U = 162,541, I = 59,047, K = 64) with a batch of B = 65,536 (the `bench --preset ml-25m`
//! batch) and an evaluation set of 8 B. `COLLABGPU_BENCH_QUICK=1` shrinks it to the ML-100K shape
//! (U = 943, I = 1,682, K = 50) with B = 4,096, for a smoke run.
//!
//! Cases, one criterion group per kernel: `gather` (P and Q rows of the batch), `dot`,
//! `scatter_add` (both factor tables), `adamw` (dense, every parameter), `sgd` (sparse: claim, update
//! and release on the GPU; sort, dedup and update on the CPU), `forward_backward` (the fused step
//! up to the gradients: the CPU's composition of the single kernels beside the GPU's subgroup
//! kernel, where the adapter has `SUBGROUP`, and its one-thread-per-rating fallback; beside them
//! the same gradients without atomics, `segment_sums` on the batch sorted by row, and the host's
//! sort that it needs, `cpu_sort_for_segments`) and `eval`
//! (the validation sum of squared errors). Throughput is ratings per second (parameters per second for `adamw`) and bytes
//! per second of the kernel's main traffic.
//!
//! The GPU side runs through [`KernelHarness::run`], which submits and waits for the queue, so the
//! clock stops only after the GPU has finished. Each sample also pays one small uniform buffer, one
//! bind group and one submission: that is the per-dispatch overhead the training path amortises
//! over many batches per command buffer, so small sizes understate the kernels' own speed.
//! Without an adapter the `gpu_*` cases print why and are skipped.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use collabgpu::cpu::kernels as cpu;
use collabgpu::data::Ratings;
use collabgpu::gpu::buffers::{HarnessInputs, KernelHarness};
use collabgpu::gpu::kernels::{Kernel, Kernels};
use collabgpu::gpu::layout::{StepUniform, WORKGROUP, pack_triples, row_sorted_triples};
use collabgpu::gpu::{Device, GpuOptions};
use collabgpu::model::Params;
use collabgpu::train::StepHyper;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};

const Y_RANGE: Option<(f32, f32)> = Some((0.0, 5.5));

/// `U`, `I`, `K`, `B` and the evaluation set's size.
struct Size {
    users: usize,
    items: usize,
    factors: usize,
    batch: usize,
    eval: usize,
}

fn size() -> Size {
    if common::quick() {
        Size {
            users: 943,
            items: 1_682,
            factors: 50,
            batch: 4_096,
            eval: 8 * 4_096,
        }
    } else {
        Size {
            users: 162_541,
            items: 59_047,
            factors: 64,
            batch: 65_536,
            eval: 8 * 65_536,
        }
    }
}

/// Seeded inputs shared by both sides: parameters, gradients, and `eval` triples whose first `B`
/// are the batch.
struct Problem {
    size: Size,
    params: Params,
    grads: Vec<f32>,
    users: Vec<u32>,
    items: Vec<u32>,
    ratings: Vec<f32>,
    hyper: StepHyper,
}

impl Problem {
    fn new(size: Size) -> Problem {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let params = Params::init(size.users, size.items, size.factors, 0.1, 7);
        let n_params = (size.users + size.items) * (size.factors + 1);
        let grads = (0..n_params)
            .map(|_| rng.random_range(-1e-3..1e-3))
            .collect();
        let users = (0..size.eval)
            .map(|_| rng.random_range(0..size.users as u32))
            .collect();
        let items = (0..size.eval)
            .map(|_| rng.random_range(0..size.items as u32))
            .collect();
        let ratings = (0..size.eval)
            .map(|_| rng.random_range(1..=5) as f32)
            .collect();
        let hyper = StepHyper {
            t: 3,
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-5,
            wd: 0.1,
            l2: 0.0,
            step_size: 0.01 / (1.0 - 0.9f32.powi(3)),
            bias_correction2: 1.0 - 0.99f32.powi(3),
        };
        Problem {
            size,
            params,
            grads,
            users,
            items,
            ratings,
            hyper,
        }
    }

    fn batch_users(&self) -> &[u32] {
        &self.users[..self.size.batch]
    }

    fn batch_items(&self) -> &[u32] {
        &self.items[..self.size.batch]
    }

    fn param_count(&self) -> usize {
        self.grads.len()
    }

    /// The step record of the batch (`batch_len` = B), or of the evaluation set.
    fn step(&self, batch_len: usize) -> StepUniform {
        let s = &self.size;
        StepUniform::shape(s.users, s.items, s.factors, Y_RANGE, batch_len).with_batch(
            0,
            batch_len,
            0,
            &self.hyper,
        )
    }
}

/// The GPU side: one device, the kernels, and a harness holding the problem's buffers.
struct Gpu {
    device: Arc<Device>,
    kernels: Kernels,
    /// The same kernels with `forward_backward` one thread per rating, where `kernels` runs it a
    /// subgroup per rating (the adapter has `SUBGROUP`).
    thread_per_rating: Option<Kernels>,
    harness: KernelHarness,
    /// The same buffers but for the triples: the batch twice, sorted by user and by item
    /// (`row_sorted_triples`), for `segment_sums`.
    sorted: KernelHarness,
}

impl Gpu {
    fn new(problem: &Problem) -> Option<Gpu> {
        let device = common::gpu_device("kernels: gpu_*")?;
        eprintln!("kernels: gpu_* on {}", device.adapter_name());
        let kernels = Kernels::new(&device, &Default::default());
        let thread_per_rating = kernels.subgroups.then(|| {
            let options = GpuOptions {
                thread_per_rating: true,
                ..GpuOptions::default()
            };
            Kernels::new(&device, &options)
        });
        let flat = problem.params.tensors().concat();
        let n = flat.len();
        // Scratch sized for the batch: the single-op kernels' rows of B ratings; the evaluation
        // only keeps its EVAL_WORKGROUPS partial sums there (sized for the evaluation set, it
        // would pass the 128 MiB binding limit of adapters such as lavapipe).
        let scratch_len = problem.step(problem.size.batch).scratch_len();
        let inputs = HarnessInputs {
            params: flat,
            grads: problem.grads.clone(),
            first_moment: vec![0.0; n],
            second_moment: vec![0.0; n],
            triples: pack_triples(&problem.users, &problem.items, &problem.ratings),
            scratch: vec![0.1; scratch_len],
            // forward_backward's partial sums: one per workgroup of the batch.
            losses: vec![0.0; problem.size.batch.div_ceil(WORKGROUP as usize).max(4)],
            claims: vec![u32::MAX; problem.size.users + problem.size.items],
            counts: Vec::new(),
        };
        let harness = KernelHarness::new(&device, &inputs);
        let (b, users, items) = (
            problem.size.batch,
            problem.batch_users(),
            problem.batch_items(),
        );
        let sorted = HarnessInputs {
            triples: row_sorted_triples(users, items, &problem.ratings[..b]),
            ..inputs
        };
        let sorted = KernelHarness::new(&device, &sorted);
        Some(Gpu {
            device,
            kernels,
            thread_per_rating,
            harness,
            sorted,
        })
    }

    fn bench(
        &self,
        group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        sequence: &[Kernel],
        step: &StepUniform,
    ) {
        self.bench_with(group, name, &self.kernels, sequence, step);
    }

    fn bench_with(
        &self,
        group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        kernels: &Kernels,
        sequence: &[Kernel],
        step: &StepUniform,
    ) {
        group.bench_function(format!("gpu_{name}"), |b| {
            b.iter(|| {
                self.harness
                    .run(&self.device, kernels, sequence, step)
                    .expect("the GPU ran the kernel")
            })
        });
    }
}

fn kernels(c: &mut Criterion) {
    let problem = Problem::new(size());
    let gpu = Gpu::new(&problem);
    let s = &problem.size;
    let (b, k) = (s.batch, s.factors);
    let batch_step = problem.step(b);
    let elements = |n: usize, bytes: usize| Throughput::ElementsAndBytes {
        elements: n as u64,
        bytes: bytes as u64,
    };
    eprintln!(
        "kernels: U = {}, I = {}, K = {k}, B = {b}, evaluation N = {}",
        s.users, s.items, s.eval
    );

    // gather: 2 B rows of K floats read (random rows) and written.
    let mut group = c.benchmark_group("gather");
    group.throughput(elements(b, 2 * 2 * b * k * 4));
    let (mut pu, mut qi) = (vec![0.0f32; b * k], vec![0.0f32; b * k]);
    group.bench_function("cpu_gather", |bench| {
        bench.iter(|| {
            cpu::gather(
                &problem.params.user_factors,
                k,
                problem.batch_users(),
                &mut pu,
            );
            cpu::gather(
                &problem.params.item_factors,
                k,
                problem.batch_items(),
                &mut qi,
            );
            black_box((&pu, &qi));
        })
    });
    if let Some(gpu) = &gpu {
        gpu.bench(&mut group, "gather", &[Kernel::Gather], &batch_step);
    }
    group.finish();

    // dot: 2 B K floats read, B written.
    let mut group = c.benchmark_group("dot");
    group.throughput(elements(b, (2 * b * k + b) * 4));
    let mut x = vec![0.0f32; b];
    group.bench_function("cpu_dot", |bench| {
        bench.iter(|| {
            cpu::dot(&pu, &qi, k, &mut x);
            black_box(&x);
        })
    });
    if let Some(gpu) = &gpu {
        gpu.bench(&mut group, "dot", &[Kernel::Dot], &batch_step);
    }
    group.finish();

    // scatter_add: 2 B rows read from the gathered copies and added into random gradient rows.
    let mut group = c.benchmark_group("scatter_add");
    group.throughput(elements(b, 3 * 2 * b * k * 4));
    let g: Vec<f32> = (0..b).map(|n| (n % 7) as f32 * 1e-4).collect();
    let mut grad_p = vec![0.0f32; s.users * k];
    let mut grad_q = vec![0.0f32; s.items * k];
    group.bench_function("cpu_scatter_add", |bench| {
        bench.iter(|| {
            cpu::scatter_add(&mut grad_p, k, problem.batch_users(), &g, &qi);
            cpu::scatter_add(&mut grad_q, k, problem.batch_items(), &g, &pu);
            black_box((&grad_p, &grad_q));
        })
    });
    if let Some(gpu) = &gpu {
        gpu.bench(
            &mut group,
            "scatter_add",
            &[Kernel::ScatterAdd],
            &batch_step,
        );
    }
    group.finish();

    // adamw: every parameter; p, g, m, v read and p, m, v written.
    let mut group = c.benchmark_group("adamw");
    let n = problem.param_count();
    group.throughput(elements(n, 7 * n * 4));
    let mut flat = problem.params.tensors().concat();
    let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
    group.bench_function("cpu_adamw", |bench| {
        bench.iter(|| {
            cpu::adamw(&mut flat, &problem.grads, &mut m, &mut v, &problem.hyper);
            black_box(&flat);
        })
    });
    if let Some(gpu) = &gpu {
        gpu.bench(&mut group, "adamw", &[Kernel::Adamw], &batch_step);
    }
    group.finish();

    // sgd: the distinct rows of the batch, each read (p, g) and written once.
    let mut group = c.benchmark_group("sgd");
    group.throughput(elements(b, 2 * b * (k + 1) * 3 * 4));
    let mut params = problem.params.clone();
    let (gp, rest) = problem.grads.split_at(s.users * k);
    let (gq, rest) = rest.split_at(s.items * k);
    let (gbu, gbi) = rest.split_at(s.users);
    group.bench_function("cpu_sgd", |bench| {
        bench.iter(|| {
            let distinct = |indices: &[u32]| {
                let mut rows = indices.to_vec();
                rows.sort_unstable();
                rows.dedup();
                rows
            };
            let (du, di) = (
                distinct(problem.batch_users()),
                distinct(problem.batch_items()),
            );
            let h = &problem.hyper;
            cpu::sgd(&mut params.user_factors, gp, k, &du, h);
            cpu::sgd(&mut params.item_factors, gq, k, &di, h);
            cpu::sgd(&mut params.user_bias, gbu, 1, &du, h);
            cpu::sgd(&mut params.item_bias, gbi, 1, &di, h);
            black_box(&params);
        })
    });
    if let Some(gpu) = &gpu {
        gpu.bench(
            &mut group,
            "sgd",
            &[Kernel::SgdClaim, Kernel::Sgd, Kernel::SgdRelease],
            &batch_step,
        );
    }
    group.finish();

    // forward_backward: per rating two random rows of K floats and two biases read, the same
    // entries' gradients added to atomically (read and written), the triple read.
    let mut group = c.benchmark_group("forward_backward");
    group.throughput(elements(b, 3 * 2 * b * (k + 1) * 4 + 12 * b));
    let mut grads = problem.grads.clone();
    group.bench_function("cpu_forward_backward", |bench| {
        bench.iter(|| {
            let p = &problem.params;
            let (users, items) = (problem.batch_users(), problem.batch_items());
            cpu::gather(&p.user_factors, k, users, &mut pu);
            cpu::gather(&p.item_factors, k, items, &mut qi);
            cpu::dot(&pu, &qi, k, &mut x);
            cpu::bias_add(&mut x, &p.user_bias, &p.item_bias, users, items);
            let mut pred = vec![0.0f32; b];
            cpu::sigmoid_range(&x, Y_RANGE, &mut pred);
            let mut g = vec![0.0f32; b];
            let ratings = &problem.ratings[..b];
            let loss = cpu::mse_grad(&x, &pred, ratings, Y_RANGE, &mut g);
            let (dp, rest) = grads.split_at_mut(s.users * k);
            let (dq, rest) = rest.split_at_mut(s.items * k);
            let (dbu, dbi) = rest.split_at_mut(s.users);
            cpu::scatter_add(dp, k, users, &g, &qi);
            cpu::scatter_add(dq, k, items, &g, &pu);
            cpu::scatter_add_bias(dbu, users, &g);
            cpu::scatter_add_bias(dbi, items, &g);
            black_box((loss, &grads));
        })
    });
    if let Some(gpu) = &gpu {
        let name = match gpu.kernels.subgroups {
            true => "forward_backward_subgroup",
            false => "forward_backward_thread_per_rating",
        };
        gpu.bench(&mut group, name, &[Kernel::ForwardBackward], &batch_step);
        if let Some(kernels) = &gpu.thread_per_rating {
            gpu.bench_with(
                &mut group,
                "forward_backward_thread_per_rating",
                kernels,
                &[Kernel::ForwardBackward],
                &batch_step,
            );
        }
    }
    // The same gradients without atomics, from the batch sorted by user and by item: the host's
    // sort (what each batch would cost the host) and the two GPU dispatches on a sorted batch.
    let ratings = &problem.ratings[..b];
    group.bench_function("cpu_sort_for_segments", |bench| {
        bench.iter(|| {
            black_box(row_sorted_triples(
                problem.batch_users(),
                problem.batch_items(),
                ratings,
            ))
        })
    });
    if let Some(gpu) = &gpu {
        group.bench_function("gpu_segment_sums", |bench| {
            bench.iter(|| {
                gpu.sorted
                    .run(
                        &gpu.device,
                        &gpu.kernels,
                        &[Kernel::SegmentG, Kernel::SegmentSums],
                        &batch_step,
                    )
                    .expect("the GPU ran the kernels")
            })
        });
    }
    group.finish();

    // eval: N ratings, two random rows of K floats and two biases read per rating.
    let mut group = c.benchmark_group("eval");
    let n_eval = s.eval;
    group.throughput(elements(n_eval, n_eval * (2 * k + 2 + 3) * 4));
    let eval_set = Ratings {
        users: problem.users.clone(),
        items: problem.items.clone(),
        ratings: problem.ratings.clone(),
        timestamps: None,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    group.bench_function("cpu_eval_1_thread", |bench| {
        bench.iter(|| {
            black_box(collabgpu::cpu::backend::sum_squared_error(
                &pool,
                &problem.params,
                &eval_set,
                Y_RANGE,
            ))
        })
    });
    if let Some(gpu) = &gpu {
        gpu.bench(
            &mut group,
            "eval",
            &[Kernel::EvalPartial, Kernel::EvalFinish],
            &problem.step(n_eval),
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = kernels
}
criterion_main!(benches);
