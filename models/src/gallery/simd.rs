//! Dot products for the gallery scan. The same portable code is compiled twice:
//! plainly, and for AVX2+FMA picked at run time on CPUs that have them (every
//! x86 edge box of the last decade), which is what makes the exact scan fast.
//! Gallery rows are half precision (`dot_f16`, `dots_f16`): on x86 they are
//! widened eight at a time by F16C inside the same loop, so the scan reads
//! half the memory.

use half::f16;

/// The dot product of two equally long slices (extra elements are ignored).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2() {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

/// Dot products of `query` with each `dim`-long row of `rows`, into `out`.
pub fn dots(query: &[f32], rows: &[f32], dim: usize, out: &mut Vec<f32>) {
    out.clear();
    if dim == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if avx2() {
            // SAFETY: as in `dot`.
            unsafe { dots_avx2(query, rows, dim, out) };
            return;
        }
    }
    dots_portable(query, rows, dim, out)
}

/// The dot product of an f32 query with a half-precision row.
#[inline]
pub fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if f16c() {
            // SAFETY: the CPU has AVX2, FMA and F16C (checked just above).
            return unsafe { dot_f16_avx2(a, b) };
        }
    }
    dot_f16_portable(a, b)
}

/// Dot products of `query` with each `dim`-long half-precision row of `rows`.
pub fn dots_f16(query: &[f32], rows: &[f16], dim: usize, out: &mut Vec<f32>) {
    out.clear();
    if dim == 0 {
        return;
    }
    let n = rows.len() / dim;
    out.reserve(n);
    #[cfg(target_arch = "x86_64")]
    {
        if f16c() {
            for i in 0..n {
                // SAFETY: as in `dot_f16`.
                out.push(unsafe { dot_f16_avx2(query, &rows[i * dim..(i + 1) * dim]) });
            }
            return;
        }
    }
    for i in 0..n {
        out.push(dot_f16_portable(query, &rows[i * dim..(i + 1) * dim]));
    }
}

fn dot_f16_portable(a: &[f32], b: &[f16]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y.to_f32()).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_avx2(a: &[f32], b: &[f16]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let chunks = n / 16;
    let (pa, pb) = (a.as_ptr(), b.as_ptr() as *const u16);
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    for i in 0..chunks {
        let o = i * 16;
        // SAFETY: o + 16 <= n, within both slices; unaligned loads.
        let (h0, h1) = unsafe {
            (
                _mm_loadu_si128(pb.add(o) as *const __m128i),
                _mm_loadu_si128(pb.add(o + 8) as *const __m128i),
            )
        };
        let (q0, q1) = unsafe { (_mm256_loadu_ps(pa.add(o)), _mm256_loadu_ps(pa.add(o + 8))) };
        acc0 = _mm256_fmadd_ps(q0, _mm256_cvtph_ps(h0), acc0);
        acc1 = _mm256_fmadd_ps(q1, _mm256_cvtph_ps(h1), acc1);
    }
    let acc = _mm256_add_ps(acc0, acc1);
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    let mut s: f32 = lanes.iter().sum();
    for i in chunks * 16..n {
        s += a[i] * b[i].to_f32();
    }
    s
}

#[cfg(target_arch = "x86_64")]
fn f16c() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| avx2() && is_x86_feature_detected!("f16c"))
}

#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators: lets the compiler keep a full vector
    // register busy instead of a serial chain of adds.
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks = n / 8;
    for i in 0..chunks {
        let (x, y) = (&a[i * 8..i * 8 + 8], &b[i * 8..i * 8 + 8]);
        // Plain multiply-add (not `mul_add`: without FMA enabled that is a libm call).
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for i in chunks * 8..n {
        s += a[i] * b[i];
    }
    s
}

#[inline(always)]
fn dots_portable(query: &[f32], rows: &[f32], dim: usize, out: &mut Vec<f32>) {
    // A loop, not an iterator closure: closures do not inherit the caller's
    // target features, and the AVX2 copy must inline all of this.
    let n = rows.len() / dim;
    out.reserve(n);
    for i in 0..n {
        out.push(dot_portable(query, &rows[i * dim..(i + 1) * dim]));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_avx2(query: &[f32], rows: &[f32], dim: usize, out: &mut Vec<f32>) {
    dots_portable(query, rows, dim, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_plain_sum() {
        let a: Vec<f32> = (0..131).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..131).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
        let mut out = Vec::new();
        dots(
            &a[..128],
            &[b[..128].to_vec(), a[..128].to_vec()].concat(),
            128,
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert!((out[1] - dot(&a[..128], &a[..128])).abs() < 1e-4);
    }

    #[test]
    fn half_rows_match_the_plain_sum() {
        let a: Vec<f32> = (0..131).map(|i| (i as f32 * 0.37).sin() * 0.1).collect();
        let b: Vec<f32> = (0..131).map(|i| (i as f32 * 0.11).cos() * 0.1).collect();
        let bh: Vec<f16> = b.iter().map(|x| f16::from_f32(*x)).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        // Half precision keeps ~3 decimal digits of each element.
        assert!((dot_f16(&a, &bh) - plain).abs() < 1e-3);
        assert!((dot_f16(&a, &bh) - dot_f16_portable(&a, &bh)).abs() < 1e-5);
        let rows: Vec<f16> = [&bh[..128], &bh[..128]].concat();
        let mut out = Vec::new();
        dots_f16(&a[..128], &rows, 128, &mut out);
        assert_eq!(out.len(), 2);
        assert!((out[0] - dot_f16_portable(&a[..128], &bh[..128])).abs() < 1e-5);
    }
}
