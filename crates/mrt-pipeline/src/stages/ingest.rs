//! Ingest: a directory of DICOM files in any layout (or a NIfTI study with its manifest) → one
//! patient's time points as NIfTI volumes plus `study.json`. Series that cannot be read are
//! reported with the reason; the time points that can be used go on.

use std::path::Path;

use mrt_io::datetime::parse_dt;
use mrt_io::dicom::read_series;
use mrt_io::nifti_io::{read_nifti, write_nifti};
use mrt_io::study::scan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{io_err, write_json, StageError};

/// Schema of `ingest/study.json`.
pub const SCHEMA: &str = "mrtdose.study.v1";

/// One time point as ingested.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimepointEntry {
    /// 1-based, in order of time after injection.
    pub index: usize,
    /// Hours from injection to the SPECT acquisition start.
    pub hours_post_injection: Option<f64>,
    /// `tpN_ct.nii.gz` when the CT was read.
    pub ct: Option<String>,
    /// `tpN_spect.nii.gz` when the SPECT was read.
    pub spect: Option<String>,
    /// True when the SPECT is in Bq/mL.
    pub spect_quantitative: bool,
    /// What is missing or wrong for this time point.
    pub problems: Vec<String>,
}

/// `ingest/study.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudyManifest {
    /// [`SCHEMA`].
    pub schema: String,
    /// Pseudonymous id (hash of the series UIDs or of the NIfTI manifest).
    pub study_id: String,
    /// `dicom` or `nifti`.
    pub source: String,
    /// Radionuclide as recorded.
    pub radionuclide: Option<String>,
    /// Injected activity (MBq) as recorded; never defaulted.
    #[serde(rename = "injected_activity_MBq")]
    pub injected_activity_mbq: Option<f64>,
    /// Patient sex as recorded (`M`/`F`/`O`).
    pub patient_sex: Option<String>,
    /// Time points by hours after injection.
    pub timepoints: Vec<TimepointEntry>,
    /// Study-level warnings.
    pub warnings: Vec<String>,
    /// Files skipped by the scan (with reasons in the logs of `mrtdose inspect`).
    pub skipped_files: usize,
}

impl StudyManifest {
    /// Time points with a CT, a quantitative SPECT and a time.
    pub fn usable(&self) -> impl Iterator<Item = &TimepointEntry> {
        self.timepoints.iter().filter(|t| {
            t.ct.is_some()
                && t.spect.is_some()
                && t.spect_quantitative
                && t.hours_post_injection.is_some()
        })
    }
}

/// `Lu-177` for the DICOM code meanings scanners write (`^177^Lutetium`, `Lu-177`, `177Lu`);
/// anything else as recorded.
fn nuclide_name(recorded: &str) -> String {
    let lower = recorded.to_ascii_lowercase();
    if lower.contains("177") && lower.contains("lu") {
        "Lu-177".into()
    } else {
        recorded.trim().to_string()
    }
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let hex = format!("{:x}", h.finalize());
    format!("s{}", &hex[..12])
}

/// The manifest `mrtdose phantom --format nifti` writes (and a site can write for NIfTI studies).
#[derive(Debug, Deserialize)]
struct NiftiStudy {
    schema: String,
    radionuclide: Option<String>,
    #[serde(rename = "injected_activity_MBq")]
    injected_activity_mbq: Option<f64>,
    injection_datetime: Option<String>,
    patient_sex: Option<String>,
    timepoints: Vec<NiftiTimepoint>,
}

#[derive(Debug, Deserialize)]
struct NiftiTimepoint {
    acquisition_datetime: Option<String>,
    ct: Option<String>,
    spect: Option<String>,
    spect_units: Option<String>,
}

/// Runs ingest on `input`, writing volumes and `study.json` into `out`.
pub fn run(input: &Path, out: &Path) -> Result<StudyManifest, StageError> {
    let manifest_path = input.join("manifest.json");
    let m = if manifest_path.is_file() {
        from_nifti(input, &manifest_path, out)?
    } else {
        from_dicom(input, out)?
    };
    write_json(&out.join("study.json"), &m)?;
    Ok(m)
}

fn from_nifti(root: &Path, manifest_path: &Path, out: &Path) -> Result<StudyManifest, StageError> {
    let text = std::fs::read_to_string(manifest_path).map_err(|e| StageError::File {
        path: manifest_path.display().to_string(),
        detail: e.to_string(),
    })?;
    let study: NiftiStudy = serde_json::from_str(&text).map_err(|e| StageError::File {
        path: manifest_path.display().to_string(),
        detail: format!("not a NIfTI study manifest: {e}"),
    })?;
    if study.schema != "mrtdose.phantom-manifest.v1" && study.schema != "mrtdose.nifti-study.v1" {
        return Err(StageError::Input(format!(
            "{}: schema {:?} is not a NIfTI study manifest",
            manifest_path.display(),
            study.schema
        )));
    }
    let injection = study.injection_datetime.as_deref().and_then(parse_dt);
    let mut warnings = Vec::new();
    if injection.is_none() {
        warnings
            .push("no injection date/time in the manifest: times after injection unknown".into());
    }
    if study.injected_activity_mbq.is_none() {
        warnings.push("no injected activity in the manifest: doses per GBq cannot be given".into());
    }
    // (hours, entry, CT file, SPECT file) per manifest time point.
    type Pending = (Option<f64>, TimepointEntry, Option<String>, Option<String>);
    let mut tps: Vec<Pending> = Vec::new();
    for t in &study.timepoints {
        let hours = match (
            injection,
            t.acquisition_datetime.as_deref().and_then(parse_dt),
        ) {
            (Some(i), Some(a)) => Some(a.hours_since(i)),
            _ => None,
        };
        let mut problems = Vec::new();
        if hours.is_none() {
            problems.push("acquisition or injection time missing".into());
        }
        let quantitative = t
            .spect_units
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case("Bq/mL") || u.eq_ignore_ascii_case("BQML"));
        if t.spect.is_some() && !quantitative {
            problems.push(format!("SPECT units {:?} are not Bq/mL", t.spect_units));
        }
        tps.push((
            hours,
            TimepointEntry {
                index: 0,
                hours_post_injection: hours,
                ct: None,
                spect: None,
                spect_quantitative: quantitative,
                problems,
            },
            t.ct.clone(),
            t.spect.clone(),
        ));
    }
    tps.sort_by(|a, b| {
        a.0.unwrap_or(f64::INFINITY)
            .total_cmp(&b.0.unwrap_or(f64::INFINITY))
    });
    let mut timepoints = Vec::new();
    for (n, (_, mut entry, ct, spect)) in tps.into_iter().enumerate() {
        entry.index = n + 1;
        for (what, rel, slot) in [("CT", ct, 0), ("SPECT", spect, 1)] {
            let Some(rel) = rel else {
                entry.problems.push(format!("no {what}"));
                continue;
            };
            let path = root.join(&rel);
            match read_nifti(&path) {
                Ok(v) => {
                    let name = format!(
                        "tp{}_{}.nii.gz",
                        entry.index,
                        if slot == 0 { "ct" } else { "spect" }
                    );
                    write_nifti(&out.join(&name), &v.volume).map_err(io_err)?;
                    if slot == 0 {
                        entry.ct = Some(name);
                    } else {
                        entry.spect = Some(name);
                    }
                }
                Err(e) => entry.problems.push(format!("{what} unreadable: {e}")),
            }
        }
        timepoints.push(entry);
    }
    Ok(StudyManifest {
        schema: SCHEMA.into(),
        study_id: short_hash(&[&text]),
        source: "nifti".into(),
        radionuclide: study.radionuclide,
        injected_activity_mbq: study.injected_activity_mbq,
        patient_sex: study.patient_sex,
        timepoints,
        warnings,
        skipped_files: 0,
    })
}

fn from_dicom(root: &Path, out: &Path) -> Result<StudyManifest, StageError> {
    let found = scan(root).map_err(io_err)?;
    let patient = match found.patients.as_slice() {
        [one] => one,
        [] => {
            return Err(StageError::Input(format!(
                "{}: no DICOM SPECT/CT study found ({} files looked at, {} skipped)",
                root.display(),
                found.files_scanned,
                found.skipped.len()
            )))
        }
        many => {
            return Err(StageError::Input(format!(
                "{}: {} patients found; run one patient's study at a time",
                root.display(),
                many.len()
            )))
        }
    };
    let mut warnings = Vec::new();
    if patient.timepoints.is_empty() {
        return Err(StageError::Input(format!(
            "{}: no emission (SPECT) series found for the patient",
            root.display()
        )));
    }
    let mut uids: Vec<&str> = Vec::new();
    let mut timepoints = Vec::new();
    let mut activities: Vec<f64> = Vec::new();
    let mut sex = None;
    let mut radionuclide = None;
    for (n, tp) in patient.timepoints.iter().enumerate() {
        let index = n + 1;
        uids.push(&tp.spect_series_uid);
        let mut entry = TimepointEntry {
            index,
            hours_post_injection: tp.hours_post_injection,
            ct: None,
            spect: None,
            spect_quantitative: false,
            problems: tp.warnings.clone(),
        };
        if let Some(a) = tp.injected_activity_mbq {
            activities.push(a);
        }
        match found
            .find_series(&tp.spect_series_uid)
            .map(|s| read_series(&s.files))
        {
            Some(Ok(s)) => {
                entry.spect_quantitative = s.quantitative;
                entry.problems.extend(s.warnings.iter().cloned());
                if !s.quantitative {
                    entry.problems.push(format!(
                        "SPECT values are {} , not Bq/mL: no activity can be measured",
                        s.units.as_deref().unwrap_or("of unknown units")
                    ));
                }
                sex = sex.or_else(|| s.header.patient_sex.clone());
                radionuclide = radionuclide.or_else(|| {
                    s.header
                        .radiopharmaceutical
                        .as_ref()
                        .and_then(|r| r.radionuclide.as_deref())
                        .map(nuclide_name)
                });
                let name = format!("tp{index}_spect.nii.gz");
                write_nifti(&out.join(&name), &s.volume).map_err(io_err)?;
                entry.spect = Some(name);
            }
            Some(Err(e)) => entry.problems.push(format!("SPECT series unreadable: {e}")),
            None => entry
                .problems
                .push("SPECT series vanished between scan and read".into()),
        }
        match &tp.ct_series_uid {
            None => entry.problems.push("no CT paired with this SPECT".into()),
            Some(uid) => {
                uids.push(uid);
                match found.find_series(uid).map(|s| read_series(&s.files)) {
                    Some(Ok(s)) => {
                        sex = sex.or_else(|| s.header.patient_sex.clone());
                        let name = format!("tp{index}_ct.nii.gz");
                        write_nifti(&out.join(&name), &s.volume).map_err(io_err)?;
                        entry.ct = Some(name);
                    }
                    Some(Err(e)) => entry.problems.push(format!("CT series unreadable: {e}")),
                    None => entry
                        .problems
                        .push("CT series vanished between scan and read".into()),
                }
            }
        }
        if entry.hours_post_injection.is_none() {
            entry.problems.push(
                "time after injection unknown (acquisition or injection time missing)".into(),
            );
        }
        timepoints.push(entry);
    }
    let injected_activity_mbq = activities.first().copied();
    if injected_activity_mbq.is_none() {
        warnings.push(
            "no injected activity recorded in any SPECT: doses per GBq cannot be given".into(),
        );
    } else if activities
        .iter()
        .any(|a| (a - activities[0]).abs() > 1e-6 * activities[0].abs().max(1.0))
    {
        warnings.push(format!(
            "time points disagree on the injected activity ({activities:?} MBq); the first is used"
        ));
    }
    if !found.skipped.is_empty() {
        warnings.push(format!(
            "{} files skipped (run `mrtdose inspect` for the reasons)",
            found.skipped.len()
        ));
    }
    uids.sort_unstable();
    Ok(StudyManifest {
        schema: SCHEMA.into(),
        study_id: short_hash(&uids),
        source: "dicom".into(),
        radionuclide,
        injected_activity_mbq,
        patient_sex: sex,
        timepoints,
        warnings,
        skipped_files: found.skipped.len(),
    })
}
