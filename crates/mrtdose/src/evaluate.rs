//! `mrtdose evaluate`: a run's report and label maps against a phantom's independent truth.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use mrt_io::nifti_io::read_nifti;
use serde::Serialize;
use serde_json::Value;

use crate::cli::EvaluateArgs;
use crate::fmt_opt as f;

const ORGANS: [(u8, &str); 4] = [
    (1, "liver"),
    (2, "kidney_left"),
    (3, "kidney_right"),
    (4, "spleen"),
];

/// One organ's comparison.
#[derive(Debug, Serialize, Default)]
pub struct OrganEvaluation {
    /// Dice per time point (None when either map is missing).
    pub dice: Vec<Option<f64>>,
    /// Activity error per time point (%).
    pub activity_error_percent: Vec<Option<f64>>,
    /// TIA error (%).
    pub tia_error_percent: Option<f64>,
    /// Mean absorbed dose error (%).
    pub dose_error_percent: Option<f64>,
    /// True and reported dose (Gy).
    #[serde(rename = "dose_Gy")]
    pub dose_gy: (Option<f64>, Option<f64>),
}

/// `mrtdose.evaluation.v1`.
#[derive(Debug, Serialize)]
pub struct Evaluation {
    /// Schema.
    pub schema: &'static str,
    /// Phantom seed.
    pub seed: Option<u64>,
    /// Hours of the truth's time points.
    pub times_h: Vec<f64>,
    /// Per organ.
    pub organs: BTreeMap<String, OrganEvaluation>,
    /// Whether the run asked for review.
    pub needs_review: Option<bool>,
}

fn dice(a: &[f32], b: &[f32], label: f32) -> Option<f64> {
    let (mut both, mut na, mut nb) = (0usize, 0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        let (p, q) = (x.round() == label, y.round() == label);
        both += usize::from(p && q);
        na += usize::from(p);
        nb += usize::from(q);
    }
    (na + nb > 0).then(|| 2.0 * both as f64 / (na + nb) as f64)
}

fn pct(ours: Option<f64>, truth: Option<f64>) -> Option<f64> {
    match (ours, truth) {
        (Some(o), Some(t)) if t != 0.0 && o.is_finite() => Some(100.0 * (o / t - 1.0)),
        _ => None,
    }
}

/// Compares `report_path` (and its label maps) with `truth_dir`.
pub fn evaluate(truth_dir: &Path, report_path: &Path) -> anyhow::Result<Evaluation> {
    let read = |p: &Path| -> anyhow::Result<Value> {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))
    };
    let truth = read(&truth_dir.join("truth.json"))?;
    let report = read(report_path)?;
    if report.get("schema").and_then(Value::as_str) != Some("mrtdose.report.v1") {
        bail!("{}: not a mrtdose.report.v1 file", report_path.display());
    }
    let times: Vec<f64> = truth["timepoints"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["hours_post_injection"].as_f64())
                .collect()
        })
        .unwrap_or_default();
    let report_times: Vec<f64> = report["times_h"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let run_dir = report_path.parent().unwrap_or(Path::new("."));
    let mut organs: BTreeMap<String, OrganEvaluation> = BTreeMap::new();
    for (n, t) in times.iter().enumerate() {
        let truth_labels = read_nifti(&truth_dir.join(format!("tp{}_labels.nii.gz", n + 1))).ok();
        let ours = read_nifti(&run_dir.join(format!("labels_tp{}.nii.gz", n + 1))).ok();
        let r_index = report_times.iter().position(|x| (x - t).abs() < 0.05);
        for (label, name) in ORGANS {
            let e = organs.entry(name.into()).or_default();
            let d = match (&truth_labels, &ours) {
                (Some(a), Some(b)) if a.volume.grid().same_geometry(b.volume.grid(), 1e-3) => {
                    dice(a.volume.data(), b.volume.data(), f32::from(label))
                }
                _ => None,
            };
            e.dice.push(d);
            let truth_a = truth["organs"][name]["activity_MBq"][n].as_f64();
            let ours_a = r_index.and_then(|i| report["organs"][name]["activity_MBq"][i].as_f64());
            e.activity_error_percent.push(pct(ours_a, truth_a));
        }
    }
    for (_, name) in ORGANS {
        let e = organs.entry(name.into()).or_default();
        let t = &truth["organs"][name];
        let r = &report["organs"][name];
        e.tia_error_percent = pct(r["tia_MBq_h"].as_f64(), t["tia_MBq_h"].as_f64());
        e.dose_error_percent = pct(
            r["absorbed_dose_Gy"].as_f64(),
            t["absorbed_dose_Gy"].as_f64(),
        );
        e.dose_gy = (
            t["absorbed_dose_Gy"].as_f64(),
            r["absorbed_dose_Gy"].as_f64(),
        );
    }
    Ok(Evaluation {
        schema: "mrtdose.evaluation.v1",
        seed: truth["seed"].as_u64(),
        times_h: times,
        organs,
        needs_review: report["qa"]["needs_review"].as_bool(),
    })
}

/// Runs the command.
pub fn run(args: &EvaluateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let e = evaluate(&args.truth, &args.report)?;
    writeln!(
        out,
        "{:<13} {:>28} {:>30} {:>7} {:>8} {:>8} {:>8}",
        "organ",
        "Dice per time point",
        "activity error % per tp",
        "TIA %",
        "true Gy",
        "ours Gy",
        "dose %"
    )?;
    for (name, o) in &e.organs {
        let d: Vec<String> = o.dice.iter().map(|x| f(*x, 3)).collect();
        let a: Vec<String> = o.activity_error_percent.iter().map(|x| f(*x, 1)).collect();
        writeln!(
            out,
            "{name:<13} {:>28} {:>30} {:>7} {:>8} {:>8} {:>8}",
            d.join(" "),
            a.join(" "),
            f(o.tia_error_percent, 1),
            f(o.dose_gy.0, 3),
            f(o.dose_gy.1, 3),
            f(o.dose_error_percent, 1)
        )?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&e)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
