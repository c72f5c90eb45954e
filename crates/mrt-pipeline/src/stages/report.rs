//! Report: `report.json` (`mrtdose.report.v1`, the contract) and `report.html`, with the QA flags
//! that route a study to a human. Reads whatever earlier stages left: a study that stopped early
//! still gets a report saying what could not be computed and why.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ingest::StudyManifest;
use super::quantify::QuantArtifact;
use super::register::RegistrationArtifact;
use super::segment::SegmentationArtifact;
use super::{read_json, write_json, StageContext, StageError};
use crate::config::SiteConfig;
use crate::html::render_html;

/// Schema of report.json.
pub const SCHEMA: &str = "mrtdose.report.v1";

/// A QA flag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Flag {
    /// Stable code: `misalignment`, `organ_volume_change`, `poor_fit`, `activity_balance`,
    /// `missing_timepoints`, `segmentation`, `registration`, `phantom_assumed`, `not_computed`,
    /// `uptake_mismatch`, `boundary_moved`.
    pub code: String,
    /// What a reviewer should look at.
    pub message: String,
}

/// One organ in the report.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct OrganReport {
    /// Mass from the CT (g).
    pub mass_g: Option<f64>,
    /// Mask volume per time point (mL).
    #[serde(rename = "volume_mL")]
    pub volume_ml: Vec<Option<f64>>,
    /// Activity per time point (MBq).
    #[serde(rename = "activity_MBq")]
    pub activity_mbq: Vec<Option<f64>>,
    /// Fit: model, parameters, selection, χ², AICc (from the dosimetry engine).
    pub fit: Option<Value>,
    /// Time-integrated activity (MBq·h).
    #[serde(rename = "tia_MBq_h")]
    pub tia_mbq_h: Option<f64>,
    /// Mean absorbed dose (Gy).
    #[serde(rename = "absorbed_dose_Gy")]
    pub absorbed_dose_gy: Option<f64>,
    /// Per GBq injected.
    #[serde(rename = "absorbed_dose_Gy_per_GBq")]
    pub absorbed_dose_gy_per_gbq: Option<f64>,
    /// Combined standard uncertainty of the dose (%).
    pub uncertainty_percent: Option<f64>,
    /// Its components (%).
    pub uncertainty_components_percent: Option<Value>,
    /// Biologically effective dose (Gy), kidneys.
    #[serde(rename = "bed_Gy")]
    pub bed_gy: Option<f64>,
    /// From the voxel dose map: mean, D2, D50, D98 (Gy) and the cumulative DVH.
    pub dvh: Option<Value>,
    /// Engine notes.
    pub notes: Vec<String>,
}

/// One time point in the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimepointReport {
    /// 1-based.
    pub index: usize,
    /// Hours after injection.
    pub hours_post_injection: Option<f64>,
    /// Used for dosimetry.
    pub used: bool,
    /// SPECT↔CT correction (mm) and score, when computed.
    pub alignment: Option<Value>,
    /// CT registration to the reference, when computed.
    pub registration: Option<Value>,
    /// Problems.
    pub problems: Vec<String>,
}

/// `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// Pseudonymous study id.
    pub study_id: String,
    /// Radionuclide.
    pub radionuclide: String,
    /// Injected activity (MBq), as recorded.
    #[serde(rename = "injected_activity_MBq")]
    pub injected_activity_mbq: Option<f64>,
    /// Times of the time points used (h after injection).
    pub times_h: Vec<f64>,
    /// Reference phantom for S-values and why.
    pub phantom: Option<String>,
    /// Organs.
    pub organs: BTreeMap<String, OrganReport>,
    /// Time points.
    pub timepoints: Vec<TimepointReport>,
    /// QA.
    pub qa: Qa,
    /// Things worth knowing that are not QA failures.
    pub warnings: Vec<String>,
    /// What could not be computed, and why.
    pub not_computed: Vec<String>,
    /// Software, model, settings.
    pub provenance: Value,
}

/// QA block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Qa {
    /// True when any flag is raised.
    pub needs_review: bool,
    /// The flags.
    pub flags: Vec<Flag>,
}

fn optional<T: serde::de::DeserializeOwned>(
    path: &Path,
    not_computed: &mut Vec<String>,
    what: &str,
) -> Option<T> {
    if !path.exists() {
        not_computed.push(format!("{what}: its stage did not complete"));
        return None;
    }
    match read_json(path) {
        Ok(v) => Some(v),
        Err(e) => {
            not_computed.push(format!("{what}: {e}"));
            None
        }
    }
}

/// Runs the stage; `failure` is the reason an earlier stage gave up, if one did.
pub fn run(
    ctx: &StageContext,
    work: &Path,
    out: &Path,
    failure: Option<&str>,
) -> Result<Report, StageError> {
    let cfg = &ctx.config;
    let mut not_computed = Vec::new();
    if let Some(f) = failure {
        not_computed.push(format!("pipeline stopped: {f}"));
    }
    let study: Option<StudyManifest> = optional(
        &work.join("ingest/study.json"),
        &mut not_computed,
        "study assembly",
    );
    let reg: Option<RegistrationArtifact> = optional(
        &work.join("register/registration.json"),
        &mut not_computed,
        "CT registration",
    );
    let seg: Option<SegmentationArtifact> = optional(
        &work.join("segment/segmentation.json"),
        &mut not_computed,
        "segmentation",
    );
    let quant: Option<QuantArtifact> = optional(
        &work.join("quantify/quantification.json"),
        &mut not_computed,
        "quantification",
    );
    let dose: Option<Value> = optional(
        &work.join("dose/dosimetry.json"),
        &mut not_computed,
        "dosimetry",
    );
    let mut flags = Vec::new();
    let mut warnings = study
        .as_ref()
        .map(|s| s.warnings.clone())
        .unwrap_or_default();
    let flag = |flags: &mut Vec<Flag>, code: &str, message: String| {
        flags.push(Flag {
            code: code.into(),
            message,
        });
    };
    // Time points.
    let used: Vec<usize> = quant
        .as_ref()
        .map(|q| q.timepoints.iter().map(|t| t.index).collect())
        .unwrap_or_default();
    let mut timepoints = Vec::new();
    for t in study
        .as_ref()
        .map(|s| s.timepoints.clone())
        .unwrap_or_default()
    {
        let alignment = quant
            .as_ref()
            .and_then(|q| q.timepoints.iter().find(|x| x.index == t.index))
            .map(|x| serde_json::to_value(&x.alignment).unwrap_or(Value::Null));
        let registration = reg
            .as_ref()
            .and_then(|r| r.timepoints.iter().find(|x| x.index == t.index))
            .map(|x| serde_json::to_value(x).unwrap_or(Value::Null));
        if let Some(r) = reg
            .as_ref()
            .and_then(|r| r.timepoints.iter().find(|x| x.index == t.index))
        {
            if let Some(e) = &r.error {
                flag(
                    &mut flags,
                    "registration",
                    format!("time point {}: CT registration failed: {e}", t.index),
                );
            }
        }
        if !used.contains(&t.index) && !t.problems.is_empty() {
            not_computed.push(format!(
                "time point {} not used: {}",
                t.index,
                t.problems.join("; ")
            ));
        }
        timepoints.push(TimepointReport {
            index: t.index,
            hours_post_injection: t.hours_post_injection,
            used: used.contains(&t.index),
            alignment,
            registration,
            problems: t.problems,
        });
    }
    if let Some(q) = &quant {
        not_computed.extend(q.skipped.iter().cloned());
        for t in &q.timepoints {
            if t.alignment.needs_review {
                flag(
                    &mut flags,
                    "misalignment",
                    format!(
                        "time point {}: SPECT/CT correction {:.1} mm, score R² {:.2}: {}",
                        t.index,
                        t.alignment.correction_mm,
                        t.alignment.r2_after,
                        t.alignment.reasons.join("; ")
                    ),
                );
            }
            if let Some(l) = &t.liver_lesions {
                warnings.push(format!(
                    "time point {}: {} hot liver lesion(s), {:.1} mL, {} MBq, counted apart from the liver",
                    t.index,
                    l.count,
                    l.volume_ml,
                    l.activity_mbq.map_or("-".into(), |a| format!("{a:.1}"))
                ));
            }
            for (name, o) in &t.organs {
                if let Some(e) = o.excluded {
                    warnings.push(format!(
                        "time point {}: {name}: {:.1} mL colder and {:.1} mL hotter than the organ taken out of its mask \
                         (exclude_uptake_mismatch); its activity and mass are of the {:.1} mL left",
                        t.index, e.cold_ml, e.hot_ml, o.volume_ml
                    ));
                }
            }
            let organs_sum: f64 = t.organs.values().map(|o| o.activity_mbq).sum();
            if organs_sum > t.fov_activity_mbq * 1.02 {
                flag(&mut flags, "activity_balance", format!(
                    "time point {}: organs hold {organs_sum:.0} MBq, more than the {:.0} MBq in the whole field of view",
                    t.index, t.fov_activity_mbq));
            }
        }
        for b in q.boundaries.iter().filter(|b| b.offset_mm != 0.0) {
            let (into, from) = if b.offset_mm > 0.0 {
                (&b.organs[0], &b.organs[1])
            } else {
                (&b.organs[1], &b.organs[0])
            };
            let lowest = b
                .relative_residual
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            flag(&mut flags, "boundary_moved", format!(
                "{into}/{from}: the SPECT puts their shared boundary {:.0} mm further into the {into} mask than the CT segmentation does (residual of the SPECT fit {:.0} % lower over {} time points); the masks, masses and activities are of the moved boundary: check the segmentation there",
                b.offset_mm.abs(), (1.0 - lowest) * 100.0, b.timepoints.len()));
        }
        for name in super::quantify::ORGANS {
            let seen: Vec<String> = q
                .timepoints
                .iter()
                .filter_map(|t| {
                    let o = t.organs.get(name)?;
                    let r = o.residual?;
                    // The residual is of the mask before any exclusion.
                    let mask_ml = o.volume_ml + o.excluded.map_or(0.0, |e| e.cold_ml + e.hot_ml);
                    let share = r.cold_ml.max(r.hot_ml) / mask_ml * 100.0;
                    (share >= cfg.uptake_mismatch_min_percent).then(|| {
                        format!(
                            "time point {}: {:.0} mL colder, {:.0} mL hotter, of {:.0} mL",
                            t.index, r.cold_ml, r.hot_ml, mask_ml
                        )
                    })
                })
                .collect();
            if !seen.is_empty() {
                flag(&mut flags, "uptake_mismatch", format!(
                    "{name}: the SPECT departs from a uniform {name} by more than {:.0} % of its concentration \
                     over {:.0} % or more of the mask (tissue that may not be {name}: check the mask) - {}",
                    cfg.uptake_mismatch_fraction * 100.0, cfg.uptake_mismatch_min_percent, seen.join("; ")));
            }
        }
        if q.timepoints.len() < cfg.min_timepoints {
            flag(
                &mut flags,
                "missing_timepoints",
                format!(
                    "{} usable time points, fewer than the {} expected",
                    q.timepoints.len(),
                    cfg.min_timepoints
                ),
            );
        }
    }
    if let Some(s) = &seg {
        for t in &s.timepoints {
            if let Some(e) = &t.error {
                flag(
                    &mut flags,
                    "segmentation",
                    format!("time point {}: {e}", t.index),
                );
            }
            for o in &t.organs {
                if let Some(f) = &o.flag {
                    flag(
                        &mut flags,
                        "segmentation",
                        format!("time point {}: {f}", t.index),
                    );
                }
            }
        }
    }
    // Organs.
    let mut organs: BTreeMap<String, OrganReport> = BTreeMap::new();
    let result = dose.as_ref().and_then(|d| d.get("result")).cloned();
    if let Some(d) = &dose {
        if let Some(e) = d.get("error").and_then(Value::as_str) {
            not_computed.push(format!("organ dosimetry: {e}"));
        }
        if let Some(src) = d.get("phantom_source").and_then(Value::as_str) {
            if src.contains("assumed") {
                flag(
                    &mut flags,
                    "phantom_assumed",
                    format!("reference phantom: {src}"),
                );
            }
        }
    }
    if let Some(q) = &quant {
        for name in super::quantify::ORGANS {
            let volumes: Vec<Option<f64>> = q
                .timepoints
                .iter()
                // As segmented, before any tissue was taken out for its uptake.
                .map(|t| {
                    t.organs
                        .get(name)
                        .map(|o| o.volume_ml + o.excluded.map_or(0.0, |e| e.cold_ml + e.hot_ml))
                })
                .collect();
            let activities: Vec<Option<f64>> = q
                .timepoints
                .iter()
                .map(|t| t.organs.get(name).map(|o| o.activity_mbq))
                .collect();
            if volumes.iter().all(Option::is_none) {
                not_computed.push(format!("{name}: not found on any CT"));
                continue;
            }
            // Fused labels agree across time points by construction: the QA compares each
            // CT's own segmentation where fusion ran.
            let present: Vec<f64> = q
                .timepoints
                .iter()
                .zip(&volumes)
                .filter_map(|(t, v)| {
                    seg.as_ref()
                        .and_then(|s| s.timepoints.iter().find(|s| s.index == t.index))
                        .and_then(|s| s.unfused_volume_ml.get(name).copied())
                        .or(*v)
                })
                .collect();
            let (lo, hi) = present
                .iter()
                .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
            if lo > 0.0 && (hi / lo - 1.0) * 100.0 > cfg.organ_volume_tolerance_percent {
                flag(&mut flags, "organ_volume_change", format!(
                    "{name}: volume varies {lo:.0}-{hi:.0} mL across time points (tolerance {:.0} %)",
                    cfg.organ_volume_tolerance_percent));
            }
            let r = result
                .as_ref()
                .and_then(|r| r.get("organs"))
                .and_then(|o| o.get(name));
            let num = |k: &str| r.and_then(|r| r.get(k)).and_then(Value::as_f64);
            let fit = r
                .and_then(|r| r.get("fit"))
                .cloned()
                .filter(|f| !f.is_null());
            if let Some(f) = &fit {
                let chi2 = f.get("chi2").and_then(Value::as_f64);
                let k = f
                    .get("params")
                    .and_then(Value::as_object)
                    .map_or(0, |p| p.len());
                let dof = present.len().saturating_sub(k).max(1) as f64;
                if let Some(c) = chi2 {
                    if c / dof > 9.0 {
                        flag(&mut flags, "poor_fit", format!(
                            "{name}: fit residuals are {:.1}× the expected scatter (χ²/dof {:.1})", (c / dof).sqrt(), c / dof));
                    }
                }
                if f.get("selection").and_then(Value::as_str) == Some("single_time_point") {
                    flag(
                        &mut flags,
                        "poor_fit",
                        format!("{name}: single-time-point estimate only"),
                    );
                }
            }
            if let Some(e) = r.and_then(|r| r.get("error")).and_then(Value::as_str) {
                not_computed.push(format!("{name}: {e}"));
            }
            let dvh = dose
                .as_ref()
                .and_then(|d| d.get("voxel"))
                .and_then(|v| v.get("dvh"))
                .and_then(|d| d.get(name))
                .cloned();
            organs.insert(
                name.to_string(),
                OrganReport {
                    mass_g: q.masses.get(name).map(|m| m.mass_g),
                    volume_ml: volumes,
                    activity_mbq: activities,
                    fit,
                    tia_mbq_h: num("tia_MBq_h"),
                    absorbed_dose_gy: num("absorbed_dose_Gy"),
                    absorbed_dose_gy_per_gbq: num("absorbed_dose_Gy_per_GBq"),
                    uncertainty_percent: num("uncertainty_percent"),
                    uncertainty_components_percent: r
                        .and_then(|r| r.get("uncertainty_components_percent"))
                        .cloned(),
                    bed_gy: num("bed_Gy"),
                    dvh,
                    notes: r
                        .and_then(|r| r.get("notes"))
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|n| n.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                },
            );
        }
    }
    if let Some(r) = &result {
        if let Some(w) = r.get("warnings").and_then(Value::as_array) {
            warnings.extend(w.iter().filter_map(|x| x.as_str().map(String::from)));
        }
    }
    if failure.is_some() {
        flag(
            &mut flags,
            "not_computed",
            "the pipeline stopped before the end; see not_computed".into(),
        );
    }
    let report = Report {
        schema: SCHEMA.into(),
        study_id: study
            .as_ref()
            .map(|s| s.study_id.clone())
            .unwrap_or_else(|| "unknown".into()),
        radionuclide: study
            .as_ref()
            .and_then(|s| s.radionuclide.clone())
            .unwrap_or_else(|| "Lu-177".into()),
        injected_activity_mbq: study.as_ref().and_then(|s| s.injected_activity_mbq),
        times_h: quant
            .as_ref()
            .map(|q| {
                q.timepoints
                    .iter()
                    .map(|t| t.hours_post_injection)
                    .collect()
            })
            .unwrap_or_default(),
        phantom: dose
            .as_ref()
            .and_then(|d| d.get("phantom"))
            .and_then(Value::as_str)
            .map(String::from),
        organs,
        timepoints,
        qa: Qa {
            needs_review: !flags.is_empty(),
            flags,
        },
        warnings,
        not_computed,
        provenance: provenance(cfg, seg.as_ref(), quant.as_ref()),
    };
    write_json(&out.join("report.json"), &report)?;
    let html = render_html(&report, work);
    std::fs::write(out.join("report.html"), html).map_err(|e| StageError::File {
        path: out.join("report.html").display().to_string(),
        detail: e.to_string(),
    })?;
    Ok(report)
}

fn provenance(
    cfg: &SiteConfig,
    seg: Option<&SegmentationArtifact>,
    quant: Option<&QuantArtifact>,
) -> Value {
    serde_json::json!({
        "mrtdose_version": env!("CARGO_PKG_VERSION"),
        "segmentation_model": seg.map(|s| s.model.clone()),
        "segmentation_model_sha256": seg.map(|s| s.model_sha256.clone()),
        "execution_provider": seg.map(|s| s.provider.clone()),
        "quantification": quant.map(|q| q.method),
        "site_config": cfg,
    })
}
