//! Hot lesions inside an organ mask (liver tumours in NET and PSMA therapy): the organ's dose is
//! the dose to its normal parenchyma, so tumours must not count as organ. A CT organ mask
//! includes them (they lie inside the organ's outline), and their uptake is typically 5-20 times
//! the parenchyma's: counted as liver they inflate the liver's activity while the mass barely
//! changes.
//!
//! Method (threshold segmentation on the registered SPECT, as in the liver-lesion exclusion of
//! MIRD/EANM practice): sample the SPECT at every organ voxel of the CT grid; voxels above
//! `uptake_ratio` × the organ's median concentration are lesion candidates; 6-connected clusters
//! of at least `min_volume_ml` are lesions. Each lesion is then trimmed to its voxels above
//! `median + edge_fraction × (lesion maximum − median)` (background-corrected fractional-maximum
//! delineation, 50 % by default): the candidate threshold alone also takes the PSF halo around a
//! tumour, and a lesion region larger than the tumour makes the geometric transfer matrix model
//! the tumour's activity as spread towards the region's edge, so it over-predicts the spill into
//! the parenchyma and under-estimates the parenchyma. The trimmed lesion is relabelled; the
//! geometric transfer matrix models it as its own region, so the parenchyma keeps its
//! concentration, and the parenchyma's mass loses the same voxels its activity does.

use mrt_core::distance::squared_distance_mm2;
use mrt_core::morphology::{connected_components, SubBox};
use mrt_core::resample::sample_linear;
use mrt_core::transform::RigidTransform;
use mrt_core::Volume;

/// Settings of the split.
#[derive(Debug, Clone, Copy)]
pub struct LesionOptions {
    /// Candidate threshold as a multiple of the organ's median SPECT concentration.
    pub uptake_ratio: f64,
    /// Smallest lesion kept (mL); smaller clusters are noise.
    pub min_volume_ml: f64,
    /// Lesion edge as a fraction of the way from the organ's median to the lesion's maximum
    /// (0 keeps every candidate voxel).
    pub edge_fraction: f64,
}

impl Default for LesionOptions {
    fn default() -> Self {
        Self {
            uptake_ratio: 2.5,
            min_volume_ml: 2.0,
            edge_fraction: 0.5,
        }
    }
}

/// What the split found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LesionSplit {
    /// Lesions found.
    pub count: usize,
    /// Their total volume on the CT grid (mL).
    pub volume_ml: f64,
    /// The organ's median SPECT concentration (SPECT units, e.g. Bq/mL).
    pub organ_median: f64,
}

/// Relabels the hot lesions inside `organ` in `labels` (CT grid) as `lesion_label`. `spect` is
/// sampled through `spect_to_ct` (SPECT world → CT world, as from the SPECT↔CT alignment).
/// Returns `None` when the organ is absent or its SPECT is not positive.
pub fn split_hot_lesions(
    labels: &mut Volume<u8>,
    spect: &Volume<f32>,
    spect_to_ct: &RigidTransform,
    organ: u8,
    lesion_label: u8,
    options: &LesionOptions,
) -> Option<LesionSplit> {
    // CT index → CT world → SPECT world → SPECT index.
    let map = spect
        .grid()
        .world_to_index_map()
        .compose(&spect_to_ct.inverse_affine())
        .compose(&labels.grid().index_to_world_map());
    let [nx, ny, _] = labels.grid().dims;
    let organ_voxels: Vec<(usize, f32)> = labels
        .data()
        .iter()
        .enumerate()
        .filter(|(_, &l)| l == organ)
        .map(|(n, _)| {
            let (i, j, k) = (n % nx, (n / nx) % ny, n / (nx * ny));
            let p = map.apply([i as f64, j as f64, k as f64]);
            (n, sample_linear(spect, p).unwrap_or(0.0))
        })
        .collect();
    if organ_voxels.is_empty() {
        return None;
    }
    let mut values: Vec<f32> = organ_voxels.iter().map(|&(_, v)| v).collect();
    let mid = values.len() / 2;
    let median = *values.select_nth_unstable_by(mid, f32::total_cmp).1 as f64;
    if !(median.is_finite() && median > 0.0) {
        return None;
    }
    let threshold = (options.uptake_ratio * median) as f32;
    let mut candidate = vec![false; labels.data().len()];
    for &(n, v) in &organ_voxels {
        candidate[n] = v > threshold;
    }
    let (components, sizes) = connected_components(&candidate, labels.grid().dims);
    let voxel_ml = labels.grid().voxel_volume_mm3() / 1000.0;
    let min_voxels = (options.min_volume_ml / voxel_ml).ceil() as usize;
    let kept: Vec<bool> = sizes.iter().map(|&s| s >= min_voxels.max(1)).collect();
    // Each kept lesion's maximum, then its edge threshold.
    let mut peak = vec![f64::NEG_INFINITY; sizes.len()];
    for &(n, v) in &organ_voxels {
        let c = components[n] as usize;
        if c > 0 && kept[c] {
            peak[c] = peak[c].max(f64::from(v));
        }
    }
    let edge: Vec<f32> = peak
        .iter()
        .map(|&p| (median + options.edge_fraction.clamp(0.0, 1.0) * (p - median)) as f32)
        .collect();
    let mut volume_voxels = 0usize;
    let mut found = vec![false; sizes.len()];
    for &(n, v) in &organ_voxels {
        let c = components[n] as usize;
        if c > 0 && kept[c] && v >= edge[c] {
            labels.data_mut()[n] = lesion_label;
            volume_voxels += 1;
            found[c] = true;
        }
    }
    Some(LesionSplit {
        count: found.iter().filter(|&&f| f).count(),
        volume_ml: volume_voxels as f64 * voxel_ml,
        organ_median: median,
    })
}

/// For every voxel of `labels` that holds `organ` and lies within `halo_mm` of a voxel labelled
/// `lesion` (centre to centre): its shell, 1 to `shells` from the lesion outwards, each
/// `halo_mm / shells` thick; 0 elsewhere. All 0 when `halo_mm` ≤ 0, `shells` is 0 or there is
/// no lesion. The distance transform runs on the lesions' bounding box widened by the halo.
pub fn lesion_halo(
    labels: &Volume<u8>,
    organ: u8,
    lesion: u8,
    halo_mm: f64,
    shells: u8,
) -> Vec<u8> {
    let data = labels.data();
    let mut halo = vec![0u8; data.len()];
    if shells == 0 || halo_mm.is_nan() || halo_mm <= 0.0 {
        return halo;
    }
    let grid = labels.grid();
    let dims = grid.dims;
    let spacing = grid.spacing_mm;
    let Some(sub_box) = SubBox::around(data, dims, spacing, halo_mm, |l| l == lesion) else {
        return halo;
    };
    let full_index = |s: usize| sub_box.grid_offset(s);
    let mask: Vec<bool> = (0..sub_box.len())
        .map(|s| data[full_index(s)] == lesion)
        .collect();
    let d2 = squared_distance_mm2(&mask, sub_box.dims, spacing);
    let limit = halo_mm * halo_mm;
    let width = halo_mm / f64::from(shells);
    for (s, &d) in d2.iter().enumerate() {
        let n = full_index(s);
        if d <= limit && data[n] == organ {
            halo[n] = ((d.sqrt() / width).ceil() as u8).clamp(1, shells);
        }
    }
    halo
}

#[cfg(test)]
mod tests {
    use super::*;
    use mrt_core::Grid;

    /// A 60 mm liver cube at 0.1 Bq/mL with a 12 mm-radius sphere at 1.5 Bq/mL, on a 2 mm CT
    /// grid and a 4 mm SPECT grid (both axis-aligned, same frame).
    fn scene(tumour: bool) -> (Volume<u8>, Volume<f32>) {
        let ct_grid = Grid::axis_aligned([40, 40, 40], [2.0; 3], [0.0; 3]).expect("grid");
        let spect_grid = Grid::axis_aligned([20, 20, 20], [4.0; 3], [1.0; 3]).expect("grid");
        let inside = |p: [f64; 3]| p.iter().all(|&c| (10.0..70.0).contains(&c));
        let in_tumour = |p: [f64; 3]| {
            tumour
                && ((p[0] - 40.0).powi(2) + (p[1] - 40.0).powi(2) + (p[2] - 40.0).powi(2)) < 144.0
        };
        let world = |g: &Grid, n: usize| {
            let [nx, ny, _] = g.dims;
            g.index_to_world_map().apply([
                (n % nx) as f64,
                ((n / nx) % ny) as f64,
                (n / (nx * ny)) as f64,
            ])
        };
        let labels = (0..ct_grid.len())
            .map(|n| u8::from(inside(world(&ct_grid, n))))
            .collect();
        let spect = (0..spect_grid.len())
            .map(|n| {
                let p = world(&spect_grid, n);
                if in_tumour(p) {
                    1.5
                } else if inside(p) {
                    0.1
                } else {
                    0.0
                }
            })
            .collect();
        (
            Volume::new(ct_grid, labels).expect("labels"),
            Volume::new(spect_grid, spect).expect("spect"),
        )
    }

    #[test]
    fn a_hot_sphere_becomes_a_lesion_of_about_its_volume() {
        let (mut labels, spect) = scene(true);
        let split = split_hot_lesions(
            &mut labels,
            &spect,
            &RigidTransform::identity(),
            1,
            9,
            &LesionOptions::default(),
        )
        .expect("organ present");
        assert_eq!(split.count, 1);
        // The lesion holds the sphere and at most one SPECT voxel (4 mm) of interpolation halo.
        let ball_ml = |r: f64| 4.0 / 3.0 * std::f64::consts::PI * r.powi(3) / 1000.0;
        assert!(
            split.volume_ml >= 0.9 * ball_ml(12.0) && split.volume_ml <= ball_ml(16.0),
            "lesion {:.1} mL; sphere {:.1} mL, with halo {:.1} mL",
            split.volume_ml,
            ball_ml(12.0),
            ball_ml(16.0)
        );
        assert!((split.organ_median - 0.1).abs() < 1e-6);
        assert_eq!(
            labels.data().iter().filter(|&&l| l == 9).count() as f64 * 8.0 / 1000.0,
            split.volume_ml
        );
    }

    /// The same scene seen through an 11 mm FWHM PSF: the 2.5 × median candidates spread well
    /// beyond the sphere; the 50 % edge brings the lesion back to about the sphere's volume.
    #[test]
    fn a_blurred_sphere_is_trimmed_to_about_its_volume() {
        use mrt_core::filter::{gaussian_blur, Edge};
        let ball_ml = 4.0 / 3.0 * std::f64::consts::PI * 12f64.powi(3) / 1000.0;
        let (labels, spect) = scene(true);
        let blurred = gaussian_blur(&spect, 11.0, Edge::Zero);
        let split = |edge_fraction: f64| {
            let mut l = labels.clone();
            split_hot_lesions(
                &mut l,
                &blurred,
                &RigidTransform::identity(),
                1,
                9,
                &LesionOptions {
                    edge_fraction,
                    ..LesionOptions::default()
                },
            )
            .expect("organ present")
        };
        let (candidates, trimmed) = (split(0.0), split(0.5));
        assert_eq!((candidates.count, trimmed.count), (1, 1));
        assert!(
            candidates.volume_ml > 1.5 * ball_ml,
            "candidates {:.1} mL, sphere {ball_ml:.1} mL",
            candidates.volume_ml
        );
        assert!(
            (trimmed.volume_ml / ball_ml - 1.0).abs() < 0.35,
            "trimmed {:.1} mL, sphere {ball_ml:.1} mL",
            trimmed.volume_ml
        );
    }

    #[test]
    fn a_uniform_organ_has_no_lesion_and_an_absent_one_is_none() {
        let (mut labels, spect) = scene(false);
        let before = labels.clone();
        let split = split_hot_lesions(
            &mut labels,
            &spect,
            &RigidTransform::identity(),
            1,
            9,
            &LesionOptions::default(),
        )
        .expect("organ present");
        assert_eq!((split.count, split.volume_ml), (0, 0.0));
        assert_eq!(labels, before);
        assert!(split_hot_lesions(
            &mut labels,
            &spect,
            &RigidTransform::identity(),
            3,
            9,
            &LesionOptions::default()
        )
        .is_none());
    }

    #[test]
    fn the_halo_is_the_organ_within_its_distance_of_a_lesion() {
        // 2 mm voxels; organ everywhere, one lesion voxel at (10, 10, 10), a spleen voxel at
        // (13, 10, 10) that stays out of the halo whatever its distance.
        let grid = Grid::axis_aligned([30, 30, 30], [2.0; 3], [0.0; 3]).expect("grid");
        let at = |i: usize, j: usize, k: usize| i + 30 * (j + 30 * k);
        let mut data = vec![1u8; 30 * 30 * 30];
        data[at(10, 10, 10)] = 9;
        data[at(13, 10, 10)] = 4;
        let labels = Volume::new(grid, data).expect("labels");
        let halo = lesion_halo(&labels, 1, 9, 10.0, 2);
        assert_eq!(halo[at(10, 10, 10)], 0, "the lesion itself");
        assert_eq!(halo[at(13, 10, 10)], 0, "another label");
        assert_eq!(halo[at(11, 10, 10)], 1, "2 mm along an axis");
        assert_eq!(halo[at(12, 10, 10)], 1, "4 mm");
        assert_eq!(halo[at(13, 11, 10)], 2, "6.3 mm");
        assert_eq!(halo[at(15, 10, 10)], 2, "10 mm along an axis");
        assert_eq!(halo[at(16, 10, 10)], 0, "12 mm");
        assert_eq!(halo[at(13, 13, 10)], 2, "8.5 mm diagonally");
        assert_eq!(halo[at(14, 14, 10)], 0, "11.3 mm diagonally");
        // A sphere of radius 10 mm on a 2 mm grid, less the lesion and the spleen voxel; of
        // radius 5 mm for the inner shell, less the lesion.
        let count = |shell: u8| halo.iter().filter(|&&h| h == shell).count();
        assert_eq!(count(1) + count(2), 515 - 2, "voxels within 10 mm");
        assert_eq!(count(1), 81 - 1, "voxels within 5 mm");
        assert!(lesion_halo(&labels, 1, 9, 0.0, 2).iter().all(|&h| h == 0));
        assert!(lesion_halo(&labels, 1, 9, 10.0, 0).iter().all(|&h| h == 0));
        assert!(lesion_halo(&labels, 1, 7, 10.0, 2).iter().all(|&h| h == 0));
    }
}
