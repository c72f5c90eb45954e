//! Study assembly from a directory tree in an arbitrary layout, with bad files mixed in.

mod common;

use std::path::Path;

use mrt_io::datetime::parse_dt;
use mrt_io::dicom::header::SeriesKind;
use mrt_io::dicom::read_series;
use mrt_io::dicom::write::{write_ct_series, write_nm_spect, Administration, SeriesMeta};
use mrt_io::study::{scan, Pairing};

fn admin(injection: &str) -> Administration {
    Administration {
        radiopharmaceutical: "Lu-177-DOTATATE".into(),
        radionuclide: "^177^Lutetium".into(),
        radionuclide_code: "C-145A8".into(),
        injection_time: parse_dt(injection).expect("dt"),
        injected_activity_mbq: 7400.0,
        half_life_s: 574_300.8,
    }
}

/// Writes CT + SPECT of one time point; returns (ct meta, spect meta).
fn write_timepoint(
    root: &Path,
    sub: &str,
    acq: &str,
    same_for: bool,
    with_admin: bool,
    patient: &str,
) -> (SeriesMeta, SeriesMeta) {
    let t = parse_dt(acq).expect("dt");
    let mut ct_meta = SeriesMeta::new("CT", t);
    ct_meta.patient_id = patient.into();
    let mut spect_meta = SeriesMeta::new("SPECT", mrt_io::datetime::Timestamp(t.0 + 600.0));
    spect_meta.patient_id = patient.into();
    spect_meta.study_uid = ct_meta.study_uid.clone();
    spect_meta.series_number = 2;
    if same_for {
        spect_meta.frame_of_reference_uid = ct_meta.frame_of_reference_uid.clone();
    }
    let ct = common::small_ct([16, 16, 6], [2.0, 2.0, 3.0]);
    write_ct_series(&root.join(sub).join("a/b/ct"), &ct, &ct_meta).expect("ct");
    let a = admin("20261126093000");
    write_nm_spect(
        &root.join(sub).join("nm/spect.dcm"),
        &common::small_spect(),
        &spect_meta,
        with_admin.then_some(&a),
    )
    .expect("spect");
    (ct_meta, spect_meta)
}

#[test]
fn groups_pairs_and_orders_timepoints_and_reports_skipped_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // Written out of time order, in unrelated folders.
    let (ct72, spect72) =
        write_timepoint(root, "zz_day4", "20261129100000", true, true, "PSEUDO-1");
    let (ct4, spect4) = write_timepoint(root, "aa", "20261126133000", true, true, "PSEUDO-1");
    let (ct24, spect24) = write_timepoint(
        root,
        "mm/deep/er",
        "20261127093000",
        false,
        true,
        "PSEUDO-1",
    );
    // A second patient whose SPECT lacks injection data.
    let (_, spect_other) =
        write_timepoint(root, "other", "20261127120000", true, false, "PSEUDO-2");
    // Bad and irrelevant files.
    std::fs::write(root.join("notes.txt"), "not dicom").expect("write");
    let ct_file = std::fs::read_dir(root.join("aa/a/b/ct"))
        .expect("dir")
        .next()
        .expect("file")
        .expect("entry")
        .path();
    let bytes = std::fs::read(&ct_file).expect("read");
    // Cut inside the header: skipped at scan time.
    std::fs::write(root.join("truncated_header.dcm"), &bytes[..bytes.len() / 3]).expect("write");
    // Cut inside the pixel data: the header scan keeps it in the CT series; reading fails.
    std::fs::write(root.join("truncated.dcm"), &bytes[..bytes.len() - 100]).expect("write");
    std::fs::copy(
        common::testdata("pydicom").join("test-SR.dcm"),
        root.join("report.dcm"),
    )
    .expect("copy SR");

    let s = scan(root).expect("scan");
    assert_eq!(s.patients.len(), 2);
    let skipped: Vec<String> = s.skipped.iter().map(|k| k.to_string()).collect();
    assert_eq!(s.skipped.len(), 3, "{skipped:?}");
    assert!(
        s.skipped
            .iter()
            .any(|k| k.path.ends_with("truncated_header.dcm") && k.code == "parse"),
        "{skipped:?}"
    );
    assert!(
        s.skipped
            .iter()
            .any(|k| k.path.ends_with("notes.txt") && k.code == "parse"),
        "{skipped:?}"
    );
    assert!(
        s.skipped
            .iter()
            .any(|k| k.path.ends_with("report.dcm") && k.code == "not_an_image"),
        "{skipped:?}"
    );

    let p1 = s
        .patients
        .iter()
        .find(|p| p.timepoints.len() == 3)
        .expect("patient with three time points");
    let hours: Vec<f64> = p1
        .timepoints
        .iter()
        .map(|t| t.hours_post_injection.expect("hours"))
        .collect();
    // Injection 2026-11-26 09:30; SPECTs start 10 min after their CT.
    let expected = [4.0 + 10.0 / 60.0, 24.0 + 10.0 / 60.0, 72.5 + 10.0 / 60.0];
    for (h, e) in hours.iter().zip(expected) {
        assert!((h - e).abs() < 1e-9, "{hours:?}");
    }
    let uids: Vec<&str> = p1
        .timepoints
        .iter()
        .map(|t| t.spect_series_uid.as_str())
        .collect();
    assert_eq!(
        uids,
        [
            spect4.series_uid.as_str(),
            spect24.series_uid.as_str(),
            spect72.series_uid.as_str()
        ]
    );
    assert_eq!(
        p1.timepoints[0].ct_series_uid.as_deref(),
        Some(ct4.series_uid.as_str())
    );
    assert_eq!(p1.timepoints[0].pairing, Pairing::FrameOfReference);
    assert_eq!(
        p1.timepoints[1].ct_series_uid.as_deref(),
        Some(ct24.series_uid.as_str())
    );
    assert_eq!(p1.timepoints[1].pairing, Pairing::NearestAcquisitionTime);
    assert_eq!(
        p1.timepoints[2].ct_series_uid.as_deref(),
        Some(ct72.series_uid.as_str())
    );
    assert!(p1
        .timepoints
        .iter()
        .all(|t| t.injected_activity_mbq == Some(7400.0)));

    let p2 = s
        .patients
        .iter()
        .find(|p| p.timepoints.len() == 1)
        .expect("second patient");
    let tp = &p2.timepoints[0];
    assert_eq!(tp.spect_series_uid, spect_other.series_uid);
    assert_eq!(tp.hours_post_injection, None);
    assert_eq!(tp.injected_activity_mbq, None);
    assert!(
        tp.warnings
            .iter()
            .any(|w| w.contains("injection time and activity unknown")),
        "{:?}",
        tp.warnings
    );

    // Patient identifiers never appear in what is reported.
    let json = serde_json::to_string(&s).expect("json");
    assert!(
        !json.contains("PSEUDO-1") && !json.contains("ANONYMOUS"),
        "identifier leaked"
    );

    // Good series read; the series holding the truncated copy fails with a named error.
    for series in s.series() {
        let result = read_series(&series.files);
        if series.files.iter().any(|f| f.ends_with("truncated.dcm")) {
            let err = result.expect_err("truncated slice");
            assert!(err.to_string().contains("truncated.dcm"), "{err}");
        } else {
            let v = result.unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(v.kind, SeriesKind::Ct | SeriesKind::SpectTomo));
        }
    }
}
