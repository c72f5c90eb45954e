//! Where two organ masks touch, the voxels near the contact surface: the part of a mask most
//! likely to hold the neighbour's tissue.
//!
//! A CT segmentation's boundary errors concentrate where organs touch (a slab of spleen taken
//! for left kidney, of liver for right kidney). A slab a few millimetres thick is too thin for
//! the SPECT to show as a cluster of its own ([`crate::residual`]), yet a neighbour with several
//! times the organ's late concentration puts its own washout into the organ's curve. The quantify
//! stage therefore fits the band of each organ's mask within a few millimetres of another organ
//! as a GTM region of its own and takes the organ's concentration from the rest of the mask (a
//! core-VOI concentration, as in small-VOI kidney dosimetry), times the whole mask's volume.
//! [`mark_surface_band`] gives the same treatment to a mask's whole outer shell, whatever lies
//! outside it (the quantify stage's kidneys): a mask a voxel too wide all round then changes the
//! organ's activity and mass together. Pure computation on the CT label grid.

use mrt_core::distance::squared_distance_mm2;
use mrt_core::morphology::SubBox;
use mrt_core::Volume;

/// For every voxel of `labels`: whether it holds one of `organs` and lies within `band_mm` of a
/// voxel of another of `organs` (centre to centre, the grid's spacing). All false when
/// `band_mm` ≤ 0 or fewer than two organs are present. The distance transforms run on the
/// bounding box of the organs, widened by the band, not the whole grid.
pub fn contact_band(labels: &Volume<u8>, organs: &[u8], band_mm: f64) -> Vec<bool> {
    let data = labels.data();
    let mut band = vec![false; data.len()];
    if band_mm <= 0.0 {
        return band;
    }
    let grid = labels.grid();
    let dims = grid.dims;
    let spacing = [grid.spacing_mm[0], grid.spacing_mm[1], grid.spacing_mm[2]];
    let Some(sub_box) = SubBox::around(data, dims, spacing, band_mm, |l| organs.contains(&l))
    else {
        return band;
    };
    let sub = sub_box.dims;
    let full_index = |s: usize| sub_box.grid_offset(s);
    let sub_labels: Vec<u8> = (0..sub_box.len()).map(|s| data[full_index(s)]).collect();
    let present: Vec<u8> = organs
        .iter()
        .copied()
        .filter(|o| sub_labels.contains(o))
        .collect();
    if present.len() < 2 {
        return band;
    }
    let limit = band_mm * band_mm;
    // near[s]: bit b set when voxel s lies within the band of organ present[b].
    let mut near = vec![0u8; sub_labels.len()];
    for (b, &organ) in present.iter().enumerate().take(8) {
        let mask: Vec<bool> = sub_labels.iter().map(|&l| l == organ).collect();
        let d2 = squared_distance_mm2(&mask, sub, spacing);
        for (n, d) in near.iter_mut().zip(&d2) {
            if *d <= limit {
                *n |= 1 << b;
            }
        }
    }
    for (s, &l) in sub_labels.iter().enumerate() {
        let Some(b) = present.iter().position(|&o| o == l) else {
            continue;
        };
        if near[s] & !(1u8 << b) != 0 {
            band[full_index(s)] = true;
        }
    }
    band
}

/// Sets `band` (one flag per voxel of `labels`) for every voxel that holds `organ` and lies
/// within `band_mm` of a voxel that does not (centre to centre, the grid's spacing): the mask's
/// outer shell, where a segmentation a voxel too wide or too narrow all round is wrong. Leaves
/// `band` as it is when `band_mm` ≤ 0, the organ is absent or the lengths differ. Voxels beyond
/// the grid's edge do not count as outside. The distance transform runs on the organ's bounding
/// box, widened by the band.
pub fn mark_surface_band(labels: &Volume<u8>, organ: u8, band_mm: f64, band: &mut [bool]) {
    let data = labels.data();
    if band_mm <= 0.0 || band.len() != data.len() {
        return;
    }
    let grid = labels.grid();
    let spacing = [grid.spacing_mm[0], grid.spacing_mm[1], grid.spacing_mm[2]];
    let Some(sub_box) = SubBox::around(data, grid.dims, spacing, band_mm, |l| l == organ) else {
        return;
    };
    let outside: Vec<bool> = (0..sub_box.len())
        .map(|s| data[sub_box.grid_offset(s)] != organ)
        .collect();
    let d2 = squared_distance_mm2(&outside, sub_box.dims, spacing);
    let limit = band_mm * band_mm;
    for (s, (&out, &d)) in outside.iter().zip(&d2).enumerate() {
        if !out && d <= limit {
            band[sub_box.grid_offset(s)] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mrt_core::Grid;

    fn two_blocks(gap: usize) -> Volume<u8> {
        // Organ 2 in i = 4..10, organ 4 in i = 10+gap..16+gap, both j, k = 3..9; 2 mm voxels.
        let dims = [30, 12, 12];
        let grid = Grid::axis_aligned(dims, [2.0, 2.0, 2.0], [0.0; 3]).expect("grid");
        let mut data = vec![0u8; dims.iter().product()];
        for k in 3..9 {
            for j in 3..9 {
                for i in 4..10 {
                    data[i + 30 * (j + 12 * k)] = 2;
                }
                for i in 10 + gap..16 + gap {
                    data[i + 30 * (j + 12 * k)] = 4;
                }
            }
        }
        Volume::new(grid, data).expect("labels")
    }

    #[test]
    fn touching_organs_get_a_band_of_the_given_depth_on_each_side() {
        let v = two_blocks(0);
        // 4 mm: the two voxel layers on each side of the contact (centres 2 and 4 mm away).
        let band = contact_band(&v, &[2, 4], 4.0);
        for i in 0..30 {
            let o = i + 30 * (5 + 12 * 5);
            assert_eq!(band[o], (8..12).contains(&i), "i = {i}");
        }
        assert_eq!(band.iter().filter(|&&b| b).count(), 4 * 36);
    }

    #[test]
    fn organs_further_apart_than_the_band_get_none() {
        let v = two_blocks(3);
        // Nearest voxel centres 8 mm apart.
        assert!(!contact_band(&v, &[2, 4], 7.9).iter().any(|&b| b));
        let band = contact_band(&v, &[2, 4], 8.0);
        assert_eq!(band.iter().filter(|&&b| b).count(), 2 * 36);
    }

    #[test]
    fn off_or_single_organ_gives_no_band() {
        let v = two_blocks(0);
        assert!(!contact_band(&v, &[2, 4], 0.0).iter().any(|&b| b));
        assert!(!contact_band(&v, &[2], 6.0).iter().any(|&b| b));
        // Labels outside `organs` (4 here) are not neighbours.
        assert!(!contact_band(&v, &[2, 3], 6.0).iter().any(|&b| b));
    }

    fn surface_band(labels: &Volume<u8>, organ: u8, band_mm: f64) -> Vec<bool> {
        let mut band = vec![false; labels.data().len()];
        mark_surface_band(labels, organ, band_mm, &mut band);
        band
    }

    #[test]
    fn the_surface_band_is_the_masks_outer_shell_whatever_lies_outside() {
        // Organ 2 is a 6-voxel cube (2 mm voxels) touching organ 4 on one face.
        let v = two_blocks(0);
        let count = |band: &[bool]| band.iter().filter(|&&b| b).count();
        // 2 and 3 mm: the outer layer, 6³ − 4³ voxels, the face next to organ 4 included.
        assert_eq!(count(&surface_band(&v, 2, 2.0)), 216 - 64);
        assert_eq!(count(&surface_band(&v, 2, 3.0)), 216 - 64);
        // 4 mm: two layers, all but the inner 2³.
        assert_eq!(count(&surface_band(&v, 2, 4.0)), 216 - 8);
        let band = surface_band(&v, 2, 2.0);
        assert!(band.iter().zip(v.data()).all(|(&b, &l)| !b || l == 2));
        assert_eq!(count(&surface_band(&v, 2, 0.0)), 0);
        assert_eq!(count(&surface_band(&v, 3, 4.0)), 0);
    }
}
