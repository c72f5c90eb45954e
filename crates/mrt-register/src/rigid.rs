//! Rigid CT↔CT registration: normalised cross-correlation, pyramid, Nelder-Mead.
//!
//! The transform maps fixed-image world points to moving-image world points (ITK's convention),
//! so resampling the moving image through it lands it on the fixed grid.

use mrt_core::filter::{gaussian_blur, Edge};
use mrt_core::linalg::{self, Vec3};
use mrt_core::resample::sample_linear;
use mrt_core::{RigidTransform, Volume};
use rayon::prelude::*;
use serde::Serialize;

use crate::nelder_mead::minimize;

/// Registration settings.
#[derive(Debug, Clone)]
pub struct RigidOptions {
    /// Pyramid levels, coarse to fine: (smoothing FWHM mm, sample spacing mm).
    pub levels: Vec<(f64, f64)>,
    /// Nelder-Mead evaluations per level.
    pub max_evals_per_level: usize,
    /// Voxels above this value form the body mask (HU for CT).
    pub mask_threshold: f32,
    /// Intensities are clamped to this window before correlation (HU for CT).
    pub window: (f32, f32),
}

impl Default for RigidOptions {
    fn default() -> Self {
        Self {
            levels: vec![(12.0, 12.0), (6.0, 6.0), (0.0, 3.0)],
            max_evals_per_level: 600,
            mask_threshold: -400.0,
            window: (-300.0, 400.0),
        }
    }
}

/// Why registration refused to answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegisterError {
    /// An image has no voxel above the mask threshold.
    #[error("{which} image has no voxel above {threshold} (empty or constant image)")]
    EmptyMask {
        /// `fixed` or `moving`.
        which: &'static str,
        /// The threshold.
        threshold: f32,
    },
    /// An image has the same value everywhere in its body mask: nothing to correlate.
    #[error("{which} image is constant inside its body mask: nothing to register on")]
    Constant {
        /// `fixed` or `moving`.
        which: &'static str,
    },
    /// The images do not overlap enough to correlate.
    #[error("fields of view do not overlap: only {percent:.0} % of the fixed body samples fall inside the moving image")]
    NoOverlap {
        /// Share of samples inside.
        percent: f64,
    },
    /// The result is implausible (e.g. a rotation beyond 30° for a repositioned patient).
    #[error("degenerate result: {0}")]
    Degenerate(String),
}

/// The result.
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    /// Fixed world → moving world.
    pub transform: RigidTransform,
    /// NCC before (after centre-of-mass initialisation is *not* applied: identity).
    pub ncc_before: f64,
    /// NCC after, at the finest level.
    pub ncc_after: f64,
    /// Metric evaluations used.
    pub evaluations: usize,
}

fn centroid(v: &Volume<f32>, threshold: f32) -> Option<Vec3> {
    let g = v.grid();
    let [nx, ny, nz] = g.dims;
    let mut sum = [0.0; 3];
    let mut n = 0.0;
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                if *v.at(i, j, k) > threshold {
                    sum = linalg::add(sum, [i as f64, j as f64, k as f64]);
                    n += 1.0;
                }
            }
        }
    }
    (n > 0.0).then(|| g.index_to_world(linalg::scale(sum, 1.0 / n)))
}

/// Parameters (rx, ry, rz in degrees about `centre`, tx, ty, tz in mm) → transform about origin.
pub(crate) fn to_transform(x: &[f64], centre: Vec3) -> RigidTransform {
    let angles = [x[0], x[1], x[2]];
    let r = linalg::rotation_xyz_deg(angles);
    let rc = linalg::mat_vec(&r, centre);
    RigidTransform {
        rotation_deg: angles,
        translation_mm: [
            centre[0] - rc[0] + x[3],
            centre[1] - rc[1] + x[4],
            centre[2] - rc[2] + x[5],
        ],
    }
}

struct Samples {
    points: Vec<Vec3>,
    values: Vec<f64>,
}

fn samples(
    fixed: &Volume<f32>,
    smoothed: &Volume<f32>,
    spacing_mm: f64,
    opts: &RigidOptions,
) -> Samples {
    let g = fixed.grid();
    let stride = g
        .spacing_mm
        .map(|s| ((spacing_mm / s).round() as usize).max(1));
    let (mut points, mut values) = (Vec::new(), Vec::new());
    for k in (0..g.dims[2]).step_by(stride[2]) {
        for j in (0..g.dims[1]).step_by(stride[1]) {
            for i in (0..g.dims[0]).step_by(stride[0]) {
                if *fixed.at(i, j, k) > opts.mask_threshold {
                    points.push(g.index_to_world([i as f64, j as f64, k as f64]));
                    values.push(f64::from(
                        smoothed.at(i, j, k).clamp(opts.window.0, opts.window.1),
                    ));
                }
            }
        }
    }
    Samples { points, values }
}

/// NCC of the samples with the moving image through `t`, and the share of samples inside.
fn ncc(s: &Samples, moving: &Volume<f32>, t: &RigidTransform, window: (f32, f32)) -> (f64, f64) {
    let map = moving.grid().world_to_index_map().compose(&t.to_affine());
    let acc = s
        .points
        .par_iter()
        .zip(s.values.par_iter())
        .fold(
            || [0.0f64; 6],
            |mut a, (p, &f)| {
                if let Some(m) = sample_linear(moving, map.apply(*p)) {
                    let m = f64::from(m.clamp(window.0, window.1));
                    a[0] += 1.0;
                    a[1] += f;
                    a[2] += m;
                    a[3] += f * f;
                    a[4] += m * m;
                    a[5] += f * m;
                }
                a
            },
        )
        .reduce(|| [0.0; 6], |a, b| [0, 1, 2, 3, 4, 5].map(|i| a[i] + b[i]));
    let n = acc[0];
    let inside = n / s.points.len().max(1) as f64;
    if n < 10.0 {
        return (0.0, inside);
    }
    let cov = acc[5] - acc[1] * acc[2] / n;
    let vf = acc[3] - acc[1] * acc[1] / n;
    let vm = acc[4] - acc[2] * acc[2] / n;
    if vf <= 0.0 || vm <= 0.0 {
        return (0.0, inside);
    }
    (cov / (vf * vm).sqrt(), inside)
}

/// Registers `moving` to `fixed` (both CT, HU).
pub fn register_rigid(
    fixed: &Volume<f32>,
    moving: &Volume<f32>,
    opts: &RigidOptions,
) -> Result<Registration, RegisterError> {
    let cf = centroid(fixed, opts.mask_threshold).ok_or(RegisterError::EmptyMask {
        which: "fixed",
        threshold: opts.mask_threshold,
    })?;
    let cm = centroid(moving, opts.mask_threshold).ok_or(RegisterError::EmptyMask {
        which: "moving",
        threshold: opts.mask_threshold,
    })?;
    for (which, v) in [("fixed", fixed), ("moving", moving)] {
        let inside = v
            .data()
            .iter()
            .filter(|&&x| x > opts.mask_threshold)
            .map(|&x| x.clamp(opts.window.0, opts.window.1));
        let (lo, hi) = inside.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
        if hi - lo <= 0.0 {
            return Err(RegisterError::Constant { which });
        }
    }
    let mut x = vec![0.0, 0.0, 0.0, cm[0] - cf[0], cm[1] - cf[1], cm[2] - cf[2]];
    let mut evaluations = 0;
    let finest = opts.levels.last().copied().unwrap_or((0.0, 3.0));
    let s_final = samples(fixed, fixed, finest.1, opts);
    let (ncc_before, _) = ncc(&s_final, moving, &RigidTransform::identity(), opts.window);
    let mut step_scale = 1.0;
    for &(fwhm, spacing) in &opts.levels {
        let (f_s, m_s) = if fwhm > 0.0 {
            (
                gaussian_blur(fixed, fwhm, Edge::Replicate),
                gaussian_blur(moving, fwhm, Edge::Replicate),
            )
        } else {
            (fixed.clone(), moving.clone())
        };
        let s = samples(fixed, &f_s, spacing, opts);
        if s.points.is_empty() {
            return Err(RegisterError::EmptyMask {
                which: "fixed",
                threshold: opts.mask_threshold,
            });
        }
        let (_, inside) = ncc(&s, &m_s, &to_transform(&x, cf), opts.window);
        if inside < 0.3 {
            return Err(RegisterError::NoOverlap {
                percent: inside * 100.0,
            });
        }
        let cost = |p: &[f64]| {
            let (c, inside) = ncc(&s, &m_s, &to_transform(p, cf), opts.window);
            // Leaving the overlap is penalised so the optimiser cannot win by sampling air.
            -c * inside.min(0.9) / 0.9
        };
        let step = [2.0, 2.0, 2.0, 6.0, 6.0, 6.0].map(|v| v * step_scale);
        let (best, _, n) = minimize(&cost, &x, &step, opts.max_evals_per_level, 1e-9);
        evaluations += n;
        x = best;
        step_scale *= 0.4;
    }
    let transform = to_transform(&x, cf);
    if x[..3].iter().any(|a| a.abs() > 30.0) {
        return Err(RegisterError::Degenerate(format!(
            "rotation {:?}° beyond ±30°",
            &x[..3]
        )));
    }
    let (ncc_after, inside) = ncc(&s_final, moving, &transform, opts.window);
    if inside < 0.3 {
        return Err(RegisterError::NoOverlap {
            percent: inside * 100.0,
        });
    }
    Ok(Registration {
        transform,
        ncc_before,
        ncc_after,
        evaluations,
    })
}
