//! `mrtdose inspect`: what is in a file or directory, as text or JSON (`mrtdose.inspect.v1`).

use std::io::Write;
use std::path::Path;

use mrt_core::VolumeStats;
use mrt_io::datetime::Timestamp;
use mrt_io::dicom::read_series;
use mrt_io::error::Skipped;
use mrt_io::nifti_io::read_nifti;
use mrt_io::study::{scan, Pairing};
use serde::Serialize;

use crate::cli::InspectArgs;

/// Schema tag of the JSON output.
pub const SCHEMA: &str = "mrtdose.inspect.v1";

/// Geometry and values of a loaded volume.
#[derive(Debug, Serialize)]
pub struct VolumeSummary {
    /// Voxels along i, j, k.
    pub dims: [usize; 3],
    /// Spacing along i, j, k (mm).
    pub spacing_mm: [f64; 3],
    /// LPS position of voxel (0,0,0) (mm).
    pub origin_mm: [f64; 3],
    /// Unit directions of the i, j, k axes in LPS.
    pub direction: [[f64; 3]; 3],
    /// Units of the values.
    pub units: Option<String>,
    /// Emission image in Bq/mL.
    pub quantitative: Option<bool>,
    /// Value statistics.
    pub stats: VolumeStats,
}

fn summarize(
    v: &mrt_core::Volume<f32>,
    units: Option<String>,
    quantitative: Option<bool>,
) -> VolumeSummary {
    let g = v.grid();
    VolumeSummary {
        dims: g.dims,
        spacing_mm: g.spacing_mm,
        origin_mm: g.origin_mm,
        direction: [0, 1, 2].map(|a| g.axis_direction(a)),
        units,
        quantitative,
        stats: v.stats(),
    }
}

/// A failure to load a series.
#[derive(Debug, Serialize)]
pub struct ErrorSummary {
    /// Machine-readable code.
    pub code: &'static str,
    /// Message naming the file.
    pub message: String,
}

/// One series.
#[derive(Debug, Serialize)]
pub struct SeriesSummary {
    /// Series Instance UID.
    pub series_uid: String,
    /// ct, spect_tomo, ...
    pub kind: mrt_io::dicom::SeriesKind,
    /// Modality.
    pub modality: String,
    /// Description.
    pub description: Option<String>,
    /// Number of files.
    pub files: usize,
    /// Transfer syntax of its first file.
    pub transfer_syntax: String,
    /// Frame of reference.
    pub frame_of_reference_uid: Option<String>,
    /// Acquisition start, DICOM DT.
    pub acquisition_time: Option<String>,
    /// The loaded volume (absent with --headers-only or on error).
    pub volume: Option<VolumeSummary>,
    /// Why it could not be loaded.
    pub error: Option<ErrorSummary>,
    /// Reader warnings.
    pub warnings: Vec<String>,
}

/// One time point.
#[derive(Debug, Serialize)]
pub struct TimePointSummary {
    /// Hours after injection.
    pub hours_post_injection: Option<f64>,
    /// SPECT series.
    pub spect_series_uid: String,
    /// CT series.
    pub ct_series_uid: Option<String>,
    /// How they were paired.
    pub pairing: Pairing,
    /// Injection, DICOM DT.
    pub injection_time: Option<String>,
    /// Injected activity (MBq).
    pub injected_activity_mbq: Option<f64>,
    /// What is missing.
    pub warnings: Vec<String>,
}

/// One study.
#[derive(Debug, Serialize)]
pub struct StudySummary {
    /// Study Instance UID.
    pub study_uid: String,
    /// Its series.
    pub series: Vec<SeriesSummary>,
}

/// One patient (numbered; identifiers are never printed).
#[derive(Debug, Serialize)]
pub struct PatientSummary {
    /// `patient-N`.
    pub label: String,
    /// Studies.
    pub studies: Vec<StudySummary>,
    /// Dosimetry time points.
    pub timepoints: Vec<TimePointSummary>,
}

/// The whole output.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    /// `mrtdose.inspect.v1`.
    pub schema: &'static str,
    /// What was inspected.
    pub path: String,
    /// `dicom` or `nifti`.
    pub format: &'static str,
    /// Files looked at.
    pub files_scanned: usize,
    /// Patients (DICOM).
    pub patients: Vec<PatientSummary>,
    /// The volume (NIfTI).
    pub volume: Option<VolumeSummary>,
    /// Files skipped, and why.
    pub skipped: Vec<Skipped>,
    /// Format-level warnings (NIfTI).
    pub warnings: Vec<String>,
}

fn dt(t: Option<Timestamp>) -> Option<String> {
    t.map(Timestamp::to_dt)
}

fn is_nifti(path: &Path) -> bool {
    let name = path.to_string_lossy();
    path.is_file() && (name.ends_with(".nii") || name.ends_with(".nii.gz"))
}

/// Builds the report for `path`.
pub fn inspect(path: &Path, headers_only: bool) -> anyhow::Result<InspectReport> {
    if is_nifti(path) {
        let n = read_nifti(path)?;
        return Ok(InspectReport {
            schema: SCHEMA,
            path: path.display().to_string(),
            format: "nifti",
            files_scanned: 1,
            patients: Vec::new(),
            volume: Some(summarize(&n.volume, None, None)),
            skipped: Vec::new(),
            warnings: n.warnings,
        });
    }
    let s = scan(path)?;
    let patients = s
        .patients
        .iter()
        .map(|p| PatientSummary {
            label: p.label.clone(),
            studies: p
                .studies
                .iter()
                .map(|st| StudySummary {
                    study_uid: st.study_uid.clone(),
                    series: st
                        .series
                        .iter()
                        .map(|se| {
                            let mut summary = SeriesSummary {
                                series_uid: se.series_uid.clone(),
                                kind: se.kind,
                                modality: se.modality.clone(),
                                description: se.description.clone(),
                                files: se.files.len(),
                                transfer_syntax: se.header.transfer_syntax.clone(),
                                frame_of_reference_uid: se.frame_of_reference_uid.clone(),
                                acquisition_time: dt(se.acquisition_time),
                                volume: None,
                                error: None,
                                warnings: Vec::new(),
                            };
                            if !headers_only {
                                match read_series(&se.files) {
                                    Ok(v) => {
                                        let emission = matches!(
                                            v.kind,
                                            mrt_io::dicom::SeriesKind::SpectTomo
                                                | mrt_io::dicom::SeriesKind::EmissionSlices
                                        );
                                        summary.volume = Some(summarize(
                                            &v.volume,
                                            v.units.clone(),
                                            emission.then_some(v.quantitative),
                                        ));
                                        summary.warnings = v.warnings;
                                    }
                                    Err(e) => {
                                        summary.error = Some(ErrorSummary {
                                            code: e.code(),
                                            message: e.to_string(),
                                        })
                                    }
                                }
                            }
                            summary
                        })
                        .collect(),
                })
                .collect(),
            timepoints: p
                .timepoints
                .iter()
                .map(|t| TimePointSummary {
                    hours_post_injection: t.hours_post_injection,
                    spect_series_uid: t.spect_series_uid.clone(),
                    ct_series_uid: t.ct_series_uid.clone(),
                    pairing: t.pairing,
                    injection_time: dt(t.injection_time),
                    injected_activity_mbq: t.injected_activity_mbq,
                    warnings: t.warnings.clone(),
                })
                .collect(),
        })
        .collect();
    Ok(InspectReport {
        schema: SCHEMA,
        path: path.display().to_string(),
        format: "dicom",
        files_scanned: s.files_scanned,
        patients,
        volume: None,
        skipped: s.skipped,
        warnings: Vec::new(),
    })
}

/// `mrtdose inspect`.
pub fn run(args: &InspectArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let report = inspect(&args.path, args.headers_only)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        render_text(&report, out)?;
    }
    Ok(())
}

fn fmt3(v: [f64; 3]) -> String {
    format!("{:.3}, {:.3}, {:.3}", v[0], v[1], v[2])
}

fn render_volume(v: &VolumeSummary, indent: &str, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{indent}dims        {} × {} × {}",
        v.dims[0], v.dims[1], v.dims[2]
    )?;
    writeln!(out, "{indent}spacing     {} mm", fmt3(v.spacing_mm))?;
    writeln!(out, "{indent}origin      {} mm (LPS)", fmt3(v.origin_mm))?;
    writeln!(
        out,
        "{indent}direction   i=({}) j=({}) k=({})",
        fmt3(v.direction[0]),
        fmt3(v.direction[1]),
        fmt3(v.direction[2])
    )?;
    let units = v.units.as_deref().unwrap_or("?");
    let quant = match v.quantitative {
        Some(true) => " (quantitative)",
        Some(false) => " (NOT quantitative)",
        None => "",
    };
    writeln!(
        out,
        "{indent}values      min {:.6} max {:.6} mean {:.6} {units}{quant}",
        v.stats.min, v.stats.max, v.stats.mean
    )
}

fn render_text(r: &InspectReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} ({}, {} file(s) scanned)",
        r.path, r.format, r.files_scanned
    )?;
    if let Some(v) = &r.volume {
        render_volume(v, "  ", out)?;
    }
    for p in &r.patients {
        writeln!(out, "{}", p.label)?;
        for st in &p.studies {
            writeln!(out, "  study {}", st.study_uid)?;
            for se in &st.series {
                writeln!(
                    out,
                    "    series {} [{:?}] {} — {} file(s), {}",
                    se.series_uid,
                    se.kind,
                    se.description.as_deref().unwrap_or(""),
                    se.files,
                    se.acquisition_time
                        .as_deref()
                        .unwrap_or("no acquisition time")
                )?;
                if let Some(v) = &se.volume {
                    render_volume(v, "      ", out)?;
                }
                if let Some(e) = &se.error {
                    writeln!(out, "      ERROR [{}] {}", e.code, e.message)?;
                }
                for w in &se.warnings {
                    writeln!(out, "      warning: {w}")?;
                }
            }
        }
        if !p.timepoints.is_empty() {
            writeln!(out, "  time points")?;
            for t in &p.timepoints {
                let h = t
                    .hours_post_injection
                    .map(|h| format!("{h:8.2} h p.i."))
                    .unwrap_or_else(|| "   ? h p.i.".into());
                writeln!(
                    out,
                    "    {h}  SPECT {}  CT {} ({:?})",
                    t.spect_series_uid,
                    t.ct_series_uid.as_deref().unwrap_or("none"),
                    t.pairing
                )?;
                for w in &t.warnings {
                    writeln!(out, "      warning: {w}")?;
                }
            }
        }
    }
    for w in &r.warnings {
        writeln!(out, "warning: {w}")?;
    }
    if !r.skipped.is_empty() {
        writeln!(out, "skipped {} file(s):", r.skipped.len())?;
        for s in &r.skipped {
            writeln!(out, "  {s}")?;
        }
    }
    Ok(())
}
