//! The CT in the model's frame: an axis-aligned LPS grid at the card's spacing covering the CT's
//! world extent (any orientation or spacing in), from its lowest corner, padded at the end to the
//! card's size multiple and to at least the patch; intensities
//! checked for being HU and normalised as the card says.

use mrt_core::{resample, Grid, Interpolation, Volume};

use crate::card::ModelCard;
use crate::error::SegmentError;

/// HU value used outside the CT's field of view.
pub const AIR_HU: f32 = -1024.0;

/// Checks that `ct` holds Hounsfield units; returns warnings for doubtful but usable images.
pub fn check_hu(ct: &Volume<f32>) -> Result<Vec<String>, SegmentError> {
    let data = ct.data();
    let stride = (data.len() / 200_000).max(1);
    let mut sample: Vec<f32> = data
        .iter()
        .step_by(stride)
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if sample.is_empty() {
        return Err(SegmentError::Ct("the CT holds no finite values".into()));
    }
    sample.sort_by(f32::total_cmp);
    let q = |p: f64| sample[((sample.len() - 1) as f64 * p) as usize];
    let (min, p1, p99) = (sample[0], q(0.01), q(0.99));
    if p99 - p1 < 50.0 {
        return Err(SegmentError::Ct(format!(
            "no contrast (1st-99th percentile {p1:.0} to {p99:.0}): empty or constant image"
        )));
    }
    if min >= 0.0 && p1 > -300.0 {
        return Err(SegmentError::Ct(format!(
            "values look like stored pixel values, not HU (minimum {min:.0}, 1st percentile {p1:.0}; air should be near -1000): check RescaleSlope/RescaleIntercept"
        )));
    }
    if p99 > 5000.0 || min < -3000.0 {
        return Err(SegmentError::Ct(format!(
            "values outside any HU range (minimum {min:.0}, 99th percentile {p99:.0})"
        )));
    }
    let mut warnings = Vec::new();
    if p1 > -500.0 {
        warnings.push(format!(
            "little or no air in the field of view (1st percentile {p1:.0} HU): truncated field of view or not HU"
        ));
    }
    Ok(warnings)
}

/// The model grid for `ct`, as the model card's contract (models/README.md) lays it out:
/// axis-aligned (identity direction, LPS), the card's spacing, starting at the CT's lowest world
/// corner (x right→left, y anterior→posterior, z feet→head) with round(extent / spacing) voxels
/// per axis, then padded *at the end* to a multiple of the card's `size_multiple` and to at least
/// the patch. The padding lies outside the CT and is read as air.
pub fn model_grid(ct: &Grid, card: &ModelCard) -> Result<Grid, SegmentError> {
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for corner in 0..8 {
        let idx = [0, 1, 2].map(|a| {
            if corner & (1 << a) == 0 {
                -0.5
            } else {
                ct.dims[a] as f64 - 0.5
            }
        });
        let w = ct.index_to_world(idx);
        for a in 0..3 {
            lo[a] = lo[a].min(w[a]);
            hi[a] = hi[a].max(w[a]);
        }
    }
    let m = card.size_multiple.max(1);
    let spacing = card.input.spacing_mm;
    // patch_size is [D, H, W] = [z, y, x]
    let patch_xyz = [card.patch_size[2], card.patch_size[1], card.patch_size[0]];
    let mut dims = [0usize; 3];
    for a in 0..3 {
        let n = ((hi[a] - lo[a]) / spacing[a]).round().max(1.0) as usize;
        if n < m {
            return Err(SegmentError::Ct(format!(
                "field of view {:.0} mm along {} is below the model's minimum of {:.0} mm ({m} voxels of {} mm)",
                hi[a] - lo[a],
                ["x (left-right)", "y (anterior-posterior)", "z (head-feet)"][a],
                m as f64 * spacing[a],
                spacing[a]
            )));
        }
        dims[a] = (n.div_ceil(m) * m).max(patch_xyz[a]);
    }
    let origin = [0, 1, 2].map(|a| lo[a] + spacing[a] / 2.0);
    Grid::axis_aligned(dims, spacing, origin)
        .map_err(|e| SegmentError::Ct(format!("model grid: {e}")))
}

/// `grid` (axis-aligned, as [`model_grid`] makes it) moved by `shift` model voxels along x, y, z:
/// the same dims and spacing, so the network sees the same CT sampled between the first grid's
/// voxels. Its far end reaches past the first grid into the padding, read as air.
pub fn shifted_grid(grid: &Grid, shift: [f64; 3]) -> Grid {
    let mut shifted = grid.clone();
    for ((origin, s), spacing) in shifted.origin_mm.iter_mut().zip(shift).zip(grid.spacing_mm) {
        *origin += s * spacing;
    }
    shifted
}

/// Resamples and normalises `ct` onto `grid`: `(clip(HU) − subtract) / divide`.
pub fn model_input(ct: &Volume<f32>, grid: &Grid, card: &ModelCard) -> Vec<f32> {
    let on_grid = resample(ct, grid, Interpolation::Linear, AIR_HU);
    let i = &card.intensity;
    let (lo, hi) = (i.clip_hu[0], i.clip_hu[1]);
    on_grid
        .data()
        .iter()
        .map(|&v| (v.clamp(lo, hi) - i.subtract) / i.divide)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(patch: [usize; 3]) -> ModelCard {
        serde_json::from_value(serde_json::json!({
            "schema": "mrtdose.model-card.v1", "name": "t", "version": "0", "onnx": "m.onnx",
            "sha256": "", "labels": {"0": "background"},
            "input": {"name": "ct", "layout": "NCDHW", "orientation": "LPS", "spacing_mm": [3.0, 3.0, 3.0]},
            "output": {"name": "logits", "layout": "NCDHW", "kind": "logits"},
            "intensity": {"clip_hu": [-250.0, 350.0], "subtract": 50.0, "divide": 150.0},
            "patch_size": patch, "overlap": 0.5, "size_multiple": 16
        }))
        .expect("card")
    }

    #[test]
    fn a_ct_on_the_model_spacing_keeps_its_voxels_and_is_padded_at_the_end() {
        // 3 mm LPS CT of 128 × 128 × 100: the model grid starts at the CT's first voxel, so model
        // voxel (i, j, k) is CT voxel (i, j, k), and z is padded at the head end to 112.
        let ct =
            Grid::axis_aligned([128, 128, 100], [3.0; 3], [-190.5, -150.0, -400.0]).expect("grid");
        let g = model_grid(&ct, &card([80, 80, 80])).expect("grid");
        assert_eq!(g.dims, [128, 128, 112]);
        assert_eq!(g.index_to_world([0.0; 3]), ct.index_to_world([0.0; 3]));
    }

    #[test]
    fn a_flipped_ct_starts_at_its_lowest_world_corner_and_a_small_one_is_padded_to_the_patch() {
        // x stored right-to-left reversed (direction −x): the model grid still starts at the lowest
        // x; 60 voxels along y are padded to the 80-voxel patch.
        let ct = Grid::new(
            [64, 60, 50],
            [3.0; 3],
            [0.0, 0.0, 0.0],
            [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        )
        .expect("grid");
        let g = model_grid(&ct, &card([48, 80, 64])).expect("grid");
        assert_eq!(g.dims, [64, 80, 64]);
        assert_eq!(g.index_to_world([0.0; 3]), [-63.0 * 3.0, 0.0, 0.0]);
    }

    #[test]
    fn a_shifted_grid_samples_between_the_voxels_of_the_first() {
        let ct =
            Grid::axis_aligned([64, 64, 64], [3.0, 2.0, 4.0], [10.0, -5.0, 0.0]).expect("grid");
        let g = model_grid(&ct, &card([48, 48, 48])).expect("grid");
        let s = shifted_grid(&g, [0.5, -0.25, 0.0]);
        assert_eq!((s.dims, s.spacing_mm), (g.dims, g.spacing_mm));
        // Voxel (i, j, k) of the shifted grid lies at (i + 0.5, j − 0.25, k) of the first.
        let w = s.index_to_world([7.0, 3.0, 2.0]);
        let back = g.world_to_index(w);
        for (b, want) in back.iter().zip([7.5, 2.75, 2.0]) {
            assert!((b - want).abs() < 1e-9, "{back:?}");
        }
    }
}
