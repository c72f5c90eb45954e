//! Intensity registration of two volumes in physical space: rigid (6 DOF) or affine (12 DOF),
//! NCC or Mattes MI, centre-of-mass initialisation, a Gaussian pyramid, Nelder-Mead.
//!
//! The transform maps fixed-image world points to moving-image world points (ITK's convention),
//! so resampling the moving image through it lands it on the fixed grid.

use mrt_core::filter::{gaussian_blur, Edge};
use mrt_core::linalg::{self, Mat3, Vec3};
use mrt_core::resample::sample_linear;
use mrt_core::{RigidTransform, Transform, Volume};
use serde::{Deserialize, Serialize};

use crate::gauss_newton::refine;
use crate::metric::{evaluate, Metric, Samples};
use crate::nelder_mead::minimize;

/// Degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformKind {
    /// Rotation and translation.
    Rigid,
    /// Rotation, translation, scaling and shear (a rigid stage runs first).
    Affine,
}

/// Registration settings.
#[derive(Debug, Clone)]
pub struct RegisterOptions {
    /// Rigid or affine.
    pub kind: TransformKind,
    /// Similarity metric.
    pub metric: Metric,
    /// Pyramid levels, coarse to fine: (smoothing FWHM mm, sample spacing mm).
    pub levels: Vec<(f64, f64)>,
    /// Nelder-Mead evaluations per level.
    pub max_evals_per_level: usize,
    /// Fixed-image voxels above this value are sampled (the body for CT, in HU).
    pub mask_threshold: f32,
    /// Both images are clamped to this window before the metric (HU for CT).
    pub window: (f32, f32),
    /// At most this many samples per level (a fixed pseudo-random subset beyond).
    pub max_samples: usize,
}

impl Default for RegisterOptions {
    fn default() -> Self {
        Self {
            kind: TransformKind::Rigid,
            metric: Metric::Ncc,
            levels: vec![(12.0, 12.0), (6.0, 6.0), (3.0, 3.0)],
            max_evals_per_level: 250,
            mask_threshold: -400.0,
            window: (-300.0, 400.0),
            max_samples: 40_000,
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
    /// The images do not overlap enough to compare.
    #[error("fields of view do not overlap: only {percent:.0} % of the fixed body samples fall inside the moving image")]
    NoOverlap {
        /// Share of samples inside.
        percent: f64,
    },
    /// The result is implausible (a rotation beyond 30°, a scale near zero or beyond ×2).
    #[error("degenerate result: {0}")]
    Degenerate(String),
}

/// The result.
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    /// Fixed world → moving world.
    pub transform: Transform,
    /// The metric maximised.
    pub metric: Metric,
    /// Metric at identity, on the finest samples.
    pub metric_before: f64,
    /// Metric at the result, on the finest samples.
    pub metric_after: f64,
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

/// Rigid parameters (rx, ry, rz in degrees about `centre`, tx, ty, tz in mm) → transform.
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

/// Affine parameters: the six rigid ones, then scale changes (x, y, z) and shears (xy, xz, yz),
/// both in percent: `p' = R·(I + S)·(p − c) + c + t`.
fn to_affine_transform(x: &[f64], centre: Vec3) -> Transform {
    let r = linalg::rotation_xyz_deg([x[0], x[1], x[2]]);
    let s: Mat3 = [
        [1.0 + x[6] / 100.0, x[9] / 100.0, x[10] / 100.0],
        [0.0, 1.0 + x[7] / 100.0, x[11] / 100.0],
        [0.0, 0.0, 1.0 + x[8] / 100.0],
    ];
    let m = linalg::mat_mul(&r, &s);
    let mc = linalg::mat_vec(&m, centre);
    Transform::Affine {
        matrix: m,
        translation_mm: [0, 1, 2].map(|a| centre[a] - mc[a] + x[3 + a]),
    }
}

fn parameters_to_transform(x: &[f64], centre: Vec3) -> Transform {
    if x.len() == 12 {
        to_affine_transform(x, centre)
    } else {
        Transform::Rigid(to_transform(x, centre))
    }
}

/// A fixed pseudo-random number in [0, 1) for `key` (splitmix64).
fn unit_hash(key: u64) -> f64 {
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A fixed pseudo-random subset test.
fn keep_sample(offset: usize, probability: f64) -> bool {
    unit_hash(offset as u64) <= probability
}

fn samples(
    fixed: &Volume<f32>,
    smoothed: &Volume<f32>,
    spacing_mm: f64,
    opts: &RegisterOptions,
) -> Samples {
    let g = fixed.grid();
    let stride = g
        .spacing_mm
        .map(|s| ((spacing_mm / s).round() as usize).max(1));
    let mut candidates = Vec::new();
    for k in (0..g.dims[2]).step_by(stride[2]) {
        for j in (0..g.dims[1]).step_by(stride[1]) {
            for i in (0..g.dims[0]).step_by(stride[0]) {
                if *fixed.at(i, j, k) > opts.mask_threshold {
                    candidates.push((i, j, k));
                }
            }
        }
    }
    let probability = opts.max_samples as f64 / candidates.len().max(1) as f64;
    let (mut points, mut values) = (Vec::new(), Vec::new());
    for (i, j, k) in candidates {
        let offset = g.offset(i, j, k);
        if probability < 1.0 && !keep_sample(offset, probability) {
            continue;
        }
        // Samples sit at pseudo-random positions within their voxel, not on the lattice, so
        // that interpolation smoothing does not favour grid-aligned transforms.
        let jitter = [1u64, 2, 3].map(|a| unit_hash(offset as u64 * 4 + a) - 0.5);
        let index = [
            (i as f64 + jitter[0]).clamp(0.0, (g.dims[0] - 1) as f64),
            (j as f64 + jitter[1]).clamp(0.0, (g.dims[1] - 1) as f64),
            (k as f64 + jitter[2]).clamp(0.0, (g.dims[2] - 1) as f64),
        ];
        let Some(v) = sample_linear(smoothed, index) else {
            continue;
        };
        points.push(g.index_to_world(index));
        values.push(f64::from(v.clamp(opts.window.0, opts.window.1)));
    }
    Samples { points, values }
}

fn check_inputs(
    fixed: &Volume<f32>,
    moving: &Volume<f32>,
    opts: &RegisterOptions,
) -> Result<(Vec3, Vec3), RegisterError> {
    let cf = centroid(fixed, opts.mask_threshold).ok_or(RegisterError::EmptyMask {
        which: "fixed",
        threshold: opts.mask_threshold,
    })?;
    let cm = centroid(moving, opts.mask_threshold).ok_or(RegisterError::EmptyMask {
        which: "moving",
        threshold: opts.mask_threshold,
    })?;
    for (which, v) in [("fixed", fixed), ("moving", moving)] {
        let (lo, hi) = v
            .data()
            .iter()
            .filter(|&&x| x > opts.mask_threshold)
            .map(|&x| x.clamp(opts.window.0, opts.window.1))
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x), hi.max(x))
            });
        if hi - lo <= 0.0 {
            return Err(RegisterError::Constant { which });
        }
    }
    Ok((cf, cm))
}

/// How one pyramid level is optimised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nelder-Mead over the parameters in use (six, or twelve once affine).
    Simplex,
    /// Nelder-Mead, switching to twelve parameters.
    SimplexAffine,
    /// Levenberg-Marquardt on the least-squares form of NCC.
    Refine {
        /// Twelve parameters instead of six.
        affine: bool,
    },
}

/// Registers `moving` to `fixed`.
pub fn register(
    fixed: &Volume<f32>,
    moving: &Volume<f32>,
    opts: &RegisterOptions,
) -> Result<Registration, RegisterError> {
    let (cf, cm) = check_inputs(fixed, moving, opts)?;
    let mut x = vec![0.0, 0.0, 0.0, cm[0] - cf[0], cm[1] - cf[1], cm[2] - cf[2]];
    let mut evaluations = 0;
    let finest = opts.levels.last().copied().unwrap_or((0.0, 3.0));
    let s_final = samples(fixed, fixed, finest.1, opts);
    let identity = Transform::identity().to_affine();
    let (metric_before, _) = evaluate(opts.metric, &s_final, moving, &identity, opts.window);
    // NCC: Nelder-Mead on the coarsest level (capture range), Levenberg-Marquardt on the finer
    // ones (precision, speed). Mattes MI: Nelder-Mead on every level. Affine refines the rigid
    // result on the last two levels.
    let n = opts.levels.len();
    let mut stages: Vec<(f64, f64, Stage)> = opts
        .levels
        .iter()
        .enumerate()
        .map(|(l, &(f, s))| {
            let stage = if opts.metric == Metric::Ncc && l > 0 {
                Stage::Refine { affine: false }
            } else {
                Stage::Simplex
            };
            (f, s, stage)
        })
        .collect();
    if opts.kind == TransformKind::Affine {
        let stage = if opts.metric == Metric::Ncc {
            Stage::Refine { affine: true }
        } else {
            Stage::SimplexAffine
        };
        stages.extend(
            opts.levels[n.saturating_sub(2)..]
                .iter()
                .map(|&(f, s)| (f, s, stage)),
        );
    }
    let mut current = parameters_to_transform(&x, cf);
    let mut step_scale = 1.0;
    for (fwhm, spacing, stage) in stages {
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
        let (_, inside) = evaluate(opts.metric, &s, &m_s, &current.to_affine(), opts.window);
        if inside < 0.3 {
            return Err(RegisterError::NoOverlap {
                percent: inside * 100.0,
            });
        }
        if let Stage::Refine { affine } = stage {
            let (map, evals) = refine(&s, &m_s, current.to_affine(), cf, affine, 30, opts.window);
            evaluations += evals;
            current = if affine {
                Transform::Affine {
                    matrix: map.matrix,
                    translation_mm: map.translation,
                }
            } else {
                Transform::Rigid(RigidTransform::from_rotation_matrix(
                    &map.matrix,
                    map.translation,
                ))
            };
            continue;
        }
        if stage == Stage::SimplexAffine && x.len() == 6 {
            x.extend([0.0; 6]);
            step_scale = 0.4;
        }
        let cost = |p: &[f64]| {
            let t = parameters_to_transform(p, cf).to_affine();
            let (c, inside) = evaluate(opts.metric, &s, &m_s, &t, opts.window);
            // Leaving the overlap is penalised so the optimiser cannot win by sampling air.
            -c * inside.min(0.9) / 0.9
        };
        let mut step = vec![2.0, 2.0, 2.0, 6.0, 6.0, 6.0];
        if x.len() == 12 {
            step.extend([3.0; 6]);
        }
        let step: Vec<f64> = step.iter().map(|v| v * step_scale).collect();
        let (best, _, evals) = minimize(&cost, &x, &step, opts.max_evals_per_level, 1e-9);
        evaluations += evals;
        x = best;
        current = parameters_to_transform(&x, cf);
        step_scale *= 0.4;
    }
    let transform = current;
    let angles = RigidTransform::from_rotation_matrix(&transform.to_affine().matrix, [0.0; 3]);
    if angles.rotation_deg.iter().any(|a| a.abs() > 30.0) {
        return Err(RegisterError::Degenerate(format!(
            "rotation {:?}° beyond ±30°",
            angles.rotation_deg
        )));
    }
    let det = linalg::det(&transform.to_affine().matrix);
    if !(0.5..=2.0).contains(&det) {
        return Err(RegisterError::Degenerate(format!(
            "volume scale {det:.3} outside 0.5-2 (scale near zero or a flip)"
        )));
    }
    let (metric_after, inside) = evaluate(
        opts.metric,
        &s_final,
        moving,
        &transform.to_affine(),
        opts.window,
    );
    if inside < 0.3 {
        return Err(RegisterError::NoOverlap {
            percent: inside * 100.0,
        });
    }
    Ok(Registration {
        transform,
        metric: opts.metric,
        metric_before,
        metric_after,
        evaluations,
    })
}
