//! Quantify: per time point, correct the SPECT↔CT misalignment from the organ masks, then measure
//! each organ's activity (GTM by default, with PSF recovery and plain VOI alongside), and the
//! organ masses from the reference CT.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use mrt_core::Volume;
use mrt_dosimetry::contact_band::{contact_band, mark_surface_band};
use mrt_dosimetry::density::organ_mass;
use mrt_dosimetry::lesions::{lesion_halo, split_hot_lesions, LesionOptions, LesionSplit};
use mrt_dosimetry::mask_exclusion::split_mask;
use mrt_dosimetry::quantify::RegionActivity;
use mrt_dosimetry::quantify::{
    blur_masks, body_regions, fractional_masks, quantify_blurred, LOW_DENSITY, SOFT_TISSUE,
};
use mrt_dosimetry::residual::{residual_cluster_voxels, ClusterVoxels, ResidualClusters};
use mrt_io::nifti_io::read_nifti;
use mrt_register::{align_spect_to_ct, SpectAlignOptions, SpectAlignment};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::boundary_search::{self, BoundarySearch};
use super::ingest::{StudyManifest, TimepointEntry};
use super::segment::SegmentationArtifact;
use super::uptake_exclusion::{exclude_foreign_tissue, is_kidney, Measurement, RegionModel};
use super::{io_err, read_json, write_json, Stage, StageContext, StageError};
use crate::config::QuantMethod;

/// Organs the dosimetry covers (names as in model cards and reports).
pub const ORGANS: [&str; 4] = ["liver", "kidney_left", "kidney_right", "spleen"];

/// One organ at one time point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrganActivity {
    /// Activity by the configured method (MBq).
    #[serde(rename = "activity_MBq")]
    pub activity_mbq: f64,
    /// Counts in the mask (MBq).
    #[serde(rename = "voi_MBq")]
    pub voi_mbq: f64,
    /// VOI divided by the PSF recovery coefficient (MBq).
    #[serde(rename = "psf_recovery_MBq")]
    pub psf_recovery_mbq: f64,
    /// GTM (MBq), when solvable.
    #[serde(rename = "gtm_MBq")]
    pub gtm_mbq: Option<f64>,
    /// PSF recovery coefficient.
    pub recovery_coefficient: f64,
    /// Relative uncertainty of the recovery from the PSF FWHM uncertainty.
    pub recovery_uncertainty: f64,
    /// Volume of the CT mask (mL).
    #[serde(rename = "volume_mL")]
    pub volume_ml: f64,
    /// Where the SPECT contradicts the GTM's uniform organ (largest cold and hot clusters of the
    /// smoothed residual, site setting `uptake_mismatch_fraction`); absent without a GTM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual: Option<ResidualClusters>,
    /// Tissue taken out of the CT mask because its uptake contradicts the organ (site setting
    /// `exclude_uptake_mismatch`); `volume_mL` and the activities are of the mask without it, and
    /// `residual` is of the mask before. Absent when nothing was taken out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<ExcludedTissue>,
    /// The part of the mask within `contact_band_mm` of another organ and, for a kidney, within
    /// `kidney_surface_band_mm` of anything outside it (mL, CT grid), fitted as its own GTM
    /// region: the GTM activity is the rest of the mask's concentration times `volume_mL`.
    /// Absent when both settings are off or the organ has no such voxel.
    #[serde(
        rename = "contact_band_mL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub contact_band_ml: Option<f64>,
}

/// Tissue taken out of an organ's mask at one time point (CT grid).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ExcludedTissue {
    /// Colder than the organ (mL).
    #[serde(rename = "cold_mL")]
    pub cold_ml: f64,
    /// Hotter than the organ (mL).
    #[serde(rename = "hot_mL")]
    pub hot_ml: f64,
}

/// One time point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuantTimepoint {
    /// Time point (1-based).
    pub index: usize,
    /// Hours after injection.
    pub hours_post_injection: f64,
    /// SPECT↔CT correction.
    pub alignment: SpectAlignment,
    /// Organs found in the labels.
    pub organs: BTreeMap<String, OrganActivity>,
    /// All activity in the SPECT field of view (MBq).
    #[serde(rename = "fov_activity_MBq")]
    pub fov_activity_mbq: f64,
    /// Hot liver lesions counted as their own region instead of liver (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liver_lesions: Option<LiverLesions>,
}

/// Hot liver lesions found at one time point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiverLesions {
    /// How many.
    pub count: usize,
    /// Their volume on the CT grid (mL).
    #[serde(rename = "volume_mL")]
    pub volume_ml: f64,
    /// Their activity (MBq), by the same method as the organs.
    #[serde(rename = "activity_MBq")]
    pub activity_mbq: Option<f64>,
    /// The liver's voxels within `lesion_halo_mm` of them (mL, CT grid; outside the liver's
    /// contact band), fitted as regions of their own: the liver's GTM activity is the
    /// concentration of the rest of the liver's mask times the liver's `volume_mL` (a core the
    /// halo left without a solvable positive concentration falls back to the whole mask's, with
    /// a warning in the log). The lesions' own activity is their region's: a rim they missed
    /// counts towards neither. Absent when the setting is off or no liver voxel lies in the halo.
    #[serde(rename = "halo_mL", default, skip_serializing_if = "Option::is_none")]
    pub halo_ml: Option<f64>,
}

/// Region value of liver lesions on the CT label grid (outside the model's labels and the body
/// regions 254 and 255).
pub const LIVER_LESION: u8 = 253;

/// Region values of tissue taken out of organ `i`'s mask (index into [`ORGANS`]):
/// `EXCLUDED_BASE + 2i` colder, `+ 2i + 1` hotter than the organ; each is its own GTM region.
pub const EXCLUDED_BASE: u8 = 240;

/// Region values of the liver's halo around its hot lesions (site setting `lesion_halo_mm`):
/// shell `s` (1 to [`HALO_SHELLS`], from the lesions outwards) is `LESION_HALO_BASE + s − 1`,
/// each its own GTM region, so that a tumour rim in the inner shell does not make the GTM model
/// the whole halo as warm next to the parenchyma.
pub const LESION_HALO_BASE: u8 = 250;

/// Shells of the lesion halo at most; fewer where a shell would be thinner than a SPECT voxel
/// (the GTM cannot solve a region no SPECT voxel lies at least half inside).
pub const HALO_SHELLS: u8 = 3;

/// Region value of organ `i`'s contact band (index into [`ORGANS`]'s order of `organs`):
/// `CONTACT_BAND_BASE + i`, its own GTM region (site settings `contact_band_mm` and, for a
/// kidney, `kidney_surface_band_mm`).
pub const CONTACT_BAND_BASE: u8 = 230;

/// An organ's mass from the CT.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mass {
    /// Mass (g).
    pub mass_g: f64,
    /// Volume (mL).
    #[serde(rename = "volume_mL")]
    pub volume_ml: f64,
    /// Mean HU.
    pub mean_hu: f64,
    /// Contrast suspected (fixed density used).
    pub contrast_suspected: bool,
}

/// `quantify/quantification.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuantArtifact {
    /// `mrtdose.quantification.v1`.
    pub schema: String,
    /// Method whose values are `activity_MBq`.
    pub method: QuantMethod,
    /// PSF used (mm).
    pub psf_fwhm_mm: f64,
    /// Masses from this time point's CT.
    pub mass_timepoint: Option<usize>,
    /// Organ masses.
    pub masses: BTreeMap<String, Mass>,
    /// Usable time points.
    pub timepoints: Vec<QuantTimepoint>,
    /// Time points that could not be quantified, and why.
    pub skipped: Vec<String>,
    /// Where two organ masks touch, where the SPECT puts their boundary (site setting
    /// `boundary_search_mm`); every time point's labels were measured with the boundary moved
    /// by `offset_mm`. Empty when off or no organs touch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boundaries: Vec<BoundarySearch>,
}

/// A time point's volumes, ready to be measured.
struct Loaded {
    ct: Volume<f32>,
    spect: Volume<f32>,
    /// Organ labels, the liver's hot lesions split off.
    labels: Volume<u8>,
    hours: f64,
    alignment: SpectAlignment,
    lesions: Option<LesionSplit>,
    /// Label values that are GTM regions as they are.
    kept: Vec<u8>,
    /// The GTM's regions.
    regions: Vec<u8>,
}

/// Label value of each organ in the model's label list.
pub fn organ_labels(names: &[String]) -> Vec<(u8, &'static str)> {
    ORGANS
        .iter()
        .filter_map(|&o| names.iter().position(|n| n == o).map(|l| (l as u8, o)))
        .collect()
}

/// Runs the stage.
pub fn run(ctx: &StageContext, work: &Path, out: &Path) -> Result<QuantArtifact, StageError> {
    let cfg = &ctx.config;
    let study: StudyManifest = read_json(&work.join("ingest/study.json"))?;
    let seg: SegmentationArtifact = read_json(&work.join("segment/segmentation.json"))?;
    let organs = organ_labels(&seg.labels);
    let organ_values: Vec<u8> = organs.iter().map(|(l, _)| *l).collect();
    let mut regions: Vec<u8> = organ_values.clone();
    regions.extend([SOFT_TISSUE, LOW_DENSITY]);
    let table = mrt_reference::hu_density_table();
    let mut timepoints = Vec::new();
    let mut skipped = Vec::new();
    let mut masses = BTreeMap::new();
    let mut mass_timepoint = None;
    let liver = organs.iter().find(|(_, n)| *n == "liver").map(|(l, _)| *l);
    // Loads a time point's volumes, corrects its SPECT↔CT alignment (or takes the one given)
    // and splits the liver's hot lesions off; Err(reason) when it cannot be quantified.
    let load = |t: &TimepointEntry,
                aligned: Option<&SpectAlignment>|
     -> Result<Result<Loaded, String>, StageError> {
        let labels_file = seg
            .timepoints
            .iter()
            .find(|s| s.index == t.index)
            .and_then(|s| s.labels.clone());
        let (Some(ct_name), Some(spect_name), Some(hours), Some(labels_name)) =
            (&t.ct, &t.spect, t.hours_post_injection, labels_file)
        else {
            return Ok(Err(format!(
                "time point {}: needs a CT, a SPECT, organ labels and a time after injection ({})",
                t.index,
                t.problems.join("; ")
            )));
        };
        if !t.spect_quantitative {
            return Ok(Err(format!(
                "time point {}: SPECT is not in Bq/mL",
                t.index
            )));
        }
        let ct = read_nifti(&work.join("ingest").join(ct_name))
            .map_err(io_err)?
            .volume;
        let spect = read_nifti(&work.join("ingest").join(spect_name))
            .map_err(io_err)?
            .volume;
        let labels_f = read_nifti(&work.join("segment").join(&labels_name))
            .map_err(io_err)?
            .volume;
        let mut labels: Volume<u8> = labels_f.map(|&l| l.round().clamp(0.0, 255.0) as u8);
        let alignment = match aligned {
            Some(a) => a.clone(),
            None => align_spect_to_ct(
                &spect,
                &labels,
                &organ_values,
                None,
                &SpectAlignOptions {
                    psf_fwhm_mm: cfg.psf_fwhm_mm,
                    review_above_mm: cfg.review_correction_mm,
                    min_r2: cfg.min_alignment_r2,
                    ..SpectAlignOptions::default()
                },
            ),
        };
        let lesions = match liver {
            Some(liver) if cfg.exclude_liver_lesions => split_hot_lesions(
                &mut labels,
                &spect,
                &alignment.spect_to_ct,
                liver,
                LIVER_LESION,
                &LesionOptions {
                    uptake_ratio: cfg.lesion_uptake_ratio,
                    min_volume_ml: cfg.lesion_min_ml,
                    edge_fraction: cfg.lesion_edge_fraction,
                },
            )
            .filter(|l| l.count > 0),
            _ => None,
        };
        let mut kept = organ_values.clone();
        let mut timepoint_regions = regions.clone();
        if lesions.is_some() {
            kept.push(LIVER_LESION);
            timepoint_regions.insert(organ_values.len(), LIVER_LESION);
        }
        Ok(Ok(Loaded {
            ct,
            spect,
            labels,
            hours,
            alignment,
            lesions,
            kept,
            regions: timepoint_regions,
        }))
    };
    // The boundary search looks at every time point before any is measured: its offsets hold
    // for the anatomy, so all time points' SPECTs decide them together.
    // Two time points side by side (keeps two cores busy through the serial parts of the
    // alignment), never more whatever the core count: each holds its volumes and blurred masks,
    // so memory stays that of two. Collected in time-point order.
    let mut alignments = BTreeMap::new();
    let mut residuals_per_timepoint = Vec::new();
    let mut split_per_timepoint = Vec::new();
    let mut first_measurements = BTreeMap::new();
    if cfg.boundary_search_mm > 0.0 {
        for pair in study.timepoints.chunks(2) {
            let searched: Vec<Option<(usize, SpectAlignment, _, _)>> = pair
                .par_iter()
                .map(|t| {
                    let Ok(l) = load(t, None)? else {
                        return Ok(None);
                    };
                    let residuals = boundary_search::timepoint_residuals(
                        &l.spect,
                        &l.ct,
                        &l.labels,
                        &l.kept,
                        &l.regions,
                        &organs,
                        &l.alignment.spect_to_ct,
                        cfg,
                    );
                    let first = first_measurement(&l, &organs, liver, cfg);
                    Ok(Some((t.index, l.alignment, residuals, first)))
                })
                .collect::<Result<_, StageError>>()?;
            for (index, alignment, residuals, first) in searched.into_iter().flatten() {
                residuals_per_timepoint.push((index, residuals));
                if let Some((split, measured)) = first {
                    split_per_timepoint.push((index, split));
                    first_measurements.insert(index, measured);
                }
                alignments.insert(index, alignment);
            }
        }
    }
    let boundaries =
        boundary_search::choose(&residuals_per_timepoint, &split_per_timepoint, &organs, cfg);
    for t in &study.timepoints {
        let Loaded {
            ct,
            spect,
            mut labels,
            hours,
            alignment: a,
            lesions,
            kept,
            regions,
        } = match load(t, alignments.get(&t.index))? {
            Ok(l) => l,
            Err(reason) => {
                skipped.push(reason);
                continue;
            }
        };
        let moved = boundary_search::apply(&mut labels, &boundaries, &organs);
        let contact = contact_of(&labels, &organs, cfg);
        let halo = halo_of(&labels, spect.grid(), liver, lesions.as_ref(), cfg);
        let mut model = RegionModel {
            labels,
            kept,
            regions,
            contact,
            halo,
        };
        let measure = |m: &RegionModel| {
            measure_regions(&spect, &ct, m, &organ_values, &a.spect_to_ct, cfg).ok_or_else(|| {
                StageError::Input(format!(
                    "time point {}: labels and CT grids differ",
                    t.index
                ))
            })
        };
        // The first pass measured these very labels unless a boundary moved.
        let mut measured = match first_measurements.remove(&t.index) {
            Some(m) if moved.iter().all(|&n| n == 0) => m,
            _ => measure(&model)?,
        };
        let spect_voxel_ml = spect.grid().voxel_volume_mm3() / 1000.0;
        let residuals: Vec<Option<ResidualClusters>> = measured
            .1
            .iter()
            .map(|c| c.as_ref().map(|c| c.sizes(spect_voxel_ml)))
            .collect();
        let excluded = if cfg.exclude_uptake_mismatch {
            exclude_foreign_tissue(
                &mut model,
                &mut measured,
                &organs,
                spect.grid(),
                &a.spect_to_ct,
                cfg.uptake_mismatch_min_percent / 100.0,
                measure,
            )?
        } else {
            BTreeMap::new()
        };
        let RegionModel {
            labels,
            regions,
            contact,
            halo,
            ..
        } = model;
        let ct_voxel_ml = labels.grid().voxel_volume_mm3() / 1000.0;
        // Contact-band voxels per label value, in one pass.
        let mut band_voxels = [0usize; 256];
        for (&l, _) in labels.data().iter().zip(&contact).filter(|(_, &c)| c) {
            band_voxels[l as usize] += 1;
        }
        let (q, _) = measured;
        let mut organ_map = BTreeMap::new();
        for (label, name) in &organs {
            let Some(r) = q.iter().find(|r| r.label == *label) else {
                continue;
            };
            let residual = regions
                .iter()
                .position(|r| r == label)
                .and_then(|i| residuals.get(i).copied().flatten());
            if r.volume_ml <= 0.0 {
                continue;
            }
            let gtm = r.gtm_mbq.filter(|g| g.is_finite());
            let activity = match cfg.quantification {
                QuantMethod::Gtm => gtm.unwrap_or(r.psf_recovery_mbq),
                QuantMethod::PsfRecovery => r.psf_recovery_mbq,
                QuantMethod::Voi => r.voi_mbq,
            };
            if !(activity.is_finite() && r.psf_recovery_mbq.is_finite()) {
                skipped.push(format!(
                    "time point {}: {name} too small on the SPECT grid to quantify ({:.1} mL)",
                    t.index, r.volume_ml
                ));
                continue;
            }
            organ_map.insert(
                name.to_string(),
                OrganActivity {
                    activity_mbq: activity,
                    voi_mbq: r.voi_mbq,
                    psf_recovery_mbq: r.psf_recovery_mbq,
                    gtm_mbq: gtm,
                    recovery_coefficient: r.recovery_coefficient,
                    recovery_uncertainty: r.recovery_uncertainty,
                    volume_ml: labels.data().iter().filter(|&&l| l == *label).count() as f64
                        * labels.grid().voxel_volume_mm3()
                        / 1000.0,
                    residual,
                    excluded: excluded.get(label).copied(),
                    contact_band_ml: Some(band_voxels[*label as usize] as f64 * ct_voxel_ml)
                        .filter(|&v| v > 0.0),
                },
            );
        }
        if mass_timepoint.is_none() || t.index == cfg.reference_timepoint {
            mass_timepoint = Some(t.index);
            masses = organs
                .iter()
                .map(|(label, name)| {
                    let m = organ_mass(&labels, &ct, *label, &table);
                    (
                        name.to_string(),
                        Mass {
                            mass_g: m.mass_g,
                            volume_ml: m.volume_ml,
                            mean_hu: if m.mean_hu.is_finite() {
                                m.mean_hu
                            } else {
                                0.0
                            },
                            contrast_suspected: m.contrast_suspected,
                        },
                    )
                })
                .filter(|(_, m)| m.volume_ml > 0.0)
                .collect();
        }
        let ml = spect.grid().voxel_volume_mm3() / 1000.0;
        let fov = spect
            .data()
            .iter()
            .map(|&v| f64::from(v.max(0.0)))
            .sum::<f64>()
            * ml
            / 1e6;
        // The halo's voxels that were fitted as halo: still liver, outside the contact band.
        let halo_ml = halo.map(|(organ, h)| {
            let in_band = |n: usize| contact.get(n).copied().unwrap_or(false);
            labels
                .data()
                .iter()
                .zip(&h)
                .enumerate()
                .filter(|&(n, (&l, &h))| h > 0 && l == organ && !in_band(n))
                .count() as f64
                * ct_voxel_ml
        });
        let liver_lesions = lesions.map(|l| LiverLesions {
            count: l.count,
            volume_ml: l.volume_ml,
            halo_ml: halo_ml.filter(|&v| v > 0.0),
            activity_mbq: q.iter().find(|r| r.label == LIVER_LESION).and_then(|r| {
                let a = match cfg.quantification {
                    QuantMethod::Gtm => r.gtm_mbq.unwrap_or(r.psf_recovery_mbq),
                    QuantMethod::PsfRecovery => r.psf_recovery_mbq,
                    QuantMethod::Voi => r.voi_mbq,
                };
                Some(a).filter(|a| a.is_finite())
            }),
        });
        timepoints.push(QuantTimepoint {
            index: t.index,
            hours_post_injection: hours,
            alignment: a,
            organs: organ_map,
            fov_activity_mbq: fov,
            liver_lesions,
        });
        (ctx.tick)(Stage::Quantify);
    }
    let artifact = QuantArtifact {
        schema: "mrtdose.quantification.v1".into(),
        method: cfg.quantification,
        psf_fwhm_mm: cfg.psf_fwhm_mm,
        mass_timepoint,
        masses,
        timepoints,
        skipped,
        boundaries,
    };
    write_json(&out.join("quantification.json"), &artifact)?;
    Ok(artifact)
}

/// Per CT voxel of `labels`, whether it lies in an organ's contact band (site setting
/// `contact_band_mm`) or in a kidney's surface band (`kidney_surface_band_mm`); empty when both
/// are off. Drawn on the labels before the uptake exclusion: a kidney's edge facing tissue the
/// exclusion takes out later has no band.
fn contact_of(
    labels: &Volume<u8>,
    organs: &[(u8, &str)],
    cfg: &crate::config::SiteConfig,
) -> Vec<bool> {
    let values: Vec<u8> = organs.iter().map(|(l, _)| *l).collect();
    let mut band = if cfg.contact_band_mm > 0.0 {
        contact_band(labels, &values, cfg.contact_band_mm)
    } else {
        Vec::new()
    };
    if cfg.kidney_surface_band_mm > 0.0 {
        if band.is_empty() {
            band = vec![false; labels.data().len()];
        }
        for (kidney, _) in organs.iter().filter(|(_, n)| is_kidney(n)) {
            mark_surface_band(labels, *kidney, cfg.kidney_surface_band_mm, &mut band);
        }
    }
    band
}

/// The liver's halo around its hot lesions (site setting `lesion_halo_mm`), in as many shells
/// (up to [`HALO_SHELLS`]) as are at least one SPECT voxel (`spect`'s largest spacing) thick;
/// `None` when off, without a liver, without lesions or with no liver voxel near them.
fn halo_of(
    labels: &Volume<u8>,
    spect: &mrt_core::Grid,
    liver: Option<u8>,
    lesions: Option<&LesionSplit>,
    cfg: &crate::config::SiteConfig,
) -> Option<(u8, Vec<u8>)> {
    let liver = liver?;
    lesions?;
    if cfg.lesion_halo_mm <= 0.0 {
        return None;
    }
    let [sx, sy, sz] = spect.spacing_mm;
    let voxel_mm = sx.max(sy).max(sz).max(1e-6);
    let shells = ((cfg.lesion_halo_mm / voxel_mm).floor() as u8).clamp(1, HALO_SHELLS);
    let halo = lesion_halo(labels, liver, LIVER_LESION, cfg.lesion_halo_mm, shells);
    halo.iter().any(|&h| h > 0).then_some((liver, halo))
}

/// A time point's first measurement, of its labels as the CT network drew them (before any
/// boundary moves), and the organs (label values of `organs`) whose masks its residual splits in
/// two: the boundary search holds their pairs back, and the measurement stands for the time
/// point's own where no boundary moved. `None` when labels and CT grids differ.
fn first_measurement(
    l: &Loaded,
    named: &[(u8, &str)],
    liver: Option<u8>,
    cfg: &crate::config::SiteConfig,
) -> Option<(Vec<u8>, Measurement)> {
    let model = RegionModel {
        labels: l.labels.clone(),
        kept: l.kept.clone(),
        regions: l.regions.clone(),
        contact: contact_of(&l.labels, named, cfg),
        halo: halo_of(&l.labels, l.spect.grid(), liver, l.lesions.as_ref(), cfg),
    };
    let organs: Vec<u8> = named.iter().map(|&(label, _)| label).collect();
    let (q, clusters) = measure_regions(
        &l.spect,
        &l.ct,
        &model,
        &organs,
        &l.alignment.spect_to_ct,
        cfg,
    )?;
    let min_share = cfg.uptake_mismatch_min_percent / 100.0;
    let split = organs
        .iter()
        .copied()
        .filter(|&organ| {
            model
                .regions
                .iter()
                .position(|&r| r == organ)
                .and_then(|i| Some((clusters.get(i)?.as_ref()?, q.get(i)?.voi_voxels)))
                .is_some_and(|(c, voi)| split_mask(c, voi, min_share))
        })
        .collect();
    Some((split, (q, clusters)))
}

/// One measurement of a time point's regions: the GTM (with PSF recovery and plain VOI) over
/// `model.regions`, where the CT labels in `model.kept` are regions as they are and the rest of
/// the body is split by CT number, and each region's residual clusters. With contact bands
/// (`model.contact`; `organs` the organ label values, in [`ORGANS`] order), each organ's
/// band is fitted as a region of its own and the organ's GTM activity is the concentration of
/// the rest of its mask times the whole mask's volume (VOI, recovery and residual stay of the
/// whole mask). The liver's lesion halo (`model.halo`) is fitted the same way, each shell a
/// region of its own, and also left out of the liver's concentration. A rest of the mask
/// without a solvable non-negative concentration keeps the whole mask's value (logged).
/// `None` when labels and CT grids differ.
fn measure_regions(
    spect: &Volume<f32>,
    ct: &Volume<f32>,
    model: &RegionModel,
    organs: &[u8],
    spect_to_ct: &mrt_core::transform::RigidTransform,
    cfg: &crate::config::SiteConfig,
) -> Option<(Vec<RegionActivity>, Vec<Option<ClusterVoxels>>)> {
    let RegionModel {
        labels,
        kept,
        regions,
        contact,
        halo,
    } = model;
    if contact.len() != labels.data().len() && !contact.is_empty() {
        return None;
    }
    // The labels with each organ's band relabelled; copied only when there are bands.
    let mut split = Cow::Borrowed(labels);
    let mut bands: Vec<(u8, u8)> = Vec::new();
    if !contact.is_empty() {
        for (l, _) in split
            .to_mut()
            .data_mut()
            .iter_mut()
            .zip(contact)
            .filter(|(_, &c)| c)
        {
            if let Some(i) = organs.iter().position(|o| o == l) {
                let band = CONTACT_BAND_BASE + i as u8;
                if !bands.iter().any(|&(_, b)| b == band) {
                    bands.push((*l, band));
                }
                *l = band;
            }
        }
        bands.sort_unstable();
    }
    if let Some((organ, halo)) = halo
        .as_ref()
        .filter(|(_, h)| h.len() == labels.data().len())
    {
        let mut present = [false; HALO_SHELLS as usize];
        for (l, &h) in split
            .to_mut()
            .data_mut()
            .iter_mut()
            .zip(halo)
            .filter(|(l, &h)| h > 0 && **l == *organ)
        {
            *l = LESION_HALO_BASE + h - 1;
            present[usize::from(h - 1)] = true;
        }
        for (shell, _) in (0..HALO_SHELLS).zip(present).filter(|(_, p)| *p) {
            bands.push((*organ, LESION_HALO_BASE + shell));
        }
    }
    let mut split_kept = kept.to_vec();
    let mut split_regions = regions.to_vec();
    for &(_, band) in &bands {
        split_kept.push(band);
        split_regions.insert(split_regions.len().saturating_sub(2), band);
    }
    let regions_map = body_regions(&split, ct, &split_kept)?;
    let split_masks = fractional_masks(&regions_map, spect.grid(), spect_to_ct, &split_regions, 3);
    let split_blurred = blur_masks(&split_masks, cfg.psf_fwhm_mm);
    if bands.is_empty() {
        return Some(measure_whole(
            spect,
            &split_masks,
            &split_blurred,
            regions,
            cfg,
        ));
    }
    let index = |l: u8| split_regions.iter().position(|&r| r == l);
    let mut masks = Vec::with_capacity(regions.len());
    let mut blurred = Vec::with_capacity(regions.len());
    for &r in regions {
        let i = index(r)?;
        let (mut m, mut b) = (split_masks[i].clone(), split_blurred[i].clone());
        for j in bands
            .iter()
            .filter(|(o, _)| *o == r)
            .filter_map(|&(_, b)| index(b))
        {
            add_into(&mut m, &split_masks[j]);
            add_into(&mut b, &split_blurred[j]);
        }
        masks.push(m);
        blurred.push(b);
    }
    let (mut q, clusters) = measure_whole(spect, &masks, &blurred, regions, cfg);
    let split_q = quantify_blurred(
        spect,
        &split_masks,
        &split_blurred,
        &split_regions,
        cfg.psf_fwhm_mm,
        0.0,
    );
    let mut banded: Vec<u8> = bands.iter().map(|&(o, _)| o).collect();
    banded.sort_unstable();
    banded.dedup();
    for organ in banded {
        let core = split_q
            .iter()
            .find(|r| r.label == organ)
            .and_then(RegionActivity::gtm_concentration_bq_per_ml)
            // A core the band's region took activity from (down to negative) keeps the whole
            // mask's value.
            .filter(|c| c.is_finite() && *c >= 0.0);
        if core.is_none() {
            tracing::warn!(
                organ,
                "the rest of the organ's mask beside its contact band or lesion halo has no \
                 solvable non-negative concentration: the whole mask's is kept"
            );
        }
        if let (Some(c), Some(whole)) = (core, q.iter_mut().find(|r| r.label == organ)) {
            whole.gtm_mbq = Some(c * whole.volume_ml / 1e6);
        }
    }
    Some((q, clusters))
}

/// GTM, recovery and VOI of `masks` (fractions on the SPECT grid, with their blurred copies) and
/// the residual clusters of that fit.
fn measure_whole(
    spect: &Volume<f32>,
    masks: &[Volume<f32>],
    blurred: &[Volume<f32>],
    regions: &[u8],
    cfg: &crate::config::SiteConfig,
) -> (Vec<RegionActivity>, Vec<Option<ClusterVoxels>>) {
    let q = quantify_blurred(
        spect,
        masks,
        blurred,
        regions,
        cfg.psf_fwhm_mm,
        cfg.psf_fwhm_uncertainty_mm,
    );
    let concentrations: Vec<Option<f64>> = q
        .iter()
        .map(RegionActivity::gtm_concentration_bq_per_ml)
        .collect();
    let clusters = residual_cluster_voxels(
        spect,
        masks,
        blurred,
        &concentrations,
        cfg.psf_fwhm_mm,
        cfg.uptake_mismatch_fraction,
    );
    (q, clusters)
}

/// `into += other`, voxel by voxel (same grid).
fn add_into(into: &mut Volume<f32>, other: &Volume<f32>) {
    for (a, b) in into.data_mut().iter_mut().zip(other.data()) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mrt_core::{Grid, RigidTransform};

    const KIDNEY: u8 = 2;
    const SPLEEN: u8 = 4;

    /// Kidney (i < `split`) beside spleen (i ≥ `split`) in a body of soft tissue, 2 mm voxels.
    fn labels(split: usize) -> Volume<u8> {
        let dims = [40, 30, 30];
        let grid = Grid::axis_aligned(dims, [2.0; 3], [0.0; 3]).expect("grid");
        let mut data = vec![0u8; 40 * 30 * 30];
        for k in 8..22 {
            for j in 8..22 {
                for i in 8..32 {
                    data[i + 40 * (j + 30 * k)] = if i < split { KIDNEY } else { SPLEEN };
                }
            }
        }
        Volume::new(grid, data).expect("labels")
    }

    /// SPECT = Σ concentration × (truth region ⊗ PSF): the GTM's own forward model, for
    /// `truth` labels (the ones in `concentrations` kept as they are, the rest of the body
    /// split by CT number) on an identity alignment.
    fn forward_spect(
        truth: &Volume<u8>,
        ct: &Volume<f32>,
        spect_grid: &Grid,
        concentrations: &[(u8, f32)],
        psf_fwhm_mm: f64,
    ) -> Volume<f32> {
        let regions: Vec<u8> = concentrations.iter().map(|&(r, _)| r).collect();
        let body = body_regions(truth, ct, &regions).expect("regions");
        let masks = fractional_masks(&body, spect_grid, &RigidTransform::identity(), &regions, 3);
        let blurred = blur_masks(&masks, psf_fwhm_mm);
        let mut spect = Volume::filled(spect_grid.clone(), 0.0f32);
        for (b, &(_, c)) in blurred.iter().zip(concentrations) {
            for (s, v) in spect.data_mut().iter_mut().zip(b.data()) {
                *s += c * v;
            }
        }
        spect
    }

    /// The kidney's GTM concentration (Bq/mL) measured with a kidney mask that reaches one voxel
    /// (2 mm) into a spleen of four times its concentration, with and without contact bands.
    fn kidney_concentration(band_mm: f64) -> f64 {
        let truth = labels(20);
        let ct = truth.map(|_| 40.0f32);
        let spect_grid = Grid::axis_aligned([20, 15, 15], [4.0; 3], [1.0; 3]).expect("grid");
        let id = RigidTransform::identity();
        let cfg = crate::config::SiteConfig {
            contact_band_mm: band_mm,
            ..Default::default()
        };
        let spect = forward_spect(
            &truth,
            &ct,
            &spect_grid,
            &[(KIDNEY, 1000.0), (SPLEEN, 4000.0), (SOFT_TISSUE, 50.0)],
            cfg.psf_fwhm_mm,
        );
        let predicted = labels(21);
        let organs = [KIDNEY, SPLEEN];
        let model = RegionModel {
            contact: if band_mm > 0.0 {
                contact_band(&predicted, &organs, band_mm)
            } else {
                Vec::new()
            },
            labels: predicted,
            kept: organs.to_vec(),
            regions: vec![KIDNEY, SPLEEN, SOFT_TISSUE, LOW_DENSITY],
            halo: None,
        };
        let (q, _) = measure_regions(&spect, &ct, &model, &organs, &id, &cfg).expect("measured");
        let kidney = q.iter().find(|r| r.label == KIDNEY).expect("kidney");
        kidney.gtm_concentration_bq_per_ml().expect("solved")
    }

    #[test]
    fn a_contact_band_keeps_a_neighbours_slab_out_of_the_organs_concentration() {
        let without = kidney_concentration(0.0);
        let with = kidney_concentration(4.0);
        // The whole mask (12 kidney voxels and 1 spleen voxel deep) takes part of the slab's
        // excess into the kidney: +5.5 % here. With the band, the kidney's concentration comes
        // from the 11 voxels away from the spleen: −0.6 % here.
        assert!(without > 1040.0, "without bands {without}");
        assert!((with - 1000.0).abs() < 15.0, "with a 4 mm band {with}");
    }

    const LIVER: u8 = 1;

    /// A 60 mm liver cube (2 mm voxels) in soft tissue with a tumour of radius `r_mm` at its
    /// centre labelled `lesion`.
    fn liver_labels(r_mm: f64, lesion: u8) -> Volume<u8> {
        let dims = [40, 40, 40];
        let grid = Grid::axis_aligned(dims, [2.0; 3], [0.0; 3]).expect("grid");
        let data = (0..40 * 40 * 40)
            .map(|n| {
                let p = [n % 40, (n / 40) % 40, n / 1600].map(|i| i as f64 * 2.0);
                let r2: f64 = p.iter().map(|c| (c - 40.0).powi(2)).sum();
                if !p.iter().all(|c| (10.0..70.0).contains(c)) {
                    0
                } else if r2 < r_mm * r_mm {
                    lesion
                } else {
                    LIVER
                }
            })
            .collect();
        Volume::new(grid, data).expect("labels")
    }

    /// The liver's GTM concentration (Bq/mL) next to a tumour of 30 times its concentration
    /// (radius 12 mm) whose lesion label holds only its inner 8 mm, with a halo of `halo_mm`.
    fn liver_concentration_beside_a_trimmed_tumour(halo_mm: f64) -> f64 {
        let truth = liver_labels(12.0, LIVER_LESION);
        let ct = truth.map(|_| 55.0f32);
        let spect_grid = Grid::axis_aligned([20, 20, 20], [4.0; 3], [1.0; 3]).expect("grid");
        let id = RigidTransform::identity();
        let cfg = crate::config::SiteConfig {
            lesion_halo_mm: halo_mm,
            ..Default::default()
        };
        let spect = forward_spect(
            &truth,
            &ct,
            &spect_grid,
            &[
                (LIVER, 1000.0),
                (LIVER_LESION, 30_000.0),
                (SOFT_TISSUE, 50.0),
            ],
            cfg.psf_fwhm_mm,
        );
        let predicted = liver_labels(8.0, LIVER_LESION);
        let organs = [LIVER];
        let lesion = LesionSplit {
            count: 1,
            volume_ml: 2.1,
            organ_median: 1000.0,
        };
        let model = RegionModel {
            contact: Vec::new(),
            halo: halo_of(&predicted, &spect_grid, Some(LIVER), Some(&lesion), &cfg),
            labels: predicted,
            kept: vec![LIVER, LIVER_LESION],
            regions: vec![LIVER, LIVER_LESION, SOFT_TISSUE, LOW_DENSITY],
        };
        let (q, _) = measure_regions(&spect, &ct, &model, &organs, &id, &cfg).expect("measured");
        let liver = q.iter().find(|r| r.label == LIVER).expect("liver");
        liver.gtm_concentration_bq_per_ml().expect("solved")
    }

    #[test]
    fn a_lesion_halo_keeps_a_missed_tumour_rim_out_of_the_livers_concentration() {
        let without = liver_concentration_beside_a_trimmed_tumour(0.0);
        let with = liver_concentration_beside_a_trimmed_tumour(15.0);
        assert!(without > 1200.0, "without a halo {without}");
        assert!((with - 1000.0).abs() < 25.0, "with a 15 mm halo {with}");
    }

    /// A kidney sphere of radius `r_mm` (2 mm voxels) in soft tissue.
    fn kidney_sphere(r_mm: f64) -> Volume<u8> {
        let dims = [40, 40, 40];
        let grid = Grid::axis_aligned(dims, [2.0; 3], [0.0; 3]).expect("grid");
        let data = (0..40 * 40 * 40)
            .map(|n| {
                let p = [n % 40, (n / 40) % 40, n / 1600].map(|i| i as f64 * 2.0);
                let r2: f64 = p.iter().map(|c| (c - 40.0).powi(2)).sum();
                if r2 < r_mm * r_mm {
                    KIDNEY
                } else {
                    0
                }
            })
            .collect();
        Volume::new(grid, data).expect("labels")
    }

    /// The kidney's GTM activity per mL of its mask (Bq/mL) for a kidney of radius 20 mm at
    /// 1000 Bq/mL in soft tissue at 50 Bq/mL, measured with a mask of radius `mask_mm`, with a
    /// surface band of `band_mm`: what its dose follows, since the mass is the mask's.
    fn kidney_activity_per_mask_ml(mask_mm: f64, band_mm: f64) -> f64 {
        let truth = kidney_sphere(20.0);
        let ct = truth.map(|_| 40.0f32);
        let spect_grid = Grid::axis_aligned([20, 20, 20], [4.0; 3], [1.0; 3]).expect("grid");
        let id = RigidTransform::identity();
        let cfg = crate::config::SiteConfig {
            kidney_surface_band_mm: band_mm,
            ..Default::default()
        };
        let spect = forward_spect(
            &truth,
            &ct,
            &spect_grid,
            &[(KIDNEY, 1000.0), (SOFT_TISSUE, 50.0)],
            cfg.psf_fwhm_mm,
        );
        let predicted = kidney_sphere(mask_mm);
        let model = RegionModel {
            contact: contact_of(&predicted, &[(KIDNEY, "kidney_left")], &cfg),
            halo: None,
            labels: predicted,
            kept: vec![KIDNEY],
            regions: vec![KIDNEY, SOFT_TISSUE, LOW_DENSITY],
        };
        let (q, _) = measure_regions(&spect, &ct, &model, &[KIDNEY], &id, &cfg).expect("measured");
        let kidney = q.iter().find(|r| r.label == KIDNEY).expect("kidney");
        kidney.gtm_mbq.expect("solved") * 1e6 / kidney.volume_ml
    }

    #[test]
    fn a_kidney_surface_band_keeps_a_mask_too_wide_from_lowering_the_dose() {
        // Without the band a mask of radius 21, 22 or 23 mm holds about the kidney's activity
        // in more mL: 918, 868 and 775 Bq per mask mL here. With a 3 mm band the
        // concentration comes from the mask's core, inside the kidney: 1013, 1007, 991.
        for mask_mm in [21.0, 22.0, 23.0] {
            let without = kidney_activity_per_mask_ml(mask_mm, 0.0);
            let with = kidney_activity_per_mask_ml(mask_mm, 3.0);
            assert!(
                without < 930.0,
                "radius {mask_mm} mm without the band {without}"
            );
            assert!(
                (with - 1000.0).abs() < 20.0,
                "radius {mask_mm} mm with the band {with}"
            );
        }
        // A right mask stays right.
        let exact = kidney_activity_per_mask_ml(20.0, 3.0);
        assert!(
            (exact - 1000.0).abs() < 1.0,
            "the true mask with the band {exact}"
        );
        // A mask too narrow leaves kidney outside, which the band takes up: half a voxel too
        // narrow, the band halves the error (970 against 1075); 3 mm too narrow, it
        // overshoots (813 against 1249), as docs/site-config.md says.
        let narrow_without = kidney_activity_per_mask_ml(19.0, 0.0);
        let narrow_with = kidney_activity_per_mask_ml(19.0, 3.0);
        assert!(
            (narrow_with - 1000.0).abs() < (narrow_without - 1000.0).abs() / 2.0,
            "radius 19 mm: {narrow_with} with, {narrow_without} without the band"
        );
    }
}
