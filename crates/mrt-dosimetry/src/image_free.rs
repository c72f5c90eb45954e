//! Image-free dosimetry: organ TACs and masses (`mrtdose.tacs.v1`) → fits, TIA, absorbed dose,
//! BED and uncertainty (`mrtdose.dosimetry.v1`). One organ's failure is reported in its entry and
//! does not stop the others.

use std::collections::BTreeMap;

use mrt_reference::Sex;
use serde::Serialize;

use crate::bed::{self, Cumulative};
use crate::fit::{fit_auto, fit_model, fit_with_uptake, uptake_observed, Fit, TacData};
use crate::input::{FitChoice, OrganInput, TacsInput};
use crate::organ_dose::self_dose_gy;
use crate::stp;
use crate::tac::{trapezoid_tia, Model};

/// Schema tag of the result.
pub const SCHEMA: &str = "mrtdose.dosimetry.v1";

/// Default random uncertainty of an activity when the input gives none (fraction).
pub const DEFAULT_ACTIVITY_CV: f64 = 0.10;

/// A candidate model considered by AICc.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Model.
    pub model: Model,
    /// Its AICc.
    pub aicc: Option<f64>,
    /// Its TIA (MBq·h).
    #[serde(rename = "tia_MBq_h")]
    pub tia_mbq_h: f64,
}

/// How the TIA was obtained.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    /// Model (for parametric fits and the trapezoid) or single-time-point method.
    pub model: String,
    /// Why this model: `aicc`, `uptake_observed`, `forced`, `only_model_supported`,
    /// `single_time_point`.
    pub selection: &'static str,
    /// Parameters by name.
    pub params: BTreeMap<String, f64>,
    /// Parameter standard deviations by name.
    pub param_sd: BTreeMap<String, f64>,
    /// Weighted χ².
    pub chi2: Option<f64>,
    /// AICc.
    pub aicc: Option<f64>,
    /// All models compared.
    pub candidates: Vec<Candidate>,
    /// Effective half-life of the dominant (slowest) component or the assumed one (h).
    pub t_eff_h: Option<f64>,
}

/// Result of one organ.
#[derive(Debug, Clone, Serialize, Default)]
pub struct OrganResult {
    /// Mass (g).
    pub mass_g: f64,
    /// Input times (h).
    pub times_h: Vec<f64>,
    /// Input activities (MBq).
    #[serde(rename = "activity_MBq")]
    pub activity_mbq: Vec<f64>,
    /// The fit.
    pub fit: Option<FitReport>,
    /// TIA (MBq·h).
    #[serde(rename = "tia_MBq_h")]
    pub tia_mbq_h: Option<f64>,
    /// Relative uncertainty of the TIA (%).
    pub tia_uncertainty_percent: Option<f64>,
    /// Absorbed dose (Gy).
    #[serde(rename = "absorbed_dose_Gy")]
    pub absorbed_dose_gy: Option<f64>,
    /// Absorbed dose per injected activity (Gy/GBq).
    #[serde(rename = "absorbed_dose_Gy_per_GBq")]
    pub absorbed_dose_gy_per_gbq: Option<f64>,
    /// Combined relative uncertainty of the dose (%, 1 SD).
    pub uncertainty_percent: Option<f64>,
    /// Its components (%).
    pub uncertainty_components_percent: BTreeMap<&'static str, f64>,
    /// S-value used (mGy/(MBq·s)).
    #[serde(rename = "s_value_mGy_per_MBq_s")]
    pub s_value: Option<f64>,
    /// Reference phantom organ mass (g).
    pub reference_mass_g: Option<f64>,
    /// BED (Gy), kidneys.
    #[serde(rename = "bed_Gy")]
    pub bed_gy: Option<f64>,
    /// Totals over this and earlier cycles.
    pub cumulative: Option<Cumulative>,
    /// Notes for the physicist.
    pub notes: Vec<String>,
    /// Why nothing could be computed.
    pub error: Option<String>,
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct DosimetryResult {
    /// `mrtdose.dosimetry.v1`.
    pub schema: &'static str,
    /// Radionuclide.
    pub radionuclide: &'static str,
    /// Injected activity (MBq).
    #[serde(rename = "injected_activity_MBq")]
    pub injected_activity_mbq: Option<f64>,
    /// Reference phantom.
    pub phantom: &'static str,
    /// Physical half-life used (h).
    pub physical_half_life_h: f64,
    /// Per organ.
    pub organs: BTreeMap<String, OrganResult>,
    /// Warnings.
    pub warnings: Vec<String>,
}

fn named(model: Model, values: &[f64]) -> BTreeMap<String, f64> {
    model
        .parameter_names()
        .iter()
        .zip(values)
        .map(|(n, v)| (n.to_string(), *v))
        .collect()
}

/// Slowest effective rate of a parametric fit (1/h).
fn slowest_lambda(f: &Fit) -> f64 {
    match f.model {
        Model::MonoExponential => f.params[1],
        Model::UptakeWashout => f.params[1],
        Model::BiExponential | Model::TriExponential => f.params[3],
        Model::Trapezoid => f64::NAN,
    }
}

fn report_of(f: &Fit, selection: &'static str, candidates: Vec<Candidate>) -> FitReport {
    FitReport {
        model: serde_json::to_value(f.model)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        selection,
        params: named(f.model, &f.params),
        param_sd: named(f.model, &f.param_sd),
        chi2: Some(f.chi2),
        aicc: f.aicc,
        candidates,
        t_eff_h: Some(std::f64::consts::LN_2 / slowest_lambda(f)),
    }
}

/// A compared fit as the report lists it.
fn candidate_of(f: &Fit) -> Candidate {
    Candidate {
        model: f.model,
        aicc: f.aicc,
        tia_mbq_h: f.tia_mbq_h,
    }
}

/// A parametric fit's outcome: TIA, its relative SD, the report, the dose-rate shape and the
/// uncertainty component's key.
fn fit_outcome(
    f: Fit,
    selection: &'static str,
    candidates: Vec<Candidate>,
) -> (f64, f64, FitReport, Shape, &'static str) {
    (
        f.tia_mbq_h,
        f.tia_sd_mbq_h / f.tia_mbq_h,
        report_of(&f, selection, candidates),
        Shape::Fit(f),
        "fit",
    )
}

/// Dose-rate shape for the Lea–Catcheside integral.
enum Shape {
    Fit(Fit),
    Mono(f64),
    Points(Vec<f64>, Vec<f64>, f64),
}

impl Shape {
    fn rate(&self, t: f64) -> f64 {
        match self {
            Shape::Fit(f) => f.model.activity(&f.params, t).max(0.0),
            Shape::Mono(l) => (-l * t).exp(),
            Shape::Points(ts, a, lp) => {
                if t <= ts[0] {
                    a[0] * t / ts[0]
                } else if let Some(i) = ts.windows(2).position(|w| t <= w[1]) {
                    let w = (t - ts[i]) / (ts[i + 1] - ts[i]);
                    a[i] * (1.0 - w) + a[i + 1] * w
                } else {
                    a[a.len() - 1] * (-lp * (t - ts[ts.len() - 1])).exp()
                }
            }
        }
    }
}

/// Computes the result of one organ.
fn organ(
    o: &OrganInput,
    sex: Sex,
    injected_mbq: Option<f64>,
    lambda_phys: f64,
    cal_u: Option<f64>,
) -> OrganResult {
    let mut r = OrganResult {
        mass_g: o.mass_g,
        times_h: o.times_h.clone(),
        activity_mbq: o.activity_mbq.clone(),
        ..Default::default()
    };
    let cv = o
        .activity_uncertainty_percent
        .map(|p| p / 100.0)
        .unwrap_or(DEFAULT_ACTIVITY_CV);
    if o.activity_uncertainty_percent.is_none() {
        r.notes.push(format!(
            "activity uncertainty not given: {:.0} % assumed for the fit weights",
            DEFAULT_ACTIVITY_CV * 100.0
        ));
    }
    let data =
        TacData::with_relative_error(o.times_h.clone(), o.activity_mbq.clone(), cv, lambda_phys);
    let n = o.times_h.len();
    // (tia, relative fit/method uncertainty, report, shape, component key)
    let outcome: Result<(f64, f64, FitReport, Shape, &'static str), String> = match (o.fit_model, n)
    {
        (FitChoice::Hanscheid, _) | (FitChoice::Auto, 1)
            if stp::population_t_eff_h(&o.name).is_none()
                || o.fit_model == FitChoice::Hanscheid =>
        {
            let s = stp::hanscheid(o.times_h[0], o.activity_mbq[0]);
            Ok((
                s.tia_mbq_h,
                (s.method_uncertainty.powi(2) + cv * cv).sqrt(),
                stp_report(&s),
                Shape::Mono(std::f64::consts::LN_2 / s.t_eff_h),
                "single_time_point",
            ))
        }
        (FitChoice::Madsen, _) | (FitChoice::Auto, 1) => {
            let (t_eff, sd) = stp::population_t_eff_h(&o.name).unwrap_or((67.0, 0.25));
            let s = stp::madsen(o.times_h[0], o.activity_mbq[0], t_eff, sd);
            r.notes.push(format!(
                "single time point: Madsen with population T_eff {t_eff} h (log-SD {sd})"
            ));
            Ok((
                s.tia_mbq_h,
                (s.method_uncertainty.powi(2) + cv * cv).sqrt(),
                stp_report(&s),
                Shape::Mono(std::f64::consts::LN_2 / t_eff),
                "single_time_point",
            ))
        }
        (FitChoice::Trapezoid, _) => {
            let (tia, tail) = trapezoid_tia(&o.times_h, &o.activity_mbq, lambda_phys);
            // Linear propagation of independent activity errors through the trapezoid weights.
            let mut w = vec![0.0; n];
            w[0] += 0.5 * o.times_h[0];
            for i in 1..n {
                let dt = o.times_h[i] - o.times_h[i - 1];
                w[i - 1] += 0.5 * dt;
                w[i] += 0.5 * dt;
            }
            w[n - 1] += 1.0 / lambda_phys;
            let var: f64 = w
                .iter()
                .zip(&data.sigma_mbq)
                .map(|(w, s)| (w * s).powi(2))
                .sum();
            r.notes.push(format!(
                "trapezoid: physical-decay tail holds {:.0} % of the TIA",
                tail * 100.0
            ));
            let report = FitReport {
                model: "trapezoid".into(),
                selection: "forced",
                params: BTreeMap::new(),
                param_sd: BTreeMap::new(),
                chi2: None,
                aicc: None,
                candidates: Vec::new(),
                t_eff_h: None,
            };
            Ok((
                tia,
                var.sqrt() / tia,
                report,
                Shape::Points(o.times_h.clone(), o.activity_mbq.clone(), lambda_phys),
                "fit",
            ))
        }
        (FitChoice::Auto, _) => {
            let fits = fit_auto(&data);
            let with_uptake = uptake_observed(&data)
                .then(|| fit_with_uptake(&data, &fits))
                .flatten();
            if let Some(f) = with_uptake {
                let peak = o
                    .activity_mbq
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max);
                r.notes.push(format!(
                    "activity rises after the first time point ({:.1} → {:.1} MBq, beyond twice its uncertainty): a model with an uptake phase is used, not one that starts at its maximum at injection{}",
                    o.activity_mbq[0],
                    peak,
                    if f.aicc.is_none() {
                        " (too few time points for AICc to compare it)"
                    } else {
                        ""
                    }
                ));
                let candidates = std::iter::once(&f)
                    .chain(fits.iter().filter(|g| g.model != f.model))
                    .map(candidate_of)
                    .collect();
                Ok(fit_outcome(f, "uptake_observed", candidates))
            } else if let Some(best) = fits.first().cloned() {
                let candidates = fits.iter().map(candidate_of).collect();
                Ok(fit_outcome(best, "aicc", candidates))
            } else {
                match fit_model(Model::MonoExponential, &data) {
                    Some(f) => {
                        r.notes.push(format!("{n} time points: too few for AICc model selection (needs k + 2); mono-exponential used"));
                        Ok(fit_outcome(f, "only_model_supported", Vec::new()))
                    }
                    None => Err("mono-exponential fit failed".to_string()),
                }
            }
        }
        (choice, _) => {
            let model = choice.model().expect("parametric choices name a model");
            match fit_model(model, &data) {
                Some(f) => Ok(fit_outcome(f, "forced", Vec::new())),
                None => Err(format!("{model:?} fit failed (singular or non-physical)")),
            }
        }
    };
    let (tia, u_fit, report, shape, key) = match outcome {
        Ok(v) => v,
        Err(e) => {
            r.error = Some(e);
            return r;
        }
    };
    r.fit = Some(report);
    r.tia_mbq_h = Some(tia);
    r.uncertainty_components_percent.insert(key, 100.0 * u_fit);
    let mut u_tia2 = u_fit * u_fit;
    match cal_u {
        Some(c) => {
            r.uncertainty_components_percent
                .insert("calibration", c * 100.0);
            u_tia2 += c * c;
        }
        None => r
            .notes
            .push("calibration uncertainty not given: not included".into()),
    }
    if let Some(rc) = o.recovery_uncertainty_percent {
        r.uncertainty_components_percent.insert("recovery", rc);
        u_tia2 += (rc / 100.0).powi(2);
    }
    r.tia_uncertainty_percent = Some(100.0 * u_tia2.sqrt());
    let Some((dose, s, m_ref)) = self_dose_gy(sex, &o.name, tia, o.mass_g) else {
        r.error = Some(format!("no S-value for {}", o.name));
        return r;
    };
    let mut u_d2 = u_tia2;
    match o.mass_uncertainty_percent {
        Some(m) => {
            r.uncertainty_components_percent.insert("mass", m);
            u_d2 += (m / 100.0).powi(2);
        }
        None => r
            .notes
            .push("mass uncertainty not given: not included".into()),
    }
    r.absorbed_dose_gy = Some(dose);
    r.absorbed_dose_gy_per_gbq = injected_mbq.map(|a| dose / (a / 1000.0));
    r.uncertainty_percent = Some(100.0 * u_d2.sqrt());
    r.s_value = Some(s);
    r.reference_mass_g = Some(m_ref);
    let kidney = o.name.starts_with("kidney");
    let bed_gy = kidney.then(|| {
        let t_end = 40.0 * std::f64::consts::LN_2 / lambda_phys;
        let g = bed::lea_catcheside_g(
            &|t| shape.rate(t),
            bed::KIDNEY_REPAIR_HALF_TIME_H,
            t_end,
            0.02,
        );
        bed::bed(dose, g, bed::KIDNEY_ALPHA_BETA_GY)
    });
    r.bed_gy = bed_gy;
    if !o.previous_cycles.is_empty() {
        let mut c = Cumulative::default();
        for p in &o.previous_cycles {
            c = c.add(p.absorbed_dose_gy, p.bed_gy.unwrap_or(p.absorbed_dose_gy));
        }
        r.cumulative = Some(c.add(dose, bed_gy.unwrap_or(dose)));
        if !kidney {
            r.notes.push(
                "cumulative BED for non-kidney organs is reported as dose (no α/β given)".into(),
            );
        }
    }
    r
}

fn stp_report(s: &stp::SinglePoint) -> FitReport {
    FitReport {
        model: s.method.to_string(),
        selection: "single_time_point",
        params: BTreeMap::new(),
        param_sd: BTreeMap::new(),
        chi2: None,
        aicc: None,
        candidates: Vec::new(),
        t_eff_h: Some(s.t_eff_h),
    }
}

/// Runs image-free dosimetry on a validated input.
pub fn run(input: &TacsInput) -> DosimetryResult {
    let lu = mrt_reference::lu177();
    let sex = Sex::from_phantom_name(&input.phantom).expect("validated phantom");
    let injected = input.injected_activity_mbq;
    let cal = input.calibration_uncertainty_percent.map(|p| p / 100.0);
    let organs = input
        .organs
        .iter()
        .map(|o| {
            (
                o.name.clone(),
                organ(o, sex, injected, lu.lambda_per_h(), cal),
            )
        })
        .collect::<BTreeMap<_, _>>();
    let mut warnings: Vec<String> = organs
        .iter()
        .filter_map(|(n, r)| r.error.as_ref().map(|e| format!("{n}: {e}")))
        .collect();
    if injected.is_none() {
        warnings.push("no injected activity given: doses per GBq are not reported".into());
    }
    DosimetryResult {
        schema: SCHEMA,
        radionuclide: "Lu-177",
        injected_activity_mbq: injected,
        phantom: sex.phantom_name(),
        physical_half_life_h: lu.half_life_h,
        organs,
        warnings,
    }
}
