//! Mass density from CT numbers (piecewise-linear Schneider 2000 calibration) and organ masses
//! from CT masks.
//!
//! Iodinated contrast raises HU without raising density: an organ whose mean HU exceeds
//! [`CONTRAST_SUSPECT_HU`] is weighed with the ICRP soft-tissue density instead, and the caller
//! is told (the flag).

use mrt_core::Volume;

/// Above this mean organ HU, contrast enhancement is assumed (unenhanced liver, spleen and kidney
/// lie between 20 and 70 HU).
pub const CONTRAST_SUSPECT_HU: f64 = 90.0;
/// ICRP 89 soft-tissue density used when the CT is contrast enhanced (g/mL).
pub const SOFT_TISSUE_DENSITY: f64 = 1.05;

/// HU → g/mL by linear interpolation in the Schneider table, clamped at its ends.
pub fn hu_to_density(table: &[(f64, f64)], hu: f64) -> f64 {
    if hu <= table[0].0 {
        return table[0].1;
    }
    for w in table.windows(2) {
        if hu <= w[1].0 {
            let f = (hu - w[0].0) / (w[1].0 - w[0].0);
            return w[0].1 + f * (w[1].1 - w[0].1);
        }
    }
    table[table.len() - 1].1
}

/// An organ's mass from its label on the CT grid.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct OrganMass {
    /// Mass (g).
    pub mass_g: f64,
    /// Volume (mL).
    pub volume_ml: f64,
    /// Mean HU in the mask.
    pub mean_hu: f64,
    /// True when contrast was suspected and the fixed density used.
    pub contrast_suspected: bool,
}

/// Mass of label `label` in `labels` (same grid as `ct_hu`).
pub fn organ_mass(
    labels: &Volume<u8>,
    ct_hu: &Volume<f32>,
    label: u8,
    table: &[(f64, f64)],
) -> OrganMass {
    let ml = labels.grid().voxel_volume_mm3() / 1000.0;
    let (mut n, mut hu_sum, mut mass) = (0usize, 0.0f64, 0.0f64);
    for (&l, &h) in labels.data().iter().zip(ct_hu.data()) {
        if l == label {
            n += 1;
            hu_sum += f64::from(h);
            mass += hu_to_density(table, f64::from(h)) * ml;
        }
    }
    let volume_ml = n as f64 * ml;
    let mean_hu = if n > 0 { hu_sum / n as f64 } else { f64::NAN };
    let contrast_suspected = mean_hu > CONTRAST_SUSPECT_HU;
    OrganMass {
        mass_g: if contrast_suspected {
            volume_ml * SOFT_TISSUE_DENSITY
        } else {
            mass
        },
        volume_ml,
        mean_hu,
        contrast_suspected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_the_schneider_points() {
        let t = mrt_reference::hu_density_table();
        assert_eq!(t.len(), 9);
        assert_eq!(hu_to_density(&t, -1000.0), 1.21e-3);
        assert!((hu_to_density(&t, 14.0) - 1.03).abs() < 1e-12);
        // Halfway between (14, 1.03) and (23, 1.031).
        assert!((hu_to_density(&t, 18.5) - 1.0305).abs() < 1e-12);
        assert_eq!(hu_to_density(&t, 5000.0), 2.8);
    }
}
