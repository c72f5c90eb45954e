//! Segment: organ labels on every time point's CT with the ONNX model, on each CT's own grid.

use std::path::Path;

use mrt_io::nifti_io::{read_nifti, write_nifti};
use mrt_segment::postprocess::OrganSummary;
use serde::{Deserialize, Serialize};

use super::ingest::StudyManifest;
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

/// Runs the stage: `work/ingest/` → `out/labels_tpN.nii.gz` and `out/segmentation.json`.
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
    let mut timepoints = Vec::new();
    for t in study.timepoints.iter().filter(|t| t.ct.is_some()) {
        let name = t.ct.as_deref().unwrap_or_default();
        let ct = read_nifti(&work.join("ingest").join(name))
            .map_err(io_err)?
            .volume;
        let entry = match seg.segment(&ct) {
            Ok(s) => {
                let file = format!("labels_tp{}.nii.gz", t.index);
                write_nifti(&out.join(&file), &s.labels).map_err(io_err)?;
                TimepointLabels {
                    index: t.index,
                    labels: Some(file),
                    organs: s.organs,
                    notes: s.notes,
                    error: None,
                    seconds: Some(s.seconds),
                }
            }
            Err(e) => TimepointLabels {
                index: t.index,
                labels: None,
                organs: Vec::new(),
                notes: Vec::new(),
                error: Some(e.to_string()),
                seconds: None,
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
