//! Organ-contact refinement (model card `intensity_refinement.organ_contact`; the second stage of
//! the intensity refinement, after [`crate::refine::refine_with_intensity`];
//! `models/train/refine.py` is the same procedure for the training side).
//!
//! Where two organ masks touch, the network often hands a slab of one organ to the other (a
//! slab of spleen joined to the left kidney, a kidney pole given to the liver). Voxel by voxel the
//! CT cannot tell them apart under noise (non-contrast kidney ≈ 30 HU, spleen ≈ 45 HU, noise
//! σ 10-30 HU), but a little smoothing can: σ = 1 voxel averages about 20 voxels and cuts the
//! noise about fourfold. Smoothing across an organ/fat edge would blur that edge, so this stage
//! only decides *which organ* a voxel belongs to, never whether it is organ at all:
//!
//! 1. labels = argmax of the (stage-1 refined) probabilities; S = the CT numbers averaged over the
//!    organ voxels around each voxel with Gaussian weights of σ = `smoothing_sigma_voxels`
//!    (normalised convolution over the organ mask, so that fat or air beside an organ does not pull
//!    its values down).
//! 2. The zone: organ voxels within `band_voxels` (city-block) of two different organs' masks (its
//!    own counts, at distance 0), i.e. both sides of every organ/organ contact.
//! 3. Per organ c, a histogram density L_c of S over its sure voxels (p_c > `confidence`,
//!    at least `erosion_voxels` + 1 city-block steps inside its mask, the grid's faces counting as
//!    outside): bins of `bin_hu` over the card's clip window, as in stage 1; uniform below
//!    `min_voxels`.
//! 4. In the zone, for the organ classes only: p_c ← p_c · L_c(S)^β, rescaled so that the organs'
//!    total probability is what it was. Background and every voxel outside the zone are untouched.
//!
//! Pure computation on the (padded) model grid.

use serde::{Deserialize, Serialize};

use mrt_core::distance::city_block_distance;
use mrt_core::filter::{gaussian_blur, Edge, FWHM_PER_SIGMA};
use mrt_core::{Grid, Volume};

use crate::card::CardIntensity;
use crate::refine::{checked_labels, ct_numbers, Bins};

/// The card's `intensity_refinement.organ_contact` block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrganContactRefinement {
    /// σ of the Gaussian that smooths the CT numbers, in model voxels.
    pub smoothing_sigma_voxels: f64,
    /// Organ voxels within this distance (voxels, city-block) of two organs' masks are refined.
    pub band_voxels: usize,
    /// Exponent of the likelihood of the smoothed CT number.
    pub beta: f64,
    /// Probability above which an organ voxel is "sure" and feeds its organ's histogram.
    pub confidence: f32,
    /// Sure voxels lie at least this many city-block erosions inside their mask.
    pub erosion_voxels: usize,
    /// Histogram bin width (HU).
    pub bin_hu: f32,
    /// An organ with fewer sure voxels gets a uniform density (no opinion).
    pub min_voxels: usize,
}

impl OrganContactRefinement {
    /// Why these settings cannot be used, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if !(self.smoothing_sigma_voxels.is_finite()
            && (0.0..=5.0).contains(&self.smoothing_sigma_voxels))
        {
            return Some(format!(
                "organ_contact.smoothing_sigma_voxels {} must lie in [0, 5]",
                self.smoothing_sigma_voxels
            ));
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Some(format!(
                "organ_contact.beta {} must be finite and ≥ 0",
                self.beta
            ));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Some(format!(
                "organ_contact.confidence {} must lie in (0, 1)",
                self.confidence
            ));
        }
        if !(self.bin_hu.is_finite() && self.bin_hu > 0.0) {
            return Some(format!(
                "organ_contact.bin_hu {} must be positive",
                self.bin_hu
            ));
        }
        if self.band_voxels == 0 {
            return Some("organ_contact.band_voxels must be at least 1".into());
        }
        None
    }
}

/// Refines `probs` (channel-major `[C][voxels]`, channel 0 background) in place where organ
/// masks touch, with the smoothed CT numbers of `input` (the normalised network input on the same
/// grid, `dims`).
pub fn refine_organ_contacts(
    probs: &mut [f32],
    input: &[f32],
    dims: [usize; 3],
    channels: usize,
    intensity: &CardIntensity,
    settings: &OrganContactRefinement,
) {
    let (n, labels) = checked_labels(probs, input, dims, channels);
    let present: Vec<usize> = (1..channels)
        .filter(|&c| labels.contains(&(c as u8)))
        .collect();
    if present.len() < 2 {
        return;
    }
    let band = settings.band_voxels.min(65534) as u16;
    // How many organs' masks lie within the band of each voxel (its own at distance 0).
    let mut near_count = vec![0u8; n];
    let mut sure_inside: Vec<Vec<bool>> = vec![Vec::new(); channels];
    let erosion = settings.erosion_voxels.min(65533) as u16;
    for &c in &present {
        let c8 = c as u8;
        let to_organ = city_block_distance(|v| labels[v] == c8, dims, false);
        for (count, &d) in near_count.iter_mut().zip(&to_organ) {
            if d <= band {
                *count = count.saturating_add(1);
            }
        }
        let to_outside = city_block_distance(|v| labels[v] != c8, dims, true);
        sure_inside[c] = to_outside.iter().map(|&d| d > erosion).collect();
    }
    let zone: Vec<bool> = (0..n)
        .map(|v| labels[v] > 0 && near_count[v] >= 2)
        .collect();
    if !zone.iter().any(|&z| z) {
        return;
    }
    let smoothed = smoothed_organ_hu(
        input,
        &labels,
        dims,
        intensity,
        settings.smoothing_sigma_voxels,
    );
    let bins = Bins::new(intensity, settings.bin_hu);
    let densities: Vec<Vec<f64>> = (0..channels)
        .map(|c| {
            // Empty for the background and for organs absent from the labels: no opinion.
            let inside = &sure_inside[c];
            let p = &probs[c * n..(c + 1) * n];
            let values: Vec<f32> = (0..n)
                .filter(|&v| !inside.is_empty() && p[v] > settings.confidence && inside[v])
                .map(|v| smoothed[v])
                .collect();
            bins.density_or_uniform(values, settings.min_voxels)
        })
        .collect();
    for v in (0..n).filter(|&v| zone[v]) {
        let b = bins.of(smoothed[v]);
        let mass: f32 = (1..channels).map(|c| probs[c * n + v]).sum();
        let mut sum = 0.0f32;
        for (c, dens) in densities.iter().enumerate().skip(1) {
            let q = probs[c * n + v] * dens[b].powf(settings.beta) as f32;
            probs[c * n + v] = q;
            sum += q;
        }
        if sum > 0.0 {
            for c in 1..channels {
                probs[c * n + v] *= mass / sum;
            }
        }
    }
}

/// The CT numbers of `input` averaged over the organ voxels (`labels` > 0) only, with Gaussian
/// weights of σ = `sigma_voxels` (normalised convolution: blur(HU · organ) / blur(organ), edge
/// values repeating), so fat next to an organ does not pull its values down. Voxels with no organ
/// voxel within reach keep their own CT number.
fn smoothed_organ_hu(
    input: &[f32],
    labels: &[u8],
    dims: [usize; 3],
    intensity: &CardIntensity,
    sigma_voxels: f64,
) -> Vec<f32> {
    let hu = ct_numbers(input, intensity);
    if sigma_voxels <= 0.0 {
        return hu;
    }
    let grid = Grid::axis_aligned(dims, [1.0; 3], [0.0; 3]).expect("non-empty model grid");
    let organ: Vec<f32> = labels.iter().map(|&l| f32::from(u8::from(l > 0))).collect();
    let weighted: Vec<f32> = hu.iter().zip(&organ).map(|(h, o)| h * o).collect();
    let blur = |data: Vec<f32>| {
        let volume = Volume::new(grid.clone(), data).expect("values cover the grid");
        gaussian_blur(&volume, sigma_voxels * FWHM_PER_SIGMA, Edge::Replicate)
    };
    let numerator = blur(weighted);
    let weight = blur(organ);
    hu.iter()
        .zip(numerator.data().iter().zip(weight.data()))
        .map(|(&own, (&num, &w))| if w > 1e-6 { num / w } else { own })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OrganContactRefinement {
        OrganContactRefinement {
            smoothing_sigma_voxels: 1.0,
            band_voxels: 2,
            beta: 1.0,
            confidence: 0.95,
            erosion_voxels: 2,
            bin_hu: 5.0,
            min_voxels: 50,
        }
    }

    fn intensity() -> CardIntensity {
        CardIntensity {
            clip_hu: [-250.0, 350.0],
            subtract: 50.0,
            divide: 150.0,
        }
    }

    /// Deterministic noise, uniform in [−a, a] (σ = a/√3).
    fn noise(v: usize, a: f32) -> f32 {
        let mut x = (v as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51afd7ed558ccd);
        x ^= x >> 33;
        ((x % 10_000) as f32 / 10_000.0 * 2.0 - 1.0) * a
    }

    /// Organ 1 ("kidney", 30 HU) at x < 20 and organ 2 ("spleen", 46 HU) at x ≥ 20, noise of
    /// σ ≈ 17 HU, fat at −100 HU around both in y and z. The network gives the spleen's first two
    /// slices to the kidney (p = 0.6). Voxel by voxel the noise hides the 16 HU step; smoothed, it
    /// does not, and the contact moves back to x = 20.
    #[test]
    fn a_slab_handed_to_the_wrong_organ_goes_back_to_the_right_one() {
        let dims = [40, 16, 16];
        let n = 40 * 16 * 16;
        let i = intensity();
        let mut probs = vec![0f32; 3 * n];
        let mut input = vec![0f32; n];
        let inside = |v: usize| {
            let (y, z) = ((v / 40) % 16, v / 640);
            (2..14).contains(&y) && (2..14).contains(&z)
        };
        for v in 0..n {
            let x = v % 40;
            let hu = if !inside(v) {
                -100.0
            } else if x < 20 {
                30.0
            } else {
                46.0
            } + noise(v, 30.0);
            input[v] = (hu - i.subtract) / i.divide;
            let (bg, kidney, spleen) = if !inside(v) {
                (1.0, 0.0, 0.0)
            } else if x < 20 {
                (0.0, 1.0, 0.0)
            } else if x < 22 {
                (0.0, 0.6, 0.4)
            } else {
                (0.0, 0.0, 1.0)
            };
            probs[v] = bg;
            probs[n + v] = kidney;
            probs[2 * n + v] = spleen;
        }
        let wrong = |p: &[f32]| {
            (0..n)
                .filter(|&v| inside(v) && (p[n + v] > p[2 * n + v]) != (v % 40 < 20))
                .count()
        };
        assert_eq!(
            wrong(&probs),
            2 * 144,
            "two slices of 12 × 12 start on the wrong side"
        );
        let background_before = probs[..n].to_vec();
        refine_organ_contacts(&mut probs, &input, dims, 3, &i, &settings());
        let after = wrong(&probs);
        // The first slice past the true contact is right on the edge of the smoothed step, so
        // some of it may stay; the second must come back but for a few noisy voxels (corners
        // average the fewest organ voxels).
        let second = (0..n)
            .filter(|&v| inside(v) && v % 40 == 21 && probs[n + v] > probs[2 * n + v])
            .count();
        assert!(
            second <= 144 / 20,
            "{second} of the slab's second slice still kidney"
        );
        assert!(after <= 144 / 2, "{after} voxels still on the wrong side");
        assert_eq!(&probs[..n], &background_before[..], "background untouched");
        for v in 0..n {
            let s: f32 = (0..3).map(|c| probs[c * n + v]).sum();
            assert!((s - 1.0).abs() < 1e-5, "probabilities still sum to 1");
        }
    }

    /// One organ alone: nothing touches, nothing changes.
    #[test]
    fn a_single_organ_is_left_alone() {
        let dims = [12, 12, 12];
        let n = 1728;
        let mut probs = vec![0f32; 3 * n];
        for v in 0..n {
            let organ = (3..9).contains(&(v % 12));
            probs[v] = if organ { 0.1 } else { 0.9 };
            probs[n + v] = if organ { 0.9 } else { 0.1 };
        }
        let before = probs.clone();
        let input: Vec<f32> = (0..n).map(|v| noise(v, 0.2)).collect();
        refine_organ_contacts(&mut probs, &input, dims, 3, &intensity(), &settings());
        assert_eq!(probs, before);
    }

    #[test]
    fn bad_settings_are_named() {
        let mut s = settings();
        s.smoothing_sigma_voxels = f64::NAN;
        assert!(s.problem().expect("NaN").contains("smoothing_sigma_voxels"));
        let mut s = settings();
        s.band_voxels = 0;
        assert!(s.problem().expect("0").contains("band_voxels"));
        assert_eq!(settings().problem(), None);
    }
}
