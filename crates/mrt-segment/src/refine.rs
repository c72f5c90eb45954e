//! Intensity refinement of the network's probabilities near organ boundaries (model card
//! `intensity_refinement`; `models/train/refine.py` is the same procedure for the training side).
//!
//! On a 3 mm grid the network places an organ's boundary to within a voxel or two, while the CT's
//! own numbers there often say on which side a voxel lies (kidney ≈ 30 HU against fat ≈ −100 HU).
//! Per class c, the CT numbers of the voxels the network is sure of (p_c > `confidence`; an organ's
//! voxels one voxel inside its argmax mask; everything within `context_voxels` of an organ) give a
//! histogram density L_c: bins of `bin_hu` over the card's clip window, +0.5 per bin, smoothed by a
//! Gaussian of one bin (mirrored at the ends), uniform where fewer than `min_voxels` are sure. In
//! the band within `band_voxels` (city-block) of any organ's argmax boundary, p_c becomes
//! p_c · L_c(HU)^β, renormalised over the classes; elsewhere the probabilities are unchanged.
//! Runs on the (padded) model grid, one CT at a time, before time points are fused.

use serde::{Deserialize, Serialize};

use mrt_core::distance::city_block_distance;

use crate::card::CardIntensity;
use crate::organ_contact::OrganContactRefinement;

/// The card's `intensity_refinement` block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IntensityRefinement {
    /// Exponent of the intensity likelihood (1 = Bayes' rule with the network as prior).
    pub beta: f64,
    /// Half-width (voxels, city-block) of the band around each organ's boundary that is refined.
    pub band_voxels: usize,
    /// Probability above which a voxel is "sure" and feeds its class's intensity histogram.
    pub confidence: f32,
    /// Only voxels within this distance (voxels, city-block) of an organ feed the histograms.
    pub context_voxels: usize,
    /// Histogram bin width (HU).
    pub bin_hu: f32,
    /// A class with fewer sure voxels gets a uniform density (no opinion).
    pub min_voxels: usize,
    /// The second stage, between touching organs (`organ_contact.rs`); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organ_contact: Option<OrganContactRefinement>,
}

impl IntensityRefinement {
    /// Why these settings cannot be used, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Some(format!("beta {} must be finite and ≥ 0", self.beta));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Some(format!("confidence {} must lie in (0, 1)", self.confidence));
        }
        if !(self.bin_hu.is_finite() && self.bin_hu > 0.0) {
            return Some(format!("bin_hu {} must be positive", self.bin_hu));
        }
        if self.band_voxels == 0 {
            return Some("band_voxels must be at least 1".into());
        }
        self.organ_contact
            .as_ref()
            .and_then(OrganContactRefinement::problem)
    }
}

/// Histogram density (per HU) of `values` (HU) over `bins` bins of `bin_hu` from `lo`.
fn density(values: impl Iterator<Item = f32>, lo: f32, bins: usize, bin_hu: f32) -> Vec<f64> {
    let mut counts = vec![0.5f64; bins];
    for v in values {
        counts[bin_of(v, lo, bins, bin_hu)] += 1.0;
    }
    // Gaussian of σ = 1 bin, radius 4, mirrored at the ends (half-sample symmetric).
    let kernel: Vec<f64> = (-4i64..=4).map(|t| (-0.5 * (t * t) as f64).exp()).collect();
    let ksum: f64 = kernel.iter().sum();
    let n = bins as i64;
    let mirror = |j: i64| -> usize {
        let mut j = j;
        loop {
            if j < 0 {
                j = -j - 1;
            } else if j >= n {
                j = 2 * n - j - 1;
            } else {
                return j as usize;
            }
        }
    };
    let smooth: Vec<f64> = (0..n)
        .map(|b| {
            (-4i64..=4)
                .map(|t| kernel[(t + 4) as usize] * counts[mirror(b + t)])
                .sum::<f64>()
                / ksum
        })
        .collect();
    let total: f64 = smooth.iter().sum();
    smooth
        .into_iter()
        .map(|h| h / total / bin_hu as f64)
        .collect()
}

fn bin_of(hu: f32, lo: f32, bins: usize, bin_hu: f32) -> usize {
    let b = ((hu - lo) / bin_hu).floor();
    if b.is_nan() || b < 0.0 {
        0
    } else {
        (b as usize).min(bins - 1)
    }
}

/// Histogram bins over the card's clip window.
pub(crate) struct Bins {
    lo: f32,
    count: usize,
    bin_hu: f32,
}

impl Bins {
    /// Bins of `bin_hu` over `intensity.clip_hu`.
    pub(crate) fn new(intensity: &CardIntensity, bin_hu: f32) -> Self {
        let lo = intensity.clip_hu[0];
        let count = ((intensity.clip_hu[1] - lo) / bin_hu).ceil().max(1.0) as usize;
        Self { lo, count, bin_hu }
    }

    /// The bin of a CT number.
    pub(crate) fn of(&self, hu: f32) -> usize {
        bin_of(hu, self.lo, self.count, self.bin_hu)
    }

    /// The density of `values` per HU, or a uniform one (no opinion) when fewer than
    /// `min_voxels` are given.
    pub(crate) fn density_or_uniform(&self, values: Vec<f32>, min_voxels: usize) -> Vec<f64> {
        if values.len() >= min_voxels {
            density(values.into_iter(), self.lo, self.count, self.bin_hu)
        } else {
            vec![1.0 / (self.count as f64 * self.bin_hu as f64); self.count]
        }
    }
}

/// The CT numbers (HU) of the normalised network input `input`: `x · divide + subtract`.
pub(crate) fn ct_numbers(input: &[f32], intensity: &CardIntensity) -> Vec<f32> {
    input
        .iter()
        .map(|&x| x * intensity.divide + intensity.subtract)
        .collect()
}

/// The voxel count of `dims` (checking that `probs` and `input` cover it) and the argmax labels.
pub(crate) fn checked_labels(
    probs: &[f32],
    input: &[f32],
    dims: [usize; 3],
    channels: usize,
) -> (usize, Vec<u8>) {
    let n = dims.iter().product::<usize>();
    assert_eq!(probs.len(), n * channels, "probabilities cover the grid");
    assert_eq!(input.len(), n, "input covers the grid");
    (n, argmax_labels(probs, n, channels))
}

/// The argmax class of every voxel of `probs` (channel-major `[C][n]`; ties go to the lower class).
fn argmax_labels(probs: &[f32], n: usize, channels: usize) -> Vec<u8> {
    (0..n)
        .map(|v| {
            let mut best = (0u8, probs[v]);
            for c in 1..channels {
                if probs[c * n + v] > best.1 {
                    best = (c as u8, probs[c * n + v]);
                }
            }
            best.0
        })
        .collect()
}

/// Refines `probs` (channel-major `[C][voxels]`, channel 0 background) in place with the CT
/// numbers of `input` (the normalised network input on the same grid, `dims`).
pub fn refine_with_intensity(
    probs: &mut [f32],
    input: &[f32],
    dims: [usize; 3],
    channels: usize,
    intensity: &CardIntensity,
    settings: &IntensityRefinement,
) {
    let (n, labels) = checked_labels(probs, input, dims, channels);
    let band = settings.band_voxels.min(65534) as u16;
    let mut zone = vec![false; n];
    let mut eroded_once: Vec<Vec<bool>> = vec![Vec::new(); channels];
    for (c, eroded) in eroded_once.iter_mut().enumerate().skip(1) {
        let c8 = c as u8;
        if !labels.contains(&c8) {
            continue;
        }
        let to_organ = city_block_distance(|v| labels[v] == c8, dims, false);
        let to_outside = city_block_distance(|v| labels[v] != c8, dims, true);
        for v in 0..n {
            let inside = labels[v] == c8;
            if (inside && to_outside[v] <= band) || (!inside && to_organ[v] <= band) {
                zone[v] = true;
            }
        }
        *eroded = to_outside.iter().map(|&d| d >= 2).collect();
    }
    if !zone.iter().any(|&z| z) {
        return;
    }
    let context = settings.context_voxels.min(65534) as u16;
    let near = city_block_distance(|v| labels[v] > 0, dims, false);
    let bins = Bins::new(intensity, settings.bin_hu);
    let hu = ct_numbers(input, intensity);
    let densities: Vec<Vec<f64>> = (0..channels)
        .map(|c| {
            let p = &probs[c * n..(c + 1) * n];
            let sure = |v: usize| {
                p[v] > settings.confidence
                    && near[v] <= context
                    && (c == 0 || eroded_once[c].get(v).copied().unwrap_or(false))
            };
            let values: Vec<f32> = (0..n).filter(|&v| sure(v)).map(|v| hu[v]).collect();
            bins.density_or_uniform(values, settings.min_voxels)
        })
        .collect();
    for v in (0..n).filter(|&v| zone[v]) {
        let b = bins.of(hu[v]);
        let mut sum = 0.0f32;
        for (c, dens) in densities.iter().enumerate() {
            let q = probs[c * n + v] * dens[b].powf(settings.beta) as f32;
            probs[c * n + v] = q;
            sum += q;
        }
        if sum > 0.0 {
            for c in 0..channels {
                probs[c * n + v] /= sum;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> IntensityRefinement {
        IntensityRefinement {
            beta: 1.0,
            band_voxels: 2,
            confidence: 0.95,
            context_voxels: 5,
            bin_hu: 10.0,
            min_voxels: 50,
            organ_contact: None,
        }
    }

    fn intensity() -> CardIntensity {
        CardIntensity {
            clip_hu: [-250.0, 350.0],
            subtract: 50.0,
            divide: 150.0,
        }
    }

    #[test]
    fn the_density_integrates_to_one_and_peaks_where_the_values_are() {
        let values = (0..1000).map(|i| 30.0 + (i % 7) as f32);
        let d = density(values, -250.0, 60, 10.0);
        let integral: f64 = d.iter().map(|h| h * 10.0).sum();
        assert!((integral - 1.0).abs() < 1e-12, "{integral}");
        let peak = (0..60)
            .max_by(|&a, &b| d[a].total_cmp(&d[b]))
            .expect("60 bins");
        assert_eq!(peak, bin_of(33.0, -250.0, 60, 10.0));
    }

    /// A 1-D "organ" at 40 HU in fat at −100 HU whose network probability is a soft ramp placed
    /// two voxels too wide on each side: the intensities move the boundary back where it is.
    #[test]
    fn a_too_wide_blurred_boundary_moves_to_the_intensity_edge() {
        let dims = [40, 12, 12];
        let n = 40 * 12 * 12;
        let (organ_lo, organ_hi) = (12usize, 28usize); // truth: x in 12..28
        let mut probs = vec![0f32; 2 * n];
        let mut input = vec![0f32; n];
        let i = intensity();
        for v in 0..n {
            let x = v % 40;
            let hu = if (organ_lo..organ_hi).contains(&x) {
                40.0
            } else {
                -100.0
            };
            input[v] = (hu - i.subtract) / i.divide;
            // network: organ probability 1 inside 10..30 (two voxels too wide), ramps outside
            let dist_out = if x < 10 {
                10 - x
            } else if x >= 30 {
                x - 29
            } else {
                0
            };
            let p = (1.0 - 0.3 * dist_out as f32).clamp(0.0, 1.0);
            let p = if dist_out == 0 { 0.9 } else { p * 0.4 };
            probs[n + v] = p;
            probs[v] = 1.0 - p;
        }
        // well inside: make the core sure
        for v in 0..n {
            let x = v % 40;
            if (14..26).contains(&x) {
                probs[n + v] = 0.99;
                probs[v] = 0.01;
            }
            if !(6..34).contains(&x) {
                probs[n + v] = 0.0;
                probs[v] = 1.0;
            }
        }
        let before: usize = (0..n).filter(|&v| probs[n + v] > probs[v]).count();
        refine_with_intensity(&mut probs, &input, dims, 2, &i, &settings());
        let organ_after: Vec<bool> = (0..n).map(|v| probs[n + v] > probs[v]).collect();
        let wrong = (0..n)
            .filter(|&v| organ_after[v] != (organ_lo..organ_hi).contains(&(v % 40)))
            .count();
        assert_eq!(before, 20 * 144, "the network's mask is 20 voxels wide");
        assert_eq!(wrong, 0, "after refinement the mask is the 16-voxel organ");
        for v in 0..n {
            let s = probs[v] + probs[n + v];
            assert!((s - 1.0).abs() < 1e-5, "probabilities still sum to 1");
        }
    }

    #[test]
    fn nothing_changes_without_an_organ() {
        let dims = [8, 8, 8];
        let n = 512;
        let mut probs: Vec<f32> = [vec![0.9f32; n], vec![0.1f32; n]].concat();
        let input = vec![0.3f32; n];
        let before = probs.clone();
        refine_with_intensity(&mut probs, &input, dims, 2, &intensity(), &settings());
        assert_eq!(probs, before);
    }
}
