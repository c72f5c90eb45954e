//! `mrtdose dosimetry` through the binary: the design brief's example input, and a bad input.

use std::process::Command;

use serde_json::Value;

/// Runs `mrtdose dosimetry --input INPUT --out OUT`.
fn dosimetry(input: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mrtdose"))
        .args(["dosimetry", "--input"])
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .expect("runs")
}

#[test]
fn design_brief_example_runs_and_bad_input_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("tacs.json");
    std::fs::write(
        &input,
        r#"{ "schema": "mrtdose.tacs.v1", "radionuclide": "Lu-177", "injected_activity_MBq": 7400,
             "phantom": "ICRP110_AM",
             "organs": [ { "name": "kidney_left", "mass_g": 150.0, "times_h": [4, 24, 72, 168],
                           "activity_MBq": [98.6, 73.6, 25.4, 19.0], "fit_model": "auto" } ] }"#,
    )
    .expect("write");
    let out = dir.path().join("out/result.json");
    let o = dosimetry(&input, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&std::fs::read(&out).expect("result")).expect("json");
    assert_eq!(r["schema"], "mrtdose.dosimetry.v1");
    let k = &r["organs"]["kidney_left"];
    for key in [
        "tia_MBq_h",
        "absorbed_dose_Gy",
        "absorbed_dose_Gy_per_GBq",
        "uncertainty_percent",
        "bed_Gy",
    ] {
        assert!(k[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {k}");
    }
    // Gy/GBq consistent with Gy and the injected activity.
    let d = k["absorbed_dose_Gy"].as_f64().expect("d");
    assert!((k["absorbed_dose_Gy_per_GBq"].as_f64().expect("g") - d / 7.4).abs() < 1e-9);

    std::fs::write(&input, r#"{ "schema": "mrtdose.tacs.v1", "radionuclide": "Lu-177", "injected_activity_MBq": -5, "phantom": "ICRP110_AM", "organs": [] }"#)
        .expect("write");
    let o = dosimetry(&input, &out);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tacs.json") && err.contains("injected_activity_MBq"),
        "{err}"
    );
}
