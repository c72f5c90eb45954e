//! `mrtdose phantom`, `phantom-trial` and `inspect` on what they write, through the binary.

use std::process::Command;

use serde_json::Value;

fn mrtdose(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mrtdose"))
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn phantom_then_inspect_finds_every_time_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("p");
    let o = mrtdose(&[
        "phantom",
        "--out",
        out.to_str().expect("utf8"),
        "--seed",
        "9",
        "--timepoints-h",
        "6,30,96",
        "--misalign-mm",
        "5",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let truth: Value =
        serde_json::from_slice(&std::fs::read(out.join("truth/truth.json")).expect("truth"))
            .expect("json");
    let o = mrtdose(&["inspect", "--json", out.to_str().expect("utf8")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).expect("json");
    let patients = r["patients"].as_array().expect("patients");
    assert_eq!(patients.len(), 1);
    let tps = patients[0]["timepoints"].as_array().expect("tps");
    let hours: Vec<f64> = tps
        .iter()
        .map(|t| t["hours_post_injection"].as_f64().expect("h"))
        .collect();
    for (h, want) in hours.iter().zip([6.0, 30.0, 96.0]) {
        assert!((h - want).abs() < 1e-6, "{hours:?}");
    }
    for t in tps {
        let a = t["injected_activity_mbq"].as_f64().expect("activity");
        assert!((a - truth["injected_activity_MBq"].as_f64().expect("truth")).abs() < 1e-3);
        assert_eq!(t["pairing"], "frame_of_reference");
    }
    // Every series loads; SPECTs are quantitative; no file skipped.
    let skipped = r["skipped"].as_array().expect("skipped");
    assert_eq!(
        skipped.len(),
        4,
        "truth.json and three label maps are not DICOM: {skipped:?}"
    );
    assert!(skipped
        .iter()
        .all(|s| s["path"].as_str().expect("path").contains("/truth/")));
    for st in patients[0]["studies"].as_array().expect("studies") {
        for se in st["series"].as_array().expect("series") {
            assert!(se["error"].is_null(), "{se}");
            if se["kind"] == "spect_tomo" {
                assert_eq!(se["volume"]["quantitative"], true);
                assert_eq!(se["volume"]["units"], "BQML");
            }
        }
    }
}

#[test]
fn phantom_trial_writes_distinct_patients_and_bad_flags_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("trial");
    let o = mrtdose(&[
        "phantom-trial",
        "--n",
        "2",
        "--out",
        out.to_str().expect("utf8"),
        "--seed",
        "40",
        "--timepoints-h",
        "24",
        "--format",
        "nifti",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seeds: Vec<u64> = ["patient-001", "patient-002"]
        .iter()
        .map(|p| {
            let t: Value = serde_json::from_slice(
                &std::fs::read(out.join(p).join("truth/truth.json")).expect("truth"),
            )
            .expect("json");
            assert!(out.join(p).join("manifest.json").exists());
            t["seed"].as_u64().expect("seed")
        })
        .collect();
    assert_eq!(seeds, [40, 41]);
    let o = mrtdose(&[
        "phantom",
        "--out",
        out.to_str().expect("utf8"),
        "--timepoints-h",
        "24,4",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("time points must increase"));
}
