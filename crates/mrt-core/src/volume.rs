//! A grid plus one value per voxel.

use crate::grid::Grid;

/// Why a volume could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("volume data has {actual} values but its grid {dims:?} needs {expected}")]
pub struct LengthMismatch {
    /// Grid dimensions.
    pub dims: [usize; 3],
    /// `dims` product.
    pub expected: usize,
    /// Length of the data given.
    pub actual: usize,
}

/// Voxel values on a [`Grid`], stored with `i` fastest (the layout of DICOM frames and NIfTI).
#[derive(Debug, Clone, PartialEq)]
pub struct Volume<T> {
    grid: Grid,
    data: Vec<T>,
}

impl<T> Volume<T> {
    /// Wraps `data` (length must equal the number of voxels).
    pub fn new(grid: Grid, data: Vec<T>) -> Result<Self, LengthMismatch> {
        if data.len() != grid.len() {
            return Err(LengthMismatch {
                dims: grid.dims,
                expected: grid.len(),
                actual: data.len(),
            });
        }
        Ok(Self { grid, data })
    }

    /// A volume with every voxel set to `value`.
    pub fn filled(grid: Grid, value: T) -> Self
    where
        T: Clone,
    {
        let data = vec![value; grid.len()];
        Self { grid, data }
    }

    /// The geometry.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Voxel values, `i` fastest.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// Mutable voxel values, `i` fastest.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Splits into grid and values.
    pub fn into_parts(self) -> (Grid, Vec<T>) {
        (self.grid, self.data)
    }

    /// Value at voxel `(i, j, k)`; panics when out of range (callers iterate over `grid.dims`).
    #[inline]
    pub fn at(&self, i: usize, j: usize, k: usize) -> &T {
        &self.data[self.grid.offset(i, j, k)]
    }

    /// Same grid, values mapped through `f`.
    pub fn map<U>(&self, f: impl Fn(&T) -> U) -> Volume<U> {
        Volume {
            grid: self.grid.clone(),
            data: self.data.iter().map(f).collect(),
        }
    }
}

/// Summary statistics of a scalar volume.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct VolumeStats {
    /// Smallest finite value.
    pub min: f64,
    /// Largest finite value.
    pub max: f64,
    /// Mean of finite values.
    pub mean: f64,
    /// Number of non-finite values (NaN, ±inf), excluded from the above.
    pub non_finite: usize,
}

impl VolumeStats {
    /// Statistics of any sequence of values.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let (mut min, mut max, mut sum, mut n, mut non_finite) =
            (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize, 0usize);
        for v in values {
            if v.is_finite() {
                min = min.min(v);
                max = max.max(v);
                sum += v;
                n += 1;
            } else {
                non_finite += 1;
            }
        }
        let mean = if n > 0 { sum / n as f64 } else { f64::NAN };
        Self {
            min,
            max,
            mean,
            non_finite,
        }
    }
}

impl Volume<f32> {
    /// Min, max and mean of the voxel values.
    pub fn stats(&self) -> VolumeStats {
        VolumeStats::of(self.data.iter().map(|&v| f64::from(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_must_match_grid() {
        let g = Grid::axis_aligned([2, 2, 2], [1.0; 3], [0.0; 3]).expect("valid");
        let err = Volume::new(g.clone(), vec![0.0f32; 7]).expect_err("7 != 8");
        assert_eq!(err.expected, 8);
        let v = Volume::new(g, (0..8).map(|x| x as f32).collect()).expect("8 values");
        assert_eq!(*v.at(1, 1, 1), 7.0);
        assert_eq!(*v.at(1, 0, 1), 5.0);
        let s = v.stats();
        assert_eq!((s.min, s.max, s.mean), (0.0, 7.0, 3.5));
    }
}
