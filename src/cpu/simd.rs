//! Dot products of eight ratings at once, bit for bit what the reference `dot` kernel computes.
//!
//! The reference sums each `x_b = sum_j P[u_b][j] * Q[i_b][j]` in `j` order from 0, one rounding
//! per product and per addition. A vector unit can keep that order if it works *across* ratings:
//! lane `l` of one 8-wide register accumulates rating `l`. Loading eight rows gives registers that
//! hold eight `j`s of one rating, so each block of 8 x 8 products is transposed before it is added,
//! `j` after `j`. IEEE-754 rounds each lane's product and sum exactly as the scalar code does, and
//! nothing is fused (no FMA), so every `x_b` is identical to the reference.

/// Ratings per call.
pub(crate) const LANES: usize = 8;

/// Whether the CPU has AVX2 (and so the AVX instructions [`dot8`] uses).
pub(crate) fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `[dot(p[l], q[l]) for l in 0..8]`, each summed in index order from 0. All rows must have the
/// same length. `use_avx` must only be true where [`avx2_available`] said so.
#[inline(always)]
pub(crate) fn dot8(p: [&[f32]; LANES], q: [&[f32]; LANES], use_avx: bool) -> [f32; LANES] {
    let k = p[0].len();
    assert!(
        p.iter().chain(&q).all(|row| row.len() == k),
        "rows differ in length"
    );
    #[cfg(target_arch = "x86_64")]
    if use_avx {
        // SAFETY: the caller checked AVX2 (so AVX) with `avx2_available`; the rows are all `k` long.
        return unsafe { dot8_avx(p, q, k) };
    }
    let _ = use_avx;
    let mut acc = [0.0f32; LANES];
    dot8_tail(p, q, 0, &mut acc);
    acc
}

/// Adds the products of columns `from..` to `acc`, lane by lane, in column order.
#[inline(always)]
fn dot8_tail(p: [&[f32]; LANES], q: [&[f32]; LANES], from: usize, acc: &mut [f32; LANES]) {
    for j in from..p[0].len() {
        for l in 0..LANES {
            acc[l] += p[l][j] * q[l][j];
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn dot8_avx(p: [&[f32]; LANES], q: [&[f32]; LANES], k: usize) -> [f32; LANES] {
    use std::arch::x86_64::*;
    let mut acc = _mm256_setzero_ps();
    let blocks = k / LANES;
    for block in 0..blocks {
        let at = block * LANES;
        // SAFETY: `at + 8 <= k`, and every row is `k` long.
        let r: [__m256; LANES] = std::array::from_fn(|l| unsafe {
            _mm256_mul_ps(
                _mm256_loadu_ps(p[l].as_ptr().add(at)),
                _mm256_loadu_ps(q[l].as_ptr().add(at)),
            )
        });
        // Transpose: column `j` of the block, one lane per rating.
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let columns = [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ];
        for column in columns {
            acc = _mm256_add_ps(acc, column);
        }
    }
    let mut out = [0.0f32; LANES];
    // SAFETY: `out` holds eight floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
    dot8_tail(p, q, blocks * LANES, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference order: one rating at a time, `j` from 0.
    fn reference(p: &[f32], q: &[f32]) -> f32 {
        let mut sum = 0.0f32;
        for j in 0..p.len() {
            sum += p[j] * q[j];
        }
        sum
    }

    #[test]
    fn both_paths_match_the_reference_bit_for_bit() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mixed magnitudes, so that the order of the additions shows in the last bits.
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 10f32.powi((state % 7) as i32 - 3)
        };
        for k in [1, 7, 8, 9, 50, 64, 128, 131] {
            let rows: Vec<Vec<f32>> = (0..16).map(|_| (0..k).map(|_| next()).collect()).collect();
            let p: [&[f32]; LANES] = std::array::from_fn(|l| rows[l].as_slice());
            let q: [&[f32]; LANES] = std::array::from_fn(|l| rows[8 + l].as_slice());
            let expected: Vec<u32> = (0..LANES)
                .map(|l| reference(p[l], q[l]).to_bits())
                .collect();
            for use_avx in [false, avx2_available()] {
                let got: Vec<u32> = dot8(p, q, use_avx).iter().map(|x| x.to_bits()).collect();
                assert_eq!(got, expected, "K = {k}, avx = {use_avx}");
            }
        }
    }
}
