//! The card's test-time grid shifts, through ONNX Runtime with the hu-bands model (elementwise:
//! logits_c = −((HU/1000 − centre_c/1000) / 0.1)², scripts/make_test_models.py), so the averaged
//! probabilities of every voxel follow analytically from the CT's values: half from the unshifted
//! grid, half interpolated between the two shifted voxels around it.

mod common;

use common::{root, runtime};

use mrt_core::{Grid, Volume};
use mrt_segment::{Device, Segmenter};

const CENTRES_HU: [f64; 5] = [-1000.0, 60.0, 150.0, 250.0, 350.0];

/// The hu-bands model with `grid_shifts_voxels` added to its card.
fn shifted_model(shifts: serde_json::Value) -> tempfile::TempDir {
    let from = root().join("testdata/models/hu-bands");
    assert!(from.exists(), "run scripts/test-data.sh first");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(from.join("model.onnx"), dir.path().join("model.onnx")).expect("copy");
    let text = std::fs::read_to_string(from.join("model-card.json")).expect("card");
    let mut card: serde_json::Value = serde_json::from_str(&text).expect("card JSON");
    card["grid_shifts_voxels"] = shifts;
    std::fs::write(dir.path().join("model-card.json"), card.to_string()).expect("write card");
    dir
}

/// The model's class probabilities for one HU value, written out from its formula.
fn softmax_of(hu: f64) -> [f64; 5] {
    let x = hu.clamp(-1000.0, 1000.0) / 1000.0;
    let logits = CENTRES_HU.map(|c| -((x - c / 1000.0) / 0.1).powi(2));
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e = logits.map(|l| (l - max).exp());
    let sum: f64 = e.iter().sum();
    e.map(|v| v / sum)
}

/// A CT on the model's own 3 mm lattice (32³, the patch): 60 HU where x < 16 voxels, 350 HU
/// beyond, a step on a voxel boundary; air from y = 24 voxels on (the HU check wants some).
fn step_ct() -> Volume<f32> {
    let grid = Grid::axis_aligned([32; 3], [3.0; 3], [0.0; 3]).expect("grid");
    let mut data = vec![0f32; grid.len()];
    for k in 0..32 {
        for j in 0..32 {
            for i in 0..32 {
                data[grid.offset(i, j, k)] = match (i, j) {
                    (_, 24..) => -1000.0,
                    (0..16, _) => 60.0,
                    _ => 350.0,
                };
            }
        }
    }
    Volume::new(grid, data).expect("volume")
}

#[test]
fn a_half_voxel_shift_averages_the_view_between_the_voxels_into_each_voxel() {
    let model = shifted_model(serde_json::json!([[0.5, 0.0, 0.0]]));
    let seg = Segmenter::load(model.path(), Device::Cpu, &runtime()).expect("model loads");
    let ct = step_ct();
    let inferred = seg.infer(&ct).expect("infers");
    assert_eq!(inferred.grid_shifts_voxels, vec![[0.5, 0.0, 0.0]]);
    let p = &inferred.probabilities;
    assert_eq!(p.grid.dims, [32; 3], "the model grid is the CT's lattice");
    let n = p.grid.len();
    // The shifted grid's voxel i lies at x = i + 0.5: the CT sampled there is 60 HU below the
    // step, 350 HU above, and their mean on the step itself (i = 15).
    let between = |i: usize| match i {
        0..=14 => 60.0,
        15 => 205.0,
        _ => 350.0,
    };
    let own = |i: usize| if i < 16 { 60.0 } else { 350.0 };
    // Voxel 0 is left out: the moved grid reaches it only at its own edge (index -0.5), which
    // rounding may put just inside or just outside what the sampling counts as covered.
    for i in [1usize, 8, 14, 15, 16, 17, 24] {
        let (a, b, c) = (
            softmax_of(own(i)),
            softmax_of(between(i - 1)),
            softmax_of(between(i)),
        );
        let expected: Vec<f64> = (0..5)
            .map(|k| 0.5 * a[k] + 0.25 * b[k] + 0.25 * c[k])
            .collect();
        let v = p.grid.offset(i, 13, 20);
        for (k, want) in expected.iter().enumerate() {
            let got = f64::from(p.data[k * n + v]);
            assert!(
                (got - want).abs() < 1e-4,
                "voxel x = {i}, class {k}: {got} against {want}"
            );
        }
    }
    // The step's neighbours borrow kidney_right (250 HU, the nearest centre to 205 HU) from the
    // view between them: 0.127 against 0.018 below the step, 0.312 against 0.265 above it.
    let kidney_right = |probs: &[f32], i: usize| probs[3 * n + p.grid.offset(i, 13, 20)];
    let fused_view = seg.infer_for_fusion(&ct).expect("infers");
    assert!(fused_view.grid_shifts_voxels.is_empty());
    let alone = &fused_view.probabilities.data;
    for i in [15, 16] {
        assert!(kidney_right(&p.data, i) > kidney_right(alone, i) + 0.04);
        let want = softmax_of(own(i))[3];
        assert!((f64::from(kidney_right(alone, i)) - want).abs() < 1e-4);
    }
}
