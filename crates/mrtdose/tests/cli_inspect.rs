//! `mrtdose inspect` end to end, through the real binary, against pydicom's reading of the same
//! real files.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn testdata(sub: &str) -> PathBuf {
    let p = repo().join("testdata").join(sub);
    assert!(
        p.exists(),
        "{} missing: run scripts/test-data.sh",
        p.display()
    );
    p
}

fn inspect_json(path: &std::path::Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mrtdose"))
        .args(["inspect", "--json"])
        .arg(path)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn inspect_ct_small_matches_pydicom() {
    let reference: Value = serde_json::from_slice(
        &std::fs::read(testdata("pydicom-reference").join("expected.json")).expect("reference"),
    )
    .expect("json");
    let want = reference["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|e| e["file"] == "CT_small.dcm")
        .expect("CT_small entry");
    let r = inspect_json(&testdata("pydicom").join("CT_small.dcm"));
    assert_eq!(r["schema"], "mrtdose.inspect.v1");
    let series = &r["patients"][0]["studies"][0]["series"][0];
    assert_eq!(series["kind"], "ct");
    let v = &series["volume"];
    assert_eq!(
        v["dims"],
        serde_json::json!([want["columns"], want["rows"], 1])
    );
    let ps = want["pixel_spacing"].as_array().expect("ps");
    assert_eq!(v["spacing_mm"][0], ps[1]);
    assert_eq!(v["spacing_mm"][1], ps[0]);
    assert_eq!(v["origin_mm"], want["image_position"]);
    assert_eq!(v["units"], "HU");
    for key in ["min", "max"] {
        assert_eq!(v["stats"][key], want[key], "{key}");
    }
    let mean = v["stats"]["mean"].as_f64().expect("mean");
    assert!((mean - want["mean"].as_f64().expect("mean")).abs() < 1e-9);
}

#[test]
fn inspect_directory_lists_skipped_files_with_reasons() {
    let r = inspect_json(&testdata("pydicom"));
    let skipped = r["skipped"].as_array().expect("skipped");
    assert!(skipped
        .iter()
        .any(|s| s["path"].as_str().expect("p").ends_with("rtplan.dcm")
            && s["code"] == "not_an_image"));
    assert!(skipped
        .iter()
        .any(|s| s["path"].as_str().expect("p").ends_with("no_meta.dcm") && s["code"] == "parse"));
    // Colour images are grouped but their volumes fail with a reason.
    let all_series: Vec<&Value> = r["patients"]
        .as_array()
        .expect("patients")
        .iter()
        .flat_map(|p| p["studies"].as_array().expect("studies").iter())
        .flat_map(|s| s["series"].as_array().expect("series").iter())
        .collect();
    assert!(all_series
        .iter()
        .any(|s| s["error"]["code"] == "unsupported"));
    assert!(all_series.iter().any(|s| s["volume"]["dims"].is_array()));
    // No patient identifiers in the output.
    let text = serde_json::to_string(&r).expect("json");
    assert!(!text.contains("CompressedSamples"), "patient name leaked");
}

#[test]
fn inspect_missing_path_fails_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_mrtdose"))
        .args(["inspect", "/nonexistent/study"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/study"), "{err}");
}
