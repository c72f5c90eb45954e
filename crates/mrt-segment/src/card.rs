//! The model card (`mrtdose.model-card.v1`): what a segmentation model expects and returns.
//! Documented for sites in `models/README.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::SegmentError;
use crate::refine::IntensityRefinement;

/// Input description.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardInput {
    /// Graph input name.
    pub name: String,
    /// Must be `NCDHW`.
    pub layout: String,
    /// Must be `LPS`: W toward patient left, H toward posterior, D toward superior.
    pub orientation: String,
    /// Voxel spacing (mm) of the model grid, as [W, H, D] = [x, y, z].
    pub spacing_mm: [f64; 3],
}

/// Output description.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardOutput {
    /// Graph output name.
    pub name: String,
    /// Must be `NCDHW`.
    pub layout: String,
    /// `logits` (softmax applied here) or `probabilities`.
    pub kind: String,
}

/// Intensity normalisation: `x = (clip(HU, lo, hi) − subtract) / divide`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardIntensity {
    /// HU clipping window.
    pub clip_hu: [f32; 2],
    /// Subtracted after clipping.
    pub subtract: f32,
    /// Divisor after subtraction.
    pub divide: f32,
}

/// The model card.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    /// `mrtdose.model-card.v1`.
    pub schema: String,
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// ONNX file name, relative to the card.
    pub onnx: String,
    /// Lower-case hex SHA-256 of the ONNX file.
    pub sha256: String,
    /// ONNX opset.
    #[serde(default)]
    pub opset: Option<u32>,
    /// Output channel → label name; "0" must be background.
    pub labels: BTreeMap<String, String>,
    /// Input.
    pub input: CardInput,
    /// Output.
    pub output: CardOutput,
    /// Intensity normalisation.
    pub intensity: CardIntensity,
    /// Sliding-window patch [D, H, W] in model voxels.
    pub patch_size: [usize; 3],
    /// Overlap between neighbouring patches (0 ≤ overlap < 1).
    pub overlap: f64,
    /// Overlap for a caller that averages the probabilities of several registered CTs of one
    /// patient (the pipeline's `fuse_timepoints`), where fewer windows per CT can do; absent:
    /// `overlap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fused_overlap: Option<f64>,
    /// Test-time grid shifts: for each `[x, y, z]` (fractions of a model voxel, each in
    /// `(-1, 1)`), the network also runs on the model grid moved by that much, and the
    /// probabilities of all grids are averaged on the unshifted one. Averages out how the organ
    /// edges fall between the model's voxels; empty: the unshifted grid only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grid_shifts_voxels: Vec<[f64; 3]>,
    /// Every spatial input dimension must be a multiple of this.
    #[serde(default = "one")]
    pub size_multiple: usize,
    /// Intensity refinement of the probabilities near organ boundaries (`refine.rs`); absent:
    /// the network's probabilities are used as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity_refinement: Option<IntensityRefinement>,
    /// Anything else (training provenance, validation figures) is kept as given.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn one() -> usize {
    1
}

/// A card with its directory and the checked ONNX path.
#[derive(Debug, Clone)]
pub struct ModelBundle {
    /// The card.
    pub card: ModelCard,
    /// Path of the card file.
    pub card_path: PathBuf,
    /// Path of the ONNX file (hash verified).
    pub onnx_path: PathBuf,
    /// Label values in channel order (index = channel).
    pub label_names: Vec<String>,
}

impl ModelBundle {
    /// Reads `dir/model-card.json`, validates it and verifies the ONNX file's SHA-256.
    pub fn load(dir: &Path) -> Result<Self, SegmentError> {
        let card_path = dir.join("model-card.json");
        let bad = |problem: String| SegmentError::Card {
            path: card_path.clone(),
            problem,
        };
        let text =
            std::fs::read_to_string(&card_path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let card: ModelCard =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a model card: {e}")))?;
        if card.schema != "mrtdose.model-card.v1" {
            return Err(bad(format!(
                "schema is {:?}, expected \"mrtdose.model-card.v1\"",
                card.schema
            )));
        }
        for (field, value, expected) in [
            ("input.layout", &card.input.layout, "NCDHW"),
            ("input.orientation", &card.input.orientation, "LPS"),
            ("output.layout", &card.output.layout, "NCDHW"),
        ] {
            if value != expected {
                return Err(bad(format!("{field} is {value:?}, expected {expected:?}")));
            }
        }
        if !matches!(card.output.kind.as_str(), "logits" | "probabilities") {
            return Err(bad(format!(
                "output.kind is {:?}, expected \"logits\" or \"probabilities\"",
                card.output.kind
            )));
        }
        if card
            .input
            .spacing_mm
            .iter()
            .any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(bad("input.spacing_mm must be positive".into()));
        }
        if !(0.0..0.95).contains(&card.overlap) {
            return Err(bad(format!(
                "overlap {} must lie in [0, 0.95)",
                card.overlap
            )));
        }
        if let Some(o) = card.fused_overlap.filter(|o| !(0.0..0.95).contains(o)) {
            return Err(bad(format!("fused_overlap {o} must lie in [0, 0.95)")));
        }
        for (i, shift) in card.grid_shifts_voxels.iter().enumerate() {
            if !shift.iter().all(|v| v.is_finite() && v.abs() < 1.0) {
                return Err(bad(format!(
                    "grid_shifts_voxels entry {shift:?}: each component must lie in (-1, 1)"
                )));
            }
            if shift.iter().all(|v| *v == 0.0) || card.grid_shifts_voxels[..i].contains(shift) {
                return Err(bad(format!(
                    "grid_shifts_voxels entry {shift:?} repeats a grid already inferred (the unshifted one or an earlier entry)"
                )));
            }
        }
        let m = card.size_multiple.max(1);
        if card.patch_size.iter().any(|&p| p == 0 || p % m != 0) {
            return Err(bad(format!(
                "patch_size {:?} must be positive multiples of size_multiple {m}",
                card.patch_size
            )));
        }
        let (lo, hi) = (card.intensity.clip_hu[0], card.intensity.clip_hu[1]);
        if lo >= hi || card.intensity.divide == 0.0 {
            return Err(bad(
                "intensity: clip_hu must rise and divide must not be 0".into()
            ));
        }
        if let Some(problem) = card
            .intensity_refinement
            .as_ref()
            .and_then(IntensityRefinement::problem)
        {
            return Err(bad(format!("intensity_refinement: {problem}")));
        }
        let mut label_names = Vec::new();
        for c in 0..card.labels.len() {
            let name = card.labels.get(&c.to_string()).ok_or_else(|| {
                bad(format!(
                    "labels must be numbered 0..{} without gaps",
                    card.labels.len()
                ))
            })?;
            label_names.push(name.clone());
        }
        if label_names.first().map(String::as_str) != Some("background") || label_names.len() < 2 {
            return Err(bad(
                "labels: \"0\" must be \"background\" and at least one organ must follow".into(),
            ));
        }
        if label_names.len() > 255 {
            return Err(bad("at most 255 labels".into()));
        }
        let onnx_path = dir.join(&card.onnx);
        let bytes = std::fs::read(&onnx_path).map_err(|e| SegmentError::Card {
            path: onnx_path.clone(),
            problem: format!("cannot read the model the card names: {e}"),
        })?;
        let actual = format!("{:x}", Sha256::digest(&bytes));
        if actual != card.sha256.to_ascii_lowercase() {
            return Err(SegmentError::Sha256Mismatch {
                path: onnx_path,
                card: card.sha256.clone(),
                actual,
            });
        }
        Ok(Self {
            card,
            card_path,
            onnx_path,
            label_names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes the shipped card with `field` set to `value` into a fresh directory (no ONNX).
    fn card_dir(field: &str, value: serde_json::Value) -> tempfile::TempDir {
        let shipped = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/ct-organs/model-card.json"
        );
        let mut card: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(shipped).expect("shipped card"))
                .expect("card JSON");
        card[field] = value;
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("model-card.json"), card.to_string()).expect("write card");
        dir
    }

    #[test]
    fn a_fused_overlap_outside_its_range_is_refused_by_name() {
        let dir = card_dir("fused_overlap", serde_json::json!(0.97));
        let err = ModelBundle::load(dir.path()).expect_err("0.97 is refused");
        assert!(
            err.to_string()
                .contains("fused_overlap 0.97 must lie in [0, 0.95)"),
            "{err}"
        );
        // In range, the card passes every field check and stops at the missing ONNX file.
        let dir = card_dir("fused_overlap", serde_json::json!(0.4));
        let err = ModelBundle::load(dir.path()).expect_err("no ONNX file here");
        assert!(
            err.to_string()
                .contains("cannot read the model the card names"),
            "{err}"
        );
    }

    #[test]
    fn a_grid_shift_of_a_whole_voxel_is_refused_by_name() {
        let dir = card_dir("grid_shifts_voxels", serde_json::json!([[0.5, 0.5, 1.0]]));
        let err = ModelBundle::load(dir.path()).expect_err("a whole voxel is refused");
        assert!(
            err.to_string().contains(
                "grid_shifts_voxels entry [0.5, 0.5, 1.0]: each component must lie in (-1, 1)"
            ),
            "{err}"
        );
        for repeated in [
            serde_json::json!([[0.0, 0.0, 0.0]]),
            serde_json::json!([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]),
        ] {
            let dir = card_dir("grid_shifts_voxels", repeated);
            let err = ModelBundle::load(dir.path()).expect_err("a repeated grid is refused");
            assert!(
                err.to_string().contains("repeats a grid already inferred"),
                "{err}"
            );
        }
        let dir = card_dir("grid_shifts_voxels", serde_json::json!([[0.5, -0.5, 0.0]]));
        let err = ModelBundle::load(dir.path()).expect_err("no ONNX file here");
        assert!(
            err.to_string()
                .contains("cannot read the model the card names"),
            "{err}"
        );
    }
}
