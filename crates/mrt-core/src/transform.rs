//! Rigid transforms in LPS world millimetres: `p' = R·p + t`, with R from Euler angles in
//! degrees applied x, then y, then z (`R = Rz·Ry·Rx`).

use serde::{Deserialize, Serialize};

use crate::grid::AffineMap;
use crate::linalg::{self, Vec3};

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
