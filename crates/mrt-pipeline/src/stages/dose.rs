//! Dose: organ TACs → fits, TIA, S-value dose, BED, uncertainty (mrt-dosimetry's image-free
//! engine), and the voxel dose map on the reference SPECT grid placed in the reference CT frame
//! (every SPECT carried there through its CT registration and its SPECT↔CT correction), with a
//! DVH per organ.

use std::collections::BTreeMap;
use std::path::Path;

use mrt_core::{resample, resample_mapped, Interpolation, Transform, Volume};
use mrt_dosimetry::density::hu_to_density;
use mrt_dosimetry::input::{FitChoice, OrganInput, TacsInput};
use mrt_dosimetry::quantify::fractional_masks;
use mrt_dosimetry::tac::trapezoid_tia;
use mrt_dosimetry::voxel::{
    dose_volume, kernel_dose_gy, local_deposition_gy, voxel_tia_fit, voxel_tia_from_shape,
    DoseVolume,
};
use mrt_io::nifti_io::{read_nifti, write_nifti};
use mrt_register::timepoints::reference_to_spect;
use serde::Serialize;

use super::ingest::StudyManifest;
use super::quantify::{organ_labels, QuantArtifact};
use super::register::RegistrationArtifact;
use super::segment::SegmentationArtifact;
use super::{io_err, read_json, write_json, Stage, StageContext, StageError};
use crate::config::VoxelDoseMethod;

/// `dose/dosimetry.json`.
#[derive(Debug, Serialize)]
pub struct DoseArtifact {
    /// `mrtdose.dose.v1`.
    pub schema: &'static str,
    /// Reference phantom used for S-values.
    pub phantom: String,
    /// Where the phantom choice came from.
    pub phantom_source: String,
    /// The TAC input handed to the engine (re-runnable with `mrtdose dosimetry`).
    pub tacs: Option<TacsInput>,
    /// The engine's result (`mrtdose.dosimetry.v1`), when it could run.
    pub result: Option<serde_json::Value>,
    /// Why organ dosimetry, or an organ's, could not run (organs with an invalid measurement are
    /// left out of `tacs` and `result`, the others still computed).
    pub error: Option<String>,
    /// Voxel dose map and DVHs, when made.
    pub voxel: Option<VoxelSummary>,
}

/// The voxel dose part.
#[derive(Debug, Serialize)]
pub struct VoxelSummary {
    /// `kernel` or `local_deposition`.
    pub method: VoxelDoseMethod,
    /// `dose_Gy.nii.gz`.
    pub file: String,
    /// Voxels whose TIA came from their own fit (the rest from the organ shapes).
    pub fitted_voxels: usize,
    /// Time points that went into the map.
    pub timepoints: Vec<usize>,
    /// DVH per organ.
    pub dvh: BTreeMap<String, DoseVolume>,
}

fn phantom_for(study: &StudyManifest, default: Option<&str>) -> (String, String) {
    match study.patient_sex.as_deref().map(str::trim) {
        Some("M") => ("ICRP110_AM".into(), "patient sex M in the data".into()),
        Some("F") => ("ICRP110_AF".into(), "patient sex F in the data".into()),
        _ => match default {
            Some(p) => (
                p.to_string(),
                "site config default_phantom (sex not in the data)".into(),
            ),
            None => (
                "ICRP110_AM".into(),
                "sex unknown and no default_phantom configured: adult male assumed".into(),
            ),
        },
    }
}

/// Runs the stage.
pub fn run(ctx: &StageContext, work: &Path, out: &Path) -> Result<DoseArtifact, StageError> {
    let cfg = &ctx.config;
    let study: StudyManifest = read_json(&work.join("ingest/study.json"))?;
    let quant: QuantArtifact = read_json(&work.join("quantify/quantification.json"))?;
    let (phantom, phantom_source) = phantom_for(&study, cfg.default_phantom.as_deref());
    let times: Vec<f64> = quant
        .timepoints
        .iter()
        .map(|t| t.hours_post_injection)
        .collect();
    let mut organs: Vec<OrganInput> = quant
        .masses
        .iter()
        .filter_map(|(name, mass)| {
            let activity: Option<Vec<f64>> = quant
                .timepoints
                .iter()
                .map(|t| t.organs.get(name).map(|o| o.activity_mbq))
                .collect();
            let recovery: Vec<f64> = quant
                .timepoints
                .iter()
                .filter_map(|t| t.organs.get(name).map(|o| o.recovery_uncertainty))
                .collect();
            Some(OrganInput {
                name: name.clone(),
                mass_g: mass.mass_g,
                times_h: times.clone(),
                activity_mbq: activity?,
                fit_model: FitChoice::Auto,
                activity_uncertainty_percent: Some(cfg.activity_uncertainty_percent),
                mass_uncertainty_percent: None,
                recovery_uncertainty_percent: (!recovery.is_empty())
                    .then(|| 100.0 * recovery.iter().sum::<f64>() / recovery.len() as f64),
                previous_cycles: Vec::new(),
            })
        })
        .collect();
    let left_out = leave_out_invalid(&mut organs);
    let tacs = TacsInput {
        schema: mrt_dosimetry::input::SCHEMA.into(),
        radionuclide: "Lu-177".into(),
        injected_activity_mbq: study.injected_activity_mbq,
        phantom: phantom.clone(),
        calibration_uncertainty_percent: cfg.calibration_uncertainty_percent,
        organs,
    };
    let (result, error) = match tacs.validate() {
        Ok(()) => (serde_json::to_value(mrt_dosimetry::run(&tacs)).ok(), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let error = match (error, left_out.is_empty()) {
        (e, true) => e,
        (None, false) => Some(left_out.join("; ")),
        (Some(e), false) => Some(format!("{}; {e}", left_out.join("; "))),
    };
    (ctx.tick)(Stage::Dose);
    let voxel = voxel_map(ctx, work, out, &study, &quant)?;
    (ctx.tick)(Stage::Dose);
    let artifact = DoseArtifact {
        schema: "mrtdose.dose.v1",
        phantom,
        phantom_source,
        tacs: Some(tacs),
        result,
        error,
        voxel,
    };
    write_json(&out.join("dosimetry.json"), &artifact)?;
    Ok(artifact)
}

/// Removes the organs whose input is invalid (e.g. a negative activity) and returns why, one
/// line per organ: one organ's bad measurement must not take the others' doses with it.
fn leave_out_invalid(organs: &mut Vec<OrganInput>) -> Vec<String> {
    let mut left_out = Vec::new();
    organs.retain(|o| match o.validate() {
        Ok(()) => true,
        Err(e) => {
            left_out.push(e.to_string());
            false
        }
    });
    left_out
}

/// The voxel dose map, or `None` when no time point can be placed in the reference frame.
fn voxel_map(
    ctx: &StageContext,
    work: &Path,
    out: &Path,
    study: &StudyManifest,
    quant: &QuantArtifact,
) -> Result<Option<VoxelSummary>, StageError> {
    let reg: RegistrationArtifact = read_json(&work.join("register/registration.json"))?;
    let seg: SegmentationArtifact = read_json(&work.join("segment/segmentation.json"))?;
    let Some(ref_index) = reg.reference_index else {
        return Ok(None);
    };
    let Some(ref_entry) = study.timepoints.iter().find(|t| t.index == ref_index) else {
        return Ok(None);
    };
    // Dose grid: the reference SPECT's lattice, read as coordinates of the reference CT frame.
    let Some(ref_spect_name) = ref_entry.spect.as_deref().or_else(|| {
        quant
            .timepoints
            .first()
            .and_then(|t| study.timepoints.iter().find(|e| e.index == t.index))
            .and_then(|e| e.spect.as_deref())
    }) else {
        return Ok(None);
    };
    let dose_grid = read_nifti(&work.join("ingest").join(ref_spect_name))
        .map_err(io_err)?
        .volume
        .grid()
        .clone();
    let mut spects = Vec::new();
    let mut times = Vec::new();
    let mut used = Vec::new();
    for t in &quant.timepoints {
        let (Some(ct_from_ref), Some(entry)) = (
            reg.of(t.index),
            study.timepoints.iter().find(|e| e.index == t.index),
        ) else {
            continue;
        };
        let Some(spect_name) = &entry.spect else {
            continue;
        };
        let spect = read_nifti(&work.join("ingest").join(spect_name))
            .map_err(io_err)?
            .volume;
        let Ok(map) = reference_to_spect(ct_from_ref, &Transform::Rigid(t.alignment.spect_to_ct))
        else {
            continue;
        };
        spects.push(resample_mapped(
            &spect,
            &dose_grid,
            &map.to_affine(),
            Interpolation::Linear,
            0.0,
        ));
        times.push(t.hours_post_injection);
        used.push(t.index);
    }
    if spects.is_empty() {
        return Ok(None);
    }
    // Reference CT and labels on the dose grid: densities and organ masks.
    let ct_name = ref_entry.ct.as_deref().unwrap_or_default();
    let ct = read_nifti(&work.join("ingest").join(ct_name))
        .map_err(io_err)?
        .volume;
    let labels_name = seg
        .timepoints
        .iter()
        .find(|s| s.index == ref_index)
        .and_then(|s| s.labels.clone());
    let table = mrt_reference::hu_density_table();
    let hu_on_grid = resample(&ct, &dose_grid, Interpolation::Linear, -1000.0);
    let density = hu_on_grid.map(|&hu| hu_to_density(&table, f64::from(hu)) as f32);
    let organs = organ_labels(&seg.labels);
    let masks: Vec<(String, Volume<f32>)> = match labels_name {
        Some(name) => {
            let labels = read_nifti(&work.join("segment").join(name))
                .map_err(io_err)?
                .volume;
            let labels = labels.map(|&l| l.round().clamp(0.0, 255.0) as u8);
            let values: Vec<u8> = organs.iter().map(|(l, _)| *l).collect();
            let fractions = fractional_masks(
                &labels,
                &dose_grid,
                &mrt_core::RigidTransform::identity(),
                &values,
                2,
            );
            organs
                .iter()
                .map(|(_, n)| n.to_string())
                .zip(fractions)
                .collect()
        }
        None => Vec::new(),
    };
    // Voxels with enough counts at every time point get their own mono-exponential fit; the rest
    // take the shape of their organ's (or the whole field's) time-activity curve.
    let lambda = mrt_reference::lu177().lambda_per_h();
    let reference_pos = used.iter().position(|&i| i == ref_index).unwrap_or(0);
    let ratio = |activity: Vec<f64>| -> f64 {
        let a_ref = activity[reference_pos];
        if a_ref <= 0.0 {
            return 1.0 / lambda;
        }
        trapezoid_tia(&times, &activity, lambda).0 / a_ref
    };
    let organ_ratios: Vec<f64> = masks
        .iter()
        .map(|(name, _)| {
            let a: Vec<f64> = quant
                .timepoints
                .iter()
                .filter(|t| used.contains(&t.index))
                .map(|t| t.organs.get(name).map_or(0.0, |o| o.activity_mbq))
                .collect();
            ratio(a)
        })
        .collect();
    let fov: Vec<f64> = quant
        .timepoints
        .iter()
        .filter(|t| used.contains(&t.index))
        .map(|t| t.fov_activity_mbq)
        .collect();
    let mask_volumes: Vec<Volume<f32>> = masks.iter().map(|(_, m)| m.clone()).collect();
    let shaped_s = voxel_tia_from_shape(
        &spects[reference_pos],
        &mask_volumes,
        &organ_ratios,
        ratio(fov),
    );
    let max = spects[reference_pos]
        .data()
        .iter()
        .copied()
        .fold(0.0f32, f32::max);
    let (tia_mbq_s, fitted) = if spects.len() >= 2 {
        voxel_tia_fit(&spects, &times, lambda, 0.05 * max, &shaped_s)
    } else {
        (shaped_s, 0)
    };
    let dose = match ctx.config.voxel_dose {
        VoxelDoseMethod::Kernel => kernel_dose_gy(
            &tia_mbq_s,
            &density,
            &mrt_reference::lu177_soft_tissue_kernel(),
        ),
        VoxelDoseMethod::LocalDeposition => {
            let e = mrt_reference::lu177().electron_energy_mev * mrt_reference::J_PER_MEV;
            local_deposition_gy(&tia_mbq_s, &density, e)
        }
    };
    let file = "dose_Gy.nii.gz".to_string();
    write_nifti(&out.join(&file), &dose).map_err(io_err)?;
    let dvh = masks
        .iter()
        .filter_map(|(name, m)| dose_volume(&dose, m, 200).map(|d| (name.clone(), d)))
        .collect();
    Ok(Some(VoxelSummary {
        method: ctx.config.voxel_dose,
        file,
        fitted_voxels: fitted,
        timepoints: used,
        dvh,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn organ(name: &str, activity_mbq: Vec<f64>) -> OrganInput {
        OrganInput {
            name: name.into(),
            mass_g: 150.0,
            times_h: vec![4.0, 24.0, 72.0, 168.0],
            activity_mbq,
            fit_model: FitChoice::Auto,
            activity_uncertainty_percent: Some(5.0),
            mass_uncertainty_percent: None,
            recovery_uncertainty_percent: None,
            previous_cycles: Vec::new(),
        }
    }

    #[test]
    fn a_negative_activity_leaves_out_only_its_organ() {
        let mut organs = vec![
            organ("kidney_left", vec![60.0, 40.0, 20.0, 5.0]),
            organ("kidney_right", vec![90.0, 70.0, -1.3, 10.0]),
            organ("spleen", vec![150.0, 220.0, 160.0, 80.0]),
        ];
        let why = leave_out_invalid(&mut organs);
        let kept: Vec<&str> = organs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(kept, ["kidney_left", "spleen"]);
        assert_eq!(why.len(), 1);
        assert!(
            why[0].contains("kidney_right") && why[0].contains("-1.3"),
            "{}",
            why[0]
        );
    }
}
