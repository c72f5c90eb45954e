//! Time-point fusion: one patient's CTs at several time points show the same organs. Each CT's
//! class probabilities (on its model grid) are brought into one time point's frame through the
//! CT↔CT registration and averaged voxel by voxel, so a time point where the model hesitates
//! (noise, truncation, a bowel loop next to a kidney) borrows the evidence of the others.
//!
//! Pure computation: no I/O, no ONNX Runtime.

use mrt_core::grid::AffineMap;
use mrt_core::resample::sample_linear_channels;
use mrt_core::Grid;
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

/// One other time point to fuse: its probabilities and the map from the own CT's world (LPS mm)
/// to that time point's CT world (the registration).
pub struct Contribution<'a> {
    /// That time point's probabilities.
    pub probabilities: &'a Probabilities,
    /// Own world → that world.
    pub own_to_other: AffineMap,
}

/// The mean of `own` and the `others` on `own`'s grid. A voxel that an other time point's grid
/// does not cover takes only the time points that do cover it (always at least `own`). Others
/// with a different number of classes are left out.
pub fn fuse(own: &Probabilities, others: &[Contribution<'_>]) -> Probabilities {
    let mut sum = ProbabilitySum::new(own.clone());
    for other in others {
        sum.add(other);
    }
    sum.mean()
}

/// A running mean of class probabilities on one model grid: it starts from one set (a time
/// point's own, or the unshifted view of a CT) and takes the others one at a time, so a caller
/// that computes them one after another holds one sum, one count per voxel and the set being
/// added, never all of them. The result is bit for bit that of adding all others voxel by voxel
/// in the same order and dividing by their count.
#[derive(Debug)]
pub struct ProbabilitySum {
    sum: Probabilities,
    /// Per voxel of the grid: how many sets covered it (the own counts as one).
    count: Vec<f32>,
    added: bool,
}

impl ProbabilitySum {
    /// The sum of `own` alone (taken, not copied).
    pub fn new(own: Probabilities) -> Self {
        let count = vec![1.0; own.grid.len()];
        Self {
            sum: own,
            count,
            added: false,
        }
    }

    /// Adds `other`, brought onto the own grid through its map; voxels its grid does not cover
    /// are left alone, and so is everything when its number of classes differs.
    pub fn add(&mut self, other: &Contribution<'_>) {
        let theirs = other.probabilities;
        let channels = self.sum.channels;
        if theirs.channels != channels {
            return;
        }
        self.added = true;
        let grid = &self.sum.grid;
        let [nx, ny, nz] = grid.dims;
        let plane = nx * ny;
        // Own index → own world → other world → other index.
        let map = theirs
            .grid
            .world_to_index_map()
            .compose(&other.own_to_other)
            .compose(&grid.index_to_world_map());
        let their_dims = theirs.grid.dims;
        // Slab k of every channel, so each z slab is updated by one task.
        let mut slabs: Vec<Vec<&mut [f32]>> =
            (0..nz).map(|_| Vec::with_capacity(channels)).collect();
        for channel in self.sum.data.chunks_exact_mut(grid.len()) {
            for (k, slab) in channel.chunks_exact_mut(plane).enumerate() {
                slabs[k].push(slab);
            }
        }
        slabs
            .into_par_iter()
            .zip(self.count.par_chunks_exact_mut(plane))
            .enumerate()
            .for_each(|(k, (mut slab, count))| {
                let mut sample = vec![0f32; channels];
                for j in 0..ny {
                    for i in 0..nx {
                        let p = map.apply([i as f64, j as f64, k as f64]);
                        // The channels share one grid: all inside it or none.
                        let covered = sample_linear_channels(
                            &theirs.data,
                            their_dims,
                            channels,
                            p,
                            |c, x| sample[c] = x,
                        );
                        if covered {
                            let s = i + nx * j;
                            count[s] += 1.0;
                            for (c, values) in slab.iter_mut().enumerate() {
                                values[s] += sample[c];
                            }
                        }
                    }
                }
            });
    }

    /// The mean of everything added, on the own grid.
    pub fn mean(self) -> Probabilities {
        let Self {
            mut sum,
            count,
            added,
        } = self;
        if added {
            for channel in sum.data.chunks_exact_mut(count.len()) {
                channel
                    .par_iter_mut()
                    .zip(count.par_iter())
                    .for_each(|(p, &n)| *p /= n);
            }
        }
        sum
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

    #[test]
    fn sets_added_one_at_a_time_average_over_those_that_cover_each_voxel() {
        // Own and a second set on the same grid; a third whose grid starts at x = 16 mm (it
        // covers own voxels from x = 15 mm, half a voxel before its first centre) and says 0.3
        // everywhere. Added one after another, each voxel averages the sets that cover it.
        let g = grid([16, 4, 4], [0.0; 3]);
        let far = grid([16, 4, 4], [16.0, 0.0, 0.0]);
        let mut sum = ProbabilitySum::new(boxed(&g, 8.0, 16.0, 0.6));
        let same = boxed(&g, 8.0, 16.0, 0.9);
        sum.add(&Contribution {
            probabilities: &same,
            own_to_other: AffineMap::IDENTITY,
        });
        let everywhere = boxed(&far, -100.0, 100.0, 0.3);
        sum.add(&Contribution {
            probabilities: &everywhere,
            own_to_other: AffineMap::IDENTITY,
        });
        let fused = sum.mean();
        let n = g.len();
        for i in 0..16 {
            let x = 2.0 * i as f64;
            let expected = match x {
                x if x < 8.0 => (0.4 + 0.1) / 2.0, // outside own's box, before the third grid
                x if x < 15.0 => (0.6 + 0.9) / 2.0, // inside the box, before the third grid
                _ => (0.4 + 0.1 + 0.3) / 3.0,      // past the box, all three
            };
            let fg = fused.data[n + i];
            assert!(
                (fg - expected).abs() < 1e-6,
                "x {x} mm: {fg}, expected {expected}"
            );
            assert!(
                (fused.data[i] + fg - 1.0).abs() < 1e-6,
                "x {x} mm: classes sum to 1"
            );
        }
    }
}
