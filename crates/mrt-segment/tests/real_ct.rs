//! The bundled model through the full path on a real CT it never saw in training: TotalSegmentator
//! subject s0009 (`data/anatomy`, held out of every training run; 1.5 mm, a 178 mm field of view
//! that cuts every organ). The reference is TotalSegmentator's own labels for that CT, not
//! anything this code computed. Floors sit a little under the figures the model card reports
//! (1.8.0: 0.953 / 0.902 / 0.910 / 0.857; 1.10.0 with the fat-like rule: 0.950 / 0.921 /
//! 0.912 / 0.920), so a model, canonicalisation or clean-up change that loses real-CT accuracy
//! fails here. The same CT as a scanner calibrated 30 HU high or low would give
//! it must not move any organ's Dice by more than 0.04 (models/README.md, "Acquisition stress
//! test", has the wider table from `models/train/robustness.py`).

mod common;

use common::{dice, root, runtime};
use mrt_core::Volume;
use mrt_io::nifti_io::read_nifti;
use mrt_segment::{Device, Segmenter};

/// TotalSegmentator label values of the model's classes (liver, kidney_left, kidney_right,
/// spleen), as in `data/anatomy/totalseg_labels.json`.
const TOTALSEG: [(f32, u8, &str); 4] = [
    (44.0, 1, "liver"),
    (42.0, 2, "kidney_left"),
    (43.0, 3, "kidney_right"),
    (84.0, 4, "spleen"),
];

#[test]
fn the_held_out_real_ct_meets_its_floors_and_shrugs_off_a_calibration_offset() {
    let seg = Segmenter::load(&root().join("models/ct-organs"), Device::Cpu, &runtime())
        .expect("bundled model loads");
    let anatomy = root().join("data/anatomy");
    let ct = read_nifti(&anatomy.join("totalseg_s0009_ct.nii.gz"))
        .expect("real CT")
        .volume;
    let truth = read_nifti(&anatomy.join("totalseg_s0009_labels.nii.gz"))
        .expect("real labels")
        .volume;
    assert_eq!(ct.grid(), truth.grid(), "CT and labels share a grid");
    let scores = |ct: &Volume<f32>| -> Vec<f64> {
        let labels = seg.segment(ct).expect("segments").labels;
        TOTALSEG
            .iter()
            .map(|&(value, label, _)| dice(&labels, label, &truth, value))
            .collect()
    };
    let base = scores(&ct);
    let floors = [0.94, 0.88, 0.89, 0.82];
    for ((&(_, _, organ), d), floor) in TOTALSEG.iter().zip(&base).zip(floors) {
        println!("{organ}: Dice {d:.4} (floor {floor})");
        assert!(*d >= floor, "{organ}: Dice {d:.4} under its floor {floor}");
    }
    for offset_hu in [30.0f32, -30.0] {
        let shifted = ct.map(|&hu| hu + offset_hu);
        for (&(_, _, organ), (d, d0)) in TOTALSEG.iter().zip(scores(&shifted).iter().zip(&base)) {
            println!("{organ} at {offset_hu:+} HU: Dice {d:.4} ({:+.4})", d - d0);
            assert!(
                (d - d0).abs() <= 0.04,
                "{organ}: a {offset_hu:+} HU calibration offset moves Dice {d0:.4} -> {d:.4}"
            );
        }
    }
}
