//! The image-free dosimetry input, `mrtdose.tacs.v1` (design brief §5), with validation that
//! names the organ and the field at fault.

use serde::Deserialize;

use crate::tac::Model;

/// Schema tag.
pub const SCHEMA: &str = "mrtdose.tacs.v1";

/// Requested fit model of an organ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FitChoice {
    /// Choose by AICc (single-time-point method for one point).
    #[default]
    Auto,
    /// Mono-exponential.
    MonoExponential,
    /// Uptake-washout.
    UptakeWashout,
    /// Bi-exponential.
    BiExponential,
    /// Tri-exponential.
    TriExponential,
    /// Trapezoid with physical-decay tail.
    Trapezoid,
    /// Hänscheid single time point.
    Hanscheid,
    /// Madsen single time point with population effective half-life.
    Madsen,
}

impl FitChoice {
    /// The parametric or trapezoid model, if this choice names one.
    pub fn model(self) -> Option<Model> {
        match self {
            FitChoice::MonoExponential => Some(Model::MonoExponential),
            FitChoice::UptakeWashout => Some(Model::UptakeWashout),
            FitChoice::BiExponential => Some(Model::BiExponential),
            FitChoice::TriExponential => Some(Model::TriExponential),
            FitChoice::Trapezoid => Some(Model::Trapezoid),
            _ => None,
        }
    }
}

/// One organ's TAC.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrganInput {
    /// Organ name (liver, kidney_left, kidney_right, spleen).
    pub name: String,
    /// Patient organ mass (g).
    pub mass_g: f64,
    /// Hours after injection.
    pub times_h: Vec<f64>,
    /// Activity at each time (MBq, at acquisition time, not decay corrected).
    #[serde(rename = "activity_MBq")]
    pub activity_mbq: Vec<f64>,
    /// Fit model.
    #[serde(default)]
    pub fit_model: FitChoice,
    /// Random uncertainty of each activity (%, default 10): the fit weights.
    pub activity_uncertainty_percent: Option<f64>,
    /// Uncertainty of the organ mass (%), if known.
    pub mass_uncertainty_percent: Option<f64>,
    /// Uncertainty of the partial-volume recovery coefficient (%), if the activities were
    /// recovery corrected; systematic across time points.
    #[serde(default)]
    pub recovery_uncertainty_percent: Option<f64>,
    /// Doses of earlier cycles of this patient for this organ, for cumulative totals.
    #[serde(default)]
    pub previous_cycles: Vec<PreviousCycle>,
}

/// A previous therapy cycle's result for one organ.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousCycle {
    /// Absorbed dose (Gy).
    #[serde(rename = "absorbed_dose_Gy")]
    pub absorbed_dose_gy: f64,
    /// BED (Gy); for kidneys.
    #[serde(rename = "bed_Gy")]
    pub bed_gy: Option<f64>,
}

/// The whole input.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TacsInput {
    /// Must be `mrtdose.tacs.v1`.
    pub schema: String,
    /// Must be `Lu-177` (the only radionuclide with reference data so far).
    pub radionuclide: String,
    /// Injected activity (MBq); required (Gy/GBq needs it, and it is never invented).
    #[serde(rename = "injected_activity_MBq")]
    pub injected_activity_mbq: Option<f64>,
    /// Reference phantom: `ICRP110_AM` or `ICRP110_AF`.
    pub phantom: String,
    /// Calibration uncertainty (%), fully correlated across time points.
    pub calibration_uncertainty_percent: Option<f64>,
    /// Organs.
    pub organs: Vec<OrganInput>,
}

/// What is wrong with an input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    /// Not valid JSON / wrong shape.
    #[error("not a valid mrtdose.tacs.v1 document: {0}")]
    Json(String),
    /// A top-level field.
    #[error("{field}: {problem}")]
    Field {
        /// Field name.
        field: &'static str,
        /// Problem.
        problem: String,
    },
    /// A field of one organ.
    #[error("organ {organ:?}: {field}: {problem}")]
    Organ {
        /// Organ name (or index).
        organ: String,
        /// Field name.
        field: &'static str,
        /// Problem.
        problem: String,
    },
}

fn organ_err(organ: &str, field: &'static str, problem: impl Into<String>) -> InputError {
    InputError::Organ {
        organ: organ.to_string(),
        field,
        problem: problem.into(),
    }
}

impl TacsInput {
    /// Parses and validates.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let input: TacsInput =
            serde_json::from_str(text).map_err(|e| InputError::Json(e.to_string()))?;
        input.validate()?;
        Ok(input)
    }

    /// Checks every rule; the first violation is returned.
    pub fn validate(&self) -> Result<(), InputError> {
        if self.schema != SCHEMA {
            return Err(InputError::Field {
                field: "schema",
                problem: format!("{:?}, expected {SCHEMA:?}", self.schema),
            });
        }
        let nuclide = self
            .radionuclide
            .replace(['-', ' '], "")
            .to_ascii_lowercase();
        if nuclide != "lu177" && nuclide != "177lu" {
            return Err(InputError::Field {
                field: "radionuclide",
                problem: format!(
                    "{:?} unknown: only Lu-177 has decay data and S-values here",
                    self.radionuclide
                ),
            });
        }
        // Absent is allowed (absolute doses need only the quantitative SPECT; Gy/GBq is then not
        // given); present must be a real activity. It is never assumed.
        match self.injected_activity_mbq {
            None => {}
            Some(a) if !(a.is_finite() && a > 0.0) => {
                return Err(InputError::Field {
                    field: "injected_activity_MBq",
                    problem: format!("{a} is not a positive activity"),
                })
            }
            _ => {}
        }
        if mrt_reference::Sex::from_phantom_name(&self.phantom).is_none() {
            return Err(InputError::Field {
                field: "phantom",
                problem: format!("{:?}: expected ICRP110_AM or ICRP110_AF", self.phantom),
            });
        }
        for (name, v) in [(
            "calibration_uncertainty_percent",
            self.calibration_uncertainty_percent,
        )] {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(InputError::Field {
                        field: name,
                        problem: format!("{v} must be ≥ 0"),
                    });
                }
            }
        }
        if self.organs.is_empty() {
            return Err(InputError::Field {
                field: "organs",
                problem: "empty".into(),
            });
        }
        for (i, o) in self.organs.iter().enumerate() {
            if self.organs[..i].iter().any(|p| p.name == o.name) {
                return Err(organ_err(&o.name, "name", "listed twice"));
            }
            o.validate()?;
        }
        Ok(())
    }
}

impl OrganInput {
    /// Checks this organ's rules (those of [`TacsInput::validate`] that concern one organ).
    pub fn validate(&self) -> Result<(), InputError> {
        let n = &self.name;
        if !mrt_reference::ORGANS.contains(&n.as_str()) {
            return Err(organ_err(
                n,
                "name",
                format!(
                    "unknown organ; S-values exist for {}",
                    mrt_reference::ORGANS.join(", ")
                ),
            ));
        }
        if !(self.mass_g.is_finite() && self.mass_g > 0.0) {
            return Err(organ_err(
                n,
                "mass_g",
                format!("{} is not a positive mass", self.mass_g),
            ));
        }
        if self.times_h.is_empty() {
            return Err(organ_err(n, "times_h", "no time points"));
        }
        if self.times_h.len() != self.activity_mbq.len() {
            return Err(organ_err(
                n,
                "activity_MBq",
                format!(
                    "{} values for {} time points",
                    self.activity_mbq.len(),
                    self.times_h.len()
                ),
            ));
        }
        if let Some(t) = self.times_h.iter().find(|t| !(t.is_finite() && **t > 0.0)) {
            return Err(organ_err(
                n,
                "times_h",
                format!("{t} h: times must be > 0 h after injection"),
            ));
        }
        if self.times_h.windows(2).any(|w| w[1] <= w[0]) {
            return Err(organ_err(n, "times_h", "not strictly increasing"));
        }
        if let Some(a) = self
            .activity_mbq
            .iter()
            .find(|a| !(a.is_finite() && **a >= 0.0))
        {
            return Err(organ_err(
                n,
                "activity_MBq",
                format!("{a} is not a valid activity (≥ 0)"),
            ));
        }
        if self.activity_mbq.iter().all(|&a| a == 0.0) {
            return Err(organ_err(n, "activity_MBq", "all zero"));
        }
        for (field, v) in [
            (
                "activity_uncertainty_percent",
                self.activity_uncertainty_percent,
            ),
            ("mass_uncertainty_percent", self.mass_uncertainty_percent),
            (
                "recovery_uncertainty_percent",
                self.recovery_uncertainty_percent,
            ),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(organ_err(n, field, format!("{v} must be > 0")));
                }
            }
        }
        let k = self.times_h.len();
        match self.fit_model {
            FitChoice::Hanscheid | FitChoice::Madsen if k != 1 => {
                return Err(organ_err(
                    n,
                    "fit_model",
                    format!("single-time-point method with {k} time points"),
                ))
            }
            FitChoice::Madsen if crate::stp::population_t_eff_h(n).is_none() => {
                return Err(organ_err(
                    n,
                    "fit_model",
                    "no population effective half-life for this organ",
                ))
            }
            c => {
                if let Some(m) = c.model() {
                    let need = m.parameter_count().max(2);
                    if k < need {
                        return Err(organ_err(
                            n,
                            "fit_model",
                            format!("{m:?} needs at least {need} time points, {k} given"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
