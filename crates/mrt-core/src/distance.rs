//! Exact Euclidean distance transform of a voxel mask with anisotropic spacing
//! (Felzenszwalb & Huttenlocher 2012, Theory of Computing 8:415: the squared distance is
//! separable, one lower envelope of parabolas per grid line and axis), and the exact city-block
//! distance in voxels (what repeated 6-neighbour dilations and erosions measure).

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

/// City-block distance (voxels, saturating) from every voxel to the nearest seed; with
/// `outside_is_seed`, the voxels just beyond the volume's faces count as seeds too (an erosion
/// whose border is background). Two raster passes over half-neighbourhoods: exact for this metric.
pub fn city_block_distance(
    is_seed: impl Fn(usize) -> bool,
    dims: [usize; 3],
    outside_is_seed: bool,
) -> Vec<u16> {
    let [nx, ny, nz] = dims;
    let (sy, sz) = (nx, nx * ny);
    let mut d = vec![u16::MAX; nx * ny * nz];
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let v = i + sy * j + sz * k;
                if is_seed(v) {
                    d[v] = 0;
                } else if outside_is_seed {
                    let to_face = [i + 1, nx - i, j + 1, ny - j, k + 1, nz - k];
                    d[v] = to_face.into_iter().min().unwrap_or(usize::MAX).min(65535) as u16;
                }
            }
        }
    }
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let v = i + sy * j + sz * k;
                let mut best = d[v];
                if i > 0 {
                    best = best.min(d[v - 1].saturating_add(1));
                }
                if j > 0 {
                    best = best.min(d[v - sy].saturating_add(1));
                }
                if k > 0 {
                    best = best.min(d[v - sz].saturating_add(1));
                }
                d[v] = best;
            }
        }
    }
    for k in (0..nz).rev() {
        for j in (0..ny).rev() {
            for i in (0..nx).rev() {
                let v = i + sy * j + sz * k;
                let mut best = d[v];
                if i + 1 < nx {
                    best = best.min(d[v + 1].saturating_add(1));
                }
                if j + 1 < ny {
                    best = best.min(d[v + sy].saturating_add(1));
                }
                if k + 1 < nz {
                    best = best.min(d[v + sz].saturating_add(1));
                }
                d[v] = best;
            }
        }
    }
    d
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

    #[test]
    fn city_block_distance_equals_brute_force() {
        let dims = [7, 5, 6];
        let n = 7 * 5 * 6;
        let mut state = 12345u64;
        let seeds: Vec<bool> = (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                (state >> 33).is_multiple_of(9)
            })
            .collect();
        let at = |v: usize| [v % 7, (v / 7) % 5, v / 35];
        for outside in [false, true] {
            let d = city_block_distance(|v| seeds[v], dims, outside);
            for (v, &dv) in d.iter().enumerate() {
                let p = at(v);
                let mut best = usize::MAX;
                for u in (0..n).filter(|&u| seeds[u]) {
                    let q = at(u);
                    best = best.min((0..3).map(|a| p[a].abs_diff(q[a])).sum());
                }
                if outside {
                    for a in 0..3 {
                        best = best.min(p[a] + 1).min(dims[a] - p[a]);
                    }
                }
                let expect = best.min(65535) as u16;
                assert_eq!(dv, expect, "voxel {p:?}, outside {outside}");
            }
        }
    }
}
