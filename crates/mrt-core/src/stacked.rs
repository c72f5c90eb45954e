//! Several `f32` volumes on one grid, stored voxel by voxel (all components of a voxel side by
//! side), for sampling all of them at many points: each trilinear corner is then one cache line
//! instead of one per volume. Values are exactly those of [`crate::resample::sample_linear_each`]
//! on the separate volumes.

use crate::resample::{linear_cell, trilinear};
use crate::volume::Volume;

/// `n` volumes of one grid, interleaved.
#[derive(Debug, Clone)]
pub struct StackedVolumes {
    dims: [usize; 3],
    n: usize,
    data: Vec<f32>,
}

impl StackedVolumes {
    /// Interleaves `volumes`; `None` when they are empty or their dims differ.
    pub fn new(volumes: &[Volume<f32>]) -> Option<Self> {
        let dims = volumes.first()?.grid().dims;
        if volumes.iter().any(|v| v.grid().dims != dims) {
            return None;
        }
        let n = volumes.len();
        let len = dims.iter().product::<usize>();
        let mut data = vec![0.0f32; len * n];
        for (c, v) in volumes.iter().enumerate() {
            for (i, &x) in v.data().iter().enumerate() {
                data[i * n + c] = x;
            }
        }
        Some(Self { dims, n, data })
    }

    /// Number of volumes.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are none (never: [`Self::new`] needs one).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Trilinear sample of every volume at continuous index `p` into `out[..len]`; `false` (and
    /// `out` untouched) outside, i.e. beyond half a voxel past the outer voxel centres. Within
    /// half a voxel of the edge the edge value is extended.
    #[inline]
    pub fn sample_linear_into(&self, p: [f64; 3], out: &mut [f64]) -> bool {
        let Some((corners, w)) = linear_cell(self.dims, p) else {
            return false;
        };
        let n = self.n;
        for (s, o) in out.iter_mut().enumerate().take(n) {
            let v = |c: usize| f64::from(self.data[corners[c] * n + s]);
            // Rounded to f32 as the separate volumes' samples are.
            *o = f64::from(trilinear(v, w) as f32);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Grid;
    use crate::resample::sample_linear_each;

    #[test]
    fn samples_equal_the_separate_volumes_bit_for_bit() {
        let dims = [7, 5, 4];
        let grid = Grid::axis_aligned(dims, [1.0; 3], [0.0; 3]).expect("grid");
        let len = 7 * 5 * 4;
        let volumes: Vec<Volume<f32>> = (0..3)
            .map(|c| {
                let data = (0..len)
                    .map(|i| ((i * 37 + c * 11) % 23) as f32 * 0.37 - 2.0)
                    .collect();
                Volume::new(grid.clone(), data).expect("volume")
            })
            .collect();
        let stacked = StackedVolumes::new(&volumes).expect("stacked");
        let mut tested = 0;
        for step in 0..500 {
            let t = step as f64;
            let p = [
                (t * 0.173).rem_euclid(8.4) - 0.9,
                (t * 0.291).rem_euclid(6.2) - 0.8,
                (t * 0.457).rem_euclid(5.0) - 0.7,
            ];
            let mut want = [f64::NAN; 3];
            let inside = sample_linear_each(&volumes, p, |s, v| want[s] = f64::from(v));
            let mut got = [f64::NAN; 3];
            assert_eq!(stacked.sample_linear_into(p, &mut got), inside, "at {p:?}");
            if inside {
                tested += 1;
                for s in 0..3 {
                    assert_eq!(got[s].to_bits(), want[s].to_bits(), "at {p:?}");
                }
            }
        }
        assert!(tested > 100, "only {tested} points inside");
    }

    #[test]
    fn volumes_of_different_dims_are_refused() {
        let a = Volume::filled(
            Grid::axis_aligned([2, 2, 2], [1.0; 3], [0.0; 3]).expect("grid"),
            0.0,
        );
        let b = Volume::filled(
            Grid::axis_aligned([3, 2, 2], [1.0; 3], [0.0; 3]).expect("grid"),
            0.0,
        );
        assert!(StackedVolumes::new(&[a, b]).is_none());
        assert!(StackedVolumes::new(&[]).is_none());
    }
}
