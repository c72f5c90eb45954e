//! A voxel lattice placed in patient space.
//!
//! Coordinates are DICOM LPS world millimetres: +x towards the patient's left, +y towards
//! posterior, +z towards head. Index `(i, j, k)` addresses voxel centres; `i` varies fastest in
//! memory. The mapping is the ITK/DICOM one:
//!
//! `world = origin + D · diag(spacing) · (i, j, k)ᵀ`
//!
//! where the columns of `D` (`direction`) are unit vectors along the `i`, `j` and `k` axes.

use serde::{Deserialize, Serialize};

use crate::linalg::{self, Mat3, Vec3};

/// Why a grid description was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GridError {
    /// A dimension is zero.
    #[error("grid dimension {axis} is zero")]
    ZeroDimension {
        /// Axis 0, 1 or 2.
        axis: usize,
    },
    /// Spacing must be finite and positive.
    #[error("grid spacing along axis {axis} is {value} mm; must be finite and > 0")]
    BadSpacing {
        /// Axis 0, 1 or 2.
        axis: usize,
        /// The offending spacing.
        value: f64,
    },
    /// Direction columns must be unit length and mutually orthogonal.
    #[error("grid direction is not orthonormal (max deviation {deviation:.2e})")]
    NotOrthonormal {
        /// Largest deviation of `DᵀD` from identity.
        deviation: f64,
    },
    /// Origin must be finite.
    #[error("grid origin is not finite")]
    BadOrigin,
}

/// Tolerance on `DᵀD = I` for a direction matrix built from DICOM decimal strings.
pub const ORTHONORMAL_TOLERANCE: f64 = 1e-4;

/// Dimensions, spacing (mm), origin (LPS mm, centre of voxel 0,0,0) and direction cosines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Number of voxels along i, j, k.
    pub dims: [usize; 3],
    /// Voxel spacing in mm along i, j, k.
    pub spacing_mm: Vec3,
    /// World position (LPS mm) of the centre of voxel (0, 0, 0).
    pub origin_mm: Vec3,
    /// Row-major matrix whose columns are the unit directions of the i, j and k axes in LPS.
    pub direction: Mat3,
}

impl Grid {
    /// Builds and validates a grid.
    pub fn new(
        dims: [usize; 3],
        spacing_mm: Vec3,
        origin_mm: Vec3,
        direction: Mat3,
    ) -> Result<Self, GridError> {
        let grid = Self {
            dims,
            spacing_mm,
            origin_mm,
            direction,
        };
        grid.validate()?;
        Ok(grid)
    }

    /// An axis-aligned grid (direction = identity).
    pub fn axis_aligned(
        dims: [usize; 3],
        spacing_mm: Vec3,
        origin_mm: Vec3,
    ) -> Result<Self, GridError> {
        Self::new(dims, spacing_mm, origin_mm, linalg::IDENTITY)
    }

    /// Checks the invariants: non-zero dims, positive spacing, finite origin, orthonormal direction.
    pub fn validate(&self) -> Result<(), GridError> {
        for axis in 0..3 {
            if self.dims[axis] == 0 {
                return Err(GridError::ZeroDimension { axis });
            }
            let s = self.spacing_mm[axis];
            if !(s.is_finite() && s > 0.0) {
                return Err(GridError::BadSpacing { axis, value: s });
            }
        }
        if !self.origin_mm.iter().all(|v| v.is_finite()) {
            return Err(GridError::BadOrigin);
        }
        let dtd = linalg::mat_mul(&linalg::transpose(&self.direction), &self.direction);
        let mut deviation: f64 = 0.0;
        for (r, row) in dtd.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let expected = if r == c { 1.0 } else { 0.0 };
                deviation = deviation.max((v - expected).abs());
            }
        }
        if deviation.is_nan() || deviation > ORTHONORMAL_TOLERANCE {
            return Err(GridError::NotOrthonormal { deviation });
        }
        Ok(())
    }

    /// Total number of voxels.
    pub fn len(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }

    /// True when the grid has no voxels (never, for a validated grid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Volume of one voxel in mm³ (= µL).
    pub fn voxel_volume_mm3(&self) -> f64 {
        self.spacing_mm[0] * self.spacing_mm[1] * self.spacing_mm[2]
    }

    /// Unit vector of axis `axis` (0 = i, 1 = j, 2 = k) in LPS.
    pub fn axis_direction(&self, axis: usize) -> Vec3 {
        [
            self.direction[0][axis],
            self.direction[1][axis],
            self.direction[2][axis],
        ]
    }

    /// Linear memory offset of voxel `(i, j, k)`; `i` varies fastest.
    #[inline]
    pub fn offset(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.dims[0] * (j + self.dims[1] * k)
    }

    /// `D · diag(spacing)`: maps index steps to world millimetres.
    pub fn index_to_world_matrix(&self) -> Mat3 {
        let mut m = self.direction;
        for row in m.iter_mut() {
            for (c, v) in row.iter_mut().enumerate() {
                *v *= self.spacing_mm[c];
            }
        }
        m
    }

    /// World position (LPS mm) of a continuous index.
    pub fn index_to_world(&self, index: Vec3) -> Vec3 {
        linalg::add(
            self.origin_mm,
            linalg::mat_vec(&self.index_to_world_matrix(), index),
        )
    }

    /// Continuous index of a world position (LPS mm).
    pub fn world_to_index(&self, world_mm: Vec3) -> Vec3 {
        self.world_to_index_map().apply(world_mm)
    }

    /// The affine map world → continuous index, precomputed for loops.
    pub fn world_to_index_map(&self) -> AffineMap {
        // D is orthonormal, so (D·S)⁻¹ = S⁻¹·Dᵀ.
        let mut m = linalg::transpose(&self.direction);
        for (r, row) in m.iter_mut().enumerate() {
            for v in row.iter_mut() {
                *v /= self.spacing_mm[r];
            }
        }
        let t = linalg::mat_vec(&m, self.origin_mm);
        AffineMap {
            matrix: m,
            translation: linalg::scale(t, -1.0),
        }
    }

    /// The affine map continuous index → world.
    pub fn index_to_world_map(&self) -> AffineMap {
        AffineMap {
            matrix: self.index_to_world_matrix(),
            translation: self.origin_mm,
        }
    }

    /// World position of the grid's geometric centre.
    pub fn centre_mm(&self) -> Vec3 {
        let c = self.dims.map(|d| (d as f64 - 1.0) / 2.0);
        self.index_to_world(c)
    }

    /// Physical extent along each axis, voxel edge to voxel edge, in mm.
    pub fn extent_mm(&self) -> Vec3 {
        [
            self.dims[0] as f64 * self.spacing_mm[0],
            self.dims[1] as f64 * self.spacing_mm[1],
            self.dims[2] as f64 * self.spacing_mm[2],
        ]
    }

    /// True when both grids place every voxel at the same world position (within `tol_mm`).
    pub fn same_geometry(&self, other: &Grid, tol_mm: f64) -> bool {
        if self.dims != other.dims {
            return false;
        }
        let far = self.dims.map(|d| (d - 1) as f64);
        let corners = [
            [0.0, 0.0, 0.0],
            [far[0], 0.0, 0.0],
            [0.0, far[1], 0.0],
            [0.0, 0.0, far[2]],
            far,
        ];
        corners.iter().all(|&c| {
            linalg::norm(linalg::sub(self.index_to_world(c), other.index_to_world(c))) <= tol_mm
        })
    }
}

/// `y = matrix · x + translation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineMap {
    /// Linear part.
    pub matrix: Mat3,
    /// Translation part.
    pub translation: Vec3,
}

impl AffineMap {
    /// The map that leaves every point where it is.
    pub const IDENTITY: AffineMap = AffineMap {
        matrix: linalg::IDENTITY,
        translation: [0.0; 3],
    };

    /// Applies the map.
    #[inline]
    pub fn apply(&self, x: Vec3) -> Vec3 {
        linalg::add(linalg::mat_vec(&self.matrix, x), self.translation)
    }

    /// `self ∘ inner`: first `inner`, then `self`.
    pub fn compose(&self, inner: &AffineMap) -> AffineMap {
        AffineMap {
            matrix: linalg::mat_mul(&self.matrix, &inner.matrix),
            translation: self.apply(inner.translation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::rotation_xyz_deg;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_grids() {
        let id = linalg::IDENTITY;
        assert_eq!(
            Grid::new([0, 1, 1], [1.0; 3], [0.0; 3], id),
            Err(GridError::ZeroDimension { axis: 0 })
        );
        assert!(matches!(
            Grid::new([1, 1, 1], [1.0, -1.0, 1.0], [0.0; 3], id),
            Err(GridError::BadSpacing { axis: 1, .. })
        ));
        let sheared = [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        assert!(matches!(
            Grid::new([1, 1, 1], [1.0; 3], [0.0; 3], sheared),
            Err(GridError::NotOrthonormal { .. })
        ));
    }

    #[test]
    fn index_to_world_matches_hand_computation() {
        // i along +y (posterior), j along -x (right), k along +z; spacing 2, 3, 5.
        let d = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
        let g = Grid::new([4, 4, 4], [2.0, 3.0, 5.0], [10.0, 20.0, 30.0], d).expect("valid");
        assert_eq!(g.index_to_world([1.0, 0.0, 0.0]), [10.0, 22.0, 30.0]);
        assert_eq!(g.index_to_world([0.0, 1.0, 0.0]), [7.0, 20.0, 30.0]);
        assert_eq!(g.index_to_world([0.0, 0.0, 2.0]), [10.0, 20.0, 40.0]);
    }

    proptest! {
        #[test]
        fn world_index_round_trip(
            rx in -180.0f64..180.0, ry in -90.0f64..90.0, rz in -180.0f64..180.0,
            sx in 0.3f64..6.0, sy in 0.3f64..6.0, sz in 0.3f64..6.0,
            ox in -500.0f64..500.0, oy in -500.0f64..500.0, oz in -500.0f64..500.0,
            i in -5.0f64..300.0, j in -5.0f64..300.0, k in -5.0f64..300.0,
        ) {
            let g = Grid::new([10, 10, 10], [sx, sy, sz], [ox, oy, oz], rotation_xyz_deg([rx, ry, rz]))
                .expect("valid");
            let back = g.world_to_index(g.index_to_world([i, j, k]));
            for (a, b) in back.iter().zip([i, j, k]) {
                prop_assert!((a - b).abs() < 1e-9, "{a} vs {b}");
            }
        }
    }
}
