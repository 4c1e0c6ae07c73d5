//! Pearson correlation, for comparing learned biases with planted ones. Included by path
//! (`#[path = "support/correlation.rs"] mod correlation;`) by the tests and by
//! `examples/synth_calibration.rs`, so that the one definition serves them all.

/// Pearson's correlation of `a` and `b` (same length), computed in f64.
pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let mean = |x: &[f32]| x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    sab / (saa * sbb).sqrt()
}
