//! Helpers shared by the integration tests: the repository root, the ONNX Runtime library that
//! `scripts/test-data.sh` fetches, and Dice against a reference label volume.

use std::path::{Path, PathBuf};

use mrt_core::Volume;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ONNX Runtime library (`.ort/lib/libonnxruntime.so`); panics with what to run when absent.
pub fn runtime() -> PathBuf {
    let p = root().join(".ort/lib/libonnxruntime.so");
    assert!(
        p.exists(),
        "run scripts/test-data.sh first (needs {})",
        p.display()
    );
    p
}

/// Dice of the voxels `labels` gives `label` against those where `truth` (same grid, values of its
/// own labelling) equals `truth_value`. Panics if the truth holds no such voxel: a score against an
/// empty reference says nothing.
#[allow(dead_code)] // not every test file scores Dice
pub fn dice(labels: &Volume<u8>, label: u8, truth: &Volume<f32>, truth_value: f32) -> f64 {
    assert_eq!(labels.grid(), truth.grid(), "labels and truth share a grid");
    let (mut both, mut a, mut b) = (0usize, 0usize, 0usize);
    for (&l, &t) in labels.data().iter().zip(truth.data()) {
        let (x, y) = (l == label, t == truth_value);
        both += usize::from(x && y);
        a += usize::from(x);
        b += usize::from(y);
    }
    assert!(b > 0, "the truth holds no voxel of value {truth_value}");
    2.0 * both as f64 / (a + b) as f64
}
