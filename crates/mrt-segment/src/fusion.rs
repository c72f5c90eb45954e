//! Time-point fusion: one patient's CTs at several time points show the same organs. Each CT's
//! class probabilities (on its model grid) are brought into one time point's frame through the
//! CT↔CT registration and averaged voxel by voxel, so a time point where the model hesitates
//! (noise, truncation, a bowel loop next to a kidney) borrows the evidence of the others.
//!
//! Pure computation: no I/O, no ONNX Runtime.

use mrt_core::grid::AffineMap;
use mrt_core::resample::sample_linear_each;
use mrt_core::{Grid, Volume};
use rayon::prelude::*;

/// Class probabilities on a model grid: channel-major, `channels × grid.len()` values.
#[derive(Debug, Clone)]
pub struct Probabilities {
    /// The model grid (axis-aligned LPS, the model card's spacing).
    pub grid: Grid,
    /// Number of classes (background first).
    pub channels: usize,
    /// Probabilities, channel after channel.
    pub data: Vec<f32>,
}

impl Probabilities {
    /// Channel `c` as a volume on the model grid.
    fn channel(&self, c: usize) -> Volume<f32> {
        let n = self.grid.len();
        Volume::new(self.grid.clone(), self.data[c * n..(c + 1) * n].to_vec())
            .expect("probabilities cover the model grid")
    }
}

/// One other time point to fuse: its probabilities and the map from the own CT's world (LPS mm)
/// to that time point's CT world (the registration).
pub struct Contribution<'a> {
    /// That time point's probabilities.
    pub probabilities: &'a Probabilities,
    /// Own world → that world.
    pub own_to_other: AffineMap,
}

/// The mean of `own` and the `others` on `own`'s grid. A voxel that an other time point's grid
/// does not cover takes only the time points that do cover it (always at least `own`).
pub fn fuse(own: &Probabilities, others: &[Contribution<'_>]) -> Probabilities {
    let grid = own.grid.clone();
    let channels = own.channels;
    let n = grid.len();
    let [nx, ny, nz] = grid.dims;
    // Per other: own index → other index, and its channel volumes.
    let sources: Vec<(AffineMap, Vec<Volume<f32>>)> = others
        .iter()
        .filter(|o| o.probabilities.channels == channels)
        .map(|o| {
            let map = o
                .probabilities
                .grid
                .world_to_index_map()
                .compose(&o.own_to_other)
                .compose(&grid.index_to_world_map());
            let vols = (0..channels).map(|c| o.probabilities.channel(c)).collect();
            (map, vols)
        })
        .collect();
    let mut fused = own.data.clone();
    let slabs: Vec<Vec<f32>> = (0..nz)
        .into_par_iter()
        .map(|k| {
            let mut slab = vec![0f32; channels * nx * ny];
            let mut sample = vec![0f32; channels];
            for j in 0..ny {
                for i in 0..nx {
                    let o = i + nx * (j + ny * k);
                    let s = i + nx * j;
                    let mut count = 1.0f32;
                    for c in 0..channels {
                        slab[c * nx * ny + s] = own.data[c * n + o];
                    }
                    for (map, vols) in &sources {
                        let p = map.apply([i as f64, j as f64, k as f64]);
                        // The channels share one grid: all inside it or none.
                        let covered = sample_linear_each(vols, p, |c, x| sample[c] = x);
                        if covered {
                            count += 1.0;
                            for c in 0..channels {
                                slab[c * nx * ny + s] += sample[c];
                            }
                        }
                    }
                    for c in 0..channels {
                        slab[c * nx * ny + s] /= count;
                    }
                }
            }
            slab
        })
        .collect();
    for (k, slab) in slabs.iter().enumerate() {
        for c in 0..channels {
            let dst = c * n + k * nx * ny;
            fused[dst..dst + nx * ny].copy_from_slice(&slab[c * nx * ny..(c + 1) * nx * ny]);
        }
    }
    Probabilities {
        grid,
        channels,
        data: fused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mrt_core::Transform;

    fn grid(dims: [usize; 3], origin: [f64; 3]) -> Grid {
        Grid::axis_aligned(dims, [2.0, 2.0, 2.0], origin).expect("valid grid")
    }

    /// Two classes; class 1 is a box `[lo, hi)` in world x (mm), certainty `p` inside.
    fn boxed(g: &Grid, lo: f64, hi: f64, p: f32) -> Probabilities {
        let n = g.len();
        let [nx, ny, _] = g.dims;
        let mut data = vec![0f32; 2 * n];
        for o in 0..n {
            let idx = [o % nx, (o / nx) % ny, o / (nx * ny)].map(|x| x as f64);
            let x = g.index_to_world(idx)[0];
            let fg = if (lo..hi).contains(&x) { p } else { 1.0 - p };
            data[o] = 1.0 - fg;
            data[n + o] = fg;
        }
        Probabilities {
            grid: g.clone(),
            channels: 2,
            data,
        }
    }

    #[test]
    fn no_others_is_the_identity() {
        let g = grid([8, 6, 5], [0.0; 3]);
        let own = boxed(&g, 4.0, 10.0, 0.9);
        assert_eq!(fuse(&own, &[]).data, own.data);
    }

    #[test]
    fn a_shifted_time_point_is_brought_back_before_averaging() {
        // The other CT sees the same box 6 mm further along x (the patient moved by +6 mm):
        // own world → other world is a +6 mm translation. After fusion the box stays where the
        // own time point has it, with the mean certainty of both.
        let g = grid([16, 4, 4], [0.0; 3]);
        let own = boxed(&g, 8.0, 16.0, 0.6);
        let other = boxed(&g, 14.0, 22.0, 1.0);
        let shift = Transform::Rigid(mrt_core::transform::RigidTransform {
            rotation_deg: [0.0; 3],
            translation_mm: [6.0, 0.0, 0.0],
        });
        let fused = fuse(
            &own,
            &[Contribution {
                probabilities: &other,
                own_to_other: shift.to_affine(),
            }],
        );
        let n = g.len();
        for i in 0..16 {
            let x = 2.0 * i as f64;
            let fg = fused.data[n + i];
            let expected = match x {
                x if x < 8.0 => 0.2,   // outside the box in both
                x if x < 16.0 => 0.8,  // inside in both: (0.6 + 1.0) / 2
                x if x <= 24.0 => 0.2, // outside in both
                _ => 0.4,              // the other grid ends at 31 mm: own only
            };
            assert!(
                (fg - expected).abs() < 1e-5,
                "x {x} mm: {fg}, expected {expected}"
            );
        }
        // x = 26 mm maps to 32 mm in the other grid, past its last voxel (30 mm): own only.
        assert!((fused.data[n + 13] - 0.4).abs() < 1e-5);
    }
}
