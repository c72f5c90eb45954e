//! Where the SPECT contradicts the organ masks: clusters of the GTM residual inside each organ.
//!
//! The geometric transfer matrix (Rousset et al. 1998, J Nucl Med 39:904) models the SPECT as
//! uniform regions seen through the PSF: P = Σ_j c_j (M_j⊗h). When a mask holds tissue that is
//! not the organ (bowel or a cyst taken for kidney: no uptake; a piece of spleen taken for kidney:
//! another uptake), the observed image O departs from P over that tissue, coherently over a
//! PSF-sized neighbourhood, and the organ's activity and mass both rest on the wrong tissue. Noise
//! and the PSF edges of a small misalignment depart too, but incoherently or in thin shells.
//!
//! So the residual O − P is smoothed at the PSF's own scale (a matched filter for PSF-sized
//! structures) and divided by the organ's fitted concentration; the largest 6-connected cluster of
//! the organ's VOI below −threshold (cold) and above +threshold (hot) is measured in mL. What
//! counts as too large is the caller's decision (a QA setting), not this module's.

use mrt_core::filter::{gaussian_blur, Edge};
use mrt_core::morphology::connected_components;
use mrt_core::Volume;
use serde::{Deserialize, Serialize};

/// Largest residual clusters of one organ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResidualClusters {
    /// Largest connected part of the VOI where the smoothed residual is below −threshold × the
    /// organ's concentration (mL): less uptake than the organ, as in bowel or a cyst.
    #[serde(rename = "cold_mL")]
    pub cold_ml: f64,
    /// Largest connected part above +threshold × the organ's concentration (mL): more uptake
    /// than the organ, as in a neighbouring organ or a lesion.
    #[serde(rename = "hot_mL")]
    pub hot_ml: f64,
}

/// The largest cold and hot residual clusters of one region, as voxel indices of the SPECT grid,
/// with the mean smoothed residual over each as a fraction of the region's concentration
/// (negative for cold). Empty clusters have a mean of 0.
///
/// The hot cluster also has a *core*: its voxels whose smoothed residual reaches half the
/// cluster's peak. The smoothed residual of foreign tissue is a blurred step, and a blurred step
/// crosses half its height at the step's edge; a fixed threshold (a fraction of the organ's
/// concentration) sits lower on a strong step and so also takes the organ's own tissue in the
/// PSF halo around it (the same reason [`crate::lesions`] trims lesions to a background-corrected
/// 50 % of their maximum). The whole cluster is what the QA measures;
/// [`crate::mask_exclusion::foreign_cluster`] says which voxels a caller should relabel.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterVoxels {
    /// Voxels of the largest cold cluster.
    pub cold: Vec<usize>,
    /// Mean smoothed residual over `cold` / concentration (≤ −threshold, or 0 when empty).
    pub cold_mean_fraction: f64,
    /// Voxels of the largest hot cluster.
    pub hot: Vec<usize>,
    /// Mean smoothed residual over `hot` / concentration (≥ threshold, or 0 when empty).
    pub hot_mean_fraction: f64,
    /// The voxels of `hot` at or above half its largest smoothed residual.
    pub hot_core: Vec<usize>,
    /// The region's concentration (Bq/mL) the residual was taken against, which the mean
    /// fractions are fractions of.
    pub concentration_bq_per_ml: f64,
}

impl ClusterVoxels {
    /// Cluster sizes in mL for SPECT voxels of `voxel_ml`.
    pub fn sizes(&self, voxel_ml: f64) -> ResidualClusters {
        ResidualClusters {
            cold_ml: self.cold.len() as f64 * voxel_ml,
            hot_ml: self.hot.len() as f64 * voxel_ml,
        }
    }
}

/// Residual clusters of every region `i` with a positive `concentrations_bq_per_ml[i]` (the GTM
/// solution); `None` for the others. `masks` are the regions' fractions on the SPECT grid (the
/// same as the GTM's, every region of the model, organs and background alike) and `blurred` the
/// same masks through the PSF of FWHM `psf_fwhm_mm` ([`crate::quantify::blur_masks`]); the VOI
/// of a region is where its fraction is at least 0.5. `threshold` is a fraction of the region's
/// concentration (e.g. 0.35).
pub fn residual_clusters(
    spect_bq_per_ml: &Volume<f32>,
    masks: &[Volume<f32>],
    blurred: &[Volume<f32>],
    concentrations_bq_per_ml: &[Option<f64>],
    psf_fwhm_mm: f64,
    threshold: f64,
) -> Vec<Option<ResidualClusters>> {
    let voxel_ml = spect_bq_per_ml.grid().voxel_volume_mm3() / 1000.0;
    residual_cluster_voxels(
        spect_bq_per_ml,
        masks,
        blurred,
        concentrations_bq_per_ml,
        psf_fwhm_mm,
        threshold,
    )
    .into_iter()
    .map(|c| c.map(|c| c.sizes(voxel_ml)))
    .collect()
}

/// As [`residual_clusters`], with the clusters' voxels and mean residuals.
pub fn residual_cluster_voxels(
    spect_bq_per_ml: &Volume<f32>,
    masks: &[Volume<f32>],
    blurred: &[Volume<f32>],
    concentrations_bq_per_ml: &[Option<f64>],
    psf_fwhm_mm: f64,
    threshold: f64,
) -> Vec<Option<ClusterVoxels>> {
    let n = spect_bq_per_ml.data().len();
    let mut residual: Vec<f32> = spect_bq_per_ml.data().to_vec();
    for (b, c) in blurred.iter().zip(concentrations_bq_per_ml) {
        if let Some(c) = c.filter(|c| c.is_finite()) {
            for (r, &f) in residual.iter_mut().zip(b.data()) {
                *r -= (c * f64::from(f)) as f32;
            }
        }
    }
    let residual =
        Volume::new(spect_bq_per_ml.grid().clone(), residual).expect("sized from the SPECT grid");
    let smoothed = gaussian_blur(&residual, psf_fwhm_mm, Edge::Zero);
    let dims = spect_bq_per_ml.grid().dims;
    let residual_of = |v: usize| f64::from(smoothed.data()[v]);
    // The largest component's voxels and its mean smoothed residual / c.
    let largest = |mask: &[bool], c: f64| -> (Vec<usize>, f64) {
        let (components, sizes) = connected_components(mask, dims);
        let Some((id, _)) = sizes
            .iter()
            .enumerate()
            .skip(1)
            .max_by_key(|&(i, &s)| (s, std::cmp::Reverse(i)))
        else {
            return (Vec::new(), 0.0);
        };
        let voxels: Vec<usize> = (0..n).filter(|&v| components[v] as usize == id).collect();
        let mean = voxels.iter().map(|&v| residual_of(v)).sum::<f64>() / voxels.len() as f64;
        (voxels, mean / c)
    };
    // The voxels of a hot cluster whose residual reaches half the cluster's peak.
    let hot_core = |voxels: &[usize]| -> Vec<usize> {
        let peak = voxels
            .iter()
            .map(|&v| residual_of(v))
            .fold(f64::NEG_INFINITY, f64::max);
        voxels
            .iter()
            .copied()
            .filter(|&v| residual_of(v) >= 0.5 * peak)
            .collect()
    };
    masks
        .iter()
        .zip(concentrations_bq_per_ml)
        .map(|(m, c)| {
            let c = c.filter(|c| c.is_finite() && *c > 0.0)?;
            let limit = (threshold * c) as f32;
            let mut cold = vec![false; n];
            let mut hot = vec![false; n];
            for (v, (&f, &r)) in m.data().iter().zip(smoothed.data()).enumerate() {
                if f >= 0.5 {
                    cold[v] = r < -limit;
                    hot[v] = r > limit;
                }
            }
            let (cold, cold_mean_fraction) = largest(&cold, c);
            let (hot, hot_mean_fraction) = largest(&hot, c);
            let hot_core = hot_core(&hot);
            Some(ClusterVoxels {
                cold,
                cold_mean_fraction,
                hot,
                hot_mean_fraction,
                hot_core,
                concentration_bq_per_ml: c,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantify::blur_masks;
    use mrt_core::Grid;

    const FWHM_MM: f64 = 11.0;

    fn grid() -> Grid {
        Grid::axis_aligned([48, 48, 48], [4.0, 4.0, 4.0], [0.0, 0.0, 0.0]).expect("valid grid")
    }

    /// A box of 40 × 40 mm in y and z at the grid's centre, spanning voxels `x0..x1` in x.
    fn box_mask(x0: usize, x1: usize) -> Volume<f32> {
        let g = grid();
        let [nx, ny, nz] = g.dims;
        let mut d = vec![0.0f32; nx * ny * nz];
        for k in 19..29 {
            for j in 19..29 {
                for i in x0..x1 {
                    d[i + nx * (j + ny * k)] = 1.0;
                }
            }
        }
        Volume::new(g, d).expect("sized from the grid")
    }

    /// The SPECT of one uniform region of concentration `c` seen through the PSF.
    fn imaged(mask: &Volume<f32>, c: f32) -> Volume<f32> {
        let b = gaussian_blur(mask, FWHM_MM, Edge::Zero);
        b.map(|&v| v * c)
    }

    fn background(organ: &Volume<f32>) -> Volume<f32> {
        organ.map(|&f| 1.0 - f)
    }

    #[test]
    fn a_mask_that_matches_the_uptake_has_no_cluster() {
        let organ = box_mask(19, 29);
        let spect = imaged(&organ, 1000.0);
        let masks = [organ.clone(), background(&organ)];
        let r = residual_clusters(
            &spect,
            &masks,
            &blur_masks(&masks, FWHM_MM),
            &[Some(1000.0), Some(0.0)],
            FWHM_MM,
            0.35,
        );
        let organ_r = r[0].expect("organ has a concentration");
        assert_eq!(organ_r.cold_ml, 0.0);
        assert_eq!(organ_r.hot_ml, 0.0);
        assert!(
            r[1].is_none(),
            "zero concentration: nothing to compare with"
        );
    }

    #[test]
    fn cold_tissue_in_the_mask_is_a_cold_cluster_of_about_its_size() {
        // The organ takes up activity in x 19..29; the mask also holds x 29..37 (32 × 40 × 40 mm,
        // 51 mL of tissue without uptake). The GTM fit of the mask's mean concentration is what
        // the residual is measured against.
        let truth = box_mask(19, 29);
        let spect = imaged(&truth, 1000.0);
        let mask = box_mask(19, 37);
        let masks = [mask.clone(), background(&mask)];
        // GTM of the one-region-plus-background model (background 0): the mask's mean divided by
        // its mean blurred self.
        let b = gaussian_blur(&mask, FWHM_MM, Edge::Zero);
        let voi: Vec<usize> = (0..mask.data().len())
            .filter(|&v| mask.data()[v] >= 0.5)
            .collect();
        let t: f64 = voi.iter().map(|&v| f64::from(spect.data()[v])).sum::<f64>();
        let w: f64 = voi.iter().map(|&v| f64::from(b.data()[v])).sum::<f64>();
        let c = t / w;
        let r = residual_clusters(
            &spect,
            &masks,
            &blur_masks(&masks, FWHM_MM),
            &[Some(c), None],
            FWHM_MM,
            0.35,
        )[0]
        .expect("the organ has a concentration");
        assert!(
            r.cold_ml > 15.0 && r.cold_ml < 51.2,
            "cold cluster {} mL should be a good part of the 51 mL without uptake",
            r.cold_ml
        );
        // The mask's mean concentration is well below the true organ's, so the true organ is the
        // hot side: at most its own 64 mL.
        assert!(r.hot_ml <= 64.0, "hot cluster {} mL", r.hot_ml);
    }

    #[test]
    fn a_hotter_neighbour_in_the_mask_is_a_hot_cluster() {
        // Organ at 1000 Bq/mL in x 19..29; the mask also holds x 29..35 whose uptake is 3000.
        let organ = box_mask(19, 29);
        let neighbour = box_mask(29, 35);
        let mut spect = imaged(&organ, 1000.0);
        for (s, n) in spect
            .data_mut()
            .iter_mut()
            .zip(imaged(&neighbour, 3000.0).data())
        {
            *s += n;
        }
        let mask = box_mask(19, 35);
        let masks = [mask.clone(), background(&mask)];
        let r = residual_clusters(
            &spect,
            &masks,
            &blur_masks(&masks, FWHM_MM),
            &[Some(1750.0), None],
            FWHM_MM,
            0.35,
        )[0]
        .expect("the organ has a concentration");
        assert!(r.hot_ml > 5.0, "hot cluster {} mL", r.hot_ml);
    }
}
