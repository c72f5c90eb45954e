//! `mrtdose run` end to end through the binary, on phantoms with the committed model: every output
//! file and report section, a re-run that changes nothing, and a study with a missing SPECT and no
//! injected activity that still reports what could and could not be computed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mrtdose(args: &[&str]) -> Output {
    let runtime = root().join(".ort/lib/libonnxruntime.so");
    assert!(
        runtime.exists(),
        "run scripts/test-data.sh first (needs {})",
        runtime.display()
    );
    Command::new(env!("CARGO_BIN_EXE_mrtdose"))
        .args(args)
        .env("ORT_DYLIB_PATH", &runtime)
        .env("MRTDOSE_MODEL", root().join("models/ct-organs"))
        .output()
        .expect("runs")
}

fn ok(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&o.stderr)
    );
    text
}

fn json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("file")).expect("json")
}

#[test]
fn a_dicom_study_gives_every_output_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (study, out) = (dir.path().join("study"), dir.path().join("out"));
    let s = |p: &Path| p.to_string_lossy().to_string();
    ok(&mrtdose(&[
        "phantom",
        "--seed",
        "9101",
        "--misalign-mm",
        "10",
        "--out",
        &s(&study),
    ]));
    let summary = ok(&mrtdose(&["run", &s(&study), "--out", &s(&out), "--quiet"]));
    assert!(
        summary.contains("kidney_left") || summary.contains("not computed"),
        "{summary}"
    );
    for f in [
        "report.json",
        "report.html",
        "dose_Gy.nii.gz",
        "labels_tp1.nii.gz",
        "labels_tp4.nii.gz",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let r = json(&out.join("report.json"));
    assert_eq!(r["schema"], "mrtdose.report.v1");
    assert_eq!(r["times_h"].as_array().map(Vec::len), Some(4));
    assert!((r["injected_activity_MBq"].as_f64().expect("activity") - 7400.0).abs() < 1000.0);
    assert!(r["qa"]["needs_review"].is_boolean());
    let liver = &r["organs"]["liver"];
    assert!(liver["absorbed_dose_Gy"].as_f64().is_some(), "{liver}");
    assert_eq!(r["timepoints"].as_array().map(Vec::len), Some(4));
    let html = std::fs::read_to_string(out.join("report.html")).expect("html");
    for section in [
        "id=\"qa\"",
        "id=\"organs\"",
        "id=\"tacs\"",
        "id=\"dvh\"",
        "id=\"overlays\"",
        "id=\"timepoints\"",
        "<svg",
        "data:image/png;base64,",
    ] {
        assert!(html.contains(section), "report.html lacks {section}");
    }
    let eval = ok(&mrtdose(&[
        "evaluate",
        "--truth",
        &s(&study.join("truth")),
        "--report",
        &s(&out.join("report.json")),
    ]));
    assert!(eval.contains("liver"), "{eval}");
    // A re-run finds every stage's marker and rewrites nothing.
    let before = std::fs::read(out.join("report.json")).expect("report");
    ok(&mrtdose(&["run", &s(&study), "--out", &s(&out), "--quiet"]));
    assert_eq!(
        std::fs::read(out.join("report.json")).expect("report"),
        before
    );
}

#[test]
fn a_missing_spect_and_missing_injected_activity_are_reported_not_invented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (study, out) = (dir.path().join("study"), dir.path().join("out"));
    let s = |p: &Path| p.to_string_lossy().to_string();
    ok(&mrtdose(&[
        "phantom",
        "--seed",
        "9102",
        "--format",
        "nifti",
        "--out",
        &s(&study),
    ]));
    let manifest_path = study.join("manifest.json");
    let mut manifest = json(&manifest_path);
    manifest
        .as_object_mut()
        .expect("object")
        .remove("injected_activity_MBq");
    manifest["timepoints"][1]
        .as_object_mut()
        .expect("object")
        .remove("spect");
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).expect("json"),
    )
    .expect("write");
    ok(&mrtdose(&["run", &s(&study), "--out", &s(&out), "--quiet"]));
    let r = json(&out.join("report.json"));
    assert!(r["injected_activity_MBq"].is_null());
    assert_eq!(
        r["times_h"].as_array().map(Vec::len),
        Some(3),
        "three time points remain"
    );
    let text = r.to_string();
    assert!(text.contains("no injected activity"), "{text}");
    assert!(text.contains("time point 2"), "{text}");
    assert!(r["organs"]["liver"]["absorbed_dose_Gy_per_GBq"].is_null());
    assert!(r["organs"]["liver"]["absorbed_dose_Gy"].as_f64().is_some());
}
