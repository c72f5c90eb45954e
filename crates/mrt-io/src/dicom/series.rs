//! Assembling a volume from DICOM files: a CT/PT-style series (one slice per file) or one
//! multi-frame file (NM RECON TOMO SPECT, RT Dose).
//!
//! Slices are ordered by their ImagePositionPatient projected on the slice normal
//! (row cosines × column cosines). A series is accepted only if it forms a regular lattice:
//! one orientation, one pixel spacing, no duplicate positions, no missing slices, uniform spacing,
//! and every slice origin on the normal through the first one. Gantry tilt (sheared stacks) and
//! irregular spacing are errors that say so: mrtdose never returns a silently wrong volume.

use std::path::{Path, PathBuf};

use mrt_core::linalg::{self, Vec3};
use mrt_core::{Grid, Volume};
use rayon::prelude::*;
use serde::Serialize;

use super::file::{header_of, open_dataset};
use super::header::{DicomHeader, SeriesKind};
use super::pixels;
use crate::error::{IoError, Problem, Result};

/// Largest tolerated disagreement in orientation cosines between slices.
const ORIENTATION_TOLERANCE: f64 = 1e-4;
/// Relative tolerance on slice spacing uniformity (0.1 % of the spacing, at least 0.01 mm).
const SPACING_RELATIVE_TOLERANCE: f64 = 1e-3;

/// A volume read from DICOM, with the header facts dosimetry needs.
#[derive(Debug, Clone)]
pub struct SeriesVolume {
    /// CT, SPECT, ...
    pub kind: SeriesKind,
    /// Values: HU for CT, Bq/mL for quantitative emission images, else as stored.
    pub volume: Volume<f32>,
    /// Header of the first slice (or of the multi-frame file).
    pub header: DicomHeader,
    /// Units of the values (HU, BQML, CNTS, GY, ...), when known.
    pub units: Option<String>,
    /// True for emission images in Bq/mL.
    pub quantitative: bool,
    /// Files, in slice order.
    pub files: Vec<PathBuf>,
    /// Things a physicist should know (e.g. "values are counts, not Bq/mL").
    pub warnings: Vec<String>,
}

/// Geometry summary, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct GeometrySummary {
    /// Voxels along i, j, k.
    pub dims: [usize; 3],
    /// mm.
    pub spacing_mm: Vec3,
    /// LPS mm of voxel (0,0,0).
    pub origin_mm: Vec3,
    /// Columns: i, j, k directions.
    pub direction: [[f64; 3]; 3],
}

impl From<&Grid> for GeometrySummary {
    fn from(g: &Grid) -> Self {
        Self {
            dims: g.dims,
            spacing_mm: g.spacing_mm,
            origin_mm: g.origin_mm,
            direction: g.direction,
        }
    }
}

/// One decoded single-frame slice.
struct Slice {
    path: PathBuf,
    header: DicomHeader,
    values: Vec<f32>,
}

/// Reads a series from its files (any order). One file with several frames is read as a
/// multi-frame volume; otherwise every file must be one slice.
pub fn read_series(files: &[PathBuf]) -> Result<SeriesVolume> {
    let first = files
        .first()
        .ok_or_else(|| IoError::new("", Problem::Series("no files".into())))?;
    if files.len() == 1 {
        let obj = open_dataset(first)?;
        let header = header_of(first, &obj)?;
        if header.number_of_frames > 1 {
            return read_multiframe(first, &obj, header);
        }
    }
    let mut slices: Vec<Slice> = files
        .par_iter()
        .map(|p| read_slice(p))
        .collect::<Result<Vec<_>>>()?;
    assemble_slices(&mut slices)
}

fn read_slice(path: &Path) -> Result<Slice> {
    let obj = open_dataset(path)?;
    let header = header_of(path, &obj)?;
    if header.number_of_frames != 1 {
        return Err(IoError::new(
            path,
            Problem::Series(format!(
                "multi-frame file ({} frames) mixed into a slice series",
                header.number_of_frames
            )),
        ));
    }
    let stored = pixels::decode_stored(&obj, &header).map_err(|p| IoError::new(path, p))?;
    let (slope, intercept, _) = value_mapping(&header);
    let values = stored
        .values
        .iter()
        .map(|&v| (v * slope + intercept) as f32)
        .collect();
    Ok(Slice {
        path: path.to_path_buf(),
        header,
        values,
    })
}

/// `(slope, intercept, quantitative)`: how stored values become physical ones.
/// Emission images in Bq/mL use the modality rescale when Units is BQML, else a Real World
/// Value Mapping in Bq/ml if present; anything else keeps the modality rescale.
fn value_mapping(h: &DicomHeader) -> (f64, f64, bool) {
    let (slope, intercept) = pixels::rescale(h);
    let emission = matches!(h.kind, SeriesKind::SpectTomo | SeriesKind::EmissionSlices);
    if !emission {
        let dose = h.dose_grid_scaling.unwrap_or(1.0);
        return (slope * dose, intercept * dose, false);
    }
    if h.units.as_deref() == Some("BQML") {
        return (slope, intercept, true);
    }
    if let Some(rw) = &h.real_world_mapping {
        if rw
            .units
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case("Bq/ml"))
        {
            return (rw.slope, rw.intercept, true);
        }
    }
    (slope, intercept, false)
}

fn series_error(path: &Path, msg: impl Into<String>) -> IoError {
    IoError::new(path, Problem::Series(msg.into()))
}

/// Row, column and normal unit vectors from ImageOrientationPatient, orthonormalised.
fn orientation_axes(path: &Path, iop: [f64; 6]) -> Result<[Vec3; 3]> {
    let row = [iop[0], iop[1], iop[2]];
    let col = [iop[3], iop[4], iop[5]];
    let (nr, nc) = (linalg::norm(row), linalg::norm(col));
    let bad = |detail: String| {
        IoError::new(
            path,
            Problem::InvalidAttribute {
                attribute: "ImageOrientationPatient",
                detail,
            },
        )
    };
    if (nr - 1.0).abs() > 1e-3 || (nc - 1.0).abs() > 1e-3 {
        return Err(bad(format!(
            "direction cosines not unit length ({nr:.4}, {nc:.4})"
        )));
    }
    let row = linalg::scale(row, 1.0 / nr);
    let col = linalg::scale(col, 1.0 / nc);
    let d = linalg::dot(row, col);
    if d.abs() > 1e-3 {
        return Err(bad(format!(
            "row and column directions not orthogonal (cos = {d:.4})"
        )));
    }
    let col = linalg::sub(col, linalg::scale(row, d));
    let col = linalg::scale(col, 1.0 / linalg::norm(col));
    let normal = linalg::cross(row, col);
    Ok([row, col, normal])
}

fn required<T: Copy>(path: &Path, v: Option<T>, name: &'static str) -> Result<T> {
    v.ok_or_else(|| IoError::new(path, Problem::MissingAttribute(name)))
}

fn grid_for(
    path: &Path,
    axes: [Vec3; 3],
    spacing: Vec3,
    origin: Vec3,
    dims: [usize; 3],
) -> Result<Grid> {
    let direction = [
        [axes[0][0], axes[1][0], axes[2][0]],
        [axes[0][1], axes[1][1], axes[2][1]],
        [axes[0][2], axes[1][2], axes[2][2]],
    ];
    Grid::new(dims, spacing, origin, direction)
        .map_err(|e| series_error(path, format!("invalid geometry: {e}")))
}

fn assemble_slices(slices: &mut Vec<Slice>) -> Result<SeriesVolume> {
    let p0 = slices[0].path.clone();
    let h0 = slices[0].header.clone();
    let rows = required(&p0, h0.rows, "Rows")?;
    let cols = required(&p0, h0.columns, "Columns")?;
    let iop = required(&p0, h0.image_orientation, "ImageOrientationPatient")?;
    let ps = required(&p0, h0.pixel_spacing_mm, "PixelSpacing")?;
    let axes = orientation_axes(&p0, iop)?;
    let normal = axes[2];
    let mut warnings = Vec::new();

    for s in slices.iter() {
        let h = &s.header;
        if h.series_uid != h0.series_uid {
            return Err(series_error(
                &s.path,
                "file belongs to another series (SeriesInstanceUID differs)",
            ));
        }
        if h.rows != Some(rows) || h.columns != Some(cols) {
            return Err(series_error(
                &s.path,
                format!(
                    "slice is {:?}×{:?}, first slice {rows}×{cols}",
                    h.rows, h.columns
                ),
            ));
        }
        let o = required(&s.path, h.image_orientation, "ImageOrientationPatient")?;
        if o.iter()
            .zip(iop)
            .any(|(a, b)| (a - b).abs() > ORIENTATION_TOLERANCE)
        {
            return Err(series_error(
                &s.path,
                "ImageOrientationPatient differs from the first slice",
            ));
        }
        let p = required(&s.path, h.pixel_spacing_mm, "PixelSpacing")?;
        if p.iter().zip(ps).any(|(a, b)| (a - b).abs() > 1e-4) {
            return Err(series_error(
                &s.path,
                "PixelSpacing differs from the first slice",
            ));
        }
        required(&s.path, h.image_position_mm, "ImagePositionPatient")?;
    }

    let position = |s: &Slice| s.header.image_position_mm.unwrap_or_default();
    slices.sort_by(|a, b| {
        linalg::dot(position(a), normal).total_cmp(&linalg::dot(position(b), normal))
    });
    // Exact copies of one instance (same SOPInstanceUID) are dropped; distinct slices at one
    // position are an error.
    let mut i = 1;
    while i < slices.len() {
        let d = linalg::dot(
            linalg::sub(position(&slices[i]), position(&slices[i - 1])),
            normal,
        );
        if d.abs() < 1e-3 {
            let same = slices[i].header.sop_instance_uid.is_some()
                && slices[i].header.sop_instance_uid == slices[i - 1].header.sop_instance_uid;
            if same {
                warnings.push(format!(
                    "{} duplicates {} (same SOPInstanceUID); ignored",
                    slices[i].path.display(),
                    slices[i - 1].path.display()
                ));
                slices.remove(i);
                continue;
            }
            return Err(series_error(
                &slices[i].path,
                format!(
                    "duplicate slice position: same ImagePositionPatient along the normal as {}",
                    slices[i - 1].path.display()
                ),
            ));
        }
        i += 1;
    }

    let origin = position(&slices[0]);
    let n = slices.len();
    let mut spacing_k = if n == 1 {
        h0.spacing_between_slices_mm.or(h0.slice_thickness_mm).unwrap_or_else(|| {
            warnings.push("single slice without SpacingBetweenSlices or SliceThickness: 1 mm assumed for the slice axis".into());
            1.0
        })
    } else {
        0.0
    };
    if n > 1 {
        let offsets: Vec<f64> = slices
            .iter()
            .map(|s| linalg::dot(linalg::sub(position(s), origin), normal))
            .collect();
        // In-plane drift of slice origins means a sheared stack (gantry tilt).
        for (s, &d) in slices.iter().zip(&offsets) {
            let along = linalg::scale(normal, d);
            let drift = linalg::norm(linalg::sub(linalg::sub(position(s), origin), along));
            if drift > 0.01 + 0.01 * ps[0].min(ps[1]) {
                let tilt = s.header.gantry_tilt_deg.unwrap_or(0.0);
                return Err(series_error(&s.path, format!(
                    "slice origin is {drift:.3} mm off the slice normal (sheared stack, GantryDetectorTilt {tilt}°): \
                     tilted acquisitions must be resampled to an orthogonal grid before dosimetry")));
            }
        }
        let steps: Vec<f64> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
        let mut sorted = steps.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let tol = (SPACING_RELATIVE_TOLERANCE * median).max(0.01);
        for (idx, &step) in steps.iter().enumerate() {
            if (step - median).abs() > tol {
                let at = &slices[idx + 1].path;
                let ratio = step / median;
                let msg = if (ratio - ratio.round()).abs() < 0.05 && ratio.round() >= 2.0 {
                    format!("{} missing slice(s) before this one: gap of {step:.3} mm where slices are {median:.3} mm apart",
                        ratio.round() as usize - 1)
                } else {
                    format!(
                        "irregular slice spacing: {step:.3} mm here, {median:.3} mm elsewhere \
                             (variable-spacing series must be resampled before dosimetry)"
                    )
                };
                return Err(series_error(at, msg));
            }
        }
        // Mean step over the whole stack: robust to DS rounding of individual positions.
        spacing_k = offsets[n - 1] / (n - 1) as f64;
    }
    let grid = grid_for(
        &p0,
        axes,
        [ps[1], ps[0], spacing_k],
        origin,
        [cols as usize, rows as usize, n],
    )?;
    let mut data = Vec::with_capacity(grid.len());
    let mut files = Vec::with_capacity(n);
    for s in slices.iter_mut() {
        data.append(&mut s.values);
        files.push(s.path.clone());
    }
    let header = slices.swap_remove(0).header;
    finish(header, grid, data, files, warnings)
}

fn finish(
    header: DicomHeader,
    grid: Grid,
    data: Vec<f32>,
    files: Vec<PathBuf>,
    mut warnings: Vec<String>,
) -> Result<SeriesVolume> {
    let (_, _, quantitative) = value_mapping(&header);
    let emission = matches!(
        header.kind,
        SeriesKind::SpectTomo | SeriesKind::EmissionSlices
    );
    let units = if emission && quantitative {
        Some("BQML".to_string())
    } else {
        header.value_units()
    };
    if emission && !quantitative {
        warnings.push(format!(
            "emission image is not quantitative (Units {}): values are not Bq/mL",
            units.as_deref().unwrap_or("absent")
        ));
    }
    let path = files.first().cloned().unwrap_or_default();
    let volume = Volume::new(grid, data).map_err(|e| series_error(&path, e.to_string()))?;
    Ok(SeriesVolume {
        kind: header.kind,
        volume,
        header,
        units,
        quantitative,
        files,
        warnings,
    })
}

/// NM RECON TOMO (geometry from DetectorInformationSequence, SpacingBetweenSlices) or RT Dose
/// (GridFrameOffsetVector): frames are slices along the normal.
fn read_multiframe(
    path: &Path,
    obj: &dicom_object::DefaultDicomObject,
    header: DicomHeader,
) -> Result<SeriesVolume> {
    let frames = header.number_of_frames as usize;
    let mut warnings = Vec::new();
    let spacing_k = match header.kind {
        SeriesKind::SpectTomo => match (header.spacing_between_slices_mm, header.slice_thickness_mm) {
            (Some(s), _) => s,
            (None, Some(t)) => {
                warnings.push("SpacingBetweenSlices absent: SliceThickness used as slice spacing".into());
                t
            }
            (None, None) => return Err(IoError::new(path, Problem::MissingAttribute("SpacingBetweenSlices"))),
        },
        SeriesKind::RtDose => {
            let offs = &header.grid_frame_offsets_mm;
            if offs.len() != frames {
                return Err(series_error(path, format!(
                    "GridFrameOffsetVector has {} values for {frames} frames", offs.len())));
            }
            let step = (offs[frames - 1] - offs[0]) / (frames - 1) as f64;
            for w in offs.windows(2) {
                if ((w[1] - w[0]) - step).abs() > (SPACING_RELATIVE_TOLERANCE * step.abs()).max(0.01) {
                    return Err(series_error(path, "irregular GridFrameOffsetVector (non-uniform dose grid)"));
                }
            }
            if step <= 0.0 {
                return Err(series_error(path, "GridFrameOffsetVector is not increasing"));
            }
            step
        }
        SeriesKind::NmPlanar => {
            return Err(IoError::new(path, Problem::Unsupported(
                "NM multi-frame that is not RECON TOMO (planar, whole-body or projections): not a 3D volume".into())))
        }
        _ => {
            return Err(IoError::new(path, Problem::Unsupported(format!(
                "multi-frame {} without NM or RT Dose geometry (enhanced multi-frame is not read)",
                header.modality))))
        }
    };
    let iop = required(path, header.image_orientation, "ImageOrientationPatient")?;
    let ipp = required(path, header.image_position_mm, "ImagePositionPatient")?;
    let ps = required(path, header.pixel_spacing_mm, "PixelSpacing")?;
    let axes = orientation_axes(path, iop)?;
    let stored = pixels::decode_stored(obj, &header).map_err(|p| IoError::new(path, p))?;
    let frame_len = stored.rows * stored.columns;
    // Frames follow SliceVector when present (1-based slice index of each frame).
    let order: Vec<usize> = if header.slice_vector.len() == frames {
        let mut idx: Vec<usize> = (0..frames).collect();
        idx.sort_by_key(|&f| header.slice_vector[f]);
        let sorted: Vec<i64> = idx.iter().map(|&f| header.slice_vector[f]).collect();
        if sorted.iter().enumerate().any(|(i, &s)| s != i as i64 + 1) {
            return Err(series_error(
                path,
                "SliceVector is not a permutation of 1..NumberOfFrames",
            ));
        }
        idx
    } else {
        (0..frames).collect()
    };
    let (slope, intercept, _) = value_mapping(&header);
    let mut data = Vec::with_capacity(stored.values.len());
    for f in order {
        data.extend(
            stored.values[f * frame_len..(f + 1) * frame_len]
                .iter()
                .map(|&v| (v * slope + intercept) as f32),
        );
    }
    let origin = if header.kind == SeriesKind::RtDose {
        linalg::add(ipp, linalg::scale(axes[2], header.grid_frame_offsets_mm[0]))
    } else {
        ipp
    };
    let grid = grid_for(
        path,
        axes,
        [ps[1], ps[0], spacing_k],
        origin,
        [stored.columns, stored.rows, frames],
    )?;
    finish(header, grid, data, vec![path.to_path_buf()], warnings)
}
