//! Experiment: one `sgd` epoch on a synthetic preset, timed by the epoch loop, several times in one
//! process so that two builds (or settings) can alternate on the same data. This is how the
//! side-by-side figures of BENCHMARKS.md ("CPU sgd at scale, second round") were taken.
//!
//!     cargo build --release --example sgd_epoch
//!     printf 'threads=2\nthreads=1 bs=1024 lr=3.125\n' | target/release/examples/sgd_epoch ml-25m
//!
//! Each line of standard input is one run: `threads=`, `bs=`, `lr=`, `factors=` (defaults 2,
//! 65,536, 200 and 64: the `bench --preset ml-25m` recipe). The validation set is cut to 1,000
//! ratings, since only the training steps are timed.
use collabgpu::cpu::CpuBackend;
use collabgpu::data::split::{SplitKind, split};
use collabgpu::data::synth::{Preset, generate};
use collabgpu::train::{self, OptimizerKind, ScheduleKind, TrainConfig};

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "ml-25m".into());
    let preset = Preset::from_name(&name).expect("a preset: ml-100k, ml-1m or ml-25m");
    let synthetic = generate(preset, 42).expect("the generator runs");
    let dataset = &synthetic.dataset;
    let (train_set, valid_set) = split(&dataset.ratings, SplitKind::Random, 0.2, 42).unwrap();
    let valid_set = valid_set.select(&(0..1000u32.min(valid_set.len() as u32)).collect::<Vec<_>>());
    for line in std::io::stdin().lines() {
        let line = line.unwrap();
        let mut config = TrainConfig {
            optimizer: OptimizerKind::Sgd,
            schedule: ScheduleKind::Constant,
            factors: 64,
            batch_size: 65_536,
            lr: 200.0,
            wd: 0.0,
            epochs: 1,
            seed: 42,
            ..TrainConfig::default()
        };
        let mut threads = 2;
        for setting in line.split_whitespace() {
            let (key, value) = setting.split_once('=').expect("key=value");
            match key {
                "threads" => threads = value.parse().unwrap(),
                "bs" => config.batch_size = value.parse().unwrap(),
                "lr" => config.lr = value.parse().unwrap(),
                "factors" => config.factors = value.parse().unwrap(),
                _ => panic!("unknown setting {key}"),
            }
        }
        let state = train::initial_state(&config, dataset.users.len(), dataset.items.len());
        let mut backend = CpuBackend::new(threads).unwrap();
        let report = train::train(
            &mut backend,
            &config,
            &state,
            &train_set,
            &valid_set,
            &mut |_| {},
        )
        .unwrap();
        let epoch = &report.epochs[0];
        println!(
            "{line}: {:.3} M ratings/s, {:.3} s, train loss {}",
            epoch.ratings_per_second / 1e6,
            epoch.seconds,
            epoch.train_loss
        );
    }
}
