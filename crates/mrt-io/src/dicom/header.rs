//! Everything mrtdose needs from a DICOM dataset except the pixels.
//!
//! Patient name and ID are read only to compute a grouping key ([`DicomHeader::patient_key`]);
//! they are not stored.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde::Serialize;

use super::attrs::Attrs;
use crate::datetime::{self, Timestamp};
use crate::error::Problem;

/// What a series is, for dosimetry purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    /// CT slices (one file per slice).
    Ct,
    /// NM multi-frame reconstructed tomography (SPECT).
    SpectTomo,
    /// Emission tomography stored as single-frame PT-style slices (some SPECT exports; PET).
    EmissionSlices,
    /// NM planar, whole-body or raw projection data: not a 3D volume.
    NmPlanar,
    /// RT Dose grid.
    RtDose,
    /// Another image modality (MR, US, secondary capture, ...), readable but not used.
    OtherImage,
    /// A DICOM object without an image (RT plan, structure set, SR, ...).
    NotImage,
}

/// Radiopharmaceutical administration data from RadiopharmaceuticalInformationSequence.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Radiopharmaceutical {
    /// Radionuclide (CodeMeaning of RadionuclideCodeSequence), e.g. `^177^Lutetium`.
    pub radionuclide: Option<String>,
    /// Radiopharmaceutical name, e.g. `Lu-177-DOTATATE`.
    pub radiopharmaceutical: Option<String>,
    /// Injection time (RadiopharmaceuticalStartDateTime).
    pub injection_time: Option<Timestamp>,
    /// Set when only RadiopharmaceuticalStartTime (no date) is given: the injection day is then
    /// unknown and no injection time is invented.
    pub injection_time_without_date: Option<String>,
    /// RadionuclideTotalDose, converted from Bq to MBq.
    pub injected_activity_mbq: Option<f64>,
    /// RadionuclideHalfLife in seconds.
    pub half_life_s: Option<f64>,
}

/// A Real World Value Mapping item (slope/intercept to physical units).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealWorldMapping {
    /// Multiplier.
    pub slope: f64,
    /// Offset.
    pub intercept: f64,
    /// Units code value (UCUM), e.g. `Bq/ml`.
    pub units: Option<String>,
}

/// Header attributes of one DICOM file.
#[derive(Debug, Clone, Serialize)]
pub struct DicomHeader {
    /// Transfer syntax UID from the file meta group.
    pub transfer_syntax: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: Option<String>,
    /// Modality (CT, NM, PT, ...).
    pub modality: String,
    /// Classification for dosimetry.
    pub kind: SeriesKind,
    /// Non-reversible 64-bit key of PatientID + PatientName, for grouping only.
    #[serde(skip)]
    pub patient_key: u64,
    /// Study Instance UID.
    pub study_uid: Option<String>,
    /// Series Instance UID.
    pub series_uid: Option<String>,
    /// Frame of Reference UID.
    pub frame_of_reference_uid: Option<String>,
    /// Series description.
    pub series_description: Option<String>,
    /// Patient sex (`M`, `F`, `O`) as recorded; picks the reference phantom for S-values.
    pub patient_sex: Option<String>,
    /// Series number.
    pub series_number: Option<i64>,
    /// Instance number.
    pub instance_number: Option<i64>,
    /// Image Type values.
    pub image_type: Vec<String>,
    /// Rows.
    pub rows: Option<u32>,
    /// Columns.
    pub columns: Option<u32>,
    /// Number of frames (1 when absent).
    pub number_of_frames: u32,
    /// Samples per pixel (1 when absent).
    pub samples_per_pixel: u16,
    /// Photometric interpretation.
    pub photometric_interpretation: Option<String>,
    /// Image Position (Patient), LPS mm: top-level, or from DetectorInformationSequence for NM.
    pub image_position_mm: Option<[f64; 3]>,
    /// Image Orientation (Patient): row then column direction cosines.
    pub image_orientation: Option<[f64; 6]>,
    /// Pixel Spacing: row spacing (between rows, along the column direction), then column spacing.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    /// Slice Thickness.
    pub slice_thickness_mm: Option<f64>,
    /// Spacing Between Slices.
    pub spacing_between_slices_mm: Option<f64>,
    /// Gantry/Detector Tilt.
    pub gantry_tilt_deg: Option<f64>,
    /// Rescale Slope.
    pub rescale_slope: Option<f64>,
    /// Rescale Intercept.
    pub rescale_intercept: Option<f64>,
    /// Rescale Type (e.g. HU, BQML).
    pub rescale_type: Option<String>,
    /// Units (0054,1001), e.g. BQML or CNTS.
    pub units: Option<String>,
    /// First Real World Value Mapping item, if any.
    pub real_world_mapping: Option<RealWorldMapping>,
    /// Dose Grid Scaling (RT Dose).
    pub dose_grid_scaling: Option<f64>,
    /// Grid Frame Offset Vector (RT Dose), mm.
    pub grid_frame_offsets_mm: Vec<f64>,
    /// Slice Vector (NM), 1-based slice index of each frame.
    pub slice_vector: Vec<i64>,
    /// Decay Correction (0054,1102): NONE, START, ADMIN.
    pub decay_correction: Option<String>,
    /// Acquisition start: AcquisitionDateTime, else AcquisitionDate+Time, else SeriesDate+Time.
    pub acquisition_time: Option<Timestamp>,
    /// Radiopharmaceutical data (NM/PT).
    pub radiopharmaceutical: Option<Radiopharmaceutical>,
    /// A Modality LUT Sequence is present (not supported for volume reading).
    pub has_modality_lut_sequence: bool,
}

impl DicomHeader {
    /// Parses the header of `obj` (a dataset whose file meta gave `transfer_syntax`).
    pub fn parse(obj: &InMemDicomObject, transfer_syntax: &str) -> Result<Self, Problem> {
        let a = Attrs::new(obj);
        let sop_class_uid = a.req_str(tags::SOP_CLASS_UID, "SOPClassUID")?;
        let modality = a.str(tags::MODALITY).unwrap_or_default().to_uppercase();
        let image_type: Vec<String> = a
            .strs(tags::IMAGE_TYPE)
            .into_iter()
            .map(|s| s.to_uppercase())
            .collect();
        let rows = opt_u32(a.int(tags::ROWS, "Rows")?, "Rows")?;
        let columns = opt_u32(a.int(tags::COLUMNS, "Columns")?, "Columns")?;
        let number_of_frames = match a.int(tags::NUMBER_OF_FRAMES, "NumberOfFrames")? {
            None => 1,
            Some(n) if n >= 1 && n <= u32::MAX as i64 => n as u32,
            Some(n) => {
                return Err(Problem::InvalidAttribute {
                    attribute: "NumberOfFrames",
                    detail: format!("{n}"),
                })
            }
        };
        let samples_per_pixel = match a.int(tags::SAMPLES_PER_PIXEL, "SamplesPerPixel")? {
            None => 1,
            Some(n) if (1..=4).contains(&n) => n as u16,
            Some(n) => {
                return Err(Problem::InvalidAttribute {
                    attribute: "SamplesPerPixel",
                    detail: format!("{n}"),
                })
            }
        };

        // NM multi-frame images keep their geometry in the detector information sequence.
        let detector = a.first_item(tags::DETECTOR_INFORMATION_SEQUENCE);
        let image_position_mm =
            match a.f64s::<3>(tags::IMAGE_POSITION_PATIENT, "ImagePositionPatient")? {
                Some(p) => Some(p),
                None => match detector {
                    Some(d) => d.f64s::<3>(tags::IMAGE_POSITION_PATIENT, "ImagePositionPatient")?,
                    None => None,
                },
            };
        let image_orientation =
            match a.f64s::<6>(tags::IMAGE_ORIENTATION_PATIENT, "ImageOrientationPatient")? {
                Some(o) => Some(o),
                None => match detector {
                    Some(d) => {
                        d.f64s::<6>(tags::IMAGE_ORIENTATION_PATIENT, "ImageOrientationPatient")?
                    }
                    None => None,
                },
            };

        let real_world_mapping = match a.first_item(tags::REAL_WORLD_VALUE_MAPPING_SEQUENCE) {
            Some(item) => {
                let slope = item.f64(tags::REAL_WORLD_VALUE_SLOPE, "RealWorldValueSlope")?;
                let intercept = item
                    .f64(tags::REAL_WORLD_VALUE_INTERCEPT, "RealWorldValueIntercept")?
                    .unwrap_or(0.0);
                let units = item
                    .first_item(tags::MEASUREMENT_UNITS_CODE_SEQUENCE)
                    .and_then(|u| u.str(tags::CODE_VALUE));
                slope.map(|slope| RealWorldMapping {
                    slope,
                    intercept,
                    units,
                })
            }
            None => None,
        };

        let radiopharmaceutical = match a.first_item(tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE)
        {
            Some(item) => Some(parse_radiopharmaceutical(item)?),
            None => None,
        };

        let acquisition_time = a
            .str(tags::ACQUISITION_DATE_TIME)
            .and_then(|s| datetime::parse_dt(&s))
            .or_else(|| date_time(&a, tags::ACQUISITION_DATE, tags::ACQUISITION_TIME))
            .or_else(|| date_time(&a, tags::SERIES_DATE, tags::SERIES_TIME));

        let mut header = Self {
            transfer_syntax: transfer_syntax.trim_end_matches('\0').to_string(),
            sop_instance_uid: a.str(tags::SOP_INSTANCE_UID),
            patient_key: patient_key(
                a.str(tags::PATIENT_ID).as_deref(),
                a.str(tags::PATIENT_NAME).as_deref(),
            ),
            study_uid: a.str(tags::STUDY_INSTANCE_UID),
            series_uid: a.str(tags::SERIES_INSTANCE_UID),
            frame_of_reference_uid: a.str(tags::FRAME_OF_REFERENCE_UID),
            series_description: a.str(tags::SERIES_DESCRIPTION),
            patient_sex: a.str(tags::PATIENT_SEX).filter(|s| !s.trim().is_empty()),
            series_number: a.int(tags::SERIES_NUMBER, "SeriesNumber").ok().flatten(),
            instance_number: a
                .int(tags::INSTANCE_NUMBER, "InstanceNumber")
                .ok()
                .flatten(),
            rows,
            columns,
            number_of_frames,
            samples_per_pixel,
            photometric_interpretation: a
                .str(tags::PHOTOMETRIC_INTERPRETATION)
                .map(|s| s.to_uppercase()),
            image_position_mm,
            image_orientation,
            pixel_spacing_mm: a.f64s::<2>(tags::PIXEL_SPACING, "PixelSpacing")?,
            slice_thickness_mm: a.f64(tags::SLICE_THICKNESS, "SliceThickness")?,
            spacing_between_slices_mm: a
                .f64(tags::SPACING_BETWEEN_SLICES, "SpacingBetweenSlices")?,
            gantry_tilt_deg: a.f64(tags::GANTRY_DETECTOR_TILT, "GantryDetectorTilt")?,
            rescale_slope: a.f64(tags::RESCALE_SLOPE, "RescaleSlope")?,
            rescale_intercept: a.f64(tags::RESCALE_INTERCEPT, "RescaleIntercept")?,
            rescale_type: a.str(tags::RESCALE_TYPE),
            units: a.str(tags::UNITS).map(|s| s.to_uppercase()),
            real_world_mapping,
            dose_grid_scaling: a.f64(tags::DOSE_GRID_SCALING, "DoseGridScaling")?,
            grid_frame_offsets_mm: a
                .f64_list(tags::GRID_FRAME_OFFSET_VECTOR, "GridFrameOffsetVector")?,
            slice_vector: a.int_list(tags::SLICE_VECTOR, "SliceVector")?,
            decay_correction: a.str(tags::DECAY_CORRECTION).map(|s| s.to_uppercase()),
            acquisition_time,
            radiopharmaceutical,
            has_modality_lut_sequence: a.has(tags::MODALITY_LUT_SEQUENCE),
            kind: SeriesKind::NotImage,
            sop_class_uid,
            modality,
            image_type,
        };
        header.kind = header.classify();
        Ok(header)
    }

    fn classify(&self) -> SeriesKind {
        if self.rows.is_none() || self.columns.is_none() {
            return SeriesKind::NotImage;
        }
        match self.modality.as_str() {
            "CT" => SeriesKind::Ct,
            "NM" => {
                let tomo = self.image_type.iter().any(|t| t.contains("TOMO"))
                    && self.image_type.iter().any(|t| t.starts_with("RECON"));
                if tomo {
                    SeriesKind::SpectTomo
                } else {
                    SeriesKind::NmPlanar
                }
            }
            "PT" => SeriesKind::EmissionSlices,
            "RTDOSE" => SeriesKind::RtDose,
            _ => SeriesKind::OtherImage,
        }
    }

    /// The units of the rescaled pixel values, when the file states them.
    pub fn value_units(&self) -> Option<String> {
        if let Some(u) = &self.units {
            return Some(u.clone());
        }
        if let Some(rw) = &self.real_world_mapping {
            if let Some(u) = &rw.units {
                return Some(u.clone());
            }
        }
        match self.kind {
            SeriesKind::Ct => Some("HU".into()),
            SeriesKind::RtDose => Some("GY".into()),
            _ => self.rescale_type.clone(),
        }
    }

    /// True when the values are activity concentration in Bq/mL (Units BQML, or a real world
    /// value mapping in Bq/ml).
    pub fn is_quantitative_bqml(&self) -> bool {
        self.units.as_deref() == Some("BQML")
            || self
                .real_world_mapping
                .as_ref()
                .and_then(|m| m.units.as_deref())
                .is_some_and(|u| u.eq_ignore_ascii_case("Bq/ml"))
    }
}

fn opt_u32(v: Option<i64>, name: &'static str) -> Result<Option<u32>, Problem> {
    match v {
        None => Ok(None),
        Some(n) if n > 0 && n <= u32::MAX as i64 => Ok(Some(n as u32)),
        Some(n) => Err(Problem::InvalidAttribute {
            attribute: name,
            detail: format!("{n}"),
        }),
    }
}

fn date_time(a: &Attrs<'_>, date: dicom_core::Tag, time: dicom_core::Tag) -> Option<Timestamp> {
    datetime::from_da_tm(&a.str(date)?, &a.str(time)?)
}

fn parse_radiopharmaceutical(item: Attrs<'_>) -> Result<Radiopharmaceutical, Problem> {
    let injection_time = item
        .str(tags::RADIOPHARMACEUTICAL_START_DATE_TIME)
        .and_then(|s| datetime::parse_dt(&s));
    let injection_time_without_date = if injection_time.is_none() {
        item.str(tags::RADIOPHARMACEUTICAL_START_TIME)
    } else {
        None
    };
    let injected_activity_mbq = item
        .f64(tags::RADIONUCLIDE_TOTAL_DOSE, "RadionuclideTotalDose")?
        .map(|bq| bq / 1e6);
    Ok(Radiopharmaceutical {
        radionuclide: item
            .first_item(tags::RADIONUCLIDE_CODE_SEQUENCE)
            .and_then(|c| c.str(tags::CODE_MEANING)),
        radiopharmaceutical: item.str(tags::RADIOPHARMACEUTICAL),
        injection_time,
        injection_time_without_date,
        injected_activity_mbq,
        half_life_s: item.f64(tags::RADIONUCLIDE_HALF_LIFE, "RadionuclideHalfLife")?,
    })
}

/// FNV-1a over ID and name: groups files of one patient without keeping identifiers.
fn patient_key(id: Option<&str>, name: Option<&str>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id
        .unwrap_or("")
        .bytes()
        .chain([0u8])
        .chain(name.unwrap_or("").bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
