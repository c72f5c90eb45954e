//! Opening one DICOM file: header only, or header plus decoded pixel values.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};

use super::header::DicomHeader;
use super::pixels::{self, StoredFrames};
use crate::error::{error_chain, panic_message, IoError, Problem, Result};

/// One image file: its header and its physical pixel values.
#[derive(Debug, Clone)]
pub struct DicomImage {
    /// The file.
    pub path: PathBuf,
    /// Header attributes.
    pub header: DicomHeader,
    /// Rows per frame.
    pub rows: usize,
    /// Columns per frame.
    pub columns: usize,
    /// Frames.
    pub frames: usize,
    /// Physical values (after modality rescale and, for RT Dose, DoseGridScaling),
    /// frame-major, column fastest.
    pub values: Vec<f64>,
}

fn parse_guarded(
    path: &Path,
    open: impl FnOnce() -> std::result::Result<DefaultDicomObject, dicom_object::ReadError>,
) -> Result<DefaultDicomObject> {
    if !path.is_file() {
        let problem = match std::fs::metadata(path) {
            Err(e) => Problem::Io(e),
            Ok(_) => Problem::Parse("not a regular file".into()),
        };
        return Err(IoError::new(path, problem));
    }
    match catch_unwind(AssertUnwindSafe(open)) {
        Ok(Ok(obj)) => Ok(obj),
        Ok(Err(e)) => Err(IoError::new(path, Problem::Parse(error_chain(&e)))),
        Err(payload) => Err(IoError::new(
            path,
            Problem::Parse(format!(
                "parser crashed: {}",
                panic_message(payload.as_ref())
            )),
        )),
    }
}

/// Opens a whole DICOM file (Part 10, with preamble and file meta group).
pub fn open_dataset(path: &Path) -> Result<DefaultDicomObject> {
    parse_guarded(path, || OpenFileOptions::new().open_file(path))
}

/// Reads only the header (stops before the pixel data), for fast directory scans.
pub fn open_header(path: &Path) -> Result<DicomHeader> {
    let obj = parse_guarded(path, || {
        OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(path)
    })?;
    header_of(path, &obj)
}

/// Header of an opened dataset.
pub fn header_of(path: &Path, obj: &DefaultDicomObject) -> Result<DicomHeader> {
    let ts = obj.meta().transfer_syntax().to_string();
    DicomHeader::parse(obj, &ts).map_err(|p| IoError::new(path, p))
}

/// Reads one image file: header and physical pixel values.
pub fn read_image_file(path: &Path) -> Result<DicomImage> {
    let obj = open_dataset(path)?;
    let header = header_of(path, &obj)?;
    if header.kind == super::header::SeriesKind::NotImage {
        return Err(IoError::new(
            path,
            Problem::NotAnImage {
                sop_class: header.sop_class_uid.clone(),
                modality: if header.modality.is_empty() {
                    "?".into()
                } else {
                    header.modality.clone()
                },
            },
        ));
    }
    let StoredFrames {
        rows,
        columns,
        frames,
        values,
    } = pixels::decode_stored(&obj, &header).map_err(|p| IoError::new(path, p))?;
    let values = pixels::physical_values(&values, &header);
    Ok(DicomImage {
        path: path.to_path_buf(),
        header,
        rows,
        columns,
        frames,
        values,
    })
}
