//! Time-activity curves of the phantom (177Lu-DOTATATE defaults).
//!
//! Per organ, activity in MBq including physical decay (biokinetics reference, "Default parameter
//! distributions"): A(t) = A0·(1 − e^(−λu·t))·[(1 − f)·e^(−λe·t) + f·e^(−λf·t)], with
//! λe = ln2/T_eff (effective, physical decay included, T_eff < 159.5 h), λu = ln2/T_up and an
//! optional fast washout component (fraction f, λf = ln2/T_fast; f = 0 is the plain
//! uptake-washout shape, f > 0 the bi-exponential washout seen in some kidneys). Its integral to
//! infinity (the TIA) is A0·Σ_c w_c·(1/λc − 1/(λc + λu)).
//!
//! Parameter sources (Hänscheid et al. 2018 Nuklearmedizin 57:174, effective half-lives 50 h
//! kidneys, 67 h liver and spleen, 77 h lesions; doses checked against Marin 2018 EJNMMI Res 8:56
//! and the Lutathera label) as summarised in data/reference/biokinetics-177Lu.md.

use serde::Serialize;

use crate::rng::Rng;

/// Uptake-washout curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UptakeWashout {
    /// Extrapolated amplitude A0, MBq.
    pub a0_mbq: f64,
    /// Effective half-life (h), physical decay included.
    pub t_eff_h: f64,
    /// Uptake half-time (h).
    pub t_up_h: f64,
    /// Fraction of A0 in a fast washout component (0 = mono-exponential washout).
    pub fast_fraction: f64,
    /// Half-life of the fast component (h); unused when `fast_fraction` is 0.
    pub t_fast_h: f64,
}

impl UptakeWashout {
    /// Activity at `t_h` hours after injection (MBq).
    pub fn activity_mbq(&self, t_h: f64) -> f64 {
        let lu = std::f64::consts::LN_2 / self.t_up_h;
        let washout: f64 = self
            .components()
            .iter()
            .map(|(w, l)| w * (-l * t_h).exp())
            .sum();
        self.a0_mbq * (1.0 - (-lu * t_h).exp()) * washout
    }

    /// Time-integrated activity from injection to infinity (MBq·h).
    pub fn tia_mbq_h(&self) -> f64 {
        let lu = std::f64::consts::LN_2 / self.t_up_h;
        self.a0_mbq
            * self
                .components()
                .iter()
                .map(|(w, l)| w * (1.0 / l - 1.0 / (l + lu)))
                .sum::<f64>()
    }

    /// Washout components as (weight, rate 1/h).
    fn components(&self) -> [(f64, f64); 2] {
        let l2 = std::f64::consts::LN_2;
        let f = self.fast_fraction;
        let fast_rate = if f > 0.0 { l2 / self.t_fast_h } else { 1.0 };
        [(1.0 - f, l2 / self.t_eff_h), (f, fast_rate)]
    }
}

/// Whole-body retention: a fast (urinary) and a slow component, fractions of injected activity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WholeBody {
    /// Fraction excreted through the fast component.
    pub excreted_fraction: f64,
    /// Fast half-life (h).
    pub t_fast_h: f64,
    /// Slow retained half-life (h), physical decay included.
    pub t_slow_h: f64,
}

impl WholeBody {
    /// Activity retained in the body (MBq) for `injected_mbq` at `t_h`.
    pub fn retained_mbq(&self, injected_mbq: f64, t_h: f64) -> f64 {
        let l2 = std::f64::consts::LN_2;
        injected_mbq
            * (self.excreted_fraction * (-l2 * t_h / self.t_fast_h).exp()
                + (1.0 - self.excreted_fraction) * (-l2 * t_h / self.t_slow_h).exp())
    }

    /// TIA of the retained whole body (MBq·h).
    pub fn tia_mbq_h(&self, injected_mbq: f64) -> f64 {
        let l2 = std::f64::consts::LN_2;
        injected_mbq
            * (self.excreted_fraction * self.t_fast_h / l2
                + (1.0 - self.excreted_fraction) * self.t_slow_h / l2)
    }
}

/// Upper bound of effective half-lives: below the 177Lu physical half-life (159.5 h).
const T_EFF_MAX_H: f64 = 150.0;

/// Kidney (one), per the reference: both kidneys together A0 ≈ LN(2.5 %, 0.35) for 300 mL,
/// scaled by volume (uptake follows functional mass); T_eff LN(50 h, 0.20) in [30, 100];
/// T_up U(0.3, 1.5) h.
/// In 30 % of patients the kidney washout is bi-exponential: a fast component of 10-30 % with
/// T½ U(4, 12) h (vascular/tubular transit; a modelling assumption of ours, not a literature
/// distribution), so that fits must choose between models.
pub fn kidney(rng: &mut Rng, injected_mbq: f64, volume_ml: f64) -> UptakeWashout {
    let pair_fraction = rng.lognormal_in(0.025, 0.35, 0.01, 0.07);
    let t_eff_h = rng.lognormal_in(50.0, 0.20, 30.0, 100.0);
    let t_up_h = rng.range(0.3, 1.5);
    let (fast_fraction, t_fast_h) = if rng.uniform() < 0.3 {
        (rng.range(0.1, 0.3), rng.range(4.0, 12.0))
    } else {
        (0.0, 0.0)
    };
    UptakeWashout {
        a0_mbq: injected_mbq * pair_fraction * volume_ml / 300.0,
        t_eff_h,
        t_up_h,
        fast_fraction,
        t_fast_h,
    }
}

/// Liver (normal parenchyma): A0 LN(3 %, 0.40) in [1, 10 %]; T_eff LN(67 h, 0.25) in [35, 150];
/// T_up U(0.5, 4) h.
pub fn liver(rng: &mut Rng, injected_mbq: f64) -> UptakeWashout {
    UptakeWashout {
        a0_mbq: injected_mbq * rng.lognormal_in(0.03, 0.40, 0.01, 0.10),
        t_eff_h: rng.lognormal_in(67.0, 0.25, 35.0, T_EFF_MAX_H),
        t_up_h: rng.range(0.5, 4.0),
        fast_fraction: 0.0,
        t_fast_h: 0.0,
    }
}

/// Spleen: A0 LN(1.7 %, 0.50) in [0.3, 5 %]; T_eff LN(67 h, 0.25) in [35, 150]; T_up U(0.5, 4).
pub fn spleen(rng: &mut Rng, injected_mbq: f64) -> UptakeWashout {
    UptakeWashout {
        a0_mbq: injected_mbq * rng.lognormal_in(0.017, 0.50, 0.003, 0.05),
        t_eff_h: rng.lognormal_in(67.0, 0.25, 35.0, T_EFF_MAX_H),
        t_up_h: rng.range(0.5, 4.0),
        fast_fraction: 0.0,
        t_fast_h: 0.0,
    }
}

/// NET lesion of `volume_ml`: peak concentration LN(0.03 %IA/mL, 0.9) in [0.003, 0.3];
/// T_eff LN(80 h, 0.30) in [40, 150]; T_up U(3, 10) h.
pub fn lesion(rng: &mut Rng, injected_mbq: f64, volume_ml: f64) -> UptakeWashout {
    let conc = rng.lognormal_in(0.0003, 0.9, 0.000_03, 0.003);
    UptakeWashout {
        a0_mbq: injected_mbq * conc * volume_ml,
        t_eff_h: rng.lognormal_in(80.0, 0.30, 40.0, T_EFF_MAX_H),
        t_up_h: rng.range(3.0, 10.0),
        fast_fraction: 0.0,
        t_fast_h: 0.0,
    }
}

/// Whole body: excreted fraction N(0.60, 0.08) in [0.40, 0.80], fast T LN(2 h, 0.3),
/// slow T LN(70 h, 0.25) in [40, 140].
pub fn whole_body(rng: &mut Rng) -> WholeBody {
    WholeBody {
        excreted_fraction: rng.normal_in(0.60, 0.08, 0.40, 0.80),
        t_fast_h: rng.lognormal_in(2.0, 0.3, 0.5, 8.0),
        t_slow_h: rng.lognormal_in(70.0, 0.25, 40.0, 140.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tia_equals_numerical_integral() {
        for (f, tf) in [(0.0, 0.0), (0.25, 6.0)] {
            let c = UptakeWashout {
                a0_mbq: 150.0,
                t_eff_h: 50.0,
                t_up_h: 1.0,
                fast_fraction: f,
                t_fast_h: tf,
            };
            // Trapezoid on a fine grid to 3000 h.
            let dt = 0.01;
            let mut sum = 0.0;
            let mut t = 0.0;
            while t < 3000.0 {
                sum += 0.5 * (c.activity_mbq(t) + c.activity_mbq(t + dt)) * dt;
                t += dt;
            }
            assert!(
                (sum / c.tia_mbq_h() - 1.0).abs() < 1e-6,
                "{sum} vs {}",
                c.tia_mbq_h()
            );
        }
        let wb = WholeBody {
            excreted_fraction: 0.6,
            t_fast_h: 2.0,
            t_slow_h: 70.0,
        };
        assert!((wb.retained_mbq(7400.0, 0.0) - 7400.0).abs() < 1e-9);
        let expected = 7400.0 * (0.6 * 2.0 + 0.4 * 70.0) / std::f64::consts::LN_2;
        assert!((wb.tia_mbq_h(7400.0) - expected).abs() < 1e-6);
    }
}
