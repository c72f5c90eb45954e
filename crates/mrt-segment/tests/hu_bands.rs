//! The whole segmentation path through ONNX Runtime with a model of known behaviour (hu-bands:
//! each voxel goes to the class whose HU centre is nearest; built by scripts/make_test_models.py):
//! an oblique, flipped, anisotropic CT must come back labelled where its spheres are in the world,
//! with the clean-up and the kidney side check applied; bad cards and bad CTs are refused.

mod common;

use std::path::{Path, PathBuf};

use common::{dice, root, runtime};

use mrt_core::linalg::{self, rotation_xyz_deg};
use mrt_core::{Grid, Volume};
use mrt_segment::{Device, SegmentError, Segmenter};

fn model_dir() -> PathBuf {
    let p = root().join("testdata/models/hu-bands");
    assert!(
        p.exists(),
        "run scripts/test-data.sh first (needs {})",
        p.display()
    );
    p
}

/// Spheres (world centre mm, radius mm, HU) in air, on an oblique grid whose first axis points to
/// the patient's right (a flipped x) and whose voxels are anisotropic.
fn oblique_ct(spheres: &[([f64; 3], f64, f32)]) -> Volume<f32> {
    let r = rotation_xyz_deg([8.0, -5.0, 20.0]);
    let flip = [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let direction = linalg::mat_mul(&r, &flip);
    let dims = [110, 100, 70];
    let spacing = [2.0, 2.5, 3.0];
    // Centre the grid on the world origin.
    let half = [0, 1, 2].map(|a| (dims[a] as f64 - 1.0) / 2.0 * spacing[a]);
    let origin = linalg::scale(linalg::mat_vec(&direction, half), -1.0);
    let grid = Grid::new(dims, spacing, origin, direction).expect("grid");
    let mut data = vec![-1000.0f32; grid.len()];
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                let p = grid.index_to_world([i as f64, j as f64, k as f64]);
                for &(c, radius, hu) in spheres {
                    if linalg::norm(linalg::sub(p, c)) <= radius {
                        data[grid.offset(i, j, k)] = hu;
                    }
                }
            }
        }
    }
    Volume::new(grid, data).expect("volume")
}

#[test]
fn an_oblique_flipped_ct_is_labelled_where_its_spheres_are() {
    let seg = Segmenter::load(&model_dir(), Device::Cpu, &runtime()).expect("model loads");
    assert_eq!(seg.provider(), "CPUExecutionProvider");
    // kidney_left (150 HU) on the patient's left (+x), kidney_right (250 HU) on the right (−x),
    // plus a stray 150 HU speck that the clean-up must drop.
    let spheres = [
        ([-50.0, 10.0, 0.0], 35.0, 60.0f32),
        ([60.0, 30.0, -20.0], 22.0, 150.0),
        ([-60.0, 30.0, 30.0], 22.0, 250.0),
        ([40.0, -40.0, 40.0], 25.0, 350.0),
        ([0.0, -60.0, -60.0], 4.0, 150.0),
    ];
    let ct = oblique_ct(&spheres);
    let out = seg.segment(&ct).expect("segments");
    assert!(out.labels.grid().same_geometry(ct.grid(), 1e-9));
    // Resampling to the model's 3 mm grid blends each sphere's edge with air, and the blended
    // values fall into the lower bands: a thin shell is lost, more for the hotter, smaller spheres.
    for (label, hu) in [(1u8, 60.0f32), (2, 150.0), (3, 250.0), (4, 350.0)] {
        let d = dice(&out.labels, label, &ct, hu);
        println!("label {label}: Dice {d:.3}");
        assert!(d > 0.8, "label {label}: Dice {d}");
    }
    let kidney_left = &out.organs[1];
    assert_eq!(kidney_left.name, "kidney_left");
    assert!(kidney_left.removed_voxels > 0, "the stray speck is dropped");
    assert!(out.notes.iter().all(|n| !n.contains("exchanged")));
    // Swap the HU of the two kidneys: the model now calls the right one "left"; the side check
    // must exchange them back and say so.
    let swapped = oblique_ct(&[
        ([60.0, 30.0, -20.0], 22.0, 250.0),
        ([-60.0, 30.0, 30.0], 22.0, 150.0),
        ([-50.0, 10.0, 0.0], 35.0, 60.0),
    ]);
    let out = seg.segment(&swapped).expect("segments");
    assert!(
        out.notes.iter().any(|n| n.contains("exchanged")),
        "{:?}",
        out.notes
    );
    let centre = mrt_segment::postprocess::label_centre(&out.labels, 2).expect("kidney_left");
    assert!(
        centre[0] > 0.0,
        "kidney_left ends on the patient's left: {centre:?}"
    );
}

fn copy_model(to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for f in ["model.onnx", "model-card.json"] {
        std::fs::copy(model_dir().join(f), to.join(f)).expect("copy");
    }
}

fn edit_card(dir: &Path, from: &str, to: &str) {
    let path = dir.join("model-card.json");
    let text = std::fs::read_to_string(&path).expect("card");
    assert!(text.contains(from), "{from}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

#[test]
fn cards_that_do_not_match_their_model_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let stale = tmp.path().join("stale");
    copy_model(&stale);
    let text = std::fs::read_to_string(stale.join("model-card.json")).expect("card");
    let sha = text.split("\"sha256\": \"").nth(1).expect("sha")[..64].to_string();
    edit_card(&stale, &sha, &"0".repeat(64));
    let e = Segmenter::load(&stale, Device::Cpu, &runtime())
        .err()
        .expect("refused");
    assert!(matches!(e, SegmentError::Sha256Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("model.onnx"), "{e}");

    let renamed = tmp.path().join("renamed");
    copy_model(&renamed);
    edit_card(
        &renamed,
        "\"name\": \"logits\"",
        "\"name\": \"probabilities\"",
    );
    let e = Segmenter::load(&renamed, Device::Cpu, &runtime())
        .err()
        .expect("refused");
    assert!(
        e.to_string()
            .contains("\"probabilities\" is not among the graph outputs"),
        "{e}"
    );

    let fewer = tmp.path().join("fewer");
    copy_model(&fewer);
    edit_card(&fewer, ",\n    \"4\": \"spleen\"", "");
    let e = Segmenter::load(&fewer, Device::Cpu, &runtime())
        .err()
        .expect("refused");
    assert!(e.to_string().contains("channels"), "{e}");

    let e = Segmenter::load(tmp.path(), Device::Cpu, &runtime())
        .err()
        .expect("refused");
    assert!(e.to_string().contains("model-card.json"), "{e}");
}

#[test]
fn cts_the_model_cannot_use_are_refused() {
    let seg = Segmenter::load(&model_dir(), Device::Cpu, &runtime()).expect("model loads");
    let small = Grid::axis_aligned([6, 40, 40], [3.0; 3], [0.0; 3]).expect("grid");
    let mut v = Volume::filled(small, -1000.0f32);
    v.data_mut()[100] = 60.0;
    let e = seg.segment(&v).expect_err("too small");
    assert!(e.to_string().contains("field of view"), "{e}");
    let g = Grid::axis_aligned([40, 40, 40], [3.0; 3], [0.0; 3]).expect("grid");
    let raw = Volume::new(g, (0..64_000).map(|i| (i % 4000) as f32).collect()).expect("volume");
    let e = seg.segment(&raw).expect_err("not HU");
    assert!(e.to_string().contains("not HU"), "{e}");
}
