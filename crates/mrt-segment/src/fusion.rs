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
    count: Vec<u16>,
    added: bool,
}

impl ProbabilitySum {
    /// The sum of `own` alone (taken, not copied). Panics if `own.data` does not hold
    /// `own.channels` values per voxel of its grid.
    pub fn new(own: Probabilities) -> Self {
        assert_eq!(
            own.data.len(),
            own.channels * own.grid.len(),
            "probabilities must cover their grid once per class"
        );
        let count = vec![1; own.grid.len()];
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
        if theirs.channels != channels || channels == 0 {
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
                            count[s] = count[s].saturating_add(1);
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
                    .for_each(|(p, &n)| *p /= f32::from(n));
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

    /// The all-at-once fusion this module had before `ProbabilitySum` (commit 968e7bd): each
    /// other set's channels copied into volumes, every voxel summed over all sets in order, then
    /// divided by an f32 count. The running sum must give these values bit for bit.
    fn fuse_all_at_once(own: &Probabilities, others: &[Contribution<'_>]) -> Vec<f32> {
        use mrt_core::resample::sample_linear_each;
        use mrt_core::Volume;
        let grid = &own.grid;
        let (channels, n) = (own.channels, grid.len());
        let sources: Vec<(AffineMap, Vec<Volume<f32>>)> = others
            .iter()
            .filter(|o| o.probabilities.channels == channels)
            .map(|o| {
                let p = o.probabilities;
                let map = p
                    .grid
                    .world_to_index_map()
                    .compose(&o.own_to_other)
                    .compose(&grid.index_to_world_map());
                let m = p.grid.len();
                let vols = (0..channels)
                    .map(|c| {
                        Volume::new(p.grid.clone(), p.data[c * m..(c + 1) * m].to_vec())
                            .expect("channel")
                    })
                    .collect();
                (map, vols)
            })
            .collect();
        let [nx, ny, nz] = grid.dims;
        let mut fused = own.data.clone();
        let mut sample = vec![0f32; channels];
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    let o = i + nx * (j + ny * k);
                    let mut count = 1.0f32;
                    let mut acc: Vec<f32> = (0..channels).map(|c| own.data[c * n + o]).collect();
                    for (map, vols) in &sources {
                        let p = map.apply([i as f64, j as f64, k as f64]);
                        if sample_linear_each(vols, p, |c, x| sample[c] = x) {
                            count += 1.0;
                            for c in 0..channels {
                                acc[c] += sample[c];
                            }
                        }
                    }
                    for c in 0..channels {
                        fused[c * n + o] = acc[c] / count;
                    }
                }
            }
        }
        fused
    }

    /// Pseudo-random probabilities (`channels` classes summing to 1) on `g`.
    fn scattered(g: &Grid, channels: usize, seed: u64) -> Probabilities {
        let n = g.len();
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) as f32 + 0.01
        };
        let raw: Vec<f32> = (0..channels * n).map(|_| next()).collect();
        let mut data = raw.clone();
        for v in 0..n {
            let total: f32 = (0..channels).map(|c| raw[c * n + v]).sum();
            for c in 0..channels {
                data[c * n + v] = raw[c * n + v] / total;
            }
        }
        Probabilities {
            grid: g.clone(),
            channels,
            data,
        }
    }

    #[test]
    fn the_running_sum_equals_the_all_at_once_fusion_bit_for_bit() {
        use mrt_core::transform::RigidTransform;
        use mrt_core::Transform;
        let g = Grid::axis_aligned([9, 7, 5], [2.0, 2.5, 3.0], [0.0; 3]).expect("grid");
        let own = scattered(&g, 3, 1);
        // A rotated, translated time point on its own grid (partial coverage), a set on a finer
        // offset grid, and a set with the wrong number of classes (left out by both).
        let moved = scattered(&g, 3, 2);
        let finer = scattered(
            &Grid::axis_aligned([11, 9, 6], [1.7, 1.9, 2.2], [3.1, -1.4, 2.0]).expect("grid"),
            3,
            3,
        );
        let two_classes = scattered(&g, 2, 4);
        let rigid = Transform::Rigid(RigidTransform {
            rotation_deg: [3.0, -2.0, 7.0],
            translation_mm: [4.3, -1.1, 2.6],
        })
        .to_affine();
        let others = [
            Contribution {
                probabilities: &moved,
                own_to_other: rigid,
            },
            Contribution {
                probabilities: &two_classes,
                own_to_other: AffineMap::IDENTITY,
            },
            Contribution {
                probabilities: &finer,
                own_to_other: AffineMap::IDENTITY,
            },
        ];
        let want = fuse_all_at_once(&own, &others);
        let got = fuse(&own, &others).data;
        assert_eq!(got.len(), want.len());
        let differing = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differing, 0, "{differing} values differ");
        // The sets did overlap partially: some voxels averaged 1, 2 and 3 sets.
        let n = g.len();
        let unchanged = (0..n).filter(|&v| got[v] == own.data[v]).count();
        assert!(
            unchanged > 0 && unchanged < n,
            "unchanged voxels {unchanged} of {n}"
        );
    }
}
