//! Levenberg-Marquardt refinement of an affine or rigid map for the NCC metric.
//!
//! Maximising NCC equals minimising `Σ (a·M(A(p)) + b − F(p))²` over the map A and a linear
//! intensity map (a, b): the minimum over (a, b) is `n·var(F)·(1 − NCC²)`. Each iteration fits
//! (a, b) in closed form, then solves the damped normal equations for a compositional update
//! `q ↦ U(q − c) + c + v` about the moved centre c, with U a small rotation (rigid) or `I + D`
//! (affine). Moving-image gradients come from central differences of trilinear samples.

use mrt_core::dense::solve;
use mrt_core::grid::AffineMap;
use mrt_core::linalg::{self, Mat3, Vec3};
use mrt_core::resample::sample_linear;
use mrt_core::Volume;
use rayon::prelude::*;

use crate::metric::Samples;

/// Per-sample moving value and world gradient at `A(p)` (gradient zero where clamped).
fn sample_with_gradient(
    moving: &Volume<f32>,
    w2i: &AffineMap,
    q: Vec3,
    window: (f32, f32),
) -> Option<(f64, Vec3)> {
    let idx = w2i.apply(q);
    let m = f64::from(sample_linear(moving, idx)?);
    let (lo, hi) = (f64::from(window.0), f64::from(window.1));
    if m <= lo || m >= hi {
        return Some((m.clamp(lo, hi), [0.0; 3]));
    }
    let mut g_index = [0.0; 3];
    for (a, g) in g_index.iter_mut().enumerate() {
        let (mut plus, mut minus) = (idx, idx);
        plus[a] += 0.5;
        minus[a] -= 0.5;
        let (Some(up), Some(down)) = (sample_linear(moving, plus), sample_linear(moving, minus))
        else {
            return Some((m, [0.0; 3]));
        };
        *g = f64::from(up.clamp(window.0, window.1)) - f64::from(down.clamp(window.0, window.1));
    }
    // ∂M/∂world = (∂index/∂world)ᵀ · ∂M/∂index.
    Some((m, linalg::mat_vec(&linalg::transpose(&w2i.matrix), g_index)))
}

/// Sum of squared residuals after the best linear intensity map, and that map.
fn fitted_cost(pairs: &[(f64, f64)]) -> (f64, f64, f64) {
    let n = pairs.len() as f64;
    let (mut sf, mut sm, mut sff, mut smm, mut sfm) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(f, m) in pairs {
        sf += f;
        sm += m;
        sff += f * f;
        smm += m * m;
        sfm += f * m;
    }
    let vm = smm - sm * sm / n;
    let cov = sfm - sf * sm / n;
    let vf = sff - sf * sf / n;
    if vm <= 0.0 {
        return (vf, 0.0, sf / n);
    }
    let a = cov / vm;
    let b = (sf - a * sm) / n;
    (vf - cov * cov / vm, a, b)
}

/// Share of samples inside the moving image and the fitted cost at map `a`.
fn cost_at(s: &Samples, moving: &Volume<f32>, a: &AffineMap, window: (f32, f32)) -> (f64, f64) {
    let map = moving.grid().world_to_index_map().compose(a);
    let pairs: Vec<(f64, f64)> = s
        .points
        .par_iter()
        .zip(s.values.par_iter())
        .filter_map(|(p, &f)| {
            sample_linear(moving, map.apply(*p))
                .map(|m| (f, f64::from(m.clamp(window.0, window.1))))
        })
        .collect();
    let inside = pairs.len() as f64 / s.points.len().max(1) as f64;
    (inside, fitted_cost(&pairs).0 / pairs.len().max(1) as f64)
}

/// Refines `start` (fixed world → moving world); `affine` frees all twelve parameters.
pub fn refine(
    s: &Samples,
    moving: &Volume<f32>,
    start: AffineMap,
    centre: Vec3,
    affine: bool,
    max_iterations: usize,
    window: (f32, f32),
) -> (AffineMap, usize) {
    let w2i = moving.grid().world_to_index_map();
    let k = if affine { 12 } else { 6 };
    let mut a_map = start;
    let (mut inside, mut cost) = cost_at(s, moving, &a_map, window);
    let mut lambda = 1e-3;
    let mut evaluations = 1;
    for _ in 0..max_iterations {
        let c = a_map.apply(centre);
        let values: Vec<Option<(f64, f64, Vec3, Vec3)>> = s
            .points
            .par_iter()
            .zip(s.values.par_iter())
            .map(|(p, &f)| {
                let q = a_map.apply(*p);
                sample_with_gradient(moving, &w2i, q, window)
                    .map(|(m, g)| (f, m, g, linalg::sub(q, c)))
            })
            .collect();
        let pairs: Vec<(f64, f64)> = values.iter().flatten().map(|v| (v.0, v.1)).collect();
        let (_, ia, ib) = fitted_cost(&pairs);
        // Huber weights (k = 1.345 robust σ) keep local intensity changes between the images
        // (contrast, bowel content) from biasing the fit.
        let mut abs_res: Vec<f64> = pairs
            .iter()
            .map(|&(f, m)| (ia * m + ib - f).abs())
            .collect();
        let mid = abs_res.len() / 2;
        let mad = if abs_res.is_empty() {
            0.0
        } else {
            *abs_res.select_nth_unstable_by(mid, f64::total_cmp).1
        };
        let huber = 1.345 * 1.4826 * mad.max(1e-9);
        let mut jtj = vec![vec![0.0; k]; k];
        let mut jtr = vec![0.0; k];
        let mut row = vec![0.0; k];
        for &(f, m, g, d) in values.iter().flatten() {
            let r = ia * m + ib - f;
            let w = if r.abs() <= huber {
                1.0
            } else {
                huber / r.abs()
            };
            let g = linalg::scale(g, ia);
            if affine {
                for a in 0..3 {
                    for b in 0..3 {
                        row[3 * a + b] = g[a] * d[b];
                    }
                }
                row[9..12].copy_from_slice(&g);
            } else {
                row[..3].copy_from_slice(&linalg::cross(d, g));
                row[3..6].copy_from_slice(&g);
            }
            for (x, &rx) in row.iter().enumerate() {
                jtr[x] += w * rx * r;
                for (y, &ry) in row.iter().enumerate() {
                    jtj[x][y] += w * rx * ry;
                }
            }
        }
        let mut accepted = false;
        for _ in 0..6 {
            let mut damped = jtj.clone();
            for (x, row) in damped.iter_mut().enumerate() {
                row[x] += lambda * jtj[x][x].max(1e-12);
            }
            let Some(delta) = solve(&damped, &jtr.iter().map(|v| -v).collect::<Vec<_>>()) else {
                lambda *= 10.0;
                continue;
            };
            let u = update(&delta, c, affine);
            let candidate = u.compose(&a_map);
            let (cand_inside, cand_cost) = cost_at(s, moving, &candidate, window);
            evaluations += 1;
            if cand_cost < cost && cand_inside >= inside * 0.98 {
                let small = delta.iter().all(|d| d.abs() < 1e-5);
                a_map = candidate;
                cost = cand_cost;
                inside = cand_inside;
                lambda = (lambda / 3.0).max(1e-7);
                accepted = !small;
                break;
            }
            lambda *= 4.0;
        }
        if !accepted {
            break;
        }
    }
    (a_map, evaluations)
}

/// The compositional update `q ↦ U(q − c) + c + v` for parameters `delta`.
fn update(delta: &[f64], c: Vec3, affine: bool) -> AffineMap {
    let (u, v): (Mat3, Vec3) = if affine {
        let mut u = linalg::IDENTITY;
        for a in 0..3 {
            for b in 0..3 {
                u[a][b] += delta[3 * a + b];
            }
        }
        (u, [delta[9], delta[10], delta[11]])
    } else {
        // A rotation vector ω (radians) with ∂(ω × d)/∂ω matching the Jacobian rows.
        let w = [delta[0], delta[1], delta[2]];
        (rotation_from_vector(w), [delta[3], delta[4], delta[5]])
    };
    let uc = linalg::mat_vec(&u, c);
    AffineMap {
        matrix: u,
        translation: [0, 1, 2].map(|a| c[a] - uc[a] + v[a]),
    }
}

/// Rodrigues' rotation for rotation vector `w` (radians).
fn rotation_from_vector(w: Vec3) -> Mat3 {
    let theta = linalg::norm(w);
    if theta < 1e-15 {
        return linalg::IDENTITY;
    }
    let [x, y, z] = linalg::scale(w, 1.0 / theta);
    let (s, c) = theta.sin_cos();
    let t = 1.0 - c;
    [
        [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
        [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
        [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rodrigues_agrees_with_a_cross_product_for_small_angles() {
        let w = [1e-4, -2e-4, 3e-4];
        let d = [10.0, 20.0, -5.0];
        let r = rotation_from_vector(w);
        let moved = linalg::mat_vec(&r, d);
        let expected = linalg::add(d, linalg::cross(w, d));
        for a in 0..3 {
            assert!((moved[a] - expected[a]).abs() < 1e-6);
        }
        assert!((linalg::det(&rotation_from_vector([0.3, -0.2, 0.5])) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_fitted_cost_is_zero_for_a_linear_intensity_map() {
        let pairs: Vec<(f64, f64)> = (0..100)
            .map(|i| (2.0 * f64::from(i) + 5.0, f64::from(i)))
            .collect();
        let (cost, a, b) = fitted_cost(&pairs);
        assert!(cost.abs() < 1e-6 && (a - 2.0).abs() < 1e-12 && (b - 5.0).abs() < 1e-9);
    }
}
