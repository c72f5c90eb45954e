//! Single-time-point TIA methods, for when one SPECT/CT is all there is.
//!
//! - Hänscheid et al. 2018 (J Nucl Med 59:75): TIA ≈ A(t)·2t/ln2, exact when T_eff = t.
//! - Madsen et al. 2018 (Med Phys 45:2318): TIA = A(t)·e^(λ·t)/λ with a population effective
//!   λ = ln2/T_eff; its uncertainty follows from the population spread of T_eff:
//!   ∂ln TIA/∂ln λ = λt − 1, so u = |λt − 1|·s for a log-SD s of T_eff.

use serde::Serialize;

/// Population effective half-lives of 177Lu-DOTATATE (Hänscheid et al. 2018, Nuklearmedizin
/// 57:174: kidneys 50 h, liver and spleen 67 h) and their log-SD across patients
/// (data/reference/biokinetics-177Lu.md, "Default parameter distributions").
pub fn population_t_eff_h(organ: &str) -> Option<(f64, f64)> {
    match organ {
        "kidney_left" | "kidney_right" | "kidneys" => Some((50.0, 0.20)),
        "liver" | "spleen" => Some((67.0, 0.25)),
        _ => None,
    }
}

/// Relative method uncertainty assumed for Hänscheid's formula when no population half-life is
/// known for the organ (our stated assumption).
pub const HANSCHEID_UNCERTAINTY: f64 = 0.25;

/// Result of a single-time-point estimate.
#[derive(Debug, Clone, Serialize)]
pub struct SinglePoint {
    /// `hanscheid` or `madsen`.
    pub method: &'static str,
    /// TIA (MBq·h).
    pub tia_mbq_h: f64,
    /// Relative uncertainty of the method (fraction).
    pub method_uncertainty: f64,
    /// Effective half-life used (h).
    pub t_eff_h: f64,
}

/// Hänscheid: A·2t/ln2.
pub fn hanscheid(t_h: f64, activity_mbq: f64) -> SinglePoint {
    SinglePoint {
        method: "hanscheid",
        tia_mbq_h: activity_mbq * 2.0 * t_h / std::f64::consts::LN_2,
        method_uncertainty: HANSCHEID_UNCERTAINTY,
        t_eff_h: t_h,
    }
}

/// Madsen with population T_eff (h) and its log-SD.
pub fn madsen(t_h: f64, activity_mbq: f64, t_eff_h: f64, log_sd: f64) -> SinglePoint {
    let lambda = std::f64::consts::LN_2 / t_eff_h;
    SinglePoint {
        method: "madsen",
        tia_mbq_h: activity_mbq * (lambda * t_h).exp() / lambda,
        method_uncertainty: (lambda * t_h - 1.0).abs() * log_sd,
        t_eff_h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_are_exact_for_a_mono_exponential_with_the_assumed_half_life() {
        // A(t) = A0 e^(−λt), T_eff = 50 h; TIA = A0/λ.
        let l = std::f64::consts::LN_2 / 50.0;
        let a0 = 120.0;
        let tia = a0 / l;
        let m = madsen(96.0, a0 * (-l * 96.0f64).exp(), 50.0, 0.2);
        assert!((m.tia_mbq_h / tia - 1.0).abs() < 1e-12);
        let h = hanscheid(50.0, a0 * (-l * 50.0f64).exp());
        // Hänscheid at t = T_eff: A0·e^(−ln2)·2T/ln2 = A0·T/ln2 = A0/λ.
        assert!((h.tia_mbq_h / tia - 1.0).abs() < 1e-12);
    }
}
