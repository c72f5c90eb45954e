//! Organ activity from quantitative SPECT and organ masks: plain VOI sum, PSF recovery
//! (founding paper, Nazari et al. 2021: RC = Σ_{v∈M}(M⊗h)(v)/Σ_v M(v), A ≈ A_VOI/RC) and the
//! geometric transfer matrix (Rousset et al. 1998, J Nucl Med 39:904: w_ij = mean over VOI_i of
//! (M_j⊗h); observed means t = W·c).
//!
//! Masks come as labels on the CT grid and are mapped to the SPECT grid through the SPECT→CT
//! rigid transform as *fractions*: each SPECT voxel is supersampled (s³ points) and the share of
//! points inside each region is its partial volume. The PSF is a 3D Gaussian of given FWHM,
//! applied by separable filtering (exactly the Gaussian convolution, faster than FFT for it).

use mrt_core::filter::{gaussian_blur, Edge};
use mrt_core::{Grid, RigidTransform, Volume};
use rayon::prelude::*;
use serde::Serialize;

use mrt_core::dense;

/// Region label of the body's soft tissue outside the organs (CT > −60 HU).
pub const SOFT_TISSUE: u8 = 255;
/// Region label of the body's low-density tissue outside the organs (lung, gas, fat: −900 to
/// −60 HU).
pub const LOW_DENSITY: u8 = 254;

/// GTM regions on the CT grid: the labels in `keep` as they are; the rest of the body split by
/// CT number into [`SOFT_TISSUE`] and [`LOW_DENSITY`]; air 0. `None` unless `labels` and `ct_hu`
/// have the same number of voxels.
pub fn body_regions(labels: &Volume<u8>, ct_hu: &Volume<f32>, keep: &[u8]) -> Option<Volume<u8>> {
    if labels.data().len() != ct_hu.data().len() {
        return None;
    }
    let data = labels
        .data()
        .iter()
        .zip(ct_hu.data())
        .map(|(&l, &hu)| match l {
            l if keep.contains(&l) => l,
            _ if hu > -60.0 => SOFT_TISSUE,
            _ if hu > -900.0 => LOW_DENSITY,
            _ => 0,
        })
        .collect();
    Volume::new(labels.grid().clone(), data).ok()
}

/// Sub-voxel sample positions along one axis of a voxel divided `s` ways (centres of the
/// `s` parts, in voxels from the voxel centre), and the weight of one of the `s³` samples.
pub fn supersample_offsets(s: usize) -> (Vec<f64>, f32) {
    let s = s.max(1);
    let offsets = (0..s).map(|a| (a as f64 + 0.5) / s as f64 - 0.5).collect();
    (offsets, 1.0 / (s * s * s) as f32)
}

/// Fraction of each SPECT voxel covered by each region (`regions[r]` labels on the CT grid).
pub fn fractional_masks(
    labels_ct: &Volume<u8>,
    spect: &Grid,
    spect_to_ct: &RigidTransform,
    regions: &[u8],
    supersample: usize,
) -> Vec<Volume<f32>> {
    let s = supersample.max(1);
    let map = labels_ct
        .grid()
        .world_to_index_map()
        .compose(&spect_to_ct.to_affine())
        .compose(&spect.index_to_world_map());
    let ct_dims = labels_ct.grid().dims;
    let [nx, ny, _] = spect.dims;
    let mut lookup = [usize::MAX; 256];
    for (r, &l) in regions.iter().enumerate() {
        lookup[l as usize] = r;
    }
    let (offsets, weight) = supersample_offsets(s);
    let slabs: Vec<Vec<Vec<f32>>> = (0..spect.dims[2])
        .into_par_iter()
        .map(|k| {
            let mut out = vec![vec![0.0f32; nx * ny]; regions.len()];
            for j in 0..ny {
                for i in 0..nx {
                    for &dz in &offsets {
                        for &dy in &offsets {
                            for &dx in &offsets {
                                let c = map.apply([i as f64 + dx, j as f64 + dy, k as f64 + dz]);
                                let idx = [0, 1, 2].map(|a| c[a].round());
                                if (0..3).all(|a| idx[a] >= 0.0 && idx[a] < ct_dims[a] as f64) {
                                    let l = *labels_ct.at(
                                        idx[0] as usize,
                                        idx[1] as usize,
                                        idx[2] as usize,
                                    );
                                    let r = lookup[l as usize];
                                    if r != usize::MAX {
                                        out[r][i + nx * j] += weight;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            out
        })
        .collect();
    (0..regions.len())
        .map(|r| {
            let data: Vec<f32> = slabs
                .iter()
                .flat_map(|slab| slab[r].iter().copied())
                .collect();
            Volume::new(spect.clone(), data).expect("sized from SPECT grid")
        })
        .collect()
}

/// Activity of one region by the three methods.
#[derive(Debug, Clone, Serialize)]
pub struct RegionActivity {
    /// Region label.
    pub label: u8,
    /// Volume of the region (mL): Σ fractions × voxel volume.
    #[serde(rename = "volume_mL")]
    pub volume_ml: f64,
    /// Voxels in the VOI (fraction ≥ 0.5).
    pub voi_voxels: usize,
    /// Plain VOI sum (MBq).
    #[serde(rename = "voi_MBq")]
    pub voi_mbq: f64,
    /// Recovery coefficient of the region.
    pub recovery_coefficient: f64,
    /// VOI sum / RC (MBq).
    #[serde(rename = "psf_recovery_MBq")]
    pub psf_recovery_mbq: f64,
    /// Relative uncertainty of the RC from the PSF FWHM uncertainty (fraction; 0 when none given):
    /// half the RC change between FWHM ± δ, divided by the RC.
    pub recovery_uncertainty: f64,
    /// Geometric transfer matrix (MBq), when the system was solvable.
    #[serde(rename = "gtm_MBq")]
    pub gtm_mbq: Option<f64>,
}

impl RegionActivity {
    /// The GTM's uniform concentration of the region (Bq/mL), when solved and the region has a
    /// volume.
    pub fn gtm_concentration_bq_per_ml(&self) -> Option<f64> {
        self.gtm_mbq
            .filter(|_| self.volume_ml > 0.0)
            .map(|g| g * 1e6 / self.volume_ml)
    }
}

/// Quantifies every region of `masks` (fractions on the SPECT grid) in `spect_bq_per_ml`.
pub fn quantify(
    spect_bq_per_ml: &Volume<f32>,
    masks: &[Volume<f32>],
    labels: &[u8],
    psf_fwhm_mm: f64,
) -> Vec<RegionActivity> {
    quantify_with_psf_uncertainty(spect_bq_per_ml, masks, labels, psf_fwhm_mm, 0.0)
}

/// RC of one region for a given PSF FWHM.
fn recovery(mask: &Volume<f32>, voi: &[usize], fwhm_mm: f64) -> f64 {
    let b = gaussian_blur(mask, fwhm_mm, Edge::Zero);
    let total: f64 = mask.data().iter().map(|&f| f64::from(f)).sum();
    voi.iter().map(|&v| f64::from(b.data()[v])).sum::<f64>() / total.max(1e-12)
}

/// Each mask seen through the PSF (M⊗h): the GTM's columns, and the model image of
/// [`crate::residual`].
pub fn blur_masks(masks: &[Volume<f32>], psf_fwhm_mm: f64) -> Vec<Volume<f32>> {
    masks
        .par_iter()
        .map(|m| gaussian_blur(m, psf_fwhm_mm, Edge::Zero))
        .collect()
}

/// As [`quantify`], also propagating a PSF FWHM standard deviation `fwhm_sd_mm` into each RC.
pub fn quantify_with_psf_uncertainty(
    spect_bq_per_ml: &Volume<f32>,
    masks: &[Volume<f32>],
    labels: &[u8],
    psf_fwhm_mm: f64,
    fwhm_sd_mm: f64,
) -> Vec<RegionActivity> {
    let blurred = blur_masks(masks, psf_fwhm_mm);
    quantify_blurred(
        spect_bq_per_ml,
        masks,
        &blurred,
        labels,
        psf_fwhm_mm,
        fwhm_sd_mm,
    )
}

/// As [`quantify_with_psf_uncertainty`], with the masks already blurred by the PSF of FWHM
/// `psf_fwhm_mm` ([`blur_masks`]), for a caller that needs them too.
pub fn quantify_blurred(
    spect_bq_per_ml: &Volume<f32>,
    masks: &[Volume<f32>],
    blurred: &[Volume<f32>],
    labels: &[u8],
    psf_fwhm_mm: f64,
    fwhm_sd_mm: f64,
) -> Vec<RegionActivity> {
    let voxel_ml = spect_bq_per_ml.grid().voxel_volume_mm3() / 1000.0;
    let vois: Vec<Vec<usize>> = masks
        .iter()
        .map(|m| {
            m.data()
                .iter()
                .enumerate()
                .filter(|(_, &f)| f >= 0.5)
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    let c = spect_bq_per_ml.data();
    let n = masks.len();
    // GTM over the regions that have a VOI: w_ij = mean over VOI_i of blurred mask j; t_i = mean
    // concentration in VOI_i. A region without a VOI (smaller than half a voxel everywhere) cannot
    // be solved for and gets no GTM value.
    let solvable: Vec<usize> = (0..n).filter(|&i| !vois[i].is_empty()).collect();
    let m = solvable.len();
    let mut w = vec![vec![0.0f64; m]; m];
    let mut t = vec![0.0f64; m];
    for (a, &i) in solvable.iter().enumerate() {
        let count = vois[i].len() as f64;
        t[a] = vois[i].iter().map(|&v| f64::from(c[v])).sum::<f64>() / count;
        for (b, &j) in solvable.iter().enumerate() {
            w[a][b] = vois[i]
                .iter()
                .map(|&v| f64::from(blurred[j].data()[v]))
                .sum::<f64>()
                / count;
        }
    }
    let solution = dense::solve(&w, &t);
    let gtm: Option<Vec<Option<f64>>> = solution.map(|sol| {
        (0..n)
            .map(|i| solvable.iter().position(|&s| s == i).map(|a| sol[a]))
            .collect()
    });
    (0..n)
        .map(|i| {
            let volume_ml = masks[i].data().iter().map(|&f| f64::from(f)).sum::<f64>() * voxel_ml;
            let voi_mbq = vois[i].iter().map(|&v| f64::from(c[v])).sum::<f64>() * voxel_ml / 1e6;
            let total_fraction: f64 = masks[i].data().iter().map(|&f| f64::from(f)).sum();
            let rc = vois[i]
                .iter()
                .map(|&v| f64::from(blurred[i].data()[v]))
                .sum::<f64>()
                / total_fraction.max(1e-12);
            RegionActivity {
                label: labels[i],
                volume_ml,
                voi_voxels: vois[i].len(),
                voi_mbq,
                recovery_coefficient: rc,
                psf_recovery_mbq: if rc > 0.0 { voi_mbq / rc } else { f64::NAN },
                recovery_uncertainty: if fwhm_sd_mm > 0.0 && rc > 0.0 {
                    let hi = recovery(&masks[i], &vois[i], psf_fwhm_mm + fwhm_sd_mm);
                    let lo = recovery(&masks[i], &vois[i], (psf_fwhm_mm - fwhm_sd_mm).max(0.0));
                    (lo - hi).abs() / 2.0 / rc
                } else {
                    0.0
                },
                gtm_mbq: gtm
                    .as_ref()
                    .and_then(|g| g[i])
                    .map(|conc| conc * volume_ml / 1e6),
            }
        })
        .collect()
}
