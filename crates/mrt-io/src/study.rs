//! Study assembly: from a directory tree of DICOM files in any layout to patients, studies,
//! series and dosimetry time points (each SPECT paired with its CT, ordered by hours after
//! injection).
//!
//! Pairing rule: a SPECT takes the CT of the same patient with the same FrameOfReferenceUID;
//! failing that, the CT of the same study nearest in acquisition time. Injection data come only
//! from the SPECT's own RadiopharmaceuticalInformationSequence: when absent, the time point has
//! no hours-after-injection and says why (nothing is invented).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::datetime::Timestamp;
use crate::dicom::file::open_header;
use crate::dicom::header::{DicomHeader, SeriesKind};
use crate::error::{IoError, Problem, Skipped};

/// One series found in the tree.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesEntry {
    /// Series Instance UID (or a synthetic key when the files lack one).
    pub series_uid: String,
    /// Classification.
    pub kind: SeriesKind,
    /// Modality.
    pub modality: String,
    /// Series description.
    pub description: Option<String>,
    /// Series number.
    pub series_number: Option<i64>,
    /// Frame of Reference UID.
    pub frame_of_reference_uid: Option<String>,
    /// Earliest acquisition time of its files.
    pub acquisition_time: Option<Timestamp>,
    /// Files (unordered; [`crate::dicom::read_series`] orders them).
    pub files: Vec<PathBuf>,
    /// Header of one file, for attributes shared by the series.
    #[serde(skip)]
    pub header: DicomHeader,
}

/// One study (StudyInstanceUID) of one patient.
#[derive(Debug, Clone, Serialize)]
pub struct StudyGroup {
    /// Study Instance UID.
    pub study_uid: String,
    /// Its series, ordered by acquisition time then series number.
    pub series: Vec<SeriesEntry>,
}

/// How a SPECT was paired with its CT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// Same FrameOfReferenceUID.
    FrameOfReference,
    /// Same study, nearest acquisition time.
    NearestAcquisitionTime,
    /// No CT found.
    None,
}

/// A dosimetry time point: one quantitative emission series and its CT.
#[derive(Debug, Clone, Serialize)]
pub struct TimePoint {
    /// SPECT series UID.
    pub spect_series_uid: String,
    /// Paired CT series UID.
    pub ct_series_uid: Option<String>,
    /// How they were paired.
    pub pairing: Pairing,
    /// SPECT acquisition start.
    pub acquisition_time: Option<Timestamp>,
    /// Injection time from the SPECT.
    pub injection_time: Option<Timestamp>,
    /// Hours from injection to acquisition start.
    pub hours_post_injection: Option<f64>,
    /// Injected activity (MBq) from the SPECT.
    pub injected_activity_mbq: Option<f64>,
    /// What is missing or doubtful.
    pub warnings: Vec<String>,
}

/// Everything found for one patient. Identifiers are not kept: patients are numbered.
#[derive(Debug, Clone, Serialize)]
pub struct PatientGroup {
    /// `patient-1`, `patient-2`, ... (order of the non-reversible patient key).
    pub label: String,
    /// Studies, by earliest acquisition.
    pub studies: Vec<StudyGroup>,
    /// SPECT time points across all studies, ordered by hours after injection.
    pub timepoints: Vec<TimePoint>,
}

/// The result of scanning a directory tree.
#[derive(Debug, Clone, Serialize)]
pub struct StudyScan {
    /// Root that was scanned.
    pub root: PathBuf,
    /// Files looked at.
    pub files_scanned: usize,
    /// Patients found.
    pub patients: Vec<PatientGroup>,
    /// Files not used, with the reason.
    pub skipped: Vec<Skipped>,
}

impl StudyScan {
    /// All series of all patients.
    pub fn series(&self) -> impl Iterator<Item = &SeriesEntry> {
        self.patients
            .iter()
            .flat_map(|p| p.studies.iter())
            .flat_map(|s| s.series.iter())
    }

    /// The series with this UID.
    pub fn find_series(&self, uid: &str) -> Option<&SeriesEntry> {
        self.series().find(|s| s.series_uid == uid)
    }
}

/// Scans `root` (a directory tree, or a single file) for DICOM files.
pub fn scan(root: &Path) -> Result<StudyScan, IoError> {
    let mut paths = Vec::new();
    let mut skipped = Vec::new();
    if root.is_file() {
        paths.push(root.to_path_buf());
    } else if root.is_dir() {
        for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
            match entry {
                Ok(e) if e.file_type().is_file() => paths.push(e.into_path()),
                Ok(_) => {}
                Err(e) => {
                    let path = e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| root.to_path_buf());
                    skipped.push(Skipped::from(&IoError::new(
                        path,
                        Problem::Parse(e.to_string()),
                    )));
                }
            }
        }
    } else {
        return Err(IoError::new(
            root,
            Problem::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file or directory",
            )),
        ));
    }
    let files_scanned = paths.len();
    let headers: Vec<Result<(PathBuf, DicomHeader), IoError>> = paths
        .par_iter()
        .map(|p| open_header(p).map(|h| (p.clone(), h)))
        .collect();

    // patient key → study uid → series uid → entry
    let mut tree: BTreeMap<u64, BTreeMap<String, BTreeMap<String, SeriesEntry>>> = BTreeMap::new();
    for r in headers {
        let (path, header) = match r {
            Ok(ok) => ok,
            Err(e) => {
                skipped.push(Skipped::from(&e));
                continue;
            }
        };
        if header.kind == SeriesKind::NotImage {
            let e = IoError::new(
                &path,
                Problem::NotAnImage {
                    sop_class: header.sop_class_uid.clone(),
                    modality: header.modality.clone(),
                },
            );
            skipped.push(Skipped::from(&e));
            continue;
        }
        let study_uid = header
            .study_uid
            .clone()
            .unwrap_or_else(|| "(no StudyInstanceUID)".into());
        let series_uid = header
            .series_uid
            .clone()
            .unwrap_or_else(|| format!("(no SeriesInstanceUID: {})", path.display()));
        let series = tree
            .entry(header.patient_key)
            .or_default()
            .entry(study_uid)
            .or_default()
            .entry(series_uid.clone())
            .or_insert_with(|| SeriesEntry {
                series_uid,
                kind: header.kind,
                modality: header.modality.clone(),
                description: header.series_description.clone(),
                series_number: header.series_number,
                frame_of_reference_uid: header.frame_of_reference_uid.clone(),
                acquisition_time: header.acquisition_time,
                files: Vec::new(),
                header: header.clone(),
            });
        if let Some(t) = header.acquisition_time {
            if series.acquisition_time.is_none_or(|s| t < s) {
                series.acquisition_time = Some(t);
            }
        }
        series.files.push(path);
    }

    let patients = tree
        .into_values()
        .enumerate()
        .map(|(n, studies)| build_patient(n + 1, studies))
        .collect();
    Ok(StudyScan {
        root: root.to_path_buf(),
        files_scanned,
        patients,
        skipped,
    })
}

fn time_key(t: Option<Timestamp>) -> f64 {
    t.map(|t| t.0).unwrap_or(f64::INFINITY)
}

fn build_patient(
    n: usize,
    studies: BTreeMap<String, BTreeMap<String, SeriesEntry>>,
) -> PatientGroup {
    let mut studies: Vec<StudyGroup> = studies
        .into_iter()
        .map(|(study_uid, series)| {
            let mut series: Vec<SeriesEntry> = series.into_values().collect();
            series.sort_by(|a, b| {
                time_key(a.acquisition_time)
                    .total_cmp(&time_key(b.acquisition_time))
                    .then(a.series_number.cmp(&b.series_number))
            });
            StudyGroup { study_uid, series }
        })
        .collect();
    studies.sort_by(|a, b| {
        let first = |s: &StudyGroup| {
            s.series
                .iter()
                .map(|e| time_key(e.acquisition_time))
                .fold(f64::INFINITY, f64::min)
        };
        first(a).total_cmp(&first(b))
    });
    let timepoints = pair_timepoints(&studies);
    PatientGroup {
        label: format!("patient-{n}"),
        studies,
        timepoints,
    }
}

fn is_emission(kind: SeriesKind) -> bool {
    matches!(kind, SeriesKind::SpectTomo | SeriesKind::EmissionSlices)
}

fn pair_timepoints(studies: &[StudyGroup]) -> Vec<TimePoint> {
    let cts: Vec<(&str, &SeriesEntry)> = studies
        .iter()
        .flat_map(|st| st.series.iter().map(move |s| (st.study_uid.as_str(), s)))
        .filter(|(_, s)| s.kind == SeriesKind::Ct)
        .collect();
    let mut points = Vec::new();
    for study in studies {
        for spect in study.series.iter().filter(|s| is_emission(s.kind)) {
            let mut warnings = Vec::new();
            let by_for = spect.frame_of_reference_uid.as_ref().and_then(|f| {
                cts.iter()
                    .filter(|(_, ct)| ct.frame_of_reference_uid.as_ref() == Some(f))
                    .min_by(|a, b| gap(spect, a.1).total_cmp(&gap(spect, b.1)))
            });
            let (ct, pairing) = match by_for {
                Some((_, ct)) => (Some(*ct), Pairing::FrameOfReference),
                None => {
                    let nearest = cts
                        .iter()
                        .filter(|(st, _)| *st == study.study_uid)
                        .min_by(|a, b| gap(spect, a.1).total_cmp(&gap(spect, b.1)));
                    match nearest {
                        Some((_, ct)) => {
                            warnings.push(format!(
                                "no CT shares the SPECT's FrameOfReferenceUID; paired with the CT acquired {:.1} min apart in the same study",
                                gap(spect, ct) / 60.0
                            ));
                            (Some(*ct), Pairing::NearestAcquisitionTime)
                        }
                        None => {
                            warnings.push("no CT for this SPECT (none with its FrameOfReferenceUID, none in its study)".into());
                            (None, Pairing::None)
                        }
                    }
                }
            };
            let rp = spect.header.radiopharmaceutical.clone().unwrap_or_default();
            if spect.header.radiopharmaceutical.is_none() {
                warnings.push("no RadiopharmaceuticalInformationSequence: injection time and activity unknown".into());
            } else {
                if rp.injection_time.is_none() {
                    match &rp.injection_time_without_date {
                        Some(tm) => warnings.push(format!(
                            "RadiopharmaceuticalStartTime {tm} without a date: injection day unknown, hours after injection not computed"
                        )),
                        None => warnings.push("no RadiopharmaceuticalStartDateTime: injection time unknown".into()),
                    }
                }
                if rp.injected_activity_mbq.is_none() {
                    warnings.push("no RadionuclideTotalDose: injected activity unknown".into());
                }
            }
            if spect.acquisition_time.is_none() {
                warnings.push("no acquisition date/time".into());
            }
            if !spect.header.is_quantitative_bqml() {
                warnings.push(format!(
                    "not quantitative (Units {}): values are not Bq/mL",
                    spect.header.units.as_deref().unwrap_or("absent")
                ));
            }
            let hours = match (spect.acquisition_time, rp.injection_time) {
                (Some(a), Some(i)) => {
                    let h = a.hours_since(i);
                    if h < 0.0 {
                        warnings.push(format!(
                            "acquisition {h:.2} h before injection: check dates"
                        ));
                    }
                    Some(h)
                }
                _ => None,
            };
            points.push(TimePoint {
                spect_series_uid: spect.series_uid.clone(),
                ct_series_uid: ct.map(|c| c.series_uid.clone()),
                pairing,
                acquisition_time: spect.acquisition_time,
                injection_time: rp.injection_time,
                hours_post_injection: hours,
                injected_activity_mbq: rp.injected_activity_mbq,
                warnings,
            });
        }
    }
    points.sort_by(|a, b| {
        let key = |t: &TimePoint| t.hours_post_injection.unwrap_or(f64::INFINITY);
        key(a)
            .total_cmp(&key(b))
            .then(time_key(a.acquisition_time).total_cmp(&time_key(b.acquisition_time)))
    });
    points
}

/// Seconds between two series' acquisitions (∞ when either is unknown).
fn gap(a: &SeriesEntry, b: &SeriesEntry) -> f64 {
    match (a.acquisition_time, b.acquisition_time) {
        (Some(x), Some(y)) => (x.0 - y.0).abs(),
        _ => f64::INFINITY,
    }
}
