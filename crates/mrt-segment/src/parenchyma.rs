//! Which connected piece of an organ's mask the clean-up keeps.
//!
//! The clean-up keeps one 6-connected piece per organ. The largest is the right one almost
//! always, but a network can call a large fat-like region "spleen" (clinical phantom 9018: a
//! 151 mL piece at a median of −29 HU, larger than the 118 mL piece of true spleen at 55 HU), and
//! keeping it loses the organ entirely. Kidney and spleen parenchyma is never fat-like: non-contrast it
//! lies at about 30-55 HU and contrast only raises it. So for those organs the kept piece is the
//! largest whose median CT number reaches a floor of 0 HU (among pieces of at least a tenth of
//! the largest's size); where none does, the largest is kept as before and a note asks a human
//! to look. The liver has no floor (a fatty liver can
//! lie below 0 HU).
//!
//! Pure computation; the CT numbers come from the model grid the network saw.

use mrt_core::grid::AffineMap;
use mrt_core::morphology::connected_components;
use mrt_core::{Grid, Volume};

/// Lowest median CT number (HU) a piece of this organ's parenchyma can have, by the model
/// card's label name; `None`: no floor.
pub fn parenchyma_floor_hu(name: &str) -> Option<f32> {
    match name {
        "spleen" | "kidney_left" | "kidney_right" => Some(0.0),
        _ => None,
    }
}

/// CT numbers (HU) of the model grid, looked up at voxels of another grid (the CT's own).
pub struct CtLookup<'a> {
    hu: &'a Volume<f32>,
    target_to_model: AffineMap,
}

impl<'a> CtLookup<'a> {
    /// `hu` on the model grid; voxel indices will be those of `target`.
    pub fn new(hu: &'a Volume<f32>, target: &Grid) -> Self {
        let target_to_model = hu
            .grid()
            .world_to_index_map()
            .compose(&target.index_to_world_map());
        Self {
            hu,
            target_to_model,
        }
    }

    /// The model-grid voxel nearest to target voxel `[i, j, k]`; `None` outside the model grid.
    pub fn model_index(&self, index: [usize; 3]) -> Option<[usize; 3]> {
        let p = self
            .target_to_model
            .apply(index.map(|x| x as f64))
            .map(f64::round);
        let dims = self.hu.grid().dims;
        if (0..3).any(|a| p[a] < 0.0 || p[a] >= dims[a] as f64) {
            return None;
        }
        Some(p.map(|x| x as usize))
    }

    /// The CT number nearest to target voxel `[i, j, k]`; `None` outside the model grid.
    pub fn at(&self, index: [usize; 3]) -> Option<f32> {
        self.model_index(index).map(|i| self.at_model(i))
    }

    /// The CT number of model-grid voxel `[i, j, k]` (an index [`Self::model_index`] gave).
    pub fn at_model(&self, [i, j, k]: [usize; 3]) -> f32 {
        let dims = self.hu.grid().dims;
        self.hu.data()[i + dims[0] * (j + dims[1] * k)]
    }

    /// The CT numbers on the model grid.
    pub fn model_grid_hu(&self) -> &'a Volume<f32> {
        self.hu
    }
}

/// What [`keep_parenchyma_piece`] kept.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptPiece {
    /// Voxels dropped with the other pieces.
    pub removed: usize,
    /// Set where the kept piece is not the largest, or where no piece reached the floor.
    pub note: Option<String>,
}

/// Keeps one 6-connected piece of `mask` (a box of `dims`, `i` fastest): the largest whose
/// median CT number (`hu_at` of a box offset, `None` = unknown) reaches `floor_hu` among those
/// of at least a tenth of the largest's size, or the largest where there is no floor or no such
/// piece reaches it. `name` and `voxel_ml` word the note.
pub fn keep_parenchyma_piece(
    mask: &mut [bool],
    dims: [usize; 3],
    floor_hu: Option<f32>,
    hu_at: impl Fn(usize) -> Option<f32>,
    name: &str,
    voxel_ml: f64,
) -> KeptPiece {
    let (pieces, sizes) = connected_components(mask, dims);
    // Largest first; of equal sizes the last found, as `keep_largest_component` chooses.
    let mut by_size: Vec<usize> = (1..sizes.len()).collect();
    by_size.sort_by_key(|&id| std::cmp::Reverse((sizes[id], id)));
    let Some(&largest) = by_size.first() else {
        return KeptPiece {
            removed: 0,
            note: None,
        };
    };
    let (kept, note) = match floor_hu {
        None => (largest, None),
        Some(floor) => {
            // Every piece's CT numbers in one pass over the box.
            let mut values: Vec<Vec<f32>> = vec![Vec::new(); sizes.len()];
            for (o, &p) in pieces.iter().enumerate() {
                if p > 0 {
                    if let Some(h) = hu_at(o) {
                        values[p as usize].push(h);
                    }
                }
            }
            let medians: Vec<Option<f32>> = values.iter_mut().map(|v| median(v)).collect();
            choose_piece(&by_size, &sizes, &medians, floor, name, voxel_ml)
        }
    };
    let mut removed = 0;
    for (m, &p) in mask.iter_mut().zip(&pieces) {
        if *m && p as usize != kept {
            *m = false;
            removed += 1;
        }
    }
    KeptPiece { removed, note }
}

/// A piece that replaces a fat-like largest one holds at least this share of its voxels: a speck
/// of parenchyma is no substitute for an organ.
const MIN_SHARE_OF_LARGEST: f64 = 0.1;

/// The piece to keep among `by_size` (piece ids, largest first) given each piece's median CT
/// number, and the note that says why where it is not simply the largest.
fn choose_piece(
    by_size: &[usize],
    sizes: &[usize],
    medians: &[Option<f32>],
    floor: f32,
    name: &str,
    voxel_ml: f64,
) -> (usize, Option<String>) {
    let largest = by_size[0];
    let ml = |id: usize| sizes[id] as f64 * voxel_ml;
    let lh = match medians[largest] {
        Some(h) if h < floor => h,
        _ => return (largest, None),
    };
    if by_size.len() == 1 {
        return (
            largest,
            Some(format!(
                "{name}: its only piece has a median CT number of {lh:.0} HU, below the \
                 {floor:.0} HU of parenchyma; check the mask"
            )),
        );
    }
    let above = by_size[1..].iter().copied().find(|&id| {
        sizes[id] as f64 >= MIN_SHARE_OF_LARGEST * sizes[largest] as f64
            && medians[id].is_some_and(|h| h >= floor)
    });
    match above {
        Some(id) => (
            id,
            Some(format!(
                "{name}: its largest piece ({:.0} mL, median {lh:.0} HU) is below the {floor:.0} \
                 HU of parenchyma and was dropped; kept the largest piece above it ({:.0} mL)",
                ml(largest),
                ml(id)
            )),
        ),
        None => (
            largest,
            Some(format!(
                "{name}: no piece of at least a tenth of its largest ({:.0} mL, median {lh:.0} \
                 HU) reaches the {floor:.0} HU of parenchyma; kept the largest, check the mask",
                ml(largest)
            )),
        ),
    }
}

/// The median of `values` (mean of the middle two for an even count); `None` when empty.
pub(crate) fn median(values: &mut [f32]) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two blocks along x in a 20 × 6 × 6 box: a large one (x 0..10) and a small one (x 12..18).
    fn two_blocks() -> (Vec<bool>, [usize; 3]) {
        let dims = [20, 6, 6];
        let mask = (0..20 * 36)
            .map(|o| {
                let i = o % 20;
                i < 10 || (12..18).contains(&i)
            })
            .collect();
        (mask, dims)
    }

    fn kept_x_range(mask: &[bool]) -> (usize, usize) {
        let xs: Vec<usize> = (0..mask.len())
            .filter(|&o| mask[o])
            .map(|o| o % 20)
            .collect();
        (
            *xs.iter().min().expect("a piece is kept"),
            *xs.iter().max().expect("a piece is kept"),
        )
    }

    #[test]
    fn a_fat_like_largest_piece_gives_way_to_the_parenchyma() {
        let (mut mask, dims) = two_blocks();
        // The large block at −30 HU (fat-like), the small one at 50 HU (spleen).
        let hu = |o: usize| Some(if o % 20 < 10 { -30.0 } else { 50.0 });
        let kept = keep_parenchyma_piece(&mut mask, dims, Some(0.0), hu, "spleen", 0.027);
        assert_eq!(kept_x_range(&mask), (12, 17));
        assert_eq!(kept.removed, 10 * 36);
        let note = kept.note.expect("a note says why");
        assert!(note.contains("spleen") && note.contains("-30 HU"), "{note}");
    }

    #[test]
    fn without_a_floor_or_with_parenchyma_the_largest_piece_stays() {
        for (floor, large_hu) in [(None, -30.0), (Some(0.0), 40.0)] {
            let (mut mask, dims) = two_blocks();
            let hu = move |o: usize| Some(if o % 20 < 10 { large_hu } else { 50.0 });
            let kept = keep_parenchyma_piece(&mut mask, dims, floor, hu, "liver", 0.027);
            assert_eq!(kept_x_range(&mask), (0, 9));
            assert_eq!((kept.removed, kept.note), (6 * 36, None));
        }
    }

    #[test]
    fn when_no_piece_reaches_the_floor_the_largest_stays_with_a_note() {
        let (mut mask, dims) = two_blocks();
        let kept = keep_parenchyma_piece(
            &mut mask,
            dims,
            Some(0.0),
            |_| Some(-40.0),
            "kidney_left",
            0.027,
        );
        assert_eq!(kept_x_range(&mask), (0, 9));
        assert!(kept
            .note
            .expect("note")
            .contains("reaches the 0 HU of parenchyma"));
    }

    #[test]
    fn a_speck_of_parenchyma_does_not_replace_the_largest_piece() {
        // The large block (360 voxels) at −30 HU and a single voxel at 50 HU: 1 < 36.
        let dims = [20, 6, 6];
        let mut mask: Vec<bool> = (0..20 * 36).map(|o| o % 20 < 10).collect();
        mask[15 + 20 * (3 + 6 * 3)] = true;
        let hu = |o: usize| Some(if o % 20 < 10 { -30.0 } else { 50.0 });
        let kept = keep_parenchyma_piece(&mut mask, dims, Some(0.0), hu, "spleen", 0.027);
        assert_eq!(kept_x_range(&mask), (0, 9));
        assert_eq!(kept.removed, 1);
        assert!(kept
            .note
            .expect("note")
            .contains("no piece of at least a tenth"));
    }

    #[test]
    fn the_lookup_maps_ct_voxels_onto_the_coarser_model_grid() {
        // Model grid 3 mm, CT grid 1 mm, same origin: CT voxel 7 lies nearest model voxel 2.
        let model = Grid::axis_aligned([4, 4, 4], [3.0; 3], [0.0; 3]).expect("grid");
        let ct = Grid::axis_aligned([12, 12, 12], [1.0; 3], [0.0; 3]).expect("grid");
        let hu =
            Volume::new(model, (0..64).map(|o| (o % 4) as f32 * 10.0).collect()).expect("volume");
        let lookup = CtLookup::new(&hu, &ct);
        assert_eq!(lookup.at([7, 0, 0]), Some(20.0));
        assert_eq!(
            lookup.at([11, 5, 5]),
            None,
            "x 11 mm rounds to model voxel 4, outside"
        );
        // A CT grid that starts 3 mm further along x: its voxel 0 lies on model voxel 1.
        let shifted = Grid::axis_aligned([12, 12, 12], [1.0; 3], [3.0, 0.0, 0.0]).expect("grid");
        let lookup = CtLookup::new(&hu, &shifted);
        assert_eq!(lookup.at([0, 0, 0]), Some(10.0));
        assert_eq!(lookup.at([4, 0, 0]), Some(20.0), "x 7 mm: model voxel 2");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
