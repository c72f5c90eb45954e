//! Similarity metrics between fixed-image samples and a moving image seen through a transform:
//! normalised cross-correlation (same modality, CT↔CT) and Mattes mutual information (any pair).

use mrt_core::grid::AffineMap;
use mrt_core::linalg::Vec3;
use mrt_core::resample::sample_linear;
use mrt_core::Volume;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which similarity to maximise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Normalised cross-correlation (−1..1); for images of the same modality.
    Ncc,
    /// Mattes mutual information (nats) with 32 bins: cubic B-spline Parzen window on the
    /// moving intensities, zero-order on the fixed ones (Mattes et al., IEEE TMI 2003).
    MattesMi,
}

impl Metric {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ncc => "ncc",
            Self::MattesMi => "mattes_mi",
        }
    }
}

/// Fixed-image sample points (world mm) and their (windowed) values.
pub struct Samples {
    /// World positions.
    pub points: Vec<Vec3>,
    /// Fixed values, clamped to the window.
    pub values: Vec<f64>,
}

/// The metric value (higher is better) and the share of samples that fell inside the moving
/// image.
pub fn evaluate(
    metric: Metric,
    s: &Samples,
    moving: &Volume<f32>,
    fixed_to_moving: &AffineMap,
    window: (f32, f32),
) -> (f64, f64) {
    let map = moving.grid().world_to_index_map().compose(fixed_to_moving);
    let pairs: Vec<Option<f64>> = s
        .points
        .par_iter()
        .map(|p| {
            sample_linear(moving, map.apply(*p)).map(|m| f64::from(m.clamp(window.0, window.1)))
        })
        .collect();
    let inside = pairs.iter().filter(|m| m.is_some()).count() as f64;
    let share = inside / s.points.len().max(1) as f64;
    if inside < 10.0 {
        return (0.0, share);
    }
    let value = match metric {
        Metric::Ncc => ncc(&s.values, &pairs),
        Metric::MattesMi => mattes_mi(&s.values, &pairs, window),
    };
    (value, share)
}

fn ncc(fixed: &[f64], moving: &[Option<f64>]) -> f64 {
    let mut a = [0.0f64; 6];
    for (&f, m) in fixed.iter().zip(moving) {
        if let Some(m) = *m {
            a[0] += 1.0;
            a[1] += f;
            a[2] += m;
            a[3] += f * f;
            a[4] += m * m;
            a[5] += f * m;
        }
    }
    let n = a[0];
    let cov = a[5] - a[1] * a[2] / n;
    let vf = a[3] - a[1] * a[1] / n;
    let vm = a[4] - a[2] * a[2] / n;
    if vf <= 0.0 || vm <= 0.0 {
        0.0
    } else {
        cov / (vf * vm).sqrt()
    }
}

const BINS: usize = 32;

/// Cubic B-spline kernel.
fn bspline3(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        (4.0 - 6.0 * x * x + 3.0 * x * x * x) / 6.0
    } else if x < 2.0 {
        let t = 2.0 - x;
        t * t * t / 6.0
    } else {
        0.0
    }
}

fn mattes_mi(fixed: &[f64], moving: &[Option<f64>], window: (f32, f32)) -> f64 {
    let (lo, hi) = (f64::from(window.0), f64::from(window.1));
    let (f_lo, f_hi) = fixed
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let f_width = ((f_hi - f_lo) / BINS as f64).max(1e-12);
    // Moving bins leave two bins of padding each side for the B-spline support.
    let m_width = ((hi - lo) / (BINS - 4) as f64).max(1e-12);
    let mut joint = vec![0.0f64; BINS * BINS];
    let mut total = 0.0;
    for (&f, m) in fixed.iter().zip(moving) {
        let Some(m) = *m else { continue };
        let fb = (((f - f_lo) / f_width) as usize).min(BINS - 1);
        let mpos = (m - lo) / m_width + 2.0;
        let centre = mpos.floor() as isize;
        for b in (centre - 1)..=(centre + 2) {
            if (0..BINS as isize).contains(&b) {
                let w = bspline3(mpos - b as f64);
                joint[fb * BINS + b as usize] += w;
                total += w;
            }
        }
    }
    if total <= 0.0 {
        return 0.0;
    }
    let mut pf = [0.0f64; BINS];
    let mut pm = [0.0f64; BINS];
    for a in 0..BINS {
        for b in 0..BINS {
            let p = joint[a * BINS + b] / total;
            pf[a] += p;
            pm[b] += p;
        }
    }
    let mut mi = 0.0;
    for a in 0..BINS {
        for b in 0..BINS {
            let p = joint[a * BINS + b] / total;
            if p > 0.0 {
                mi += p * (p / (pf[a] * pm[b])).ln();
            }
        }
    }
    mi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ncc_is_one_for_a_linear_map_and_mi_is_highest_for_a_dependent_pair() {
        let fixed: Vec<f64> = (0..2000).map(|i| ((i * 37) % 101) as f64).collect();
        let linear: Vec<Option<f64>> = fixed.iter().map(|&f| Some(3.0 * f - 7.0)).collect();
        assert!((ncc(&fixed, &linear) - 1.0).abs() < 1e-12);
        let window = (0.0, 60.0);
        // A non-monotonic but deterministic relation keeps MI high; a shuffled one does not.
        let dependent: Vec<Option<f64>> = fixed.iter().map(|&f| Some((f - 50.0).abs())).collect();
        let shuffled: Vec<Option<f64>> = (0..2000)
            .map(|i| Some(((i * 53 + 11) % 97) as f64))
            .collect();
        let (mi_dep, mi_shuf) = (
            mattes_mi(&fixed, &dependent, window),
            mattes_mi(&fixed, &shuffled, window),
        );
        assert!(mi_dep > 1.5 && mi_shuf < 0.3, "{mi_dep} {mi_shuf}");
    }

    #[test]
    fn the_bspline_window_is_a_partition_of_unity() {
        for x in [0.0, 0.25, 0.5, 0.9] {
            let sum: f64 = (-2..=2).map(|b| bspline3(x - f64::from(b))).sum();
            assert!((sum - 1.0).abs() < 1e-12);
        }
    }
}
