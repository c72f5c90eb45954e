//! Files written by mrt-io, read back by mrt-io and by independent readers (pydicom, nibabel):
//! geometry and values must come back as written.

mod common;

use std::path::Path;

use mrt_core::linalg::{self, rotation_xyz_deg};
use mrt_core::{Grid, Volume};
use mrt_io::datetime::parse_dt;
use mrt_io::dicom::header::SeriesKind;
use mrt_io::dicom::read_series;
use mrt_io::dicom::write::{write_ct_series, write_nm_spect, Administration, SeriesMeta};
use mrt_io::nifti_io::{read_nifti, write_nifti};
use serde_json::Value;

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("f64"))
        .collect()
}

fn read_f64(path: &Path) -> Vec<f64> {
    std::fs::read(path)
        .expect("values")
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
        .collect()
}

/// Oblique (rotated), anisotropic grid with an analytic pattern of integer values.
fn oblique_volume(dims: [usize; 3], spacing: [f64; 3], scale: f32) -> Volume<f32> {
    let grid = Grid::new(
        dims,
        spacing,
        [-101.5, 37.25, -412.0],
        rotation_xyz_deg([4.0, -7.0, 12.0]),
    )
    .expect("valid grid");
    let mut data = Vec::with_capacity(grid.len());
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                let v = ((i * 7 + j * 13 + k * 29) % 2000) as f32 - 1000.0;
                data.push(v * scale);
            }
        }
    }
    Volume::new(grid, data).expect("sized")
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{what}: {a:?} vs {b:?}");
    }
}

#[test]
fn ct_series_round_trips_through_mrt_io_and_pydicom() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ct = oblique_volume([40, 32, 12], [0.9765625, 0.8, 2.5], 1.0);
    let meta = SeriesMeta::new("CT round trip", parse_dt("20261127101500").expect("dt"));
    let files = write_ct_series(dir.path(), &ct, &meta).expect("written");
    assert_eq!(files.len(), 12);

    // Our reader: same geometry (within DS precision), same values.
    let back = read_series(&files).expect("read back");
    assert_eq!(back.kind, SeriesKind::Ct);
    assert!(
        back.volume.grid().same_geometry(ct.grid(), 1e-4),
        "{:?} vs {:?}",
        back.volume.grid(),
        ct.grid()
    );
    assert_eq!(back.volume.data(), ct.data());

    // pydicom: geometry attributes and HU values as written.
    let out = dir.path().join("pydicom.f64");
    let info = common::run_python(
        "pydicom_check.py",
        &[dir.path().as_os_str(), out.as_os_str()],
    );
    assert_eq!(info["slices"], 12);
    assert_eq!(info["shape"], serde_json::json!([12, 32, 40]));
    assert_eq!(info["sop_uids_unique"], true);
    assert_eq!(info["series_uids"].as_array().expect("uids").len(), 1);
    let g = ct.grid();
    let (i, j) = (g.axis_direction(0), g.axis_direction(1));
    assert_close(
        &f64s(&info["orientation"]),
        &[i[0], i[1], i[2], j[0], j[1], j[2]],
        1e-9,
        "IOP",
    );
    assert_close(
        &f64s(&info["pixel_spacing"]),
        &[0.8, 0.9765625],
        0.0,
        "PixelSpacing (row, column)",
    );
    for (k, pos) in info["positions"]
        .as_array()
        .expect("positions")
        .iter()
        .enumerate()
    {
        assert_close(
            &f64s(pos),
            &g.index_to_world([0.0, 0.0, k as f64]),
            1e-9,
            "IPP",
        );
    }
    let theirs = read_f64(&out);
    let ours: Vec<f64> = ct.data().iter().map(|&v| f64::from(v)).collect();
    assert_eq!(
        theirs, ours,
        "pydicom HU values differ from what was written"
    );
}

#[test]
fn nm_spect_round_trips_through_mrt_io_and_pydicom() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("spect.dcm");
    // Activity concentration, Bq/mL: non-negative, not integers.
    let spect =
        oblique_volume([24, 20, 16], [4.7952, 4.7952, 4.7952], 1.0).map(|&v| (v + 1000.0) * 37.3);
    let meta = SeriesMeta::new("SPECT round trip", parse_dt("20261128093000").expect("dt"));
    let admin = Administration {
        radiopharmaceutical: "Lu-177-DOTATATE".into(),
        radionuclide: "^177^Lutetium".into(),
        radionuclide_code: "C-145A8".into(),
        injection_time: parse_dt("20261127091500").expect("dt"),
        injected_activity_mbq: 7400.0,
        half_life_s: 574_300.8,
    };
    let slope = write_nm_spect(&path, &spect, &meta, Some(&admin)).expect("written");

    let back = read_series(std::slice::from_ref(&path)).expect("read back");
    assert_eq!(back.kind, SeriesKind::SpectTomo);
    assert!(back.quantitative);
    assert_eq!(back.units.as_deref(), Some("BQML"));
    assert!(back.volume.grid().same_geometry(spect.grid(), 1e-4));
    // Quantised to the 16-bit rescale step.
    for (a, b) in back.volume.data().iter().zip(spect.data()) {
        assert!(
            f64::from((a - b).abs()) <= slope * 0.5 + 1e-3 * f64::from(b.abs()),
            "{a} vs {b}"
        );
    }
    let rp = back
        .header
        .radiopharmaceutical
        .clone()
        .expect("radiopharmaceutical");
    assert_eq!(rp.injected_activity_mbq, Some(7400.0));
    assert_eq!(rp.half_life_s, Some(574_300.8));
    let hours = back
        .header
        .acquisition_time
        .expect("acq")
        .hours_since(rp.injection_time.expect("inj"));
    assert!((hours - 24.25).abs() < 1e-9, "{hours}");

    let out = dir.path().join("pydicom.f64");
    let info = common::run_python("pydicom_check.py", &[path.as_os_str(), out.as_os_str()]);
    assert_eq!(info["modality"], "NM");
    assert_eq!(info["sop_class_uid"], "1.2.840.10008.5.1.4.1.1.20");
    assert!(info["image_type"]
        .as_array()
        .expect("type")
        .iter()
        .any(|t| t == "RECON TOMO"));
    assert_eq!(info["frames"], 16);
    assert_eq!(info["units"], "BQML");
    assert_eq!(info["real_world_units"], "Bq/ml");
    assert_eq!(info["spacing_between_slices"], 4.7952);
    assert_close(
        &f64s(&info["position"]),
        &spect.grid().origin_mm,
        1e-9,
        "IPP",
    );
    assert_eq!(info["radiopharmaceutical"]["total_dose_bq"], 7.4e9);
    assert_eq!(
        info["radiopharmaceutical"]["start_datetime"],
        "20261127091500.000000"
    );
    // pydicom's rescaled values equal ours exactly (same stored integers, same slope).
    let theirs = read_f64(&out);
    let ours: Vec<f64> = back.volume.data().iter().map(|&v| f64::from(v)).collect();
    assert_eq!(theirs.len(), ours.len());
    for (t, o) in theirs.iter().zip(&ours) {
        assert_eq!(*t as f32 as f64, *o, "pydicom {t} vs ours {o}");
    }
}

#[test]
fn nifti_round_trips_through_mrt_io_and_nibabel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vol = oblique_volume([20, 18, 9], [1.5, 0.75, 3.0], 0.37);
    for name in ["vol.nii", "vol.nii.gz"] {
        let path = dir.path().join(name);
        write_nifti(&path, &vol).expect("written");
        let back = read_nifti(&path).expect("read");
        assert_eq!(back.geometry_source, "sform");
        assert!(back.volume.grid().same_geometry(vol.grid(), 1e-4), "{name}");
        assert_eq!(back.volume.data(), vol.data(), "{name}");

        let out = dir.path().join(format!("{name}.f64"));
        let info = common::run_python("nibabel_check.py", &[path.as_os_str(), out.as_os_str()]);
        assert_eq!(info["shape"], serde_json::json!([20, 18, 9]));
        assert_eq!(info["qform_code"], 1);
        assert_eq!(info["sform_code"], 1);
        // Expected RAS affine from the grid: diag(-1,-1,1) · D · diag(spacing), origin flipped.
        let g = vol.grid();
        let m = g.index_to_world_matrix();
        let flip = [-1.0, -1.0, 1.0];
        for key in ["affine", "qform", "sform"] {
            let a = info[key].as_array().expect("4x4");
            for r in 0..3 {
                let row = f64s(&a[r]);
                let want = [
                    flip[r] * m[r][0],
                    flip[r] * m[r][1],
                    flip[r] * m[r][2],
                    flip[r] * g.origin_mm[r],
                ];
                assert_close(&row, &want, 1e-4, &format!("{name} {key} row {r}"));
            }
        }
        let theirs = read_f64(&out);
        let ours: Vec<f64> = vol.data().iter().map(|&v| f64::from(v)).collect();
        assert_eq!(theirs, ours, "{name}: nibabel values");
    }
}

#[test]
fn nibabel_written_ras_file_reads_into_lps() {
    // A file written by nibabel (not by us): a standard RAS+ axis-aligned image.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ras.nii.gz");
    let script = format!(
        "import nibabel as nib, numpy as np\n\
         a = np.arange(4*3*2, dtype=np.int16).reshape((4,3,2), order='F')\n\
         aff = np.diag([2.0, 3.0, 4.0, 1.0]); aff[:3,3] = [10, 20, 30]\n\
         img = nib.Nifti1Image(a, aff); img.header.set_data_dtype(np.int16)\n\
         img.header['scl_slope'] = 0.5; img.header['scl_inter'] = -1\n\
         nib.save(img, r'{}')\n",
        path.display()
    );
    let status = std::process::Command::new(common::python())
        .args(["-c", &script])
        .status()
        .expect("python");
    assert!(status.success());
    let back = read_nifti(&path).expect("read");
    let g = back.volume.grid();
    assert_eq!(g.dims, [4, 3, 2]);
    assert_eq!(g.spacing_mm, [2.0, 3.0, 4.0]);
    // RAS (10, 20, 30) is LPS (-10, -20, 30); +i (RAS +x, right-to-left... i.e. towards Right+)
    // is LPS -x.
    assert_eq!(g.origin_mm, [-10.0, -20.0, 30.0]);
    assert_eq!(g.axis_direction(0), [-1.0, 0.0, 0.0]);
    assert_eq!(g.axis_direction(1), [0.0, -1.0, 0.0]);
    assert!(linalg::det(&g.direction) > 0.0);
    let want: Vec<f32> = (0..24).map(|v| v as f32 * 0.5 - 1.0).collect();
    assert_eq!(back.volume.data(), &want[..]);
}

#[test]
fn pt_style_spect_series_with_per_slice_rescale_matches_pydicom() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    // Some SPECT exports are single-frame PT-style slices with a rescale slope per slice.
    let dir = tempfile::tempdir().expect("tempdir");
    let ct = oblique_volume([16, 12, 5], [4.0, 4.0, 4.0], 0.1).map(|v| v.abs().round());
    let meta = SeriesMeta::new("PT-style SPECT", parse_dt("20261128093000").expect("dt"));
    let mut files = write_ct_series(dir.path(), &ct, &meta).expect("written");
    files.sort();
    for (k, f) in files.iter().enumerate() {
        let mut obj = dicom_object::OpenFileOptions::new()
            .open_file(f)
            .expect("open");
        let slope = format!("{}", 0.5 + 0.25 * k as f64);
        for (tag, vr, value) in [
            (tags::MODALITY, VR::CS, "PT"),
            (tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.128"),
            (tags::UNITS, VR::CS, "BQML"),
            (tags::RESCALE_SLOPE, VR::DS, slope.as_str()),
            (tags::DECAY_CORRECTION, VR::CS, "NONE"),
        ] {
            obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
        }
        obj.write_to_file(f).expect("rewrite");
    }
    let back = read_series(&files).expect("read");
    assert_eq!(back.kind, SeriesKind::EmissionSlices);
    assert!(back.quantitative);
    assert_eq!(back.units.as_deref(), Some("BQML"));
    let out = dir.path().join("pydicom.f64");
    let info = common::run_python(
        "pydicom_check.py",
        &[dir.path().as_os_str(), out.as_os_str()],
    );
    assert_eq!(info["modality"], "PT");
    let theirs = read_f64(&out);
    let ours: Vec<f64> = back.volume.data().iter().map(|&v| f64::from(v)).collect();
    assert_eq!(theirs.len(), ours.len());
    for (t, o) in theirs.iter().zip(&ours) {
        assert_eq!(*t as f32 as f64, *o, "pydicom {t} vs ours {o}");
    }
    // And the per-slice slopes were really applied: slice k is stored × (0.5 + 0.25 k).
    let n = 16 * 12;
    for k in 0..5 {
        let want = f64::from(ct.data()[k * n + 7]) * (0.5 + 0.25 * k as f64);
        assert_eq!(ours[k * n + 7], want as f32 as f64);
    }
}
