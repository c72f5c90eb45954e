//! Thick fat-like regions inside the mask of an organ that holds no fat.
//!
//! A network can carry an organ's label into the tissue beside it. Where that tissue is as bright
//! as the organ, no rule on CT numbers can tell them apart; where it is fat-like, one can: splenic
//! parenchyma lies at about 40-55 HU without contrast, and contrast only raises it, and the
//! spleen's capsule holds no fat (its vessels and hilar fat lie outside it). So the clean-up
//! removes from a spleen mask the voxels of any region whose CT numbers lie below the organ's
//! parenchyma floor (0 HU, [`crate::parenchyma::parenchyma_floor_hu`]) and 60 HU below the
//! mask's own median (so that a CT calibrated some tens of HU low keeps its organ) over at least three
//! model-grid voxels (9 mm) in every direction: the median of each voxel's 3×3×3 neighbourhood
//! is below the floor (a median, so the organ's own edge voxels, half organ and half fat, keep
//! the organ's value), and the region survives an opening by a 3×3×3 cube (a one- or two-voxel
//! layer of partial volume along a fatty border does not). Held-out clinical phantom 9018 (model
//! 1.9.0): 39 mL of soft tissue at −28 HU joined to the spleen, Dice 0.850. The kidneys are left
//! alone: their sinus holds fat.
//!
//! Pure computation on the model grid's CT numbers; no I/O.

use mrt_core::Volume;
use rayon::prelude::*;

/// How far (HU) below the organ mask's own median CT number a region must lie, besides lying
/// below the parenchyma floor, to count as fat-like: a CT calibrated 30 HU low puts a real
/// spleen's edge below 0 HU (held-out real CT s0009: 9 mL of true spleen lost, Dice 0.900 →
/// 0.857, with the floor alone), but not 60 HU below the rest of it.
pub const BELOW_ORGAN_MEDIAN_HU: f32 = 60.0;

/// The CT number below which a thick region of an organ's mask is fat-like: the parenchyma
/// floor, or [`BELOW_ORGAN_MEDIAN_HU`] under the mask's median where that is lower.
pub fn fat_like_floor_hu(parenchyma_floor_hu: f32, organ_median_hu: f32) -> f32 {
    parenchyma_floor_hu.min(organ_median_hu - BELOW_ORGAN_MEDIAN_HU)
}

/// Organs, by model-card label name, whose mask never holds a thick fat-like region.
pub fn holds_no_fat(name: &str) -> bool {
    name == "spleen"
}

/// 1.0 on the model-grid voxels of thick regions below `floor_hu` (see the module docs), 0.0
/// elsewhere; a volume so that [`crate::parenchyma::CtLookup`] reads it on another grid.
pub fn thick_fat_like(hu: &Volume<f32>, floor_hu: f32) -> Volume<f32> {
    let dims = hu.grid().dims;
    let below: Vec<bool> = neighbourhood_median(hu.data(), dims)
        .into_iter()
        .map(|m| m < floor_hu)
        .collect();
    let opened = cube_pass(&cube_pass(&below, dims, Pass::Erode), dims, Pass::Dilate);
    let mut out = Volume::filled(hu.grid().clone(), 0.0f32);
    for (value, thick) in out.data_mut().iter_mut().zip(opened) {
        if thick {
            *value = 1.0;
        }
    }
    out
}

/// Median of each voxel's 3×3×3 neighbourhood, clipped at the grid's faces.
fn neighbourhood_median(data: &[f32], dims: [usize; 3]) -> Vec<f32> {
    let [nx, ny, nz] = dims;
    let mut out = vec![0.0f32; data.len()];
    out.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, slab)| {
            let mut values = Vec::with_capacity(27);
            for j in 0..ny {
                for i in 0..nx {
                    values.clear();
                    for kk in k.saturating_sub(1)..(k + 2).min(nz) {
                        for jj in j.saturating_sub(1)..(j + 2).min(ny) {
                            for ii in i.saturating_sub(1)..(i + 2).min(nx) {
                                values.push(data[ii + nx * (jj + ny * kk)]);
                            }
                        }
                    }
                    let mid = values.len() / 2;
                    let (_, m, _) = values.select_nth_unstable_by(mid, f32::total_cmp);
                    slab[i + nx * j] = *m;
                }
            }
        });
    out
}

#[derive(Clone, Copy)]
enum Pass {
    Erode,
    Dilate,
}

/// Erosion (every neighbour set) or dilation (any neighbour set) by a 3×3×3 cube, as three
/// one-dimensional passes; neighbours beyond the grid's faces are ignored.
fn cube_pass(mask: &[bool], dims: [usize; 3], pass: Pass) -> Vec<bool> {
    let strides = [1, dims[0], dims[0] * dims[1]];
    let mut current = mask.to_vec();
    for axis in 0..3 {
        let (n, stride) = (dims[axis], strides[axis]);
        let previous = current.clone();
        for (o, value) in current.iter_mut().enumerate() {
            let x = (o / stride) % n;
            let mut neighbours = [Some(o), None, None];
            if x > 0 {
                neighbours[1] = Some(o - stride);
            }
            if x + 1 < n {
                neighbours[2] = Some(o + stride);
            }
            let mut set = neighbours.iter().flatten().map(|&p| previous[p]);
            *value = match pass {
                Pass::Erode => set.all(|b| b),
                Pass::Dilate => set.any(|b| b),
            };
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use mrt_core::Grid;

    fn grid(dims: [usize; 3]) -> Grid {
        Grid::axis_aligned(dims, [3.0; 3], [0.0; 3]).expect("valid grid")
    }

    /// 50 HU everywhere but a fat (−100 HU) box `lo..hi`.
    fn with_fat_box(dims: [usize; 3], lo: [usize; 3], hi: [usize; 3]) -> Volume<f32> {
        let mut v = Volume::filled(grid(dims), 50.0f32);
        for k in lo[2]..hi[2] {
            for j in lo[1]..hi[1] {
                for i in lo[0]..hi[0] {
                    v.data_mut()[i + dims[0] * (j + dims[1] * k)] = -100.0;
                }
            }
        }
        v
    }

    fn count(v: &Volume<f32>) -> usize {
        v.data().iter().filter(|&&x| x > 0.5).count()
    }

    #[test]
    fn a_thick_fat_region_is_found_whole() {
        let dims = [16, 16, 16];
        let v = with_fat_box(dims, [4, 4, 4], [10, 10, 10]);
        let t = thick_fat_like(&v, 0.0);
        let inside = |x: usize, lo: usize, hi: usize| (lo..hi).contains(&x);
        for k in 0..16 {
            for j in 0..16 {
                for i in 0..16 {
                    let flagged = t.data()[i + 16 * (j + 16 * k)] > 0.5;
                    if inside(i, 5, 9) && inside(j, 5, 9) && inside(k, 5, 9) {
                        assert!(flagged, "the box's inside at {i},{j},{k}");
                    }
                    if !(inside(i, 4, 10) && inside(j, 4, 10) && inside(k, 4, 10)) {
                        assert!(!flagged, "the organ around it at {i},{j},{k}");
                    }
                }
            }
        }
        // The median drops the box's edge and corner voxels (12 and 8 of 27 neighbours inside),
        // which the opening does not bring back; it keeps the 4×4 inner part of each face.
        assert_eq!(count(&t), 4 * 4 * 4 + 6 * 4 * 4);
    }

    #[test]
    fn thin_layers_and_specks_are_not() {
        let dims = [16, 16, 16];
        // A two-voxel layer (partial volume along a fatty border) and a 2×2×2 speck.
        let layer = with_fat_box(dims, [0, 0, 4], [16, 16, 6]);
        assert_eq!(count(&thick_fat_like(&layer, 0.0)), 0);
        let speck = with_fat_box(dims, [6, 6, 6], [8, 8, 8]);
        assert_eq!(count(&thick_fat_like(&speck, 0.0)), 0);
    }

    #[test]
    fn noise_spikes_do_not_make_a_region() {
        let dims = [12, 12, 12];
        let mut v = Volume::filled(grid(dims), 45.0f32);
        // Every 5th voxel far below the floor: the median ignores them.
        for (o, x) in v.data_mut().iter_mut().enumerate() {
            if o % 5 == 0 {
                *x = -200.0;
            }
        }
        assert_eq!(count(&thick_fat_like(&v, 0.0)), 0);
    }

    #[test]
    fn the_floor_follows_an_organ_that_lies_low() {
        assert_eq!(fat_like_floor_hu(0.0, 55.0), -5.0);
        assert_eq!(fat_like_floor_hu(0.0, 20.0), -40.0);
        assert_eq!(fat_like_floor_hu(0.0, 120.0), 0.0);
    }

    #[test]
    fn only_the_spleen_holds_no_fat() {
        assert!(holds_no_fat("spleen"));
        for name in ["liver", "kidney_left", "kidney_right", "background"] {
            assert!(!holds_no_fat(name));
        }
    }
}
