//! Principal components of item factors, by hand.
//!
//! For small `K` (at most [`EXACT_MAX_FACTORS`]) the `K x K` covariance of the rows is formed and
//! all its eigenvectors found by cyclic Jacobi rotations: exact, and it never fails to converge on
//! a symmetric matrix. Jacobi costs `O(K^3)` time and the covariance `O(K^2)` memory, so a model of
//! K = 1500 would take minutes and one claiming K = 30000 gigabytes; above that size only the few
//! components asked for are found, by subspace iteration (block power iteration with
//! Rayleigh-Ritz) on the covariance applied implicitly (`C v = X^T (X v) / n` over the centred
//! rows), which costs `O(n K)` memory-free work per step and never forms `C`.

/// The largest `K` whose covariance is formed and diagonalised exactly.
pub const EXACT_MAX_FACTORS: usize = 128;

/// Most subspace-iteration steps; each costs `2 n K p` flops, so the bound keeps `plot` in seconds.
const MAX_ITERATIONS: usize = 300;

/// Stop when every wanted Ritz pair has a residual `|C v - theta v|` below this share of the
/// largest eigenvalue.
const RESIDUAL_TOLERANCE: f64 = 1e-9;

/// The principal axes of a set of `K`-dimensional points.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// The mean point, subtracted before projecting.
    pub mean: Vec<f64>,
    /// Unit axes, largest variance first; each has `K` entries and its largest-magnitude entry
    /// positive, so the picture does not flip between runs.
    pub components: Vec<Vec<f64>>,
    /// The variance along each axis (the covariance's eigenvalues), same order.
    pub variances: Vec<f64>,
    /// The total variance of the points (the covariance's trace), to say what share each axis has.
    pub total_variance: f64,
}

impl Pca {
    /// Fits `count` axes to the rows `rows` (row-major, `k` columns) at indices `which`: exactly
    /// for `k <=` [`EXACT_MAX_FACTORS`], by subspace iteration above.
    ///
    /// # Panics
    /// When `k` is 0 or an index is out of range.
    pub fn fit(rows: &[f32], k: usize, which: &[u32], count: usize) -> Pca {
        match k <= EXACT_MAX_FACTORS {
            true => Pca::fit_exact(rows, k, which, count),
            false => Pca::fit_iterative(rows, k, which, count),
        }
    }

    /// [`Pca::fit`] by the full covariance and Jacobi rotations, whatever `k`: `O(K^3)`.
    pub fn fit_exact(rows: &[f32], k: usize, which: &[u32], count: usize) -> Pca {
        assert!(k > 0, "points need at least one dimension");
        let n = which.len().max(1) as f64;
        let row = |i: u32| &rows[i as usize * k..][..k];
        let mean = mean_of(rows, k, which);
        let mut covariance = vec![0.0f64; k * k];
        let mut centred = vec![0.0f64; k];
        for &i in which {
            for ((c, &x), m) in centred.iter_mut().zip(row(i)).zip(&mean) {
                *c = x as f64 - m;
            }
            for a in 0..k {
                for b in a..k {
                    covariance[a * k + b] += centred[a] * centred[b];
                }
            }
        }
        for a in 0..k {
            for b in a..k {
                covariance[a * k + b] /= n;
                covariance[b * k + a] = covariance[a * k + b];
            }
        }
        let total_variance = (0..k).map(|d| covariance[d * k + d]).sum();
        let (values, vectors) = symmetric_eigen(covariance, k);
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
        let mut components = Vec::new();
        let mut variances = Vec::new();
        for &e in order.iter().take(count.min(k)) {
            components.push(with_positive_largest(
                (0..k).map(|row| vectors[row * k + e]).collect(),
            ));
            variances.push(values[e].max(0.0));
        }
        Pca {
            mean,
            components,
            variances,
            total_variance,
        }
    }

    /// [`Pca::fit`] by subspace iteration on the implicit covariance, whatever `k`: `O(n K)` work
    /// per step, at most [`MAX_ITERATIONS`] steps, and no `K x K` matrix.
    pub fn fit_iterative(rows: &[f32], k: usize, which: &[u32], count: usize) -> Pca {
        assert!(k > 0, "points need at least one dimension");
        let count = count.min(k);
        let mean = mean_of(rows, k, which);
        let n = which.len().max(1) as f64;
        let row = |i: u32| &rows[i as usize * k..][..k];
        let mut centred = vec![0.0f64; k];
        let mut total_variance = 0.0;
        for &i in which {
            for ((x, &value), m) in centred.iter_mut().zip(row(i)).zip(&mean) {
                *x = value as f64 - m;
            }
            total_variance += centred.iter().map(|x| x * x).sum::<f64>();
        }
        total_variance /= n;
        // A few more vectors than wanted: convergence goes as (lambda_{p+1} / lambda_count)^steps.
        let p = (count + 6).min(k);
        let apply = |block: &[Vec<f64>]| -> Vec<Vec<f64>> {
            let mut out = vec![vec![0.0f64; k]; block.len()];
            let mut centred = vec![0.0f64; k];
            for &i in which {
                for ((x, &value), m) in centred.iter_mut().zip(row(i)).zip(&mean) {
                    *x = value as f64 - m;
                }
                for (v, y) in block.iter().zip(out.iter_mut()) {
                    let dot: f64 = centred.iter().zip(v).map(|(a, b)| a * b).sum();
                    for (y, x) in y.iter_mut().zip(&centred) {
                        *y += dot * x;
                    }
                }
            }
            for y in &mut out {
                y.iter_mut().for_each(|y| *y /= n);
            }
            out
        };
        // A fixed start, so the same model always draws the same picture.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut block: Vec<Vec<f64>> = (0..p).map(|_| (0..k).map(|_| random()).collect()).collect();
        orthonormalise(&mut block, &mut random);
        let mut values = vec![0.0; p];
        for step in 0..MAX_ITERATIONS {
            let image = apply(&block);
            // Rayleigh-Ritz: the best axes within the block's span.
            let mut small = vec![0.0f64; p * p];
            for a in 0..p {
                for b in 0..p {
                    let ab: f64 = block[a].iter().zip(&image[b]).map(|(x, y)| x * y).sum();
                    let ba: f64 = block[b].iter().zip(&image[a]).map(|(x, y)| x * y).sum();
                    small[a * p + b] = 0.5 * (ab + ba);
                }
            }
            let (theta, rotation) = symmetric_eigen(small, p);
            let mut order: Vec<usize> = (0..p).collect();
            order.sort_by(|&a, &b| theta[b].total_cmp(&theta[a]).then(a.cmp(&b)));
            let rotate = |vectors: &[Vec<f64>]| -> Vec<Vec<f64>> {
                order
                    .iter()
                    .map(|&e| {
                        let mut out = vec![0.0f64; k];
                        for (a, v) in vectors.iter().enumerate() {
                            let weight = rotation[a * p + e];
                            for (o, x) in out.iter_mut().zip(v) {
                                *o += weight * x;
                            }
                        }
                        out
                    })
                    .collect()
            };
            let (ritz, ritz_image) = (rotate(&block), rotate(&image));
            values = order.iter().map(|&e| theta[e]).collect();
            let largest = values[0].abs().max(f64::MIN_POSITIVE);
            let converged = (0..count).all(|j| {
                let residual: f64 = ritz_image[j]
                    .iter()
                    .zip(&ritz[j])
                    .map(|(y, v)| (y - values[j] * v).powi(2))
                    .sum::<f64>()
                    .sqrt();
                residual <= RESIDUAL_TOLERANCE * largest
            });
            block = ritz;
            if converged || step + 1 == MAX_ITERATIONS {
                break;
            }
            block = ritz_image;
            orthonormalise(&mut block, &mut random);
        }
        Pca {
            mean,
            components: block
                .into_iter()
                .take(count)
                .map(with_positive_largest)
                .collect(),
            variances: values.iter().take(count).map(|v| v.max(0.0)).collect(),
            total_variance,
        }
    }

    /// Each axis's share of the total variance, in `[0, 1]`; 0 when the points have no variance
    /// at all (one point, or identical ones), where the share is undefined.
    pub fn variance_shares(&self) -> Vec<f64> {
        let shares = self.variances.iter();
        match self.total_variance > 0.0 {
            true => shares.map(|v| v / self.total_variance).collect(),
            false => shares.map(|_| 0.0).collect(),
        }
    }

    /// The coordinates of `point` on each axis.
    pub fn project(&self, point: &[f32]) -> Vec<f64> {
        self.components
            .iter()
            .map(|axis| {
                axis.iter()
                    .zip(point)
                    .zip(&self.mean)
                    .map(|((a, &x), m)| a * (x as f64 - m))
                    .sum()
            })
            .collect()
    }
}

/// The mean of the rows at `which` (the origin when there are none).
fn mean_of(rows: &[f32], k: usize, which: &[u32]) -> Vec<f64> {
    let n = which.len().max(1) as f64;
    let mut mean = vec![0.0f64; k];
    for &i in which {
        for (m, &x) in mean.iter_mut().zip(&rows[i as usize * k..][..k]) {
            *m += x as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    mean
}

/// `axis` with its sign chosen so that its largest-magnitude entry is positive.
fn with_positive_largest(mut axis: Vec<f64>) -> Vec<f64> {
    let largest = axis
        .iter()
        .copied()
        .max_by(|a, b| a.abs().total_cmp(&b.abs()))
        .unwrap_or(0.0);
    if largest < 0.0 {
        axis.iter_mut().for_each(|x| *x = -*x);
    }
    axis
}

/// Gram-Schmidt, twice for accuracy; a vector that the others already span (zero variance left,
/// or fewer points than vectors) is replaced by a fresh random one, so the block stays a basis.
fn orthonormalise(block: &mut [Vec<f64>], random: &mut impl FnMut() -> f64) {
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    for j in 0..block.len() {
        let (done, rest) = block.split_at_mut(j);
        let v = &mut rest[0];
        for _attempt in 0..8 {
            let before = norm(v);
            for _pass in 0..2 {
                for q in done.iter() {
                    let dot: f64 = q.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(q).for_each(|(x, q)| *x -= dot * q);
                }
            }
            let after = norm(v);
            if after > 1e-8 * before && after > 0.0 && after.is_finite() {
                v.iter_mut().for_each(|x| *x /= after);
                break;
            }
            v.iter_mut().for_each(|x| *x = random());
        }
    }
}

/// Eigenvalues and eigenvectors (as the columns of a row-major `k x k` matrix) of the symmetric
/// row-major matrix `a`, by cyclic Jacobi rotations until the off-diagonal part is negligible.
pub fn symmetric_eigen(mut a: Vec<f64>, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; k * k];
    for d in 0..k {
        v[d * k + d] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..k)
            .flat_map(|p| (0..k).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p * k + q] * a[p * k + q])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * scale || off == 0.0 {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                let apq = a[p * k + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation angle that zeroes a[p][q] (Numerical Recipes' stable form).
                let theta = (a[q * k + q] - a[p * k + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..k {
                    let (arp, arq) = (a[r * k + p], a[r * k + q]);
                    a[r * k + p] = c * arp - s * arq;
                    a[r * k + q] = s * arp + c * arq;
                }
                for r in 0..k {
                    let (apr, aqr) = (a[p * k + r], a[q * k + r]);
                    a[p * k + r] = c * apr - s * aqr;
                    a[q * k + r] = s * apr + c * aqr;
                }
                for r in 0..k {
                    let (vrp, vrq) = (v[r * k + p], v[r * k + q]);
                    v[r * k + p] = c * vrp - s * vrq;
                    v[r * k + q] = s * vrp + c * vrq;
                }
            }
        }
    }
    ((0..k).map(|d| a[d * k + d]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_of_a_known_two_by_two() {
        // [[2, 1], [1, 2]] has eigenvalues 3 (axis (1, 1)/sqrt 2) and 1 (axis (1, -1)/sqrt 2).
        let (values, vectors) = symmetric_eigen(vec![2.0, 1.0, 1.0, 2.0], 2);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert!((sorted[0] - 1.0).abs() < 1e-12 && (sorted[1] - 3.0).abs() < 1e-12);
        let big = if values[0] > values[1] { 0 } else { 1 };
        let axis = [vectors[big], vectors[2 + big]];
        assert!((axis[0].abs() - 0.5f64.sqrt()).abs() < 1e-12);
        assert!((axis[0] - axis[1]).abs() < 1e-12, "{axis:?}");
    }

    /// Rows with two planted directions of different spread plus small noise, `n x k`.
    fn planted_rows(n: usize, k: usize) -> Vec<f32> {
        let mut state = 12345u64;
        let mut noise = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) as f32
        };
        (0..n)
            .flat_map(|i| {
                let (t, s) = ((i as f32 * 0.37).sin() * 3.0, (i as f32 * 1.3).cos());
                (0..k)
                    .map(|d| {
                        let first = if d % 3 == 0 { 1.0 } else { 0.0 };
                        let second = if d % 3 == 1 { 1.0 } else { 0.0 };
                        0.5 + t * first + s * second + 0.05 * noise()
                    })
                    .collect::<Vec<f32>>()
            })
            .collect()
    }

    fn assert_same_axes(a: &Pca, b: &Pca) {
        assert_eq!(a.components.len(), b.components.len());
        for (x, y) in a.components.iter().zip(&b.components) {
            let largest = x
                .iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f64::max);
            assert!(largest < 1e-6, "axes differ by {largest}");
        }
        for (x, y) in a.variances.iter().zip(&b.variances) {
            assert!(
                (x - y).abs() < 1e-9 * x.abs().max(1.0),
                "{:?} vs {:?}",
                a.variances,
                b.variances
            );
        }
        assert!((a.total_variance - b.total_variance).abs() < 1e-9 * a.total_variance);
    }

    #[test]
    fn subspace_iteration_finds_the_exact_axes() {
        let (n, k) = (300, 150);
        let rows = planted_rows(n, k);
        let which: Vec<u32> = (0..n as u32).collect();
        let exact = Pca::fit_exact(&rows, k, &which, 2);
        let iterative = Pca::fit_iterative(&rows, k, &which, 2);
        assert_same_axes(&exact, &iterative);
        // `fit` takes the iterative path above the exact limit.
        assert!(k > EXACT_MAX_FACTORS);
        assert_eq!(Pca::fit(&rows, k, &which, 2), iterative);
    }

    #[test]
    fn subspace_iteration_survives_fewer_points_than_axes() {
        // Two points span one direction: the second axis has no variance, and there are far fewer
        // points than the block has vectors.
        let k = 400;
        let rows: Vec<f32> = (0..2 * k)
            .map(|j| if j < k { 0.0 } else { (j % 5) as f32 })
            .collect();
        let pca = Pca::fit_iterative(&rows, k, &[0, 1], 2);
        assert_eq!(pca.components.len(), 2);
        assert!(
            pca.variances[0] > 0.0 && pca.variances[1].abs() < 1e-9,
            "{:?}",
            pca.variances
        );
        assert!((pca.variances[0] - pca.total_variance).abs() < 1e-9 * pca.total_variance);
        for axis in &pca.components {
            let norm: f64 = axis.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-9 && axis.iter().all(|x| x.is_finite()));
        }
        // One point, or none: no variance at all, still finite unit axes.
        let single = Pca::fit_iterative(&rows, k, &[1], 2);
        assert!(single.variances.iter().all(|v| *v == 0.0) && single.total_variance == 0.0);
        let none = Pca::fit_iterative(&rows, k, &[], 2);
        assert!(none.components[0].iter().all(|x| x.is_finite()));
    }
}
