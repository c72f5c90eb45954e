//! Writing a phantom study to disk: DICOM as scanners write it (CT series, NM RECON TOMO SPECT
//! with radiopharmaceutical data) or NIfTI with a JSON manifest, plus `truth/`.
//!
//! Layout: `DIR/tpN/ct/` + `DIR/tpN/spect/spect.dcm` (DICOM) or `DIR/tpN/ct.nii.gz` +
//! `DIR/tpN/spect.nii.gz` + `DIR/manifest.json` (NIfTI); `DIR/truth/truth.json` and
//! `DIR/truth/tpN_labels.nii.gz`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mrt_io::datetime::{parse_dt, Timestamp};
use mrt_io::dicom::uid::derived_uid;
use mrt_io::dicom::write::{write_ct_series, write_nm_spect, Administration, SeriesMeta};
use mrt_io::nifti_io::write_nifti;
use serde::Serialize;

use crate::patient::{Options, Patient};
use crate::simulate::{organ_volumes_ml, render, Geometry};
use crate::truth::{self, Truth, TruthTimePoint};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// DICOM files.
    Dicom,
    /// NIfTI + manifest.json.
    Nifti,
}

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
pub enum PhantomError {
    /// A file could not be written.
    #[error(transparent)]
    Io(#[from] mrt_io::IoError),
    /// JSON or file system error on truth/manifest.
    #[error("{path}: {message}")]
    Write {
        /// File.
        path: PathBuf,
        /// What happened.
        message: String,
    },
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), PhantomError> {
    let err = |e: &dyn std::fmt::Display| PhantomError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let text = serde_json::to_string_pretty(value).map_err(|e| err(&e))?;
    std::fs::write(path, text + "\n").map_err(|e| err(&e))
}

/// Injection time of a phantom: a fixed synthetic calendar, shifted by the seed.
fn injection_time(seed: u64) -> Timestamp {
    let base = parse_dt("20260105083000").expect("constant date");
    Timestamp(base.0 + (seed % 365) as f64 * 86400.0)
}

/// Manifest of a NIfTI phantom study (the DICOM headers' facts, which NIfTI cannot hold).
#[derive(Debug, Serialize)]
struct Manifest {
    schema: &'static str,
    radionuclide: &'static str,
    #[serde(rename = "injected_activity_MBq")]
    injected_activity_mbq: f64,
    injection_datetime: String,
    half_life_s: f64,
    patient_sex: &'static str,
    timepoints: Vec<ManifestTimePoint>,
}

#[derive(Debug, Serialize)]
struct ManifestTimePoint {
    acquisition_datetime: String,
    ct: String,
    spect: String,
    spect_units: &'static str,
}

/// Generates and writes one phantom study; returns its truth.
pub fn write_phantom(dir: &Path, options: Options, format: Format) -> Result<Truth, PhantomError> {
    let patient = Patient::sample(options);
    let geometry = Geometry::for_preset(patient.options.preset);
    let volumes = organ_volumes_ml(&patient.anatomy, geometry.volume_raster_mm);
    let seed = patient.options.seed;
    let injection = injection_time(seed);
    let lu = mrt_reference::lu177();
    let truth_dir = dir.join("truth");
    std::fs::create_dir_all(&truth_dir).map_err(|e| PhantomError::Write {
        path: truth_dir.clone(),
        message: e.to_string(),
    })?;
    let patient_id = format!("MRTPHANTOM-{seed:06}");
    let sex_code = match patient.anatomy.sex {
        mrt_reference::Sex::Male => "M",
        mrt_reference::Sex::Female => "F",
    };
    let mut truth_tps = Vec::new();
    let mut manifest_tps = Vec::new();
    let mut organ_acts: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (n, session) in patient.sessions.iter().enumerate() {
        let images = render(&patient, &geometry, &volumes, n);
        let tp = format!("tp{}", n + 1);
        let acq = Timestamp(injection.0 + session.hours_post_injection * 3600.0);
        let (ct_rel, spect_rel) = match format {
            Format::Dicom => {
                let study_uid = derived_uid(seed, &[n as u64, 1]);
                let frame_uid = derived_uid(seed, &[n as u64, 2]);
                let meta =
                    |series: u64, description: &str, time: Timestamp, number: i32| SeriesMeta {
                        patient_id: patient_id.clone(),
                        patient_name: format!("PHANTOM^{seed:06}"),
                        patient_sex: Some(sex_code.to_string()),
                        study_uid: study_uid.clone(),
                        series_uid: derived_uid(seed, &[n as u64, series]),
                        frame_of_reference_uid: frame_uid.clone(),
                        series_number: number,
                        series_description: description.to_string(),
                        acquisition_time: time,
                        instance_uid_seed: Some(seed),
                    };
                // The CT of a SPECT/CT is acquired right after the SPECT.
                let ct_time = Timestamp(acq.0 + 25.0 * 60.0);
                write_ct_series(
                    &dir.join(&tp).join("ct"),
                    &images.ct_hu,
                    &meta(3, "CT low dose", ct_time, 2),
                )?;
                let admin = Administration {
                    radiopharmaceutical: "Lu-177-DOTATATE".into(),
                    radionuclide: "^177^Lutetium".into(),
                    radionuclide_code: "C-145A8".into(),
                    injection_time: injection,
                    injected_activity_mbq: patient.injected_mbq,
                    half_life_s: lu.half_life_s(),
                };
                write_nm_spect(
                    &dir.join(&tp).join("spect").join("spect.dcm"),
                    &images.spect_bq_per_ml,
                    &meta(4, "SPECT Lu177 quantitative", acq, 1),
                    Some(&admin),
                )?;
                (format!("{tp}/ct"), format!("{tp}/spect"))
            }
            Format::Nifti => {
                write_nifti(
                    &dir.join(&tp).join("ct.nii.gz"),
                    &images.ct_hu.map(|&v| v.round() as i16),
                )?;
                write_nifti(&dir.join(&tp).join("spect.nii.gz"), &images.spect_bq_per_ml)?;
                manifest_tps.push(ManifestTimePoint {
                    acquisition_datetime: acq.to_dt(),
                    ct: format!("{tp}/ct.nii.gz"),
                    spect: format!("{tp}/spect.nii.gz"),
                    spect_units: "Bq/mL",
                });
                (format!("{tp}/ct.nii.gz"), format!("{tp}/spect.nii.gz"))
            }
        };
        let labels_rel = format!("truth/{tp}_labels.nii.gz");
        write_nifti(&dir.join(&labels_rel), &images.labels)?;
        for (name, a) in &images.facts.organ_activity_mbq {
            organ_acts.entry(name.clone()).or_default().push(*a);
        }
        truth_tps.push(TruthTimePoint {
            hours_post_injection: session.hours_post_injection,
            ct: ct_rel,
            spect: spect_rel,
            labels: labels_rel,
            spect_to_ct: session.spect_to_ct,
            body_to_world: session.body_to_world,
            activity_in_spect_fov_mbq: images.activity_in_spect_fov_mbq,
            remainder_mbq_per_ml: images.facts.remainder_mbq_per_ml,
            ct_noise_hu: session.ct_noise_hu,
        });
    }
    if format == Format::Nifti {
        write_json(
            &dir.join("manifest.json"),
            &Manifest {
                schema: "mrtdose.phantom-manifest.v1",
                radionuclide: "Lu-177",
                injected_activity_mbq: patient.injected_mbq,
                injection_datetime: injection.to_dt(),
                half_life_s: lu.half_life_s(),
                patient_sex: sex_code,
                timepoints: manifest_tps,
            },
        )?;
    }
    let truth = truth::build(
        &patient,
        &volumes,
        truth_tps,
        &organ_acts,
        injection.to_dt(),
    );
    write_json(&truth_dir.join("truth.json"), &truth)?;
    Ok(truth)
}
