//! Rigid transforms in LPS world millimetres: `p' = R·p + t`, with R from Euler angles in
//! degrees applied x, then y, then z (`R = Rz·Ry·Rx`).

use serde::{Deserialize, Serialize};

use crate::grid::AffineMap;
use crate::linalg::{self, Mat3, Vec3};

/// A rotation (degrees, about the world origin) followed by a translation (mm).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct RigidTransform {
    /// Euler angles about x, y, z in degrees.
    pub rotation_deg: Vec3,
    /// Translation in mm.
    pub translation_mm: Vec3,
}

impl RigidTransform {
    /// The identity.
    pub fn identity() -> Self {
        Self::default()
    }

    /// As an affine map.
    pub fn to_affine(&self) -> AffineMap {
        AffineMap {
            matrix: linalg::rotation_xyz_deg(self.rotation_deg),
            translation: self.translation_mm,
        }
    }

    /// The inverse map, `p = Rᵀ·(p' − t)`, as an affine map.
    pub fn inverse_affine(&self) -> AffineMap {
        let rt = linalg::transpose(&linalg::rotation_xyz_deg(self.rotation_deg));
        AffineMap {
            matrix: rt,
            translation: linalg::scale(linalg::mat_vec(&rt, self.translation_mm), -1.0),
        }
    }

    /// Applies the transform to a point.
    pub fn apply(&self, p: Vec3) -> Vec3 {
        self.to_affine().apply(p)
    }

    /// The rigid transform with rotation `matrix` (must be a proper rotation) and `translation`.
    pub fn from_rotation_matrix(matrix: &Mat3, translation_mm: Vec3) -> Self {
        // R = Rz·Ry·Rx: R[2][0] = −sin(ry), R[2][1] = sin(rx)cos(ry), R[1][0] = sin(rz)cos(ry).
        let ry = (-matrix[2][0]).clamp(-1.0, 1.0).asin();
        let (rx, rz) = if ry.cos().abs() > 1e-9 {
            (
                matrix[2][1].atan2(matrix[2][2]),
                matrix[1][0].atan2(matrix[0][0]),
            )
        } else {
            // Gimbal lock: put the whole remaining rotation on x.
            ((-matrix[1][2]).atan2(matrix[1][1]), 0.0)
        };
        Self {
            rotation_deg: [rx, ry, rz].map(f64::to_degrees),
            translation_mm,
        }
    }

    /// The inverse, as a rigid transform.
    pub fn inverse(&self) -> Self {
        let inv = self.inverse_affine();
        Self::from_rotation_matrix(&inv.matrix, inv.translation)
    }

    /// `self ∘ inner` (first `inner`, then `self`), as a rigid transform.
    pub fn compose(&self, inner: &RigidTransform) -> Self {
        let m = self.to_affine().compose(&inner.to_affine());
        Self::from_rotation_matrix(&m.matrix, m.translation)
    }
}

/// A spatial transform between two world frames (LPS mm), serialisable as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transform {
    /// Six degrees of freedom.
    Rigid(RigidTransform),
    /// Twelve degrees of freedom: `p' = matrix · p + translation_mm` (matrix row-major).
    Affine {
        /// Linear part, rows.
        matrix: Mat3,
        /// Translation in mm.
        translation_mm: Vec3,
    },
}

/// Why a transform cannot be inverted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("transform is not invertible: determinant {determinant:e}")]
pub struct Singular {
    /// Determinant of the linear part.
    pub determinant: f64,
}

impl Transform {
    /// The identity (rigid).
    pub fn identity() -> Self {
        Self::Rigid(RigidTransform::identity())
    }

    /// As an affine map.
    pub fn to_affine(&self) -> AffineMap {
        match self {
            Self::Rigid(r) => r.to_affine(),
            Self::Affine {
                matrix,
                translation_mm,
            } => AffineMap {
                matrix: *matrix,
                translation: *translation_mm,
            },
        }
    }

    /// Applies the transform to a point.
    pub fn apply(&self, p: Vec3) -> Vec3 {
        self.to_affine().apply(p)
    }

    /// The inverse; rigid stays rigid.
    pub fn inverse(&self) -> Result<Self, Singular> {
        match self {
            Self::Rigid(r) => Ok(Self::Rigid(r.inverse())),
            Self::Affine { .. } => {
                let a = self.to_affine();
                let determinant = linalg::det(&a.matrix);
                let inv = linalg::inverse(&a.matrix)
                    .filter(|_| determinant.abs() > 1e-9)
                    .ok_or(Singular { determinant })?;
                Ok(Self::Affine {
                    matrix: inv,
                    translation_mm: linalg::scale(linalg::mat_vec(&inv, a.translation), -1.0),
                })
            }
        }
    }

    /// `self ∘ inner` (first `inner`, then `self`); rigid when both are.
    pub fn compose(&self, inner: &Transform) -> Self {
        match (self, inner) {
            (Self::Rigid(a), Self::Rigid(b)) => Self::Rigid(a.compose(b)),
            _ => {
                let m = self.to_affine().compose(&inner.to_affine());
                Self::Affine {
                    matrix: m.matrix,
                    translation_mm: m.translation,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Vec3, b: Vec3) -> bool {
        (0..3).all(|i| (a[i] - b[i]).abs() < 1e-9)
    }

    #[test]
    fn rigid_inverse_and_composition_stay_rigid_and_agree_with_matrices() {
        let a = RigidTransform {
            rotation_deg: [12.0, -35.0, 170.0],
            translation_mm: [1.0, 2.0, 3.0],
        };
        let b = RigidTransform {
            rotation_deg: [-4.0, 8.0, 15.0],
            translation_mm: [-7.0, 0.5, 9.0],
        };
        let p = [10.0, -20.0, 30.0];
        assert!(close(a.inverse().apply(a.apply(p)), p));
        assert!(close(a.compose(&b).apply(p), a.apply(b.apply(p))));
        let back = RigidTransform::from_rotation_matrix(&a.to_affine().matrix, a.translation_mm);
        assert!(close(back.apply(p), a.apply(p)));
    }

    #[test]
    fn affine_inverse_round_trips_and_json_keeps_the_kind() {
        let t = Transform::Affine {
            matrix: [[1.1, 0.05, 0.0], [0.0, 0.9, 0.02], [0.01, 0.0, 1.05]],
            translation_mm: [5.0, -3.0, 2.0],
        };
        let p = [1.0, 2.0, 3.0];
        let inv = t.inverse().expect("invertible");
        assert!(close(inv.apply(t.apply(p)), p));
        let json = serde_json::to_string(&t).expect("json");
        assert!(json.contains("\"kind\":\"affine\""), "{json}");
        let back: Transform = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, t);
        let flat = Transform::Affine {
            matrix: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]],
            translation_mm: [0.0; 3],
        };
        assert!(flat.inverse().is_err());
    }

    #[test]
    fn inverse_undoes_the_transform() {
        let t = RigidTransform {
            rotation_deg: [3.0, -4.0, 5.0],
            translation_mm: [10.0, -20.0, 7.5],
        };
        let p = [12.0, 34.0, -56.0];
        let back = t.inverse_affine().apply(t.apply(p));
        for a in 0..3 {
            assert!((back[a] - p[a]).abs() < 1e-9);
        }
    }
}
