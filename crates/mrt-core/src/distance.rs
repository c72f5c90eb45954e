//! Exact Euclidean distance transform of a voxel mask with anisotropic spacing
//! (Felzenszwalb & Huttenlocher 2012, Theory of Computing 8:415: the squared distance is
//! separable, one lower envelope of parabolas per grid line and axis).

use rayon::prelude::*;

/// Squared distance (mm²) from each voxel centre to the nearest voxel centre of `mask` (dims
/// `[nx, ny, nz]`, `i` fastest; `spacing_mm` per axis); 0 inside the mask, `f64::INFINITY`
/// everywhere when the mask is empty.
pub fn squared_distance_mm2(mask: &[bool], dims: [usize; 3], spacing_mm: [f64; 3]) -> Vec<f64> {
    let [nx, ny, nz] = dims;
    assert_eq!(mask.len(), nx * ny * nz, "mask length must match dims");
    let mut d: Vec<f64> = mask
        .iter()
        .map(|&m| if m { 0.0 } else { f64::INFINITY })
        .collect();
    let strides = [1, nx, nx * ny];
    for axis in 0..3 {
        let n = dims[axis];
        if n == 0 {
            continue;
        }
        let stride = strides[axis];
        let step2 = spacing_mm[axis] * spacing_mm[axis];
        // Starting offsets of every line along `axis`.
        let starts: Vec<usize> = (0..d.len()).filter(|&o| (o / stride) % n == 0).collect();
        let lines: Vec<(usize, Vec<f64>)> = starts
            .par_iter()
            .map(|&s| {
                let f: Vec<f64> = (0..n).map(|t| d[s + t * stride]).collect();
                (s, lower_envelope(&f, step2))
            })
            .collect();
        for (s, line) in lines {
            for (t, v) in line.into_iter().enumerate() {
                d[s + t * stride] = v;
            }
        }
    }
    d
}

/// One-dimensional pass: out[q] = min_p f[p] + step2·(q−p)².
fn lower_envelope(f: &[f64], step2: f64) -> Vec<f64> {
    let n = f.len();
    let mut out = vec![f64::INFINITY; n];
    // Parabola apexes (positions) and the boundaries between them.
    let mut apex: Vec<usize> = Vec::with_capacity(n);
    let mut from: Vec<f64> = Vec::with_capacity(n + 1);
    for (q, &fq) in f.iter().enumerate() {
        if !fq.is_finite() {
            continue;
        }
        loop {
            let Some(&p) = apex.last() else {
                apex.push(q);
                from.push(f64::NEG_INFINITY);
                break;
            };
            // Where the parabolas of p and q meet.
            let (pf, qf) = (p as f64, q as f64);
            let s = ((fq + step2 * qf * qf) - (f[p] + step2 * pf * pf)) / (2.0 * step2 * (qf - pf));
            if s <= *from.last().expect("one boundary per apex") {
                apex.pop();
                from.pop();
            } else {
                apex.push(q);
                from.push(s);
                break;
            }
        }
    }
    if apex.is_empty() {
        return out;
    }
    let mut k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        let qf = q as f64;
        while k + 1 < apex.len() && from[k + 1] < qf {
            k += 1;
        }
        let p = apex[k] as f64;
        *o = f[apex[k]] + step2 * (qf - p) * (qf - p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(mask: &[bool], dims: [usize; 3], sp: [f64; 3]) -> Vec<f64> {
        let [nx, ny, nz] = dims;
        let pts: Vec<[usize; 3]> = (0..mask.len())
            .filter(|&o| mask[o])
            .map(|o| [o % nx, (o / nx) % ny, o / (nx * ny)])
            .collect();
        (0..nx * ny * nz)
            .map(|o| {
                let c = [o % nx, (o / nx) % ny, o / (nx * ny)];
                pts.iter()
                    .map(|p| {
                        (0..3)
                            .map(|a| ((c[a] as f64 - p[a] as f64) * sp[a]).powi(2))
                            .sum::<f64>()
                    })
                    .fold(f64::INFINITY, f64::min)
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_random_masks_with_anisotropic_spacing() {
        let dims = [9, 7, 5];
        let sp = [0.8, 1.3, 3.0];
        let mut state = 12345u64;
        for trial in 0..20 {
            let mask: Vec<bool> = (0..dims.iter().product::<usize>())
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 33) % 100 < 3 + trial
                })
                .collect();
            let got = squared_distance_mm2(&mask, dims, sp);
            let want = brute(&mask, dims, sp);
            for (g, w) in got.iter().zip(&want) {
                if w.is_finite() {
                    assert!((g - w).abs() < 1e-9, "trial {trial}: {g} vs {w}");
                } else {
                    assert!(g.is_infinite());
                }
            }
        }
    }

    #[test]
    fn single_voxel_gives_squared_euclidean_distance() {
        let dims = [5, 5, 5];
        let mut mask = vec![false; 125];
        mask[2 + 5 * 2 + 25 * 2] = true;
        let d = squared_distance_mm2(&mask, dims, [1.0, 2.0, 3.0]);
        // Corner (0,0,0): 2² + 4² + 6² = 56.
        assert!((d[0] - 56.0).abs() < 1e-12);
        assert_eq!(d[2 + 5 * 2 + 25 * 2], 0.0);
    }
}
