//! Principal components of item factors, by hand: the `K x K` covariance of the rows and its
//! eigenvectors by cyclic Jacobi rotations. `K` is small (50 by default), so the `O(K^3)` sweeps
//! cost nothing next to reading the model, and Jacobi is exact enough and never fails to converge
//! on a symmetric matrix.

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
    /// Fits `count` axes to the rows `rows` (row-major, `k` columns) at indices `which`.
    ///
    /// # Panics
    /// When `k` is 0 or an index is out of range.
    pub fn fit(rows: &[f32], k: usize, which: &[u32], count: usize) -> Pca {
        assert!(k > 0, "points need at least one dimension");
        let n = which.len().max(1) as f64;
        let row = |i: u32| &rows[i as usize * k..][..k];
        let mut mean = vec![0.0f64; k];
        for &i in which {
            for (m, &x) in mean.iter_mut().zip(row(i)) {
                *m += x as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
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
            let mut axis: Vec<f64> = (0..k).map(|row| vectors[row * k + e]).collect();
            let largest = axis
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(0.0);
            if largest < 0.0 {
                axis.iter_mut().for_each(|x| *x = -*x);
            }
            components.push(axis);
            variances.push(values[e].max(0.0));
        }
        Pca {
            mean,
            components,
            variances,
            total_variance,
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
}
