//! The quantify stage's boundary search (site setting `boundary_search_mm`): where two organ
//! masks touch, the SPECT of every time point is asked where their shared boundary lies, and
//! the boundary is moved there in every time point's labels before the organs are measured.
//!
//! The residual per offset is `mrt_dosimetry::interface`'s; this module sums it over the time
//! points (each relative to its own residual at offset 0, so that early time points with more
//! counts do not outvote late ones), chooses, and applies. No I/O.

use mrt_core::transform::RigidTransform;
use mrt_core::Volume;
use mrt_dosimetry::interface::{boundary_residuals, Contact};
use mrt_dosimetry::quantify::body_regions;
use serde::{Deserialize, Serialize};

use crate::config::SiteConfig;

/// Two masks whose voxels lie within this many CT voxel spacings of each other touch.
const TOUCH_VOXELS: f64 = 1.5;

/// One time point's residual curves: per touching pair of organ label values (first, second),
/// the residual per offset of [`offsets_mm`].
pub type PairResiduals = Vec<((u8, u8), Vec<f64>)>;

/// The boundary search of one pair of organs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoundarySearch {
    /// The two organs; a positive offset moves the boundary into the first.
    pub organs: [String; 2],
    /// Offsets tried (mm).
    pub offsets_mm: Vec<f64>,
    /// Per offset: the residual of the SPECT fit around the pair relative to the residual at
    /// offset 0, mean over `timepoints`.
    pub relative_residual: Vec<f64>,
    /// Time points whose SPECT took part.
    pub timepoints: Vec<usize>,
    /// The offset applied (mm); 0 when none lowers the residual by `boundary_min_gain_percent`,
    /// or when the search was held back.
    pub offset_mm: f64,
    /// Why the boundary was not moved whatever the residuals say: a mask of the pair that the
    /// SPECT residual splits in two (half of it without the organ's uptake) would steer the
    /// boundary by the wrong tissue. For a kidney, the uptake exclusion then decides which half
    /// is foreign by the other kidney's concentration; other organs keep their masks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_back: Option<String>,
}

/// Time points' organs (label values) whose masks the SPECT residual splits in two
/// (`mrt_dosimetry::mask_exclusion::split_mask`), as (time point index, labels).
pub type SplitMasks = [(usize, Vec<u8>)];

/// The offsets the site settings ask for: −max to +max in steps (0 included).
pub fn offsets_mm(cfg: &SiteConfig) -> Vec<f64> {
    if cfg.boundary_search_mm <= 0.0 || cfg.boundary_step_mm <= 0.0 {
        return Vec::new();
    }
    let n = (cfg.boundary_search_mm / cfg.boundary_step_mm).floor() as i64;
    (-n..=n).map(|i| i as f64 * cfg.boundary_step_mm).collect()
}

/// Residual curves of one time point: for every pair of `organs` (label, name) whose masks
/// touch in `labels`, the residual per offset of [`offsets_mm`]. `kept` are the label values
/// that are GTM regions as they are (organs, lesions), `regions` the GTM's regions.
#[allow(clippy::too_many_arguments)]
pub fn timepoint_residuals(
    spect: &Volume<f32>,
    ct: &Volume<f32>,
    labels: &Volume<u8>,
    kept: &[u8],
    regions: &[u8],
    organs: &[(u8, &str)],
    spect_to_ct: &RigidTransform,
    cfg: &SiteConfig,
) -> PairResiduals {
    let offsets = offsets_mm(cfg);
    if offsets.is_empty() {
        return Vec::new();
    }
    let Some(body) = body_regions(labels, ct, kept) else {
        return Vec::new();
    };
    let spacing = labels.grid().spacing_mm;
    let touch_mm = TOUCH_VOXELS * spacing[0].max(spacing[1]).max(spacing[2]);
    let mut out = Vec::new();
    for (n, &(a, _)) in organs.iter().enumerate() {
        for &(b, _) in &organs[n + 1..] {
            let Some(contact) = Contact::new(&body, a, b, cfg.boundary_search_mm, touch_mm) else {
                continue;
            };
            if let Some(r) = boundary_residuals(
                spect,
                &body,
                &contact,
                regions,
                spect_to_ct,
                cfg.psf_fwhm_mm,
                &offsets,
            ) {
                if r.iter().all(|v| v.is_finite()) {
                    out.push(((a, b), r));
                }
            }
        }
    }
    out
}

/// Per pair: the mean relative residual over the time points of `per_timepoint` (time point
/// index, its [`timepoint_residuals`]) and the offset chosen; 0, held back, for a pair with an
/// organ in `split` at any time point.
pub fn choose(
    per_timepoint: &[(usize, PairResiduals)],
    split: &SplitMasks,
    organs: &[(u8, &str)],
    cfg: &SiteConfig,
) -> Vec<BoundarySearch> {
    let offsets = offsets_mm(cfg);
    let Some(zero) = offsets.iter().position(|&d| d == 0.0) else {
        return Vec::new();
    };
    let name = |l: u8| {
        organs
            .iter()
            .find(|(v, _)| *v == l)
            .map(|(_, n)| n.to_string())
            .unwrap_or_default()
    };
    let mut pairs: Vec<(u8, u8)> = per_timepoint
        .iter()
        .flat_map(|(_, c)| c.iter().map(|(p, _)| *p))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
        .into_iter()
        .filter_map(|pair| {
            let mut sum = vec![0.0; offsets.len()];
            let mut timepoints = Vec::new();
            for (index, curves) in per_timepoint {
                let Some((_, r)) = curves.iter().find(|(p, _)| *p == pair) else {
                    continue;
                };
                if r.len() != offsets.len() || r[zero] <= 0.0 {
                    continue;
                }
                for (s, v) in sum.iter_mut().zip(r) {
                    *s += v / r[zero];
                }
                timepoints.push(*index);
            }
            if timepoints.is_empty() {
                return None;
            }
            let relative: Vec<f64> = sum.iter().map(|s| s / timepoints.len() as f64).collect();
            let (best, &lowest) = relative
                .iter()
                .enumerate()
                .min_by(|x, y| x.1.total_cmp(y.1))?;
            let gain = 1.0 - lowest;
            let held_back = held_back(split, pair, &name);
            let offset_mm = if gain * 100.0 >= cfg.boundary_min_gain_percent && held_back.is_none()
            {
                offsets[best]
            } else {
                0.0
            };
            Some(BoundarySearch {
                organs: [name(pair.0), name(pair.1)],
                offsets_mm: offsets.clone(),
                relative_residual: relative,
                timepoints,
                offset_mm,
                held_back,
            })
        })
        .collect()
}

/// Why the boundary of `pair` is held back, if an organ of it is in `split` at some time point.
fn held_back(split: &SplitMasks, pair: (u8, u8), name: &dyn Fn(u8) -> String) -> Option<String> {
    let mut reasons = Vec::new();
    for organ in [pair.0, pair.1] {
        let at: Vec<String> = split
            .iter()
            .filter(|(_, labels)| labels.contains(&organ))
            .map(|(index, _)| index.to_string())
            .collect();
        if !at.is_empty() {
            reasons.push(format!(
                "the SPECT residual splits {}'s mask in two at time point {}",
                name(organ),
                at.join(", ")
            ));
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Moves the boundaries of `searches` with a non-zero offset in `labels`; returns per search
/// the voxels that changed label.
pub fn apply(
    labels: &mut Volume<u8>,
    searches: &[BoundarySearch],
    organs: &[(u8, &str)],
) -> Vec<usize> {
    let value = |name: &str| organs.iter().find(|(_, n)| *n == name).map(|(l, _)| *l);
    searches
        .iter()
        .map(|s| {
            let (Some(a), Some(b)) = (value(&s.organs[0]), value(&s.organs[1])) else {
                return 0;
            };
            if s.offset_mm == 0.0 {
                return 0;
            }
            // Any voxel of one organ within the offset of the other moves, touching or not.
            let Some(contact) = Contact::new(labels, a, b, s.offset_mm.abs(), f64::INFINITY) else {
                return 0;
            };
            let (moved, n) = contact.shifted(labels, s.offset_mm);
            *labels = moved;
            n
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORGANS: [(u8, &str); 2] = [(2, "kidney_left"), (4, "spleen")];

    fn cfg(gain_percent: f64) -> SiteConfig {
        SiteConfig {
            boundary_search_mm: 6.0,
            boundary_step_mm: 3.0,
            boundary_min_gain_percent: gain_percent,
            ..SiteConfig::default()
        }
    }

    #[test]
    fn offsets_run_both_ways_through_zero() {
        assert_eq!(offsets_mm(&cfg(2.0)), vec![-6.0, -3.0, 0.0, 3.0, 6.0]);
        let off = SiteConfig {
            boundary_search_mm: 0.0,
            ..SiteConfig::default()
        };
        assert!(offsets_mm(&off).is_empty());
    }

    #[test]
    fn time_points_count_alike_and_a_small_gain_moves_nothing() {
        // Time point 1 (many counts) prefers +3 mm, time point 2 prefers +6 mm; relative to
        // their own residual at 0 the mean is [1.3, 1.1, 1, 0.85, 0.9].
        let per_tp = vec![
            (
                1,
                vec![((2, 4), vec![1300.0, 1100.0, 1000.0, 800.0, 1000.0])],
            ),
            (2, vec![((2, 4), vec![13.0, 11.0, 10.0, 9.0, 8.0])]),
        ];
        let s = choose(&per_tp, &[], &ORGANS, &cfg(2.0));
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].organs,
            ["kidney_left".to_string(), "spleen".to_string()]
        );
        assert_eq!(s[0].timepoints, vec![1, 2]);
        let expected = [1.3, 1.1, 1.0, 0.85, 0.9];
        for (r, e) in s[0].relative_residual.iter().zip(expected) {
            assert!((r - e).abs() < 1e-12, "{:?}", s[0].relative_residual);
        }
        assert_eq!(s[0].offset_mm, 3.0);
        // A 15 % gain is below a 20 % threshold: the boundary stays.
        assert_eq!(choose(&per_tp, &[], &ORGANS, &cfg(20.0))[0].offset_mm, 0.0);
        // A kidney mask split in two at time point 2 holds the boundary where the CT put it,
        // and says why.
        let held = choose(&per_tp, &[(1, vec![]), (2, vec![2])], &ORGANS, &cfg(2.0));
        assert_eq!(held[0].offset_mm, 0.0);
        assert_eq!(
            held[0].held_back.as_deref(),
            Some("the SPECT residual splits kidney_left's mask in two at time point 2")
        );
        assert_eq!(held[0].relative_residual, s[0].relative_residual);
    }
}
