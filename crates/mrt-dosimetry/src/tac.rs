//! Time-activity curve models (activity in MBq including physical decay, time in hours after
//! injection) and their closed-form time-integrated activity (TIA, MBq·h, injection to ∞).
//!
//! Design brief §4: mono-exponential A0·e^(−λt) (TIA = A0/λ); uptake-washout
//! A0·(e^(−λ1 t) − e^(−λ2 t)) (TIA = A0·(1/λ1 − 1/λ2)); bi-exponential; tri-exponential with an
//! uptake phase (A(0) = 0); trapezoid with a physical-decay tail. Every effective λ is bounded
//! below by the physical λ (a tracer cannot leave faster than... rather, cannot stay longer than
//! it decays).

use serde::{Deserialize, Serialize};

/// Fit models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// A0·e^(−λ·t); parameters [A0, λ].
    MonoExponential,
    /// A0·(e^(−λ1·t) − e^(−λ2·t)), λ2 > λ1; parameters [A0, λ1, λ2].
    UptakeWashout,
    /// A1·e^(−λ1·t) + A2·e^(−λ2·t); parameters [A1, λ1, A2, λ2].
    BiExponential,
    /// A1·e^(−λ1·t) + A2·e^(−λ2·t) − (A1 + A2)·e^(−λ3·t); parameters [A1, λ1, A2, λ2, λ3].
    TriExponential,
    /// Trapezoids through the points, linear rise from 0 at injection, physical-decay tail.
    Trapezoid,
}

impl Model {
    /// Number of fitted parameters (0 for the trapezoid).
    pub fn parameter_count(self) -> usize {
        match self {
            Model::MonoExponential => 2,
            Model::UptakeWashout => 3,
            Model::BiExponential => 4,
            Model::TriExponential => 5,
            Model::Trapezoid => 0,
        }
    }

    /// Whether the model starts from zero at injection and rises (an uptake phase).
    pub fn has_uptake(self) -> bool {
        matches!(self, Model::UptakeWashout | Model::TriExponential)
    }

    /// Parameter names, with units.
    pub fn parameter_names(self) -> &'static [&'static str] {
        match self {
            Model::MonoExponential => &["A0_MBq", "lambda_per_h"],
            Model::UptakeWashout => &["A0_MBq", "lambda1_per_h", "lambda2_per_h"],
            Model::BiExponential => &["A1_MBq", "lambda1_per_h", "A2_MBq", "lambda2_per_h"],
            Model::TriExponential => &[
                "A1_MBq",
                "lambda1_per_h",
                "A2_MBq",
                "lambda2_per_h",
                "lambda3_per_h",
            ],
            Model::Trapezoid => &[],
        }
    }

    /// Parametric models in order of complexity.
    pub const PARAMETRIC: [Model; 4] = [
        Model::MonoExponential,
        Model::UptakeWashout,
        Model::BiExponential,
        Model::TriExponential,
    ];

    /// Activity (MBq) at `t_h` for parameters `p`.
    pub fn activity(self, p: &[f64], t_h: f64) -> f64 {
        let e = |l: f64| (-l * t_h).exp();
        match self {
            Model::MonoExponential => p[0] * e(p[1]),
            Model::UptakeWashout => p[0] * (e(p[1]) - e(p[2])),
            Model::BiExponential => p[0] * e(p[1]) + p[2] * e(p[3]),
            Model::TriExponential => p[0] * e(p[1]) + p[2] * e(p[3]) - (p[0] + p[2]) * e(p[4]),
            Model::Trapezoid => f64::NAN,
        }
    }

    /// TIA (MBq·h), injection to infinity, for parameters `p`.
    pub fn tia(self, p: &[f64]) -> f64 {
        match self {
            Model::MonoExponential => p[0] / p[1],
            Model::UptakeWashout => p[0] * (1.0 / p[1] - 1.0 / p[2]),
            Model::BiExponential => p[0] / p[1] + p[2] / p[3],
            Model::TriExponential => p[0] / p[1] + p[2] / p[3] - (p[0] + p[2]) / p[4],
            Model::Trapezoid => f64::NAN,
        }
    }

    /// ∂TIA/∂p, analytic.
    pub fn tia_gradient(self, p: &[f64]) -> Vec<f64> {
        match self {
            Model::MonoExponential => vec![1.0 / p[1], -p[0] / (p[1] * p[1])],
            Model::UptakeWashout => vec![
                1.0 / p[1] - 1.0 / p[2],
                -p[0] / (p[1] * p[1]),
                p[0] / (p[2] * p[2]),
            ],
            Model::BiExponential => vec![
                1.0 / p[1],
                -p[0] / (p[1] * p[1]),
                1.0 / p[3],
                -p[2] / (p[3] * p[3]),
            ],
            Model::TriExponential => vec![
                1.0 / p[1] - 1.0 / p[4],
                -p[0] / (p[1] * p[1]),
                1.0 / p[3] - 1.0 / p[4],
                -p[2] / (p[3] * p[3]),
                (p[0] + p[2]) / (p[4] * p[4]),
            ],
            Model::Trapezoid => Vec::new(),
        }
    }
}

/// Trapezoid TIA: linear rise from 0 at injection to the first point, trapezoids between points,
/// then a tail with physical decay only from the last point (conservative: no further
/// biological clearance assumed). Returns (TIA, tail share).
pub fn trapezoid_tia(times_h: &[f64], activity_mbq: &[f64], lambda_phys_per_h: f64) -> (f64, f64) {
    let mut tia = 0.5 * times_h[0] * activity_mbq[0];
    for i in 1..times_h.len() {
        tia += 0.5 * (times_h[i] - times_h[i - 1]) * (activity_mbq[i] + activity_mbq[i - 1]);
    }
    let tail = activity_mbq[activity_mbq.len() - 1] / lambda_phys_per_h;
    (tia + tail, tail / (tia + tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_integral(m: Model, p: &[f64]) -> f64 {
        // Substitution t = u/(1-u) maps [0,∞) to [0,1); Simpson on a fine grid.
        let n = 200_000;
        let h = 1.0 / n as f64;
        let f = |u: f64| {
            if u >= 1.0 {
                return 0.0;
            }
            let t = u / (1.0 - u);
            m.activity(p, t) / ((1.0 - u) * (1.0 - u))
        };
        let mut s = f(0.0) + f(1.0 - 1e-12);
        for i in 1..n {
            s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0
    }

    #[test]
    fn closed_form_tia_equals_the_integral() {
        let cases: [(Model, Vec<f64>); 4] = [
            (Model::MonoExponential, vec![100.0, 0.02]),
            (Model::UptakeWashout, vec![100.0, 0.015, 0.7]),
            (Model::BiExponential, vec![60.0, 0.2, 40.0, 0.012]),
            (Model::TriExponential, vec![60.0, 0.2, 40.0, 0.012, 1.5]),
        ];
        for (m, p) in cases {
            let num = numeric_integral(m, &p);
            assert!(
                (num / m.tia(&p) - 1.0).abs() < 1e-6,
                "{m:?}: {num} vs {}",
                m.tia(&p)
            );
        }
    }

    #[test]
    fn tia_gradient_matches_finite_differences() {
        let p = [60.0, 0.2, 40.0, 0.012, 1.5];
        for m in Model::PARAMETRIC {
            let p = &p[..m.parameter_count()];
            let g = m.tia_gradient(p);
            for i in 0..p.len() {
                let h = p[i] * 1e-6;
                let mut a = p.to_vec();
                let mut b = p.to_vec();
                a[i] += h;
                b[i] -= h;
                let fd = (m.tia(&a) - m.tia(&b)) / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() <= 1e-5 * fd.abs().max(1.0),
                    "{m:?} p{i}: {fd} vs {}",
                    g[i]
                );
            }
        }
    }

    #[test]
    fn trapezoid_of_a_decaying_line() {
        // Pure physical decay sampled densely: trapezoid + tail ≈ A0/λ.
        let l = 0.004345;
        let t: Vec<f64> = (1..=400).map(|i| i as f64).collect();
        let a: Vec<f64> = t.iter().map(|&t| 100.0 * (-l * t).exp()).collect();
        let (tia, _) = trapezoid_tia(&t, &a, l);
        // The linear rise from 0 to the first point loses half of the first hour.
        let exact = 100.0 / l - 0.5 * 100.0;
        assert!((tia / exact - 1.0).abs() < 1e-4, "{tia} vs {exact}");
    }
}
