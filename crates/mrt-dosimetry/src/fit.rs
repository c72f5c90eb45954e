//! Weighted least-squares fitting of TAC models (Levenberg-Marquardt) with bounds, parameter
//! covariance, TIA with its standard deviation, and model choice by AICc.
//!
//! Bounds are enforced by reparameterisation: amplitudes A = e^θ > 0; the slowest rate
//! λ = λ_phys + e^θ ≥ λ_phys (effective clearance includes physical decay); faster rates are the
//! next slower one plus e^θ, which also orders the components. Weights: σ_i = cv·A_i (relative
//! error model; cv = 10 % unless the input gives uncertainties), so late, low points count as
//! much as early ones. Covariance (J_pᵀ W J_p)⁻¹ scaled by max(1, χ²/(n − k)).

use serde::Serialize;

use crate::tac::Model;
use mrt_core::dense;

/// One TAC to fit.
#[derive(Debug, Clone)]
pub struct TacData {
    /// Hours after injection, strictly increasing, > 0.
    pub times_h: Vec<f64>,
    /// Activity (MBq), ≥ 0.
    pub activity_mbq: Vec<f64>,
    /// Standard deviation of each activity (MBq).
    pub sigma_mbq: Vec<f64>,
    /// Physical decay constant (1/h).
    pub lambda_phys_per_h: f64,
    /// Relative error model: σ_i = cv·f(t_i) evaluated on the model curve (not on the noisy
    /// observation, which would favour low readings and bias the TIA low).
    pub relative_cv: Option<f64>,
    /// Floor of σ (MBq).
    pub sigma_floor_mbq: f64,
}

impl TacData {
    /// Data with a relative error model σ_i = cv·A_i (floored at 1 % of the largest activity).
    pub fn with_relative_error(
        times_h: Vec<f64>,
        activity_mbq: Vec<f64>,
        cv: f64,
        lambda_phys_per_h: f64,
    ) -> Self {
        let floor = 0.01 * activity_mbq.iter().copied().fold(0.0, f64::max).max(1e-12);
        let sigma_mbq = activity_mbq
            .iter()
            .map(|&a| (cv * a).max(cv * floor))
            .collect();
        Self {
            times_h,
            activity_mbq,
            sigma_mbq,
            lambda_phys_per_h,
            relative_cv: Some(cv),
            sigma_floor_mbq: cv * floor,
        }
    }
}

/// A fitted model.
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    /// The model.
    pub model: Model,
    /// Parameters (see [`Model::parameter_names`]).
    pub params: Vec<f64>,
    /// Their standard deviations.
    pub param_sd: Vec<f64>,
    /// Their covariance.
    pub covariance: Vec<Vec<f64>>,
    /// Weighted residual sum of squares χ².
    pub chi2: f64,
    /// AICc, when the number of points allows it (n ≥ k + 2).
    pub aicc: Option<f64>,
    /// TIA (MBq·h).
    pub tia_mbq_h: f64,
    /// Standard deviation of the TIA from the parameter covariance (MBq·h).
    pub tia_sd_mbq_h: f64,
    /// Weighted residuals (A_i − f(t_i))/σ_i.
    pub residuals: Vec<f64>,
}

fn to_params(model: Model, theta: &[f64], lp: f64) -> Vec<f64> {
    let e = |x: f64| x.clamp(-700.0, 700.0).exp();
    match model {
        Model::MonoExponential => vec![e(theta[0]), lp + e(theta[1])],
        Model::UptakeWashout => {
            let l1 = lp + e(theta[1]);
            vec![e(theta[0]), l1, l1 + e(theta[2])]
        }
        Model::BiExponential => {
            let l2 = lp + e(theta[3]);
            vec![e(theta[0]), l2 + e(theta[1]), e(theta[2]), l2]
        }
        Model::TriExponential => {
            let l2 = lp + e(theta[3]);
            let l1 = l2 + e(theta[1]);
            vec![e(theta[0]), l1, e(theta[2]), l2, l1 + e(theta[4])]
        }
        Model::Trapezoid => Vec::new(),
    }
}

fn to_theta(model: Model, p: &[f64], lp: f64) -> Vec<f64> {
    let l = |x: f64| x.max(1e-12).ln();
    match model {
        Model::MonoExponential => vec![l(p[0]), l(p[1] - lp)],
        Model::UptakeWashout => vec![l(p[0]), l(p[1] - lp), l(p[2] - p[1])],
        Model::BiExponential => vec![l(p[0]), l(p[1] - p[3]), l(p[2]), l(p[3] - lp)],
        Model::TriExponential => vec![
            l(p[0]),
            l(p[1] - p[3]),
            l(p[2]),
            l(p[3] - lp),
            l(p[4] - p[1]),
        ],
        Model::Trapezoid => Vec::new(),
    }
}

fn residuals(model: Model, p: &[f64], d: &TacData) -> Vec<f64> {
    d.times_h
        .iter()
        .zip(&d.activity_mbq)
        .zip(&d.sigma_mbq)
        .map(|((&t, &a), &s)| {
            let f = model.activity(p, t);
            let sigma = match d.relative_cv {
                Some(cv) => (cv * f.abs()).max(d.sigma_floor_mbq),
                None => s,
            };
            (a - f) / sigma
        })
        .collect()
}

fn cost(r: &[f64]) -> f64 {
    r.iter().map(|x| x * x).sum()
}

/// Jacobian of residuals with respect to `x` by central differences, `f` mapping x → residuals.
fn jacobian(x: &[f64], f: &dyn Fn(&[f64]) -> Vec<f64>) -> Vec<Vec<f64>> {
    let n = f(x).len();
    let mut j = vec![vec![0.0; x.len()]; n];
    for c in 0..x.len() {
        let h = 1e-6 * x[c].abs().max(1e-3);
        let mut a = x.to_vec();
        let mut b = x.to_vec();
        a[c] += h;
        b[c] -= h;
        let (ra, rb) = (f(&a), f(&b));
        for r in 0..n {
            j[r][c] = (ra[r] - rb[r]) / (2.0 * h);
        }
    }
    j
}

fn normal_matrix(j: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let k = j.first().map(|r| r.len()).unwrap_or(0);
    (0..k)
        .map(|a| {
            (0..k)
                .map(|b| j.iter().map(|r| r[a] * r[b]).sum())
                .collect()
        })
        .collect()
}

/// Levenberg-Marquardt from `theta0`; returns the best θ found.
fn levenberg_marquardt(model: Model, theta0: Vec<f64>, d: &TacData) -> Vec<f64> {
    let lp = d.lambda_phys_per_h;
    let f = |th: &[f64]| residuals(model, &to_params(model, th, lp), d);
    let mut theta = theta0;
    let mut r = f(&theta);
    let mut c = cost(&r);
    let mut mu = 1e-3;
    for _ in 0..500 {
        let j = jacobian(&theta, &f);
        let jtj = normal_matrix(&j);
        let g: Vec<f64> = (0..theta.len())
            .map(|a| j.iter().zip(&r).map(|(row, ri)| row[a] * ri).sum())
            .collect();
        let mut improved = false;
        for _ in 0..30 {
            let mut a = jtj.clone();
            for (i, row) in a.iter_mut().enumerate() {
                row[i] += mu * jtj[i][i].max(1e-12);
            }
            let minus_g: Vec<f64> = g.iter().map(|x| -x).collect();
            let Some(step) = dense::solve(&a, &minus_g) else {
                mu *= 4.0;
                continue;
            };
            let cand: Vec<f64> = theta.iter().zip(&step).map(|(t, s)| t + s).collect();
            let rc = f(&cand);
            let cc = cost(&rc);
            if cc.is_finite() && cc < c {
                let rel = (c - cc) / c.max(1e-300);
                theta = cand;
                r = rc;
                c = cc;
                mu = (mu / 3.0).max(1e-12);
                improved = true;
                if rel < 1e-14 {
                    return theta;
                }
                break;
            }
            mu *= 4.0;
        }
        if !improved {
            break;
        }
    }
    theta
}

/// Weighted linear least squares for amplitudes given fixed basis curves; negative results are
/// clamped to a small positive value (starting points only).
fn amplitudes(basis: &[Vec<f64>], d: &TacData) -> Vec<f64> {
    let k = basis.len();
    let w: Vec<f64> = d.sigma_mbq.iter().map(|s| 1.0 / (s * s)).collect();
    let a: Vec<Vec<f64>> = (0..k)
        .map(|i| {
            (0..k)
                .map(|j| (0..w.len()).map(|n| w[n] * basis[i][n] * basis[j][n]).sum())
                .collect()
        })
        .collect();
    let b: Vec<f64> = (0..k)
        .map(|i| {
            (0..w.len())
                .map(|n| w[n] * basis[i][n] * d.activity_mbq[n])
                .sum()
        })
        .collect();
    let top = d.activity_mbq.iter().copied().fold(0.0, f64::max).max(1e-9);
    dense::solve(&a, &b)
        .unwrap_or_else(|| vec![top; k])
        .into_iter()
        .map(|x| {
            if x.is_finite() && x > 0.0 {
                x
            } else {
                1e-3 * top
            }
        })
        .collect()
}

/// Mono-exponential start: log-linear fit through the points from the maximum on.
fn mono_start(d: &TacData) -> (f64, f64) {
    let lp = d.lambda_phys_per_h;
    let peak = d
        .activity_mbq
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let pts: Vec<(f64, f64)> = d.times_h[peak..]
        .iter()
        .zip(&d.activity_mbq[peak..])
        .filter(|(_, &a)| a > 0.0)
        .map(|(&t, &a)| (t, a.ln()))
        .collect();
    if pts.len() < 2 {
        let (t, a) = (d.times_h[peak], d.activity_mbq[peak].max(1e-9));
        return (a * (lp * 2.0 * t).exp(), lp * 2.0);
    }
    let n = pts.len() as f64;
    let mt = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mt) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mt).powi(2)).sum();
    let lambda = (-sxy / sxx.max(1e-300)).max(lp * 1.05);
    let a0 = (my + lambda * mt).exp();
    (a0, lambda)
}

fn starts(model: Model, d: &TacData) -> Vec<Vec<f64>> {
    let lp = d.lambda_phys_per_h;
    let (a0, l) = mono_start(d);
    let curve = |lam: f64| -> Vec<f64> { d.times_h.iter().map(|&t| (-lam * t).exp()).collect() };
    match model {
        Model::MonoExponential => vec![vec![a0, l]],
        Model::UptakeWashout => [0.1f64, 0.5, 2.0, 8.0]
            .iter()
            .map(|&l2| {
                let l2 = (l + l2).max(l * 1.5);
                let basis: Vec<f64> = curve(l).iter().zip(curve(l2)).map(|(a, b)| a - b).collect();
                vec![amplitudes(&[basis], d)[0], l, l2]
            })
            .collect(),
        Model::BiExponential => [0.05f64, 0.2, 1.0]
            .iter()
            .map(|&l1| {
                let l2 = (l * 0.8).max(lp * 1.01);
                let l1 = l1.max(l2 * 2.0);
                let amp = amplitudes(&[curve(l1), curve(l2)], d);
                vec![amp[0], l1, amp[1], l2]
            })
            .collect(),
        Model::TriExponential => [(0.1f64, 1.0f64), (0.3, 3.0), (0.05, 0.5)]
            .iter()
            .map(|&(l1, l3)| {
                let l2 = (l * 0.8).max(lp * 1.01);
                let l1 = l1.max(l2 * 2.0);
                let l3 = l3.max(l1 * 2.0);
                let b1: Vec<f64> = curve(l1)
                    .iter()
                    .zip(curve(l3))
                    .map(|(a, b)| a - b)
                    .collect();
                let b2: Vec<f64> = curve(l2)
                    .iter()
                    .zip(curve(l3))
                    .map(|(a, b)| a - b)
                    .collect();
                let amp = amplitudes(&[b1, b2], d);
                vec![amp[0], l1, amp[1], l2, l3]
            })
            .collect(),
        Model::Trapezoid => Vec::new(),
    }
}

/// Fits one parametric model (best of several starting points).
pub fn fit_model(model: Model, d: &TacData) -> Option<Fit> {
    let lp = d.lambda_phys_per_h;
    let n = d.times_h.len();
    let k = model.parameter_count();
    if k == 0 || n < k {
        return None;
    }
    let mut best: Option<(f64, Vec<f64>)> = None;
    for p0 in starts(model, d) {
        let theta = levenberg_marquardt(model, to_theta(model, &p0, lp), d);
        let p = to_params(model, &theta, lp);
        let c = cost(&residuals(model, &p, d));
        if c.is_finite() && best.as_ref().is_none_or(|(bc, _)| c < *bc) {
            best = Some((c, p));
        }
    }
    let (chi2, params) = best?;
    let f = |p: &[f64]| residuals(model, p, d);
    let jp = jacobian(&params, &f);
    let scale = if n > k {
        (chi2 / (n - k) as f64).max(1.0)
    } else {
        1.0
    };
    // A component that vanished at a bound leaves its rate unidentifiable: the normal matrix is
    // singular. A ridge of 1e-9·diag keeps the inverse finite; the affected variances come out
    // huge, which is the honest answer.
    let fisher = normal_matrix(&jp);
    let top = (0..k)
        .map(|i| fisher[i][i].abs())
        .fold(0.0, f64::max)
        .max(1e-300);
    let inverse = dense::inverse(&fisher).or_else(|| {
        [1e-9, 1e-6].iter().find_map(|&eps| {
            let mut ridged = fisher.clone();
            for (i, row) in ridged.iter_mut().enumerate() {
                row[i] += eps * top;
            }
            dense::inverse(&ridged)
        })
    })?;
    let covariance: Vec<Vec<f64>> = inverse
        .into_iter()
        .map(|row| row.into_iter().map(|v| v * scale).collect())
        .collect();
    let param_sd: Vec<f64> = (0..k).map(|i| covariance[i][i].max(0.0).sqrt()).collect();
    let g = model.tia_gradient(&params);
    let var: f64 = (0..k)
        .map(|a| (0..k).map(|b| g[a] * covariance[a][b] * g[b]).sum::<f64>())
        .sum();
    let tia = model.tia(&params);
    if !(tia.is_finite() && tia > 0.0) {
        return None;
    }
    let aicc = (n >= k + 2).then(|| {
        let nf = n as f64;
        let kf = k as f64;
        nf * (chi2.max(1e-300) / nf).ln() + 2.0 * kf + 2.0 * kf * (kf + 1.0) / (nf - kf - 1.0)
    });
    Some(Fit {
        model,
        residuals: residuals(model, &params, d),
        params,
        param_sd,
        covariance,
        chi2,
        aicc,
        tia_mbq_h: tia,
        tia_sd_mbq_h: var.max(0.0).sqrt(),
    })
}

/// Fits every parametric model the number of points supports for AICc (n ≥ k + 2) and returns
/// them sorted by AICc, best first.
pub fn fit_auto(d: &TacData) -> Vec<Fit> {
    let mut fits: Vec<Fit> = Model::PARAMETRIC
        .iter()
        .filter(|m| d.times_h.len() >= m.parameter_count() + 2)
        .filter_map(|&m| fit_model(m, d))
        .filter(|f| f.aicc.is_some())
        .collect();
    fits.sort_by(|a, b| {
        a.aicc
            .unwrap_or(f64::INFINITY)
            .total_cmp(&b.aicc.unwrap_or(f64::INFINITY))
    });
    fits
}

/// Whether the data show an uptake phase: some later activity exceeds the first by more than
/// twice their combined standard deviation. A model without an uptake term (mono- or
/// bi-exponential from injection) cannot describe such a rise.
pub fn uptake_observed(d: &TacData) -> bool {
    let (Some(&a0), Some(&s0)) = (d.activity_mbq.first(), d.sigma_mbq.first()) else {
        return false;
    };
    d.activity_mbq
        .iter()
        .zip(&d.sigma_mbq)
        .skip(1)
        .any(|(&a, &s)| a - a0 > 2.0 * (s * s + s0 * s0).sqrt())
}

/// The fit to use when [`uptake_observed`]: the best AICc model with an uptake phase, or, when
/// there are too few points for AICc to judge one (n = k + 1), the uptake-washout model fitted
/// anyway. `None` when no uptake model converges.
pub fn fit_with_uptake(d: &TacData, aicc_ranked: &[Fit]) -> Option<Fit> {
    aicc_ranked
        .iter()
        .find(|f| f.model.has_uptake())
        .cloned()
        .or_else(|| fit_model(Model::UptakeWashout, d))
}
