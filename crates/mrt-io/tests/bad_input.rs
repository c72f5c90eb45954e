//! Bad input: every defect gives a typed error naming the file and the problem, never a panic
//! and never a silently wrong volume.

mod common;

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use mrt_io::datetime::parse_dt;
use mrt_io::dicom::write::{write_ct_series, write_nm_spect, SeriesMeta};
use mrt_io::dicom::{open_header, read_image_file, read_series};
use mrt_io::nifti_io::read_nifti;
use proptest::prelude::*;

fn ct_series(dir: &Path) -> Vec<PathBuf> {
    let ct = common::small_ct([8, 8, 6], [1.5, 1.5, 2.5]);
    let meta = SeriesMeta::new("CT", parse_dt("20261127100000").expect("dt"));
    let mut files = write_ct_series(dir, &ct, &meta).expect("written");
    files.sort();
    files
}

/// Opens a DICOM file, lets `edit` change it, writes it back.
fn rewrite(path: &Path, edit: impl FnOnce(&mut dicom_object::DefaultDicomObject)) {
    let mut obj = OpenFileOptions::new().open_file(path).expect("open");
    edit(&mut obj);
    obj.write_to_file(path).expect("write");
}

fn set_ipp(path: &Path, ipp: [f64; 3]) {
    let s = format!("{}\\{}\\{}", ipp[0], ipp[1], ipp[2]);
    rewrite(path, |o| {
        o.put(DataElement::new(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            PrimitiveValue::from(s.as_str()),
        ));
    });
}

fn ipp_of(path: &Path) -> [f64; 3] {
    open_header(path)
        .expect("header")
        .image_position_mm
        .expect("ipp")
}

fn expect_series_error(files: &[PathBuf], needle: &str, file_hint: Option<&Path>) {
    let err = read_series(files).expect_err("must be rejected");
    let msg = err.to_string();
    assert!(msg.contains(needle), "expected {needle:?} in: {msg}");
    if let Some(f) = file_hint {
        assert!(
            msg.contains(&*f.to_string_lossy()),
            "error should name {}: {msg}",
            f.display()
        );
    }
}

#[test]
fn missing_slice_is_reported_as_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = ct_series(dir.path());
    files.remove(3);
    expect_series_error(&files, "1 missing slice(s)", Some(&files[3]));
}

#[test]
fn irregular_spacing_is_an_error_not_a_wrong_volume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = ct_series(dir.path());
    let mut p = ipp_of(&files[2]);
    // Moved by 40 % of the slice spacing along the (nearly z) normal.
    p[2] += 1.0;
    set_ipp(&files[2], p);
    expect_series_error(&files, "irregular slice spacing", None);
}

#[test]
fn sheared_stack_from_gantry_tilt_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = ct_series(dir.path());
    // Each slice shifted along y in proportion to its index: a tilted gantry's sheared stack.
    for (k, f) in files.iter().enumerate() {
        let mut p = ipp_of(f);
        p[1] += 0.9 * k as f64;
        set_ipp(f, p);
        rewrite(f, |o| {
            o.put(DataElement::new(
                tags::GANTRY_DETECTOR_TILT,
                VR::DS,
                PrimitiveValue::from("20"),
            ));
        });
    }
    expect_series_error(&files, "GantryDetectorTilt 20", None);
}

#[test]
fn duplicate_position_with_distinct_instances_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = ct_series(dir.path());
    let p = ipp_of(&files[1]);
    set_ipp(&files[2], p);
    expect_series_error(&files, "duplicate slice position", None);
}

#[test]
fn exact_duplicate_file_is_dropped_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = ct_series(dir.path());
    let copy = dir.path().join("copy.dcm");
    std::fs::copy(&files[0], &copy).expect("copy");
    files.push(copy);
    let v = read_series(&files).expect("duplicate instance tolerated");
    assert_eq!(v.volume.grid().dims[2], 6);
    assert!(
        v.warnings.iter().any(|w| w.contains("same SOPInstanceUID")),
        "{:?}",
        v.warnings
    );
}

#[test]
fn mixed_series_and_mixed_orientation_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = ct_series(dir.path());
    rewrite(&files[4], |o| {
        o.put(DataElement::new(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3.4"),
        ));
    });
    expect_series_error(&files, "another series", Some(&files[4]));

    let dir2 = tempfile::tempdir().expect("tempdir");
    let files2 = ct_series(dir2.path());
    rewrite(&files2[1], |o| {
        o.put(DataElement::new(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            PrimitiveValue::from("1\\0\\0\\0\\0\\-1"),
        ));
    });
    expect_series_error(&files2, "ImageOrientationPatient differs", Some(&files2[1]));

    // A multi-frame SPECT file mixed into a CT slice series.
    let spect = dir2.path().join("spect.dcm");
    write_nm_spect(
        &spect,
        &common::small_spect(),
        &SeriesMeta::new("S", parse_dt("20261127").expect("dt")),
        None,
    )
    .expect("spect");
    let mut mixed = files2.clone();
    mixed[1] = spect.clone();
    let err = read_series(&mixed).expect_err("mixed");
    assert!(err.to_string().contains("spect.dcm"), "{err}");
}

#[test]
fn missing_pixel_data_and_geometry_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = ct_series(dir.path());
    rewrite(&files[0], |o| {
        o.remove_element(tags::PIXEL_DATA);
    });
    let err = read_image_file(&files[0]).expect_err("no pixels");
    assert_eq!(err.code(), "missing_attribute");
    assert!(
        err.to_string().contains("PixelData") && err.to_string().contains("CT_00001.dcm"),
        "{err}"
    );

    let dir2 = tempfile::tempdir().expect("tempdir");
    let files2 = ct_series(dir2.path());
    rewrite(&files2[2], |o| {
        o.remove_element(tags::IMAGE_POSITION_PATIENT);
    });
    expect_series_error_code(&files2, "missing attribute ImagePositionPatient");
}

fn expect_series_error_code(files: &[PathBuf], needle: &str) {
    let err = read_series(files).expect_err("rejected");
    assert!(err.to_string().contains(needle), "{err}");
}

#[test]
fn counts_spect_is_read_and_flagged_not_quantitative() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("counts.dcm");
    write_nm_spect(
        &path,
        &common::small_spect(),
        &SeriesMeta::new("S", parse_dt("20261127").expect("dt")),
        None,
    )
    .expect("spect");
    rewrite(&path, |o| {
        o.put(DataElement::new(
            tags::UNITS,
            VR::CS,
            PrimitiveValue::from("CNTS"),
        ));
        o.remove_element(tags::REAL_WORLD_VALUE_MAPPING_SEQUENCE);
    });
    let v = read_series(std::slice::from_ref(&path)).expect("counts are still read");
    assert!(!v.quantitative);
    assert_eq!(v.units.as_deref(), Some("CNTS"));
    assert!(
        v.warnings.iter().any(|w| w.contains("not quantitative")),
        "{:?}",
        v.warnings
    );
}

#[test]
fn non_nifti_and_missing_files_are_named_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("x.nii");
    std::fs::write(&p, b"definitely not nifti").expect("write");
    let err = read_nifti(&p).expect_err("garbage");
    assert!(err.to_string().contains("x.nii"), "{err}");
    let missing = dir.path().join("absent.dcm");
    let err = read_image_file(&missing).expect_err("absent");
    assert!(
        err.to_string().contains("absent.dcm") && err.code() == "io",
        "{err}"
    );
}

/// The case the property below once found: one bit flipped in the JPEG 2000 SIZ marker of a
/// real file makes the codestream 64×320 for a 64×64 header, and dicom-rs' adapter indexed past
/// its buffer (a caught panic). Now a decode error that names the file and both sizes.
#[test]
fn a_jpeg2000_codestream_larger_than_its_header_is_a_decode_error() {
    let src = common::testdata("pydicom").join("MR_small_jp2klossless.dcm");
    let bytes = std::fs::read(&src).expect("read");
    let flipped = corrupt(&bytes, &Corruption::FlipBits(vec![(0.2601802404898299, 0)]));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("corrupt_siz.dcm");
    std::fs::write(&path, flipped).expect("write");
    let err = read_image_file(&path).map(|_| ()).expect_err("corrupt SIZ");
    assert_eq!(err.code(), "decode", "{err}");
    let text = err.to_string();
    assert!(
        text.contains("corrupt_siz.dcm") && text.contains("64×320") && text.contains("Rows 64"),
        "{text}"
    );
}

/// Real files whose corruption exercises every decoder path: native, RLE (ours), JPEG 2000,
/// JPEG-LS, 12-bit lossy JPEG (ours), deflate, big endian, RT Dose 32-bit, colour JPEG.
const CORRUPTION_TARGETS: &[&str] = &[
    "CT_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_bigendian.dcm",
    "image_dfl.dcm",
    "rtdose_rle.dcm",
    "JPEG2000.dcm",
    "JPEGLSNearLossless_16.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "JPGExtended.dcm",
];

#[derive(Debug, Clone)]
enum Corruption {
    Truncate(f64),
    FlipBits(Vec<(f64, u8)>),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        (0.0f64..1.0).prop_map(Corruption::Truncate),
        proptest::collection::vec((0.0f64..1.0, 0u8..8), 1..8).prop_map(Corruption::FlipBits),
    ]
}

fn corrupt(bytes: &[u8], c: &Corruption) -> Vec<u8> {
    match c {
        Corruption::Truncate(f) => bytes[..(bytes.len() as f64 * f) as usize].to_vec(),
        Corruption::FlipBits(flips) => {
            let mut v = bytes.to_vec();
            for &(pos, bit) in flips {
                let i = ((v.len() - 1) as f64 * pos) as usize;
                v[i] ^= 1 << bit;
            }
            v
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Corrupted real files: reading returns Ok or a typed error naming the file. A panic fails
    /// the property (proptest reports it), and so does a decoder panic that our guard caught:
    /// the guard is a safety net, not the expected path.
    #[test]
    fn corrupted_real_files_never_panic(target in 0..CORRUPTION_TARGETS.len(), c in corruption()) {
        let src = common::testdata("pydicom").join(CORRUPTION_TARGETS[target]);
        let bytes = std::fs::read(&src).expect("read");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(format!("corrupt_{}", CORRUPTION_TARGETS[target]));
        std::fs::write(&path, corrupt(&bytes, &c)).expect("write");
        for result in [
            read_image_file(&path).map(|_| ()),
            open_header(&path).map(|_| ()),
            read_series(std::slice::from_ref(&path)).map(|_| ()),
        ] {
            if let Err(e) = result {
                prop_assert!(e.to_string().contains("corrupt_"), "error does not name the file: {e}");
                prop_assert_ne!(e.code(), "decoder_panicked", "{}", e);
            }
        }
    }
}
