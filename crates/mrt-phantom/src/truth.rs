//! Ground truth: the `mrtdose.truth.v1` contract (design brief §5) plus everything a test or a
//! physicist needs to check a result against.

use std::collections::BTreeMap;

use mrt_core::RigidTransform;
use serde::Serialize;

use crate::biokinetics::{UptakeWashout, WholeBody};
use crate::patient::{Camera, Patient};
use crate::tissue::{label, Tissue};
use mrt_reference::{self as reference, Lu177};

/// Schema tag.
pub const SCHEMA: &str = "mrtdose.truth.v1";

/// One time point.
#[derive(Debug, Clone, Serialize)]
pub struct TruthTimePoint {
    /// Hours after injection (SPECT start).
    pub hours_post_injection: f64,
    /// CT location, relative to the phantom directory.
    pub ct: String,
    /// SPECT location, relative to the phantom directory.
    pub spect: String,
    /// Truth label map on this time point's CT grid.
    pub labels: String,
    /// SPECT world → CT world.
    pub spect_to_ct: RigidTransform,
    /// Body frame → CT world (patient positioning this visit).
    pub body_to_world: RigidTransform,
    /// True activity inside the SPECT field of view, before blur and noise.
    #[serde(rename = "activity_in_spect_fov_MBq")]
    pub activity_in_spect_fov_mbq: f64,
    /// Remainder soft-tissue concentration (MBq/mL).
    #[serde(rename = "remainder_concentration_MBq_per_mL")]
    pub remainder_mbq_per_ml: f64,
    /// CT noise SD (HU).
    pub ct_noise_hu: f64,
}

/// One scored organ.
#[derive(Debug, Clone, Serialize)]
pub struct TruthOrgan {
    /// Mass (g) = volume × density.
    pub mass_g: f64,
    /// Volume (mL) on a fine body-frame raster.
    #[serde(rename = "volume_mL")]
    pub volume_ml: f64,
    /// Density used (g/mL).
    #[serde(rename = "density_g_per_mL")]
    pub density_g_per_ml: f64,
    /// Activity per time point (MBq), at acquisition time.
    #[serde(rename = "activity_MBq")]
    pub activity_mbq: Vec<f64>,
    /// Time-integrated activity, injection to infinity (MBq·h).
    #[serde(rename = "tia_MBq_h")]
    pub tia_mbq_h: f64,
    /// Self-dose from OpenDose S-values scaled by mass: TIA·S·m_ref/m (Gy).
    #[serde(rename = "absorbed_dose_Gy")]
    pub absorbed_dose_gy: f64,
    /// Mean of the true voxel dose map (local deposition of electron energy, uniform uptake) (Gy).
    #[serde(rename = "voxel_dose_mean_Gy")]
    pub voxel_dose_mean_gy: f64,
    /// The TAC that generated the activities.
    pub kinetics: UptakeWashout,
    /// OpenDose self-dose S-value used (mGy/(MBq·s)).
    #[serde(rename = "s_value_mGy_per_MBq_s")]
    pub s_value: f64,
    /// Reference phantom organ mass (g).
    pub reference_mass_g: f64,
}

/// truth.json.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    /// `mrtdose.truth.v1`.
    pub schema: &'static str,
    /// Seed.
    pub seed: u64,
    /// Radionuclide.
    pub radionuclide: &'static str,
    /// Injected activity (MBq).
    #[serde(rename = "injected_activity_MBq")]
    pub injected_activity_mbq: f64,
    /// Injection date-time written into the DICOM files (DT).
    pub injection_datetime: String,
    /// SPECT PSF FWHM (mm).
    pub psf_fwhm_mm: f64,
    /// Reference phantom of the S-values: ICRP110_AM or ICRP110_AF.
    pub phantom: &'static str,
    /// Time points.
    pub timepoints: Vec<TruthTimePoint>,
    /// Label values → names.
    pub labels: BTreeMap<String, &'static str>,
    /// Scored organs.
    pub organs: BTreeMap<String, TruthOrgan>,
    /// Liver tumours: kinetics and TIA (MBq·h).
    pub tumours: Vec<TruthTumour>,
    /// Whole-body retention model.
    pub whole_body: WholeBody,
    /// Camera model.
    pub camera: Camera,
    /// Body mass (kg).
    pub body_mass_kg: f64,
    /// Contrast-enhanced CT.
    pub ct_contrast: bool,
    /// Decay data used.
    pub lu177: Lu177,
    /// Generator facts.
    pub generator: GeneratorInfo,
}

/// One liver tumour.
#[derive(Debug, Clone, Serialize)]
pub struct TruthTumour {
    /// TAC.
    pub kinetics: UptakeWashout,
    /// TIA (MBq·h).
    #[serde(rename = "tia_MBq_h")]
    pub tia_mbq_h: f64,
}

/// How the phantom was made.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratorInfo {
    /// mrt-phantom version.
    pub version: &'static str,
    /// Options as given.
    pub options: crate::patient::Options,
}

fn organ_truth(
    patient: &Patient,
    lu: &Lu177,
    lab: u8,
    name: &str,
    volume_ml: f64,
    kinetics: UptakeWashout,
    activities: Vec<f64>,
) -> TruthOrgan {
    let density = Tissue::ALL
        .iter()
        .find(|t| t.label() == lab)
        .map(|t| t.density_g_per_ml())
        .unwrap_or(1.05);
    let mass_g = volume_ml * density;
    let s = reference::self_dose(patient.anatomy.sex, name)
        .expect("S-values exist for every scored organ");
    let tia = kinetics.tia_mbq_h();
    let tia_mbq_s = tia * 3600.0;
    let absorbed_dose_gy = tia_mbq_s * s.s_mgy_per_mbq_s * s.reference_mass_g / mass_g / 1000.0;
    // Local deposition: decays × electron energy / mass.
    let voxel_dose_mean_gy =
        tia_mbq_s * 1e6 * lu.electron_energy_mev * reference::J_PER_MEV / (mass_g / 1000.0);
    TruthOrgan {
        mass_g,
        volume_ml,
        density_g_per_ml: density,
        activity_mbq: activities,
        tia_mbq_h: tia,
        absorbed_dose_gy,
        voxel_dose_mean_gy,
        kinetics,
        s_value: s.s_mgy_per_mbq_s,
        reference_mass_g: s.reference_mass_g,
    }
}

/// Builds the truth once every time point is rendered.
pub fn build(
    patient: &Patient,
    volumes: &BTreeMap<u8, f64>,
    timepoints: Vec<TruthTimePoint>,
    organ_activities: &BTreeMap<String, Vec<f64>>,
    injection_datetime: String,
) -> Truth {
    let lu = reference::lu177();
    let k = &patient.kinetics;
    let mut organs = BTreeMap::new();
    for (lab, name, kin) in [
        (label::LIVER, "liver", k.liver),
        (label::KIDNEY_LEFT, "kidney_left", k.kidney_left),
        (label::KIDNEY_RIGHT, "kidney_right", k.kidney_right),
        (label::SPLEEN, "spleen", k.spleen),
    ] {
        let acts = organ_activities.get(name).cloned().unwrap_or_default();
        organs.insert(
            name.to_string(),
            organ_truth(patient, &lu, lab, name, volumes[&lab], kin, acts),
        );
    }
    Truth {
        schema: SCHEMA,
        seed: patient.options.seed,
        radionuclide: "Lu-177",
        injected_activity_mbq: patient.injected_mbq,
        injection_datetime,
        psf_fwhm_mm: patient.options.psf_fwhm_mm,
        phantom: patient.anatomy.sex.phantom_name(),
        timepoints,
        labels: label::NAMES
            .iter()
            .map(|(v, n)| (v.to_string(), *n))
            .collect(),
        organs,
        tumours: k
            .tumours
            .iter()
            .map(|t| TruthTumour {
                kinetics: *t,
                tia_mbq_h: t.tia_mbq_h(),
            })
            .collect(),
        whole_body: k.whole_body,
        camera: patient.camera.clone(),
        body_mass_kg: patient.body_mass_kg,
        ct_contrast: patient.contrast,
        lu177: lu,
        generator: GeneratorInfo {
            version: env!("CARGO_PKG_VERSION"),
            options: patient.options.clone(),
        },
    }
}
