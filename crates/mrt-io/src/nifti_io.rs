//! NIfTI-1 (.nii, .nii.gz) ⇄ [`Volume`], with geometry converted between NIfTI's RAS world and
//! mrtdose's LPS world (x and y negated).
//!
//! Reading takes the sform when its code is non-zero, else the qform, else (ANALYZE-style files)
//! pixdim with an axis-aligned direction and a warning. Writing sets both sform and qform (code 1,
//! scanner anatomical) from the grid, so nibabel, ITK and FSL agree on the geometry.

use std::path::Path;

use mrt_core::linalg::{self, Mat3, Vec3};
use mrt_core::{Grid, Volume};
use ndarray::{Array3, ShapeBuilder};
use nifti::writer::WriterOptions;
use nifti::{IntoNdArray, NiftiHeader, NiftiObject, ReaderOptions};

use crate::error::{IoError, Problem, Result};

fn nifti_err(path: &Path, msg: impl std::fmt::Display) -> IoError {
    IoError::new(path, Problem::Nifti(msg.to_string()))
}

/// LPS ⇄ RAS: negate x and y.
const FLIP_XY: Mat3 = [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]];

/// A NIfTI volume and what was learned while reading it.
#[derive(Debug, Clone)]
pub struct NiftiVolume {
    /// Values as f32, after scl_slope/scl_inter.
    pub volume: Volume<f32>,
    /// Which transform gave the geometry: `sform`, `qform` or `pixdim`.
    pub geometry_source: &'static str,
    /// Warnings (e.g. no orientation information).
    pub warnings: Vec<String>,
}

/// Reads a 3D NIfTI file (a 4D file with one volume is accepted).
pub fn read_nifti(path: &Path) -> Result<NiftiVolume> {
    let obj = ReaderOptions::new()
        .read_file(path)
        .map_err(|e| nifti_err(path, e))?;
    let header = obj.header().clone();
    let dim = header.dim().map_err(|e| nifti_err(path, e))?.to_vec();
    let ndim = dim.len();
    if !(ndim == 3 || (ndim == 4 && dim[3] == 1) || ndim == 2) {
        return Err(nifti_err(
            path,
            format!("expected a 3D volume, dims are {dim:?}"),
        ));
    }
    let dims = [
        dim[0] as usize,
        dim.get(1).copied().unwrap_or(1) as usize,
        dim.get(2).copied().unwrap_or(1) as usize,
    ];
    let (grid, geometry_source, warnings) = grid_from_header(path, &header, dims)?;
    let array = obj
        .into_volume()
        .into_ndarray::<f32>()
        .map_err(|e| nifti_err(path, e))?;
    // Logical order of the transposed view (axes reversed) is k slowest, i fastest: our layout.
    // A trailing singleton time axis does not change that order.
    let data: Vec<f32> = array.t().iter().copied().collect();
    let volume = Volume::new(grid, data).map_err(|e| nifti_err(path, e))?;
    Ok(NiftiVolume {
        volume,
        geometry_source,
        warnings,
    })
}

fn column_major_affine(srow: [[f32; 4]; 3]) -> (Mat3, Vec3) {
    let m = [
        [
            f64::from(srow[0][0]),
            f64::from(srow[0][1]),
            f64::from(srow[0][2]),
        ],
        [
            f64::from(srow[1][0]),
            f64::from(srow[1][1]),
            f64::from(srow[1][2]),
        ],
        [
            f64::from(srow[2][0]),
            f64::from(srow[2][1]),
            f64::from(srow[2][2]),
        ],
    ];
    let t = [
        f64::from(srow[0][3]),
        f64::from(srow[1][3]),
        f64::from(srow[2][3]),
    ];
    (m, t)
}

/// qform rotation from the quaternion (b, c, d) and qfac, per nifti1.h.
fn qform_matrix(h: &NiftiHeader) -> (Mat3, Vec3) {
    let (b, c, d) = (
        f64::from(h.quatern_b),
        f64::from(h.quatern_c),
        f64::from(h.quatern_d),
    );
    // As nifti1_io.c: near a 180° rotation, a² is lost in f32 rounding; then a = 0 and (b, c, d)
    // is renormalised instead of taking the square root of rounding noise.
    let a2 = 1.0 - (b * b + c * c + d * d);
    let (a, b, c, d) = if a2 < 1e-7 {
        let n = (b * b + c * c + d * d).sqrt();
        (0.0, b / n, c / n, d / n)
    } else {
        (a2.sqrt(), b, c, d)
    };
    let r = [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ];
    let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let s = [
        f64::from(h.pixdim[1]),
        f64::from(h.pixdim[2]),
        qfac * f64::from(h.pixdim[3]),
    ];
    let mut m = r;
    for row in m.iter_mut() {
        for (col, v) in row.iter_mut().enumerate() {
            *v *= s[col];
        }
    }
    let t = [
        f64::from(h.quatern_x),
        f64::from(h.quatern_y),
        f64::from(h.quatern_z),
    ];
    (m, t)
}

fn grid_from_header(
    path: &Path,
    h: &NiftiHeader,
    dims: [usize; 3],
) -> Result<(Grid, &'static str, Vec<String>)> {
    let mut warnings = Vec::new();
    let (ras, t_ras, source) = if h.sform_code > 0 {
        let (m, t) = column_major_affine([h.srow_x, h.srow_y, h.srow_z]);
        (m, t, "sform")
    } else if h.qform_code > 0 {
        let (m, t) = qform_matrix(h);
        (m, t, "qform")
    } else {
        warnings.push(
            "no sform/qform: geometry from pixdim, axis-aligned, origin 0 (orientation unknown)"
                .into(),
        );
        let s = [1, 2, 3].map(|i| f64::from(h.pixdim[i]).abs());
        (
            [[s[0], 0.0, 0.0], [0.0, s[1], 0.0], [0.0, 0.0, s[2]]],
            [0.0; 3],
            "pixdim",
        )
    };
    let lps = linalg::mat_mul(&FLIP_XY, &ras);
    let origin = linalg::mat_vec(&FLIP_XY, t_ras);
    let mut spacing = [0.0; 3];
    let mut direction = [[0.0; 3]; 3];
    for c in 0..3 {
        let col = [lps[0][c], lps[1][c], lps[2][c]];
        spacing[c] = linalg::norm(col);
        if spacing[c] <= 0.0 {
            return Err(nifti_err(
                path,
                format!("{source} has a zero-length axis {c}"),
            ));
        }
        for r in 0..3 {
            direction[r][c] = col[r] / spacing[c];
        }
    }
    let grid = Grid::new(dims, spacing, origin, direction)
        .map_err(|e| nifti_err(path, format!("{source} is not a rigid voxel grid: {e}")))?;
    Ok((grid, source, warnings))
}

/// Quaternion (b, c, d) and qfac of an orthonormal matrix, per nifti_mat44_to_quatern.
fn quaternion(r: &Mat3) -> ([f64; 3], f64) {
    let mut r = *r;
    let qfac = if linalg::det(&r) < 0.0 {
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    let trace = r[0][0] + r[1][1] + r[2][2] + 1.0;
    let (b, c, d);
    if trace > 0.5 {
        let aa = 0.5 * trace.sqrt();
        b = 0.25 * (r[2][1] - r[1][2]) / aa;
        c = 0.25 * (r[0][2] - r[2][0]) / aa;
        d = 0.25 * (r[1][0] - r[0][1]) / aa;
    } else {
        let xd = 1.0 + r[0][0] - (r[1][1] + r[2][2]);
        let yd = 1.0 + r[1][1] - (r[0][0] + r[2][2]);
        let zd = 1.0 + r[2][2] - (r[0][0] + r[1][1]);
        let (aa, bb, cc, dd);
        if xd > 1.0 {
            bb = 0.5 * xd.sqrt();
            cc = 0.25 * (r[0][1] + r[1][0]) / bb;
            dd = 0.25 * (r[0][2] + r[2][0]) / bb;
            aa = 0.25 * (r[2][1] - r[1][2]) / bb;
        } else if yd > 1.0 {
            cc = 0.5 * yd.sqrt();
            bb = 0.25 * (r[0][1] + r[1][0]) / cc;
            dd = 0.25 * (r[1][2] + r[2][1]) / cc;
            aa = 0.25 * (r[0][2] - r[2][0]) / cc;
        } else {
            dd = 0.5 * zd.sqrt();
            bb = 0.25 * (r[0][2] + r[2][0]) / dd;
            cc = 0.25 * (r[1][2] + r[2][1]) / dd;
            aa = 0.25 * (r[1][0] - r[0][1]) / dd;
        }
        // Keep a ≥ 0 (the stored quaternion omits a).
        let s = if aa < 0.0 { -1.0 } else { 1.0 };
        b = bb * s;
        c = cc * s;
        d = dd * s;
    }
    ([b, c, d], qfac)
}

fn header_for(grid: &Grid) -> NiftiHeader {
    let ras_dir = linalg::mat_mul(&FLIP_XY, &grid.direction);
    let origin = linalg::mat_vec(&FLIP_XY, grid.origin_mm);
    let ([b, c, d], qfac) = quaternion(&ras_dir);
    let mut rows = [[0.0f32; 4]; 3];
    for (r, row) in rows.iter_mut().enumerate() {
        for c in 0..3 {
            row[c] = (ras_dir[r][c] * grid.spacing_mm[c]) as f32;
        }
        row[3] = origin[r] as f32;
    }
    NiftiHeader {
        pixdim: [
            qfac as f32,
            grid.spacing_mm[0] as f32,
            grid.spacing_mm[1] as f32,
            grid.spacing_mm[2] as f32,
            1.0,
            1.0,
            1.0,
            1.0,
        ],
        xyzt_units: 2 | 8, // mm, seconds
        qform_code: 1,
        sform_code: 1,
        quatern_b: b as f32,
        quatern_c: c as f32,
        quatern_d: d as f32,
        quatern_x: origin[0] as f32,
        quatern_y: origin[1] as f32,
        quatern_z: origin[2] as f32,
        srow_x: rows[0],
        srow_y: rows[1],
        srow_z: rows[2],
        descrip: b"mrtdose".to_vec(),
        ..NiftiHeader::default()
    }
}

/// Voxel types mrtdose writes to NIfTI.
pub trait NiftiVoxel: Copy {
    /// Writes a volume of this type.
    fn write(path: &Path, volume: &Volume<Self>) -> Result<()>;
}

macro_rules! nifti_voxel {
    ($($t:ty),*) => {$(
        impl NiftiVoxel for $t {
            fn write(path: &Path, volume: &Volume<Self>) -> Result<()> {
                let g = volume.grid();
                let array = Array3::from_shape_vec(
                    (g.dims[0], g.dims[1], g.dims[2]).f(),
                    volume.data().to_vec(),
                )
                .map_err(|e| nifti_err(path, e))?;
                let header = header_for(g);
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| IoError::new(parent, Problem::Io(e)))?;
                }
                WriterOptions::new(path)
                    .reference_header(&header)
                    .write_nifti(&array)
                    .map_err(|e| nifti_err(path, e))
            }
        }
    )*};
}
nifti_voxel!(f32, u8, u16, i16);

/// Writes a volume to `.nii` or `.nii.gz` (chosen by the file name).
pub fn write_nifti<T: NiftiVoxel>(path: &Path, volume: &Volume<T>) -> Result<()> {
    let name = path.to_string_lossy();
    if !(name.ends_with(".nii") || name.ends_with(".nii.gz")) {
        return Err(nifti_err(path, "file name must end in .nii or .nii.gz"));
    }
    T::write(path, volume)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mrt_core::linalg::rotation_xyz_deg;

    #[test]
    fn quaternion_round_trips_through_qform() {
        for angles in [
            [0.0, 0.0, 0.0],
            [10.0, -20.0, 170.0],
            [180.0, 0.0, 0.0],
            [0.0, 180.0, 90.0],
        ] {
            for flip in [false, true] {
                let mut r = rotation_xyz_deg(angles);
                if flip {
                    for row in r.iter_mut() {
                        row[2] = -row[2];
                    }
                }
                let ([b, c, d], qfac) = quaternion(&r);
                let h = NiftiHeader {
                    quatern_b: b as f32,
                    quatern_c: c as f32,
                    quatern_d: d as f32,
                    pixdim: [qfac as f32, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                    ..NiftiHeader::default()
                };
                let (m, _) = qform_matrix(&h);
                for i in 0..3 {
                    for j in 0..3 {
                        assert!(
                            (m[i][j] - r[i][j]).abs() < 1e-6,
                            "{angles:?} {flip}: {m:?} vs {r:?}"
                        );
                    }
                }
            }
        }
    }
}
