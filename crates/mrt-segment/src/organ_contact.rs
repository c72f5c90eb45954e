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
//!    its values down; with `own_organ_average`, over the voxel's own organ's mask only).
//! 2. The zone: organ voxels within `band_voxels` (city-block) of two different organs' masks (its
//!    own counts, at distance 0), i.e. both sides of every organ/organ contact.
//! 3. Per organ c, a histogram density L_c of S over its sure voxels (p_c > `confidence`,
//!    at least `erosion_voxels` + 1 city-block steps inside its mask, the grid's faces counting as
//!    outside): bins of `bin_hu` over the card's clip window, as in stage 1; uniform below
//!    `min_voxels`.
//! 4. In the zone, for the organ classes only: p_c ← p_c · L_c(S)^β, rescaled so that the organs'
//!    total probability is what it was. Background and every voxel outside the zone are untouched.
//!    With `min_separation` (the gate), a voxel's own organ a is weighed only against the organs b
//!    whose masks lie within the band of it and whose sure voxels' S separate from a's:
//!    d′ = |μa − μb| / √((σa² + σb²)/2) ≥ `min_separation`. Real organs are not one CT number plus
//!    noise (on a real non-contrast CT the spleen spans 31-76 HU, the kidneys 15-54 HU), and where
//!    two organs' numbers overlap, weighing them by S moves good voxels as often as bad ones.
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
    /// Average the CT numbers over the voxel's own organ only (each organ's mask its own
    /// normalised convolution) instead of over every organ voxel: a kidney voxel beside the
    /// spleen then does not borrow the spleen's CT numbers.
    #[serde(default)]
    pub own_organ_average: bool,
    /// Weigh two organs against each other only where their sure voxels' smoothed CT numbers
    /// separate: |μa − μb| / √((σa² + σb²)/2) ≥ this (d′), and only between a voxel's own organ
    /// and the separated organs whose masks lie within the band of it. Absent: every organ
    /// against every other wherever two touch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_separation: Option<f64>,
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
        if let Some(d) = self.min_separation {
            if !(d.is_finite() && d >= 0.0) {
                return Some(format!(
                    "organ_contact.min_separation {d} must be finite and ≥ 0"
                ));
            }
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
    let smoothed = smoothed_organ_hu(input, &labels, dims, intensity, settings);
    let bins = Bins::new(intensity, settings.bin_hu);
    // Per organ: the density of its sure voxels' smoothed CT numbers and, where there are enough
    // of them, their mean and variance (empty / None for the background and absent organs).
    let (densities, moments): (Vec<Vec<f64>>, Vec<Option<MeanVariance>>) = (0..channels)
        .map(|c| {
            let inside = &sure_inside[c];
            let p = &probs[c * n..(c + 1) * n];
            let values: Vec<f32> = (0..n)
                .filter(|&v| !inside.is_empty() && p[v] > settings.confidence && inside[v])
                .map(|v| smoothed[v])
                .collect();
            let moments = (values.len() >= settings.min_voxels && !values.is_empty())
                .then(|| mean_and_variance(&values));
            (
                bins.density_or_uniform(values, settings.min_voxels),
                moments,
            )
        })
        .unzip();
    let separated = |a: usize, b: usize| match (settings.min_separation, moments[a], moments[b]) {
        (Some(d), Some((ma, va)), Some((mb, vb))) => {
            (ma - mb).abs() >= d * ((va + vb) / 2.0).max(1e-12).sqrt()
        }
        _ => false,
    };
    let mut group = Vec::with_capacity(channels);
    for v in (0..n).filter(|&v| zone[v]) {
        let own = labels[v] as usize;
        group.clear();
        match settings.min_separation {
            None => group.extend(1..channels),
            Some(_) => {
                group.push(own);
                group.extend(
                    organs_within(&labels, dims, v, settings.band_voxels)
                        .into_iter()
                        .filter(|&b| b != own && separated(own, b)),
                );
            }
        }
        if group.len() < 2 {
            continue;
        }
        let b = bins.of(smoothed[v]);
        let mass: f32 = group.iter().map(|&c| probs[c * n + v]).sum();
        let mut sum = 0.0f32;
        for &c in &group {
            let q = probs[c * n + v] * densities[c][b].powf(settings.beta) as f32;
            probs[c * n + v] = q;
            sum += q;
        }
        if sum > 0.0 {
            for &c in &group {
                probs[c * n + v] *= mass / sum;
            }
        }
    }
}

/// The organ labels (> 0) within city-block distance `band` of voxel `v`, ascending, once each.
fn organs_within(labels: &[u8], dims: [usize; 3], v: usize, band: usize) -> Vec<usize> {
    let [nx, ny, nz] = dims;
    let (x, y, z) = (v % nx, (v / nx) % ny, v / (nx * ny));
    let mut found = [false; 256];
    let r = band as isize;
    for dz in -r..=r {
        let k = z as isize + dz;
        if k < 0 || k >= nz as isize {
            continue;
        }
        let ry = r - dz.abs();
        for dy in -ry..=ry {
            let j = y as isize + dy;
            if j < 0 || j >= ny as isize {
                continue;
            }
            let rx = ry - dy.abs();
            for dx in -rx..=rx {
                let i = x as isize + dx;
                if i < 0 || i >= nx as isize {
                    continue;
                }
                found[labels[i as usize + nx * (j as usize + ny * k as usize)] as usize] = true;
            }
        }
    }
    (1..256).filter(|&c| found[c]).collect()
}

/// Mean and (population) variance of an organ's sure voxels' smoothed CT numbers (HU, HU²).
type MeanVariance = (f64, f64);

/// Mean and (population) variance of `values`, which must not be empty.
fn mean_and_variance(values: &[f32]) -> MeanVariance {
    let n = values.len() as f64;
    let mean = values.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let variance = values
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, variance)
}

/// The CT numbers of `input` averaged with Gaussian weights of σ = `smoothing_sigma_voxels` over
/// the organ voxels (`labels` > 0) only, or with `own_organ_average` over the voxels of the
/// voxel's own organ only (normalised convolution: blur(HU · mask) / blur(mask), edge values
/// repeating), so fat next to an organ does not pull its values down. Voxels outside the organ
/// masks keep their own CT number (only organ voxels are read).
fn smoothed_organ_hu(
    input: &[f32],
    labels: &[u8],
    dims: [usize; 3],
    intensity: &CardIntensity,
    settings: &OrganContactRefinement,
) -> Vec<f32> {
    let sigma_voxels = settings.smoothing_sigma_voxels;
    let mut hu = ct_numbers(input, intensity);
    if sigma_voxels <= 0.0 {
        return hu;
    }
    let grid = Grid::axis_aligned(dims, [1.0; 3], [0.0; 3]).expect("non-empty model grid");
    let blur = |data: Vec<f32>| {
        let volume = Volume::new(grid.clone(), data).expect("values cover the grid");
        gaussian_blur(&volume, sigma_voxels * FWHM_PER_SIGMA, Edge::Replicate)
    };
    // Each mask in turn: every organ voxel at once, or one organ's voxels per pass.
    let masks: Vec<Box<dyn Fn(u8) -> bool>> = if settings.own_organ_average {
        let mut present = [false; 256];
        for &l in labels {
            present[l as usize] = true;
        }
        (1..=255u8)
            .filter(|&c| present[c as usize])
            .map(|c| Box::new(move |l: u8| l == c) as Box<dyn Fn(u8) -> bool>)
            .collect()
    } else {
        vec![Box::new(|l: u8| l > 0)]
    };
    let own = hu.clone();
    for in_mask in masks {
        let mask: Vec<f32> = labels
            .iter()
            .map(|&l| f32::from(u8::from(in_mask(l))))
            .collect();
        let weighted: Vec<f32> = own.iter().zip(&mask).map(|(h, m)| h * m).collect();
        let numerator = blur(weighted);
        let weight = blur(mask);
        for (v, value) in hu.iter_mut().enumerate() {
            let w = weight.data()[v];
            if in_mask(labels[v]) && w > 1e-6 {
                *value = numerator.data()[v] / w;
            }
        }
    }
    hu
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
            own_organ_average: false,
            min_separation: None,
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

    fn inside(v: usize) -> bool {
        let (y, z) = ((v / 40) % 16, v / 640);
        (2..14).contains(&y) && (2..14).contains(&z)
    }

    /// Organ 1 ("kidney", 30 HU) at x < 20 and organ 2 ("spleen", `spleen_hu`) at x ≥ 20 of a
    /// 40 × 16 × 16 grid, noise of σ ≈ 17 HU, fat at −100 HU around both in y and z. The
    /// network gives the spleen's first two slices to the kidney (p = 0.6). Returns the
    /// probabilities and the network input.
    fn slab_scene(spleen_hu: f32) -> (Vec<f32>, Vec<f32>) {
        let n = 40 * 16 * 16;
        let i = intensity();
        let mut probs = vec![0f32; 3 * n];
        let mut input = vec![0f32; n];
        for v in 0..n {
            let x = v % 40;
            let hu = if !inside(v) {
                -100.0
            } else if x < 20 {
                30.0
            } else {
                spleen_hu
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
        (probs, input)
    }

    /// Voxel by voxel the noise hides the 16 HU step between kidney and spleen; smoothed, it
    /// does not, and the contact moves back to x = 20: with every organ weighed against every
    /// other, and with the gate (the two organs' smoothed CT numbers separate by d′ ≈ 4).
    #[test]
    fn a_slab_handed_to_the_wrong_organ_goes_back_to_the_right_one() {
        let gated = OrganContactRefinement {
            own_organ_average: true,
            min_separation: Some(2.5),
            ..settings()
        };
        // With the voxel's own organ averaged, the slab's voxels average with the kidney beside
        // them (both labelled kidney), so fewer come back (measured: 2 of the
        // second slice and 55 in all stay wrong without; 14 and 73 with).
        for (settings, second_max, wrong_max) in [
            (settings(), 144 / 20, 144 / 2),
            (gated, 144 / 4, 144 * 2 / 3),
        ] {
            let dims = [40, 16, 16];
            let n = 40 * 16 * 16;
            let (mut probs, input) = slab_scene(46.0);
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
            refine_organ_contacts(&mut probs, &input, dims, 3, &intensity(), &settings);
            let after = wrong(&probs);
            // The first slice past the true contact is right on the edge of the smoothed step,
            // so some of it may stay; the second must come back but for a few noisy voxels
            // (corners average the fewest organ voxels).
            let second = (0..n)
                .filter(|&v| inside(v) && v % 40 == 21 && probs[n + v] > probs[2 * n + v])
                .count();
            assert!(
                second <= second_max,
                "{second} of the slab's second slice still kidney ({settings:?})"
            );
            assert!(after <= wrong_max, "{after} voxels still on the wrong side");
            assert_eq!(&probs[..n], &background_before[..], "background untouched");
            for v in 0..n {
                let s: f32 = (0..3).map(|c| probs[c * n + v]).sum();
                assert!((s - 1.0).abs() < 1e-5, "probabilities still sum to 1");
            }
        }
    }

    /// Two organs at the same CT number (30 HU): their smoothed values do not separate, so the
    /// gate leaves every probability as the network gave it, where the ungated stage moves them.
    #[test]
    fn the_gate_leaves_organs_alone_that_their_ct_numbers_cannot_tell_apart() {
        let dims = [40, 16, 16];
        let gated = OrganContactRefinement {
            own_organ_average: true,
            min_separation: Some(2.5),
            ..settings()
        };
        let (mut probs, input) = slab_scene(30.0);
        let before = probs.clone();
        refine_organ_contacts(&mut probs, &input, dims, 3, &intensity(), &gated);
        assert_eq!(probs, before, "nothing changes through the gate");
        refine_organ_contacts(&mut probs, &input, dims, 3, &intensity(), &settings());
        assert_ne!(
            probs, before,
            "the ungated stage does act on the same scene"
        );
    }

    #[test]
    fn organs_within_the_band_are_found_by_city_block_distance() {
        let dims = [5, 5, 5];
        let mut labels = vec![0u8; 125];
        labels[2 + 5 * (2 + 5 * 2)] = 1; // centre
        labels[4 + 5 * (2 + 5 * 2)] = 2; // 2 along x
        labels[3 + 5 * (3 + 5 * 2)] = 3; // 1 + 1: distance 2
        labels[4 + 5 * (4 + 5 * 2)] = 4; // 2 + 2: distance 4
        let centre = 2 + 5 * (2 + 5 * 2);
        assert_eq!(organs_within(&labels, dims, centre, 2), vec![1, 2, 3]);
        assert_eq!(organs_within(&labels, dims, centre, 4), vec![1, 2, 3, 4]);
        assert_eq!(organs_within(&labels, dims, 0, 1), Vec::<usize>::new());
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
        let mut s = settings();
        s.min_separation = Some(-1.0);
        assert!(s.problem().expect("negative").contains("min_separation"));
        assert_eq!(settings().problem(), None);
    }
}
