//! Segment: organ labels on every time point's CT with the ONNX model, on each CT's own grid.
//! With `fuse_timepoints` (the default), each time point's labels come from the mean of all
//! registered time points' class probabilities, brought into its frame by the CT↔CT
//! registration (`mrt_segment::fusion`); each time point's own, unfused volumes are kept for QA.

use std::collections::BTreeMap;
use std::path::Path;

use mrt_core::{Grid, Transform, Volume};
use mrt_io::nifti_io::{read_nifti, write_nifti};
use mrt_segment::fusion::{fuse, Contribution, Probabilities};
use mrt_segment::postprocess::OrganSummary;
use mrt_segment::{Inferred, SegmentError};
use serde::{Deserialize, Serialize};

use super::ingest::StudyManifest;
use super::register::RegistrationArtifact;
use super::{io_err, read_json, write_json, Stage, StageContext, StageError};

/// One time point's segmentation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimepointLabels {
    /// Time point (1-based).
    pub index: usize,
    /// `labels_tpN.nii.gz` when segmented.
    pub labels: Option<String>,
    /// Organ volumes and flags.
    pub organs: Vec<OrganSummary>,
    /// Notes (HU check, clean-up).
    pub notes: Vec<String>,
    /// Why there are no labels.
    pub error: Option<String>,
    /// Seconds: canonicalise, infer, map back and clean up.
    pub seconds: Option<[f64; 3]>,
    /// The sliding window's overlap this CT was inferred with: the model card's `overlap`, or
    /// its `fused_overlap` for a CT fused with other registered CTs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_overlap: Option<f64>,
    /// The model-grid shifts (fractions of a model voxel) whose probabilities were averaged with
    /// the unshifted grid's: the card's `grid_shifts_voxels` for a CT inferred on its own, none
    /// for a CT fused with other registered CTs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grid_shifts_voxels: Vec<[f64; 3]>,
    /// Time points whose probabilities were fused into these labels (this one included); empty
    /// when the labels are this CT's alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fused_with: Vec<usize>,
    /// Organ volumes (mL) of this CT's own segmentation, before fusion (model grid): what the
    /// `organ_volume_change` QA compares across time points.
    #[serde(
        default,
        rename = "unfused_volume_mL",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub unfused_volume_ml: BTreeMap<String, f64>,
}

/// `segment/segmentation.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentationArtifact {
    /// `mrtdose.segmentation.v1`.
    pub schema: String,
    /// Model name and version.
    pub model: String,
    /// SHA-256 of the ONNX file.
    pub model_sha256: String,
    /// Label value → organ name.
    pub labels: Vec<String>,
    /// Execution provider that ran.
    pub provider: String,
    /// Per time point with a CT.
    pub timepoints: Vec<TimepointLabels>,
}

/// Runs the stage: `work/ingest/` (and `work/register/` for fusion) → `out/labels_tpN.nii.gz`
/// and `out/segmentation.json`.
pub fn run(
    ctx: &StageContext,
    work: &Path,
    out: &Path,
) -> Result<SegmentationArtifact, StageError> {
    let study: StudyManifest = read_json(&work.join("ingest/study.json"))?;
    let seg = ctx
        .segmenter
        .as_ref()
        .ok_or_else(|| StageError::Input("no segmentation model loaded".into()))?;
    let bundle = seg.bundle();
    let registration: Option<RegistrationArtifact> = if ctx.config.fuse_timepoints {
        let path = work.join("register/registration.json");
        path.exists().then(|| read_json(&path)).transpose()?
    } else {
        None
    };
    // 1. Every CT through the model; a CT that will be fused with other registered CTs with the
    // card's `fused_overlap` and no grid shifts (fewer views: the fusion averages the CTs'
    // instead).
    let is_registered = |index: usize| registration.as_ref().is_some_and(|r| r.of(index).is_some());
    let read_ct = |index: usize| -> Result<Volume<f32>, StageError> {
        let name = study
            .timepoints
            .iter()
            .find(|t| t.index == index)
            .and_then(|t| t.ct.as_deref())
            .unwrap_or_default();
        Ok(read_nifti(&work.join("ingest").join(name))
            .map_err(io_err)?
            .volume)
    };
    let with_ct: Vec<usize> = study
        .timepoints
        .iter()
        .filter(|t| t.ct.is_some())
        .map(|t| t.index)
        .collect();
    let fusing = with_ct.iter().filter(|&&i| is_registered(i)).count() >= 2;
    let mut inferred: Vec<Inference> = Vec::new();
    for &index in &with_ct {
        let ct = read_ct(index)?;
        let for_fusion = fusing && is_registered(index);
        let result = if for_fusion {
            seg.infer_for_fusion(&ct)
        } else {
            seg.infer(&ct)
        };
        inferred.push((index, ct.grid().clone(), for_fusion, result));
    }
    // 1b. A CT inferred for fusion that nothing will be fused into after all (the other CTs'
    // inference failed, or its transform has no inverse) is inferred again on its own, where the
    // card's views for fusion differ from its own.
    let card = &bundle.card;
    let fusion_view_differs = card.fused_overlap.is_some_and(|o| o != card.overlap)
        || !card.grid_shifts_voxels.is_empty();
    let unfused: Vec<usize> = {
        let registered = registered_probabilities(&inferred, registration.as_ref());
        inferred
            .iter()
            .filter(|(index, _, for_fusion, result)| {
                result.is_ok()
                    && *for_fusion
                    && fusion_view_differs
                    && contributions(*index, &registered).is_empty()
            })
            .map(|(index, ..)| *index)
            .collect()
    };
    for (index, _, for_fusion, result) in inferred.iter_mut().filter(|(i, ..)| unfused.contains(i))
    {
        let ct = read_ct(*index)?;
        *for_fusion = false;
        *result = seg.infer(&ct);
    }
    // 2. Registered time points (reference world → CT world), for fusion.
    let registered = registered_probabilities(&inferred, registration.as_ref());
    // 3. Labels on each CT's grid, fused where registered.
    let mut timepoints = Vec::new();
    for (index, grid, _, result) in &inferred {
        let entry = match result {
            Ok(own) => {
                let others = contributions(*index, &registered);
                let (probabilities, fused_with) = if others.is_empty() {
                    (None, Vec::new())
                } else {
                    let mut with: Vec<usize> = others.iter().map(|(i, _)| *i).collect();
                    with.push(*index);
                    with.sort_unstable();
                    let parts: Vec<Contribution<'_>> = others.into_iter().map(|(_, c)| c).collect();
                    (Some(fuse(&own.probabilities, &parts)), with)
                };
                let s = seg.label(
                    probabilities.as_ref().unwrap_or(&own.probabilities),
                    grid,
                    own,
                );
                let file = format!("labels_tp{index}.nii.gz");
                write_nifti(&out.join(&file), &s.labels).map_err(io_err)?;
                TimepointLabels {
                    index: *index,
                    labels: Some(file),
                    organs: s.organs,
                    notes: s.notes,
                    error: None,
                    seconds: Some(s.seconds),
                    window_overlap: Some(own.window_overlap),
                    grid_shifts_voxels: own.grid_shifts_voxels.clone(),
                    unfused_volume_ml: if fused_with.is_empty() {
                        BTreeMap::new()
                    } else {
                        argmax_volumes_ml(&own.probabilities, &bundle.label_names)
                    },
                    fused_with,
                }
            }
            Err(e) => TimepointLabels {
                index: *index,
                labels: None,
                organs: Vec::new(),
                notes: Vec::new(),
                error: Some(e.to_string()),
                seconds: None,
                window_overlap: None,
                grid_shifts_voxels: Vec::new(),
                fused_with: Vec::new(),
                unfused_volume_ml: BTreeMap::new(),
            },
        };
        (ctx.tick)(Stage::Segment);
        timepoints.push(entry);
    }
    let artifact = SegmentationArtifact {
        schema: "mrtdose.segmentation.v1".into(),
        model: format!("{} {}", bundle.card.name, bundle.card.version),
        model_sha256: bundle.card.sha256.clone(),
        labels: bundle.label_names.clone(),
        provider: seg.provider().into(),
        timepoints,
    };
    write_json(&out.join("segmentation.json"), &artifact)?;
    Ok(artifact)
}

/// One CT's inference: time point, CT grid, whether it was inferred for fusion, the result.
type Inference = (usize, Grid, bool, Result<Inferred, SegmentError>);

/// The successfully inferred time points that the registration places (reference world → CT
/// world), for fusion.
fn registered_probabilities<'a>(
    inferred: &'a [Inference],
    registration: Option<&'a RegistrationArtifact>,
) -> Vec<(usize, &'a Probabilities, &'a Transform)> {
    inferred
        .iter()
        .filter_map(|(index, _, _, r)| {
            let p = &r.as_ref().ok()?.probabilities;
            let t = registration?.of(*index)?;
            Some((*index, p, t))
        })
        .collect()
}

/// The other registered time points as seen from time point `own`: own CT world → reference
/// world → their CT world. Empty when `own` is not registered.
fn contributions<'a>(
    own: usize,
    registered: &[(usize, &'a Probabilities, &Transform)],
) -> Vec<(usize, Contribution<'a>)> {
    let Some(own_to_reference) = registered
        .iter()
        .find(|(i, _, _)| *i == own)
        .and_then(|(_, _, t)| t.inverse().ok())
    else {
        return Vec::new();
    };
    registered
        .iter()
        .filter(|(i, _, _)| *i != own)
        .map(|(i, p, t)| {
            (
                *i,
                Contribution {
                    probabilities: p,
                    own_to_other: t.compose(&own_to_reference).to_affine(),
                },
            )
        })
        .collect()
}

/// Organ volumes (mL) of the per-voxel most probable class on the model grid.
fn argmax_volumes_ml(p: &Probabilities, names: &[String]) -> BTreeMap<String, f64> {
    let n = p.grid.len();
    let mut counts = vec![0usize; p.channels];
    for o in 0..n {
        let best = (0..p.channels)
            .max_by(|&a, &b| p.data[a * n + o].total_cmp(&p.data[b * n + o]))
            .unwrap_or(0);
        counts[best] += 1;
    }
    let ml = p.grid.voxel_volume_mm3() / 1000.0;
    names
        .iter()
        .zip(counts)
        .skip(1)
        .map(|(name, c)| (name.clone(), c as f64 * ml))
        .collect()
}
