//! `mrtdose register` through the binary on a DICOM phantom whose CT was repositioned between
//! visits: the written transform against the generator's true repositioning, and bad input.

use std::path::Path;
use std::process::{Command, Output};

use mrt_core::{linalg, RigidTransform, Transform};
use mrt_io::nifti_io::read_nifti;
use serde_json::Value;

fn mrtdose(args: &[&str], paths: &[&Path]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mrtdose"));
    c.args(args);
    for p in paths {
        c.arg(p);
    }
    c.output().expect("runs")
}

fn rigid(v: &Value) -> RigidTransform {
    serde_json::from_value(v.clone()).expect("rigid transform")
}

#[test]
fn dicom_ct_visits_register_to_the_true_repositioning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let study = dir.path().join("study");
    let o = mrtdose(
        &[
            "phantom",
            "--seed",
            "41",
            "--timepoints-h",
            "24,96",
            "--out",
        ],
        &[&study],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("t.json");
    let resampled = dir.path().join("moved.nii.gz");
    let fixed = study.join("tp1/ct");
    let moving = study.join("tp2/ct");
    let o = Command::new(env!("CARGO_BIN_EXE_mrtdose"))
        .args(["register", "--kind", "rigid"])
        .arg("--fixed")
        .arg(&fixed)
        .arg("--moving")
        .arg(&moving)
        .arg("--out")
        .arg(&out)
        .arg("--resampled")
        .arg(&resampled)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("before") && stdout.contains("after"),
        "{stdout}"
    );
    let file: Value = serde_json::from_slice(&std::fs::read(&out).expect("out")).expect("json");
    assert_eq!(file["schema"], "mrtdose.transform.v1");
    assert!(file["metric_after"].as_f64() > file["metric_before"].as_f64());
    let estimate: Transform = serde_json::from_value(file["transform"].clone()).expect("transform");
    let truth: Value =
        serde_json::from_slice(&std::fs::read(study.join("truth/truth.json")).expect("truth"))
            .expect("json");
    let b1 = rigid(&truth["timepoints"][0]["body_to_world"]);
    let b2 = rigid(&truth["timepoints"][1]["body_to_world"]);
    let true_map = b2.compose(&b1.inverse());
    let labels = read_nifti(&study.join("truth/tp1_labels.nii.gz"))
        .expect("labels")
        .volume;
    let g = labels.grid();
    let mut errors = Vec::new();
    for k in (0..g.dims[2]).step_by(3) {
        for j in (0..g.dims[1]).step_by(3) {
            for i in (0..g.dims[0]).step_by(3) {
                if (1.0..=4.0).contains(labels.at(i, j, k)) {
                    let p = g.index_to_world([i as f64, j as f64, k as f64]);
                    errors.push(linalg::norm(linalg::sub(
                        estimate.apply(p),
                        true_map.apply(p),
                    )));
                }
            }
        }
    }
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    println!(
        "organ TRE median {median:.2} mm, max {:.2} mm",
        errors[errors.len() - 1]
    );
    assert!(median < 1.0, "{median}");
    let moved = read_nifti(&resampled).expect("resampled").volume;
    assert!(moved.grid().same_geometry(g, 1e-3));
}

#[test]
fn bad_inputs_name_the_file_or_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere.nii.gz");
    let out = dir.path().join("t.json");
    let o = mrtdose(
        &["register", "--fixed"],
        &[
            &missing,
            Path::new("--moving"),
            &missing,
            Path::new("--out"),
            &out,
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("nowhere.nii.gz") && err.contains("fixed volume"),
        "{err}"
    );
    let o = mrtdose(
        &["register", "--window", "400,-300", "--fixed"],
        &[
            &missing,
            Path::new("--moving"),
            &missing,
            Path::new("--out"),
            &out,
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--window"), "{err}");
}
