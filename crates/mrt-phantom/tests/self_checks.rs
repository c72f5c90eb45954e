//! Self-checks of the simulator: the numbers it writes agree with the truth it claims, and with
//! independent readers.

use std::path::{Path, PathBuf};
use std::process::Command;

use mrt_core::Grid;
use mrt_io::dicom::read_series;
use mrt_io::nifti_io::read_nifti;
use mrt_io::study::scan;
use mrt_phantom::simulate::{form_spect, FineActivity};
use mrt_phantom::truth::Truth;
use mrt_phantom::{write_phantom, Format, Options};
use serde_json::Value;

fn options(seed: u64) -> Options {
    let mut o = Options::new(seed);
    o.timepoints_h = vec![4.0, 72.0];
    o.misalign_mm = 10.0;
    o
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let p = repo().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run scripts/test-data.sh",
        p.display()
    );
    p
}

fn run_python(script: &str, args: &[&std::ffi::OsStr]) -> Value {
    let out = Command::new(python())
        .arg(repo().join("scripts").join(script))
        .args(args)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn read_truth(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("truth/truth.json")).expect("truth"))
        .expect("json")
}

#[test]
fn spect_holds_the_true_activity_within_poisson_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let truth: Truth = write_phantom(dir.path(), options(11), Format::Nifti).expect("phantom");
    let cam = &truth.camera;
    let counts_per_mbq = cam.sensitivity_cps_per_mbq * cam.acquisition_s * cam.detection_fraction;
    for tp in &truth.timepoints {
        let spect = read_nifti(&dir.path().join(&tp.spect)).expect("spect");
        let ml = spect.volume.grid().voxel_volume_mm3() / 1000.0;
        let total_mbq: f64 = spect
            .volume
            .data()
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>()
            * ml
            / 1e6;
        let truth_mbq = tp.activity_in_spect_fov_mbq;
        let counts = truth_mbq * counts_per_mbq;
        // Poisson: relative SD 1/√N. The PSF moves a little activity across the axial FOV edges
        // (both ways, since the body continues beyond them): allowed 0.5 %.
        let tolerance = 4.0 / counts.sqrt() + 0.005;
        let rel = total_mbq / truth_mbq - 1.0;
        println!("{} h: SPECT {total_mbq:.2} MBq, truth {truth_mbq:.2} MBq, {rel:+.4} (tol {tolerance:.4})", tp.hours_post_injection);
        assert!(rel.abs() < tolerance, "{rel}");
    }
}

#[test]
fn point_source_images_with_the_configured_fwhm() {
    // Noise-free image of one fine voxel: its SPECT profile has variance σ_psf² + s²/12 along
    // each axis (Gaussian PSF convolved with the voxel's box average).
    let spect = Grid::axis_aligned([41, 41, 41], [4.7952; 3], [0.0; 3]).expect("grid");
    let mut a = FineActivity::empty(&spect, 3, [(0, 41), (0, 41), (0, 41)]);
    let c = a.fine.grid().offset(61, 61, 61); // centre of SPECT voxel 20
    let dv = a.fine.grid().voxel_volume_mm3() / 1000.0;
    a.fine.data_mut()[c] = (1.0 / dv) as f32; // 1 MBq
    for fwhm in [8.0, 11.0, 15.0] {
        let img = form_spect(&a, &spect, fwhm, None, 1, 1);
        let ml = spect.voxel_volume_mm3() / 1000.0;
        let total: f64 = img.data().iter().map(|&v| f64::from(v)).sum::<f64>() * ml / 1e6;
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        let s = spect.spacing_mm[0];
        for axis in 0..3 {
            let (mut m0, mut m2) = (0.0, 0.0);
            for n in 0..41 {
                let mut idx = [20usize; 3];
                idx[axis] = n;
                let w = f64::from(*img.at(idx[0], idx[1], idx[2]));
                m0 += w;
                m2 += w * ((n as f64 - 20.0) * s).powi(2);
            }
            let sigma_psf = (m2 / m0 - s * s / 12.0).sqrt();
            let measured = sigma_psf * mrt_core::filter::FWHM_PER_SIGMA;
            assert!(
                (measured / fwhm - 1.0).abs() < 0.03,
                "axis {axis}: {measured} vs {fwhm}"
            );
        }
    }
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let a = tempfile::tempdir().expect("a");
    let b = tempfile::tempdir().expect("b");
    let c = tempfile::tempdir().expect("c");
    let mut o = options(5);
    o.timepoints_h = vec![24.0];
    write_phantom(a.path(), o.clone(), Format::Dicom).expect("a");
    write_phantom(b.path(), o.clone(), Format::Dicom).expect("b");
    o.seed = 6;
    write_phantom(c.path(), o, Format::Dicom).expect("c");
    let files = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = walk(d)
            .into_iter()
            .map(|p| p.strip_prefix(d).expect("prefix").to_path_buf())
            .collect();
        v.sort();
        v
    };
    let fa = files(a.path());
    assert_eq!(fa, files(b.path()));
    assert!(fa.len() > 100, "{} files", fa.len());
    for f in &fa {
        let x = std::fs::read(a.path().join(f)).expect("read");
        let y = std::fs::read(b.path().join(f)).expect("read");
        assert!(
            x == y,
            "{} differs between runs with the same seed",
            f.display()
        );
    }
    let spect = Path::new("tp1/spect/spect.dcm");
    assert_ne!(
        std::fs::read(a.path().join(spect)).expect("a"),
        std::fs::read(c.path().join(spect)).expect("c")
    );
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).expect("dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn dicom_output_is_read_by_pydicom_nibabel_and_mrt_io_and_labels_align_with_ct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = write_phantom(dir.path(), options(21), Format::Dicom).expect("phantom");
    let t = read_truth(dir.path());
    assert_eq!(t["schema"], "mrtdose.truth.v1");
    assert_eq!(t["labels"]["1"], "liver");
    assert_eq!(t["labels"]["2"], "kidney_left");
    for (n, tp) in truth.timepoints.iter().enumerate() {
        // mrt-io.
        let ct_files: Vec<PathBuf> = walk(&dir.path().join(&tp.ct));
        let ct = read_series(&ct_files).expect("CT");
        let spect = read_series(&walk(&dir.path().join(&tp.spect))).expect("SPECT");
        assert!(spect.quantitative);
        let labels = read_nifti(&dir.path().join(&tp.labels)).expect("labels");
        assert!(
            labels.volume.grid().same_geometry(ct.volume.grid(), 1e-3),
            "labels not on the CT grid"
        );
        // pydicom.
        let out = dir.path().join(format!("ct{n}.f64"));
        let info = run_python(
            "pydicom_check.py",
            &[dir.path().join(&tp.ct).as_os_str(), out.as_os_str()],
        );
        assert_eq!(
            info["slices"].as_u64(),
            Some(ct.volume.grid().dims[2] as u64)
        );
        let spect_file = dir.path().join(&tp.spect).join("spect.dcm");
        let info = run_python(
            "pydicom_check.py",
            &[spect_file.as_os_str(), out.as_os_str()],
        );
        assert_eq!(info["units"], "BQML");
        let rp = &info["radiopharmaceutical"];
        assert!(
            (rp["total_dose_bq"].as_f64().expect("dose") / 1e6 - truth.injected_activity_mbq).abs()
                < 1e-3
        );
        assert_eq!(
            rp["start_datetime"].as_str().expect("dt").get(..14),
            truth.injection_datetime.get(..14)
        );
        // nibabel reads the labels with the CT's geometry and the same values.
        let lout = dir.path().join(format!("lab{n}.f64"));
        let info = run_python(
            "nibabel_check.py",
            &[dir.path().join(&tp.labels).as_os_str(), lout.as_os_str()],
        );
        assert_eq!(info["dtype"], "uint8");
        let theirs: Vec<f64> = std::fs::read(&lout)
            .expect("values")
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
            .collect();
        let ours: Vec<f64> = labels.volume.data().iter().map(|&v| f64::from(v)).collect();
        assert_eq!(theirs, ours);
        for l in 1..=4 {
            assert!(
                ours.contains(&(l as f64)),
                "label {l} missing at {}",
                tp.labels
            );
        }
    }
    // Study assembly finds the time points in order with the right hours and activity.
    let s = scan(dir.path()).expect("scan");
    assert_eq!(s.patients.len(), 1);
    let tps = &s.patients[0].timepoints;
    assert_eq!(tps.len(), truth.timepoints.len());
    for (got, want) in tps.iter().zip(&truth.timepoints) {
        assert!(
            (got.hours_post_injection.expect("hours") - want.hours_post_injection).abs() < 1e-6
        );
        assert_eq!(got.pairing, mrt_io::study::Pairing::FrameOfReference);
        assert!(got.warnings.is_empty(), "{:?}", got.warnings);
    }
}

#[test]
fn truth_is_self_consistent_with_independent_constants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = write_phantom(dir.path(), options(31), Format::Nifti).expect("phantom");
    // OpenDose self-dose values and reference masses quoted in shared/reference/README.md.
    let quoted = |phantom: &str, organ: &str| -> (f64, f64) {
        match (phantom, organ) {
            ("ICRP110_AM", "liver") => (1.3713e-5, 1799.8),
            ("ICRP110_AM", "spleen") => (1.5967e-4, 150.0),
            ("ICRP110_AM", "kidney_left") => (1.5662e-4, 153.0),
            ("ICRP110_AM", "kidney_right") => (1.5283e-4, 157.0),
            ("ICRP110_AF", "liver") => (1.7533e-5, 1400.0),
            ("ICRP110_AF", "spleen") => (1.8361e-4, 130.0),
            ("ICRP110_AF", "kidney_left") => (1.6034e-4, 149.5),
            ("ICRP110_AF", "kidney_right") => (1.9083e-4, 125.5),
            _ => panic!("unexpected {phantom} {organ}"),
        }
    };
    for (name, o) in &truth.organs {
        let (s, m_ref) = quoted(truth.phantom, name);
        let dose = o.tia_mbq_h * 3600.0 * s * m_ref / o.mass_g / 1000.0;
        // The README rounds masses to 0.1 g.
        assert!(
            (dose / o.absorbed_dose_gy - 1.0).abs() < 1e-3,
            "{name}: {dose} vs {}",
            o.absorbed_dose_gy
        );
        // Local deposition with 2.370e-14 J per decay (README).
        let ldm = o.tia_mbq_h * 3600.0 * 1e6 * 2.370e-14 / (o.mass_g / 1000.0);
        assert!((ldm / o.voxel_dose_mean_gy - 1.0).abs() < 1e-3, "{name}");
        // Activities follow the stated kinetics.
        for (a, tp) in o.activity_mbq.iter().zip(&truth.timepoints) {
            let k = o.kinetics;
            let l2 = std::f64::consts::LN_2;
            let t = tp.hours_post_injection;
            let washout = (1.0 - k.fast_fraction) * (-l2 * t / k.t_eff_h).exp()
                + if k.fast_fraction > 0.0 {
                    k.fast_fraction * (-l2 * t / k.t_fast_h).exp()
                } else {
                    0.0
                };
            let want = k.a0_mbq * (1.0 - (-l2 * t / k.t_up_h).exp()) * washout;
            assert!((a - want).abs() < 1e-9 * want.max(1.0));
        }
        // Gy per GBq inside the literature ranges of the reference (DOTATATE sanity ranges).
        let gy_per_gbq = o.absorbed_dose_gy / (truth.injected_activity_mbq / 1000.0);
        let (lo, hi) = match name.as_str() {
            "kidney_left" | "kidney_right" => (0.1, 2.5),
            "liver" => (0.03, 1.5),
            _ => (0.1, 4.0),
        };
        assert!(
            (lo..hi).contains(&gy_per_gbq),
            "{name}: {gy_per_gbq} Gy/GBq"
        );
    }
    // NIfTI output (CT, SPECT, manifest) is read by nibabel with the shapes and values we wrote.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(
        manifest["timepoints"].as_array().expect("tps").len(),
        truth.timepoints.len()
    );
    for tp in &truth.timepoints {
        for rel in [&tp.ct, &tp.spect] {
            let path = dir.path().join(rel);
            let ours = read_nifti(&path).expect("ours").volume;
            let out = dir.path().join("nib.f64");
            let info = run_python("nibabel_check.py", &[path.as_os_str(), out.as_os_str()]);
            assert_eq!(info["shape"], serde_json::json!(ours.grid().dims), "{rel}");
            let theirs: Vec<f64> = std::fs::read(&out)
                .expect("values")
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
                .collect();
            assert!(
                theirs.iter().zip(ours.data()).all(|(t, &o)| *t as f32 == o),
                "{rel}: values differ"
            );
        }
    }
    // Organ volumes agree with the truth label maps on the CT grid (3 mm voxels: ±6 %).
    for tp in &truth.timepoints {
        let labels = read_nifti(&dir.path().join(&tp.labels))
            .expect("labels")
            .volume;
        let ml = labels.grid().voxel_volume_mm3() / 1000.0;
        for (value, name) in [
            (1.0, "liver"),
            (2.0, "kidney_left"),
            (3.0, "kidney_right"),
            (4.0, "spleen"),
        ] {
            let v = labels.data().iter().filter(|&&x| x == value).count() as f64 * ml;
            let want = truth.organs[name].volume_ml;
            assert!(
                (v / want - 1.0).abs() < 0.06,
                "{name}: {v} mL on CT vs {want} mL"
            );
        }
        let shift = tp.spect_to_ct.translation_mm;
        assert!(shift.iter().map(|x| x * x).sum::<f64>().sqrt() <= 10.0 + 1e-9);
    }
}
