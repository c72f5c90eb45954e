//! One volume from a path the user typed: a NIfTI file, one DICOM file, or a directory holding
//! exactly one image series (any layout).

use std::path::Path;

use mrt_core::Volume;

use crate::dicom::read_series;
use crate::error::{IoError, Problem, Result};
use crate::nifti_io::read_nifti;
use crate::study::scan;

/// A loaded volume and where its geometry came from.
#[derive(Debug, Clone)]
pub struct LoadedVolume {
    /// Values (HU for CT, Bq/mL for quantitative SPECT, else as stored), LPS geometry.
    pub volume: Volume<f32>,
    /// `nifti` or the DICOM modality (`CT`, `NM`, ...).
    pub source: String,
    /// Things the user should know (e.g. counts rather than Bq/mL).
    pub warnings: Vec<String>,
}

/// True for `.nii` and `.nii.gz` names.
pub fn is_nifti(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".nii") || name.ends_with(".nii.gz")
}

/// Loads `path` as one volume. A directory must hold exactly one image series; otherwise the
/// error lists what it holds.
pub fn load_volume(path: &Path) -> Result<LoadedVolume> {
    if is_nifti(path) {
        let n = read_nifti(path)?;
        return Ok(LoadedVolume {
            volume: n.volume,
            source: "nifti".into(),
            warnings: n.warnings,
        });
    }
    if !path.exists() {
        return Err(IoError::new(
            path,
            Problem::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file or directory",
            )),
        ));
    }
    let found = scan(path)?;
    let series: Vec<_> = found.series().collect();
    match series.as_slice() {
        [one] => {
            let s = read_series(&one.files)?;
            Ok(LoadedVolume {
                volume: s.volume,
                source: one.modality.clone(),
                warnings: s.warnings,
            })
        }
        [] => Err(IoError::new(
            path,
            Problem::Series(format!(
                "no readable image series ({} files looked at, {} skipped)",
                found.files_scanned,
                found.skipped.len()
            )),
        )),
        many => Err(IoError::new(
            path,
            Problem::Series(format!(
                "{} image series found ({}); point at one series' directory or file",
                many.len(),
                many.iter()
                    .map(|s| format!(
                        "{} {}",
                        s.modality,
                        s.description.as_deref().unwrap_or("(no description)")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        )),
    }
}
