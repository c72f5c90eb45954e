//! Organ self-dose from OpenDose S-values, scaled to the patient's organ mass:
//! D = TIA·S_ref·m_ref/m (design brief §4). Exact for the non-penetrating emissions, which carry
//! ~81 % of 177Lu's emitted energy; the photon share is approximated.

use mrt_reference::{self_dose, Sex};

/// Absorbed dose (Gy) for a TIA (MBq·h) in `organ` of mass `mass_g`, reference phantom `sex`.
/// Returns `None` when no S-value exists for the organ.
pub fn self_dose_gy(sex: Sex, organ: &str, tia_mbq_h: f64, mass_g: f64) -> Option<(f64, f64, f64)> {
    let s = self_dose(sex, organ)?;
    let dose = tia_mbq_h * 3600.0 * s.s_mgy_per_mbq_s * (s.reference_mass_g / mass_g) / 1000.0;
    Some((dose, s.s_mgy_per_mbq_s, s.reference_mass_g))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_calculation_for_a_kidney() {
        // 1000 MBq·h in a 153 g left kidney of the AM phantom (reference mass 152.983 g):
        // 3.6e6 MBq·s × 1.5662e-4 mGy/(MBq·s) × 152.983/153 = 563.77 mGy.
        let (d, s, m) = self_dose_gy(Sex::Male, "kidney_left", 1000.0, 153.0).expect("S-value");
        assert_eq!((s, m), (1.5662e-4, 152.983));
        assert!((d - 0.563_769).abs() < 1e-5, "{d}");
        assert!(self_dose_gy(Sex::Male, "bladder", 1.0, 1.0).is_none());
    }
}
