//! How much host memory a run will need, computed before anything large is allocated, and how
//! much the machine has: a run that cannot fit is refused with both figures and what to change,
//! instead of aborting minutes later ("memory allocation of 3631384208 bytes failed").
//!
//! The estimate is the peak of a run, in parts a user can act on, every part in bytes with
//! saturating arithmetic (a flag of `usize::MAX` gives a huge estimate, never an overflow):
//!
//! - `P = (U + I) (K + 1)` f32 parameters; `adamw` keeps two moments beside them (`S = 3P`),
//!   `sgd` none (`S = P`);
//! - the starting state `S`, the backend's own copy of it (the CPU adds a dense gradient for
//!   `adamw`), the trained state read back at the end `S`, and the bytes of the saved model or
//!   checkpoint (written from a copy of the state);
//! - the CPU's per-batch rows `2 B K` for `adamw`, and per training rating 16 bytes: the epoch's
//!   order (4) and the backend's copy of the training columns (12; the GPU's upload packs one
//!   part of them at a time, so the estimate is an upper bound there).
//!
//! Available memory is `MemAvailable` of `/proc/meminfo` on Linux (unknown elsewhere, and then
//! nothing is refused). `COLLABGPU_AVAILABLE_MEMORY=BYTES` replaces it: to keep a run well under
//! what the machine has, or to test the refusal.

use super::{OptimizerKind, TrainConfig};

/// The environment variable that overrides the available host memory, in bytes.
pub const AVAILABLE_MEMORY_VAR: &str = "COLLABGPU_AVAILABLE_MEMORY";

/// Where the parameters live while training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The CPU backend: a dense gradient beside the parameters (`adamw`) and per-batch rows.
    Cpu,
    /// A GPU backend: the host keeps only the starting and the read-back state.
    Gpu,
}

/// What a run needs, by part.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEstimate {
    /// `(what, bytes)`, for the message.
    pub parts: Vec<(String, u64)>,
}

impl MemoryEstimate {
    /// The sum of the parts.
    pub fn total(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |sum, (_, b)| sum.saturating_add(*b))
    }

    /// The host memory of training `config` on `users` x `items` with `train_ratings` training
    /// ratings; `checkpoints` when the run saves checkpoints (a second copy of the state at once).
    pub fn training(
        config: &TrainConfig,
        users: usize,
        items: usize,
        train_ratings: usize,
        placement: Placement,
        checkpoints: bool,
    ) -> MemoryEstimate {
        let f32s = |n: u64| n.saturating_mul(4);
        let k = config.factors as u64;
        let rows = (users as u64).saturating_add(items as u64);
        let params = f32s(rows.saturating_mul(k.saturating_add(1)));
        let adamw = config.optimizer == OptimizerKind::AdamW;
        let moments = config.optimizer.has_moments();
        // Adagrad's accumulators: one f32 per row of P and Q and one per bias entry.
        let row_sums = match config.optimizer.has_row_sums() {
            true => f32s(rows.saturating_mul(2)),
            false => 0,
        };
        let state = params
            .saturating_mul(if moments { 3 } else { 1 })
            .saturating_add(row_sums);
        let backend = match (placement, adamw) {
            // Parameters, gradient and both moments.
            (Placement::Cpu, true) => params.saturating_mul(4),
            // Parameters and the optimiser's state; gradients stay per batch.
            (Placement::Cpu, false) => state,
            (Placement::Gpu, _) => 0,
        };
        let batch = config.batch_size as u64;
        let batch_rows = match (placement, adamw) {
            (Placement::Cpu, true) => f32s(batch.saturating_mul(k).saturating_mul(2)),
            // The sparse step's per-batch buffers: a few words per rating.
            (Placement::Cpu, false) => batch.saturating_mul(64),
            (Placement::Gpu, _) => batch.saturating_mul(16),
        };
        let saving = match checkpoints {
            // A copy of the state, its tensors' bytes and the serialised file.
            true => state.saturating_mul(3),
            false => params.saturating_mul(3),
        };
        let mut parts = vec![
            (
                format!(
                    "starting parameters{} ((U + I) (K + 1) = {rows} x {} f32)",
                    match config.optimizer {
                        o if o.has_moments() => " and Adam's two moments",
                        o if o.has_row_sums() => " and Adagrad's row sums",
                        _ => "",
                    },
                    k.saturating_add(1)
                ),
                state,
            ),
            ("the trained state read back".to_string(), state),
            ("writing the model or checkpoint".to_string(), saving),
            (
                "the training ratings and their order".to_string(),
                (train_ratings as u64).saturating_mul(16),
            ),
        ];
        if backend > 0 {
            parts.insert(1, ("the CPU backend's copy".to_string(), backend));
        }
        if batch_rows > 0 {
            parts.push(("per-batch buffers (B = --bs)".to_string(), batch_rows));
        }
        MemoryEstimate { parts }
    }

    /// What a training run can change to need less.
    pub const TRAINING_ADVICE: &'static str = "Use a smaller --factors or --bs, --optimizer sgd \
        (no moments), or a machine with more memory";

    /// Refuses when the estimate exceeds what is available; `what` names the run ("train") and
    /// `advice` says what to change.
    pub fn check(&self, what: &str, advice: &str) -> Result<(), MemoryError> {
        let Some(available) = available_host_memory() else {
            return Ok(());
        };
        let need = self.total();
        if need <= available.bytes {
            return Ok(());
        }
        let parts = self
            .parts
            .iter()
            .map(|(name, bytes)| format!("{} for {name}", human_bytes(*bytes)))
            .collect::<Vec<_>>()
            .join(", ");
        Err(MemoryError {
            what: what.to_string(),
            need,
            available: available.bytes,
            measured_by: available.source,
            parts,
            advice: advice.to_string(),
        })
    }
}

/// A run that cannot fit in memory.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{what} needs about {} of host memory but {} is available ({measured_by}): {parts}. {advice}",
    human_bytes(*.need),
    human_bytes(*.available)
)]
pub struct MemoryError {
    pub what: String,
    pub need: u64,
    pub available: u64,
    /// Where `available` came from.
    pub measured_by: String,
    /// The estimate's parts, for the message.
    pub parts: String,
    /// What to change.
    pub advice: String,
}

/// Available host memory and where the figure came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Available {
    pub bytes: u64,
    pub source: String,
}

/// The host memory a run may use: [`AVAILABLE_MEMORY_VAR`] when set, else `MemAvailable` of
/// `/proc/meminfo`; `None` when neither says (then nothing is refused).
pub fn available_host_memory() -> Option<Available> {
    if let Ok(text) = std::env::var(AVAILABLE_MEMORY_VAR)
        && let Ok(bytes) = text.trim().parse::<u64>()
    {
        return Some(Available {
            bytes,
            source: format!("{AVAILABLE_MEMORY_VAR}={bytes}"),
        });
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = meminfo_available_kib(&meminfo)?;
    Some(Available {
        bytes: kib.saturating_mul(1024),
        source: "MemAvailable in /proc/meminfo".to_string(),
    })
}

/// `MemAvailable` of a `/proc/meminfo` text, in KiB.
fn meminfo_available_kib(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// `bytes` for people: `3.4 GiB`, `512.0 MiB`, `900 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_read_in_kib() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   22000000 kB\n";
        assert_eq!(meminfo_available_kib(text), Some(22_000_000));
        assert_eq!(meminfo_available_kib("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn the_issues_ml_25m_run_needs_tens_of_gigabytes() {
        // synthetic:ml-25m has 162541 users and 59047 items; K = 4096 with adamw.
        let config = TrainConfig {
            factors: 4096,
            ..TrainConfig::default()
        };
        let estimate =
            MemoryEstimate::training(&config, 162_541, 59_047, 20_000_000, Placement::Cpu, false);
        let params = (162_541u64 + 59_047) * 4097 * 4;
        // The starting state alone is three copies of the 3.6 GB that failed to allocate.
        assert!(estimate.total() > 10 * params, "{estimate:?}");
        assert!(estimate.total() < 20 * params, "{estimate:?}");
    }

    #[test]
    fn absurd_flags_saturate_instead_of_overflowing() {
        let config = TrainConfig {
            factors: usize::MAX,
            batch_size: usize::MAX,
            ..TrainConfig::default()
        };
        let estimate = MemoryEstimate::training(&config, 10, 10, 10, Placement::Cpu, true);
        assert_eq!(estimate.total(), u64::MAX);
    }

    #[test]
    fn sizes_read_for_people() {
        assert_eq!(human_bytes(900), "900 B");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }
}
