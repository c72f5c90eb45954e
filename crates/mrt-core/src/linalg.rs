//! Minimal 3-vector and 3×3-matrix helpers (row-major `[[f64; 3]; 3]`).
//!
//! Kept tiny on purpose: grids only need products, transposes, determinants and inverses.

/// A 3-vector, millimetres or unitless depending on context.
pub type Vec3 = [f64; 3];
/// A 3×3 matrix, row-major: `m[row][col]`.
pub type Mat3 = [[f64; 3]; 3];

/// The identity matrix.
pub const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// `a · b`.
pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// `a × b`.
pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Euclidean norm.
pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// `a + b`.
pub fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// `a - b`.
pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `s · a`.
pub fn scale(a: Vec3, s: f64) -> Vec3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// `m · v`.
pub fn mat_vec(m: &Mat3, v: Vec3) -> Vec3 {
    [dot(m[0], v), dot(m[1], v), dot(m[2], v)]
}

/// `a · b`.
pub fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for (r, row) in out.iter_mut().enumerate() {
        for (c, cell) in row.iter_mut().enumerate() {
            *cell = (0..3).map(|k| a[r][k] * b[k][c]).sum();
        }
    }
    out
}

/// Transpose.
pub fn transpose(m: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for (r, row) in m.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c][r] = v;
        }
    }
    out
}

/// Determinant.
pub fn det(m: &Mat3) -> f64 {
    dot(m[0], cross(m[1], m[2]))
}

/// Inverse, or `None` when the matrix is singular (|det| below `1e-12`).
pub fn inverse(m: &Mat3) -> Option<Mat3> {
    let d = det(m);
    if d.abs() < 1e-12 || !d.is_finite() {
        return None;
    }
    // Columns of the adjugate transpose are cross products of rows.
    let c0 = cross(m[1], m[2]);
    let c1 = cross(m[2], m[0]);
    let c2 = cross(m[0], m[1]);
    let adj_t = [c0, c1, c2];
    let inv_t = adj_t.map(|row| scale(row, 1.0 / d));
    Some(transpose(&inv_t))
}

/// Rotation matrix from Euler angles in degrees, applied in the order x, then y, then z
/// (`R = Rz · Ry · Rx`).
pub fn rotation_xyz_deg(angles_deg: Vec3) -> Mat3 {
    let [ax, ay, az] = angles_deg.map(f64::to_radians);
    let (sx, cx) = ax.sin_cos();
    let (sy, cy) = ay.sin_cos();
    let (sz, cz) = az.sin_cos();
    let rx = [[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]];
    let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
    let rz = [[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]];
    mat_mul(&rz, &mat_mul(&ry, &rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_of_rotation_is_its_transpose() {
        let r = rotation_xyz_deg([10.0, -20.0, 35.0]);
        let inv = inverse(&r).expect("rotation is invertible");
        let t = transpose(&r);
        for i in 0..3 {
            for j in 0..3 {
                assert!((inv[i][j] - t[i][j]).abs() < 1e-12);
            }
        }
        assert!((det(&r) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn singular_matrix_has_no_inverse() {
        let m = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 1.0]];
        assert!(inverse(&m).is_none());
    }
}
