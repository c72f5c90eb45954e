//! Evaluation (not a test): Dice of the bundled segmentation model against phantom truth, per
//! organ (mean and minimum over studies), on phantoms from seeds never used in training (9000…, the
//! held-out test seeds of models/README.md),
//! `small` and `clinical` presets, one time point each, labels on each CT's native grid.
//!
//! Then the one real CT bundled for this (TotalSegmentator s0009, held out of training; its labels
//! are TotalSegmentator's: kidney_left 42, kidney_right 43, liver 44, spleen 84), which has a
//! narrow field of view cutting every organ.
//!
//! `cargo bench -p mrtdose --bench segmentation_dice [-- --n 20 --clinical 5]`

mod common;

use std::path::Path;

use common::{arg, mrtdose, root};
use mrt_io::nifti_io::read_nifti;

fn main() {
    let organs = [
        (1.0f32, "liver"),
        (2.0, "kidney_left"),
        (3.0, "kidney_right"),
        (4.0, "spleen"),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (preset, n, first) in [
        ("small", arg("--n", 20), 9000u64),
        // The held-out test seeds of both presets (9100… are the calibration phantoms the card's
        // settings were chosen on; models/README.md).
        ("clinical", arg("--clinical", 5), 9000),
    ] {
        let mut dice: Vec<Vec<f64>> = vec![Vec::new(); 4];
        for seed in first..first + n {
            let study = dir.path().join(format!("{preset}-{seed}"));
            let s = |p: &Path| p.to_string_lossy().to_string();
            mrtdose(&[
                "phantom",
                "--preset",
                preset,
                "--seed",
                &seed.to_string(),
                "--timepoints-h",
                "24",
                "--format",
                "nifti",
                "--out",
                &s(&study),
            ]);
            let labels = study.join("labels.nii.gz");
            mrtdose(&[
                "segment",
                &s(&study.join("tp1/ct.nii.gz")),
                "--device",
                "cpu",
                "--out",
                &s(&labels),
            ]);
            let truth = read_nifti(&study.join("truth/tp1_labels.nii.gz"))
                .expect("truth")
                .volume;
            let ours = read_nifti(&labels).expect("labels").volume;
            for (i, (l, _)) in organs.iter().enumerate() {
                let (mut both, mut a, mut b) = (0usize, 0usize, 0usize);
                for (&t, &o) in truth.data().iter().zip(ours.data()) {
                    let (x, y) = (t.round() == *l, o.round() == *l);
                    both += usize::from(x && y);
                    a += usize::from(x);
                    b += usize::from(y);
                }
                dice[i].push(if a + b == 0 {
                    1.0
                } else {
                    2.0 * both as f64 / (a + b) as f64
                });
            }
            std::fs::remove_dir_all(&study).ok();
        }
        report(preset, n, first, &dice, &organs);
    }
    // The real CT.
    let ct = root().join("data/anatomy/totalseg_s0009_ct.nii.gz");
    let labels = dir.path().join("s0009.nii.gz");
    mrtdose(&[
        "segment",
        &ct.to_string_lossy(),
        "--device",
        "cpu",
        "--out",
        &labels.to_string_lossy(),
    ]);
    let truth = read_nifti(&root().join("data/anatomy/totalseg_s0009_labels.nii.gz"))
        .expect("labels")
        .volume;
    let ours = read_nifti(&labels).expect("labels").volume;
    println!("real CT s0009 (TotalSegmentator, 1.5 mm, narrow field of view):");
    for (l, ts, name) in [
        (1.0f32, 44.0f32, "liver"),
        (2.0, 42.0, "kidney_left"),
        (3.0, 43.0, "kidney_right"),
        (4.0, 84.0, "spleen"),
    ] {
        let (mut both, mut a, mut b) = (0usize, 0usize, 0usize);
        for (&t, &o) in truth.data().iter().zip(ours.data()) {
            let (x, y) = (t.round() == ts, o.round() == l);
            both += usize::from(x && y);
            a += usize::from(x);
            b += usize::from(y);
        }
        println!(
            "  {name:<13} Dice {:.3}",
            if a + b == 0 {
                1.0
            } else {
                2.0 * both as f64 / (a + b) as f64
            }
        );
    }
}

fn report(preset: &str, n: u64, first: u64, dice: &[Vec<f64>], organs: &[(f32, &str)]) {
    if n == 0 {
        println!("{preset}: no phantoms asked for");
        return;
    }
    println!("{preset}: {n} phantoms (seeds {first}-{})", first + n - 1);
    for (i, (_, name)) in organs.iter().enumerate() {
        let d = &dice[i];
        let mean = d.iter().sum::<f64>() / d.len().max(1) as f64;
        let min = d.iter().copied().fold(f64::INFINITY, f64::min);
        println!("  {name:<13} Dice mean {mean:.3}, min {min:.3}");
    }
}
