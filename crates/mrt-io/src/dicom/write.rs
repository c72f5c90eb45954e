//! Writing CT series (one file per slice) and NM multi-frame SPECT (RECON TOMO, Bq/mL) as real
//! scanners and cameras do, so that phantoms exercise the same reading code as clinical data.
//!
//! Geometry comes from the [`Grid`]: ImageOrientationPatient = the i and j axes,
//! ImagePositionPatient = world position of each slice's first voxel, PixelSpacing =
//! (spacing j, spacing i). The grid must be right-handed (k = i × j), which is how DICOM stacks
//! slices. Files are Explicit VR Little Endian with a proper file meta group and fresh UIDs.

use std::path::{Path, PathBuf};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use mrt_core::linalg;
use mrt_core::{Grid, Volume};
use rayon::prelude::*;

use super::uid::{derived_uid, new_uid};
use crate::datetime::Timestamp;
use crate::error::{IoError, Problem, Result};

/// Identity and timing of the series to write. Patient identifiers should be pseudonyms.
#[derive(Debug, Clone)]
pub struct SeriesMeta {
    /// Pseudonymous patient ID.
    pub patient_id: String,
    /// Pseudonymous patient name.
    pub patient_name: String,
    /// Patient sex (`M`, `F`, `O`), written when known: it picks the reference phantom.
    pub patient_sex: Option<String>,
    /// Study Instance UID shared by all series of the study.
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// Frame of Reference UID (shared by a SPECT and its CT).
    pub frame_of_reference_uid: String,
    /// Series number.
    pub series_number: i32,
    /// Series description.
    pub series_description: String,
    /// Acquisition start.
    pub acquisition_time: Timestamp,
    /// When set, SOP Instance UIDs are derived from this seed, the series UID and the instance
    /// index instead of drawn at random, so the same input writes byte-identical files.
    pub instance_uid_seed: Option<u64>,
}

impl SeriesMeta {
    /// A new series with fresh UIDs in a new study.
    pub fn new(description: &str, acquisition_time: Timestamp) -> Self {
        Self {
            patient_id: "ANON".into(),
            patient_name: "ANONYMOUS".into(),
            patient_sex: None,
            study_uid: new_uid(),
            series_uid: new_uid(),
            frame_of_reference_uid: new_uid(),
            series_number: 1,
            series_description: description.into(),
            acquisition_time,
            instance_uid_seed: None,
        }
    }
}

/// Radiopharmaceutical administration, written into RadiopharmaceuticalInformationSequence.
#[derive(Debug, Clone)]
pub struct Administration {
    /// e.g. `Lu-177-DOTATATE`.
    pub radiopharmaceutical: String,
    /// Radionuclide code meaning, e.g. `^177^Lutetium`.
    pub radionuclide: String,
    /// SNOMED code value of the radionuclide, e.g. `C-145A8` (177Lu, scheme SRT).
    pub radionuclide_code: String,
    /// Injection time.
    pub injection_time: Timestamp,
    /// Injected activity in MBq (written as RadionuclideTotalDose in Bq).
    pub injected_activity_mbq: f64,
    /// Physical half-life in seconds.
    pub half_life_s: f64,
}

/// The SOP Instance UID of instance `index` of the series.
fn instance_uid(meta: &SeriesMeta, index: usize) -> String {
    match meta.instance_uid_seed {
        Some(seed) => {
            // FNV-1a of the series UID keeps instances of different series apart.
            let h = meta
                .series_uid
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
            derived_uid(seed, &[h, index as u64])
        }
        None => new_uid(),
    }
}

fn write_err(path: &Path, msg: impl std::fmt::Display) -> IoError {
    IoError::new(path, Problem::Write(msg.to_string()))
}

/// Formats a DS value in at most 16 characters, keeping as many digits as fit.
pub fn format_ds(v: f64) -> String {
    let s = format!("{v}");
    if s.len() <= 16 {
        return s;
    }
    for prec in (1..=15).rev() {
        let fixed = format!("{v:.prec$}");
        if fixed.len() <= 16 {
            return fixed;
        }
    }
    for prec in (1..=10).rev() {
        let sci = format!("{v:.prec$e}");
        if sci.len() <= 16 {
            return sci;
        }
    }
    format!("{v:.0e}")
}

fn ds_multi(values: &[f64]) -> String {
    values
        .iter()
        .map(|&v| format_ds(v))
        .collect::<Vec<_>>()
        .join("\\")
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn put_u16(obj: &mut InMemDicomObject, tag: Tag, value: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

fn check_right_handed(path: &Path, grid: &Grid) -> Result<()> {
    if linalg::det(&grid.direction) < 0.0 {
        return Err(write_err(
            path,
            "grid is left-handed (k ≠ i × j); flip the k axis before writing DICOM",
        ));
    }
    Ok(())
}

/// Attributes common to every image written.
fn base_dataset(
    meta: &SeriesMeta,
    modality: &str,
    sop_class: &str,
    sop_instance: &str,
    grid: &Grid,
) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    let (da, tm) = meta.acquisition_time.to_da_tm();
    put_str(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put_str(&mut o, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put_str(&mut o, tags::SOP_INSTANCE_UID, VR::UI, sop_instance);
    put_str(&mut o, tags::STUDY_DATE, VR::DA, &da);
    put_str(&mut o, tags::SERIES_DATE, VR::DA, &da);
    put_str(&mut o, tags::ACQUISITION_DATE, VR::DA, &da);
    put_str(&mut o, tags::STUDY_TIME, VR::TM, &tm);
    put_str(&mut o, tags::SERIES_TIME, VR::TM, &tm);
    put_str(&mut o, tags::ACQUISITION_TIME, VR::TM, &tm);
    put_str(
        &mut o,
        tags::ACQUISITION_DATE_TIME,
        VR::DT,
        &meta.acquisition_time.to_dt(),
    );
    put_str(&mut o, tags::MODALITY, VR::CS, modality);
    put_str(&mut o, tags::MANUFACTURER, VR::LO, "mrtdose");
    put_str(
        &mut o,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        &meta.series_description,
    );
    put_str(&mut o, tags::PATIENT_NAME, VR::PN, &meta.patient_name);
    put_str(&mut o, tags::PATIENT_ID, VR::LO, &meta.patient_id);
    if let Some(sex) = &meta.patient_sex {
        put_str(&mut o, tags::PATIENT_SEX, VR::CS, sex);
    }
    put_str(&mut o, tags::PATIENT_POSITION, VR::CS, "FFS");
    put_str(&mut o, tags::STUDY_INSTANCE_UID, VR::UI, &meta.study_uid);
    put_str(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &meta.series_uid);
    put_str(&mut o, tags::STUDY_ID, VR::SH, "1");
    put_str(
        &mut o,
        tags::SERIES_NUMBER,
        VR::IS,
        &meta.series_number.to_string(),
    );
    put_str(
        &mut o,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        &meta.frame_of_reference_uid,
    );
    put_str(&mut o, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
    put_u16(&mut o, tags::ROWS, grid.dims[1] as u16);
    put_u16(&mut o, tags::COLUMNS, grid.dims[0] as u16);
    put_str(
        &mut o,
        tags::PIXEL_SPACING,
        VR::DS,
        &ds_multi(&[grid.spacing_mm[1], grid.spacing_mm[0]]),
    );
    put_str(
        &mut o,
        tags::SLICE_THICKNESS,
        VR::DS,
        &format_ds(grid.spacing_mm[2]),
    );
    put_u16(&mut o, tags::SAMPLES_PER_PIXEL, 1);
    put_str(
        &mut o,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    o
}

fn orientation(grid: &Grid) -> String {
    let i = grid.axis_direction(0);
    let j = grid.axis_direction(1);
    ds_multi(&[i[0], i[1], i[2], j[0], j[1], j[2]])
}

fn save(obj: InMemDicomObject, path: &Path, sop_class: &str, sop_instance: &str) -> Result<()> {
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(sop_class)
                .media_storage_sop_instance_uid(sop_instance)
                .implementation_class_uid("2.25.167837211403423370914405123786431512771")
                .implementation_version_name("MRTDOSE_0_1"),
        )
        .map_err(|e| write_err(path, e))?;
    file.write_to_file(path).map_err(|e| write_err(path, e))
}

/// Writes a CT volume (HU) as one file per slice `CT_00001.dcm`, ... in `dir` (created).
/// Values are rounded to integer HU and stored as signed 16-bit with RescaleSlope 1,
/// RescaleIntercept 0.
pub fn write_ct_series(dir: &Path, hu: &Volume<f32>, meta: &SeriesMeta) -> Result<Vec<PathBuf>> {
    let grid = hu.grid();
    check_right_handed(dir, grid)?;
    if grid.dims[0] > u16::MAX as usize || grid.dims[1] > u16::MAX as usize {
        return Err(write_err(dir, "slice larger than 65535 pixels"));
    }
    std::fs::create_dir_all(dir).map_err(|e| IoError::new(dir, Problem::Io(e)))?;
    let [nx, ny, nz] = grid.dims;
    let iop = orientation(grid);
    (0..nz)
        .into_par_iter()
        .map(|k| {
            let path = dir.join(format!("CT_{:05}.dcm", k + 1));
            let sop_instance = instance_uid(meta, k);
            let mut o = base_dataset(meta, "CT", uids::CT_IMAGE_STORAGE, &sop_instance, grid);
            put_str(&mut o, tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\AXIAL");
            put_str(&mut o, tags::INSTANCE_NUMBER, VR::IS, &(k + 1).to_string());
            let ipp = grid.index_to_world([0.0, 0.0, k as f64]);
            put_str(
                &mut o,
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                &ds_multi(&ipp),
            );
            put_str(&mut o, tags::IMAGE_ORIENTATION_PATIENT, VR::DS, &iop);
            put_str(&mut o, tags::SLICE_LOCATION, VR::DS, &format_ds(ipp[2]));
            put_str(
                &mut o,
                tags::SPACING_BETWEEN_SLICES,
                VR::DS,
                &format_ds(grid.spacing_mm[2]),
            );
            put_str(&mut o, tags::KVP, VR::DS, "120");
            put_u16(&mut o, tags::BITS_ALLOCATED, 16);
            put_u16(&mut o, tags::BITS_STORED, 16);
            put_u16(&mut o, tags::HIGH_BIT, 15);
            put_u16(&mut o, tags::PIXEL_REPRESENTATION, 1);
            put_str(&mut o, tags::RESCALE_INTERCEPT, VR::DS, "0");
            put_str(&mut o, tags::RESCALE_SLOPE, VR::DS, "1");
            put_str(&mut o, tags::RESCALE_TYPE, VR::LO, "HU");
            let slab = &hu.data()[k * nx * ny..(k + 1) * nx * ny];
            let bytes: Vec<u8> = slab
                .iter()
                .flat_map(|&v| {
                    (v.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16).to_le_bytes()
                })
                .collect();
            o.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::from(bytes),
            ));
            save(o, &path, uids::CT_IMAGE_STORAGE, &sop_instance)?;
            Ok(path)
        })
        .collect()
}

fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut c = InMemDicomObject::new_empty();
    put_str(&mut c, tags::CODE_VALUE, VR::SH, value);
    put_str(&mut c, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put_str(&mut c, tags::CODE_MEANING, VR::LO, meaning);
    c
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

/// Writes a SPECT volume in Bq/mL as one NM Image Storage file, RECON TOMO, Units BQML.
/// Values are stored as unsigned 16-bit with RescaleSlope = max / 65535 (negative values are
/// clipped to 0) and mirrored in a Real World Value Mapping in Bq/ml. Returns the slope, i.e.
/// the quantisation step in Bq/mL.
pub fn write_nm_spect(
    path: &Path,
    bq_per_ml: &Volume<f32>,
    meta: &SeriesMeta,
    administration: Option<&Administration>,
) -> Result<f64> {
    let grid = bq_per_ml.grid();
    check_right_handed(path, grid)?;
    let nz = grid.dims[2];
    if nz > u16::MAX as usize {
        return Err(write_err(path, "more than 65535 slices"));
    }
    let max = bq_per_ml
        .data()
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f32, f32::max);
    let slope: f64 = if max > 0.0 {
        f64::from(max) / 65535.0
    } else {
        1.0
    };
    let sop_instance = instance_uid(meta, 0);
    let sop_class = uids::NUCLEAR_MEDICINE_IMAGE_STORAGE;
    let mut o = base_dataset(meta, "NM", sop_class, &sop_instance, grid);
    put_str(
        &mut o,
        tags::IMAGE_TYPE,
        VR::CS,
        "ORIGINAL\\PRIMARY\\RECON TOMO\\EMISSION",
    );
    put_str(&mut o, tags::INSTANCE_NUMBER, VR::IS, "1");
    put_str(&mut o, tags::NUMBER_OF_FRAMES, VR::IS, &nz.to_string());
    o.put(DataElement::new(
        tags::FRAME_INCREMENT_POINTER,
        VR::AT,
        PrimitiveValue::Tags([tags::SLICE_VECTOR].into_iter().collect()),
    ));
    o.put(DataElement::new(
        tags::SLICE_VECTOR,
        VR::US,
        PrimitiveValue::U16((1..=nz as u16).collect()),
    ));
    put_u16(&mut o, tags::NUMBER_OF_SLICES, nz as u16);
    put_str(
        &mut o,
        tags::SPACING_BETWEEN_SLICES,
        VR::DS,
        &format_ds(grid.spacing_mm[2]),
    );
    put_u16(&mut o, tags::BITS_ALLOCATED, 16);
    put_u16(&mut o, tags::BITS_STORED, 16);
    put_u16(&mut o, tags::HIGH_BIT, 15);
    put_u16(&mut o, tags::PIXEL_REPRESENTATION, 0);
    put_str(&mut o, tags::RESCALE_INTERCEPT, VR::DS, "0");
    let slope_ds = format_ds(slope);
    let slope: f64 = slope_ds
        .parse()
        .map_err(|_| write_err(path, "slope formatting"))?;
    put_str(&mut o, tags::RESCALE_SLOPE, VR::DS, &slope_ds);
    put_str(&mut o, tags::UNITS, VR::CS, "BQML");
    put_str(&mut o, tags::DECAY_CORRECTION, VR::CS, "NONE");
    put_str(&mut o, tags::CORRECTED_IMAGE, VR::CS, "ATTN\\SCAT\\DECY");

    let mut detector = InMemDicomObject::new_empty();
    let ipp = grid.index_to_world([0.0, 0.0, 0.0]);
    put_str(
        &mut detector,
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        &ds_multi(&ipp),
    );
    put_str(
        &mut detector,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        &orientation(grid),
    );
    o.put(sequence(
        tags::DETECTOR_INFORMATION_SEQUENCE,
        vec![detector],
    ));
    put_u16(&mut o, tags::NUMBER_OF_DETECTORS, 1);

    let mut rw = InMemDicomObject::new_empty();
    rw.put(DataElement::new(
        tags::REAL_WORLD_VALUE_FIRST_VALUE_MAPPED,
        VR::US,
        PrimitiveValue::from(0u16),
    ));
    rw.put(DataElement::new(
        tags::REAL_WORLD_VALUE_LAST_VALUE_MAPPED,
        VR::US,
        PrimitiveValue::from(65535u16),
    ));
    rw.put(DataElement::new(
        tags::REAL_WORLD_VALUE_INTERCEPT,
        VR::FD,
        PrimitiveValue::from(0.0f64),
    ));
    rw.put(DataElement::new(
        tags::REAL_WORLD_VALUE_SLOPE,
        VR::FD,
        PrimitiveValue::from(slope),
    ));
    put_str(&mut rw, tags::LUT_EXPLANATION, VR::LO, "Bq/ml");
    put_str(&mut rw, tags::LUT_LABEL, VR::SH, "BQML");
    rw.put(sequence(
        tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
        vec![code_item("Bq/ml", "UCUM", "Becquerels/milliliter")],
    ));
    o.put(sequence(tags::REAL_WORLD_VALUE_MAPPING_SEQUENCE, vec![rw]));

    if let Some(a) = administration {
        let mut item = InMemDicomObject::new_empty();
        put_str(
            &mut item,
            tags::RADIOPHARMACEUTICAL,
            VR::LO,
            &a.radiopharmaceutical,
        );
        put_str(
            &mut item,
            tags::RADIOPHARMACEUTICAL_START_DATE_TIME,
            VR::DT,
            &a.injection_time.to_dt(),
        );
        put_str(
            &mut item,
            tags::RADIOPHARMACEUTICAL_START_TIME,
            VR::TM,
            &a.injection_time.to_da_tm().1,
        );
        put_str(
            &mut item,
            tags::RADIONUCLIDE_TOTAL_DOSE,
            VR::DS,
            &format_ds(a.injected_activity_mbq * 1e6),
        );
        put_str(
            &mut item,
            tags::RADIONUCLIDE_HALF_LIFE,
            VR::DS,
            &format_ds(a.half_life_s),
        );
        item.put(sequence(
            tags::RADIONUCLIDE_CODE_SEQUENCE,
            vec![code_item(&a.radionuclide_code, "SRT", &a.radionuclide)],
        ));
        o.put(sequence(
            tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE,
            vec![item],
        ));
    }

    let bytes: Vec<u8> = bq_per_ml
        .data()
        .iter()
        .flat_map(|&v| {
            let q = if v.is_finite() {
                (f64::from(v) / slope).round().clamp(0.0, 65535.0)
            } else {
                0.0
            };
            (q as u16).to_le_bytes()
        })
        .collect();
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::from(bytes),
    ));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| IoError::new(parent, Problem::Io(e)))?;
    }
    save(o, path, sop_class, &sop_instance)?;
    Ok(slope)
}
