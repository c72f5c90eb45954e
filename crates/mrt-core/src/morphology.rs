//! Binary morphology on voxel masks (6-connectivity): bounding boxes, connected components,
//! keeping the largest, and filling enclosed holes. Used to clean segmentations and to close organ masks around lesions.

/// Labels the 6-connected components of `mask` (dims `[nx, ny, nz]`, `i` fastest): 0 outside,
/// 1..=n inside. Returns the labels and each component's voxel count (index 0 unused).
pub fn connected_components(mask: &[bool], dims: [usize; 3]) -> (Vec<u32>, Vec<usize>) {
    let [nx, ny, nz] = dims;
    let mut labels = vec![0u32; mask.len()];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || labels[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32;
        let mut size = 0;
        labels[start] = id;
        stack.push(start);
        while let Some(o) = stack.pop() {
            size += 1;
            for n in neighbours(o, nx, ny, nz).into_iter().flatten() {
                if mask[n] && labels[n] == 0 {
                    labels[n] = id;
                    stack.push(n);
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// The six face neighbours of offset `o` that lie inside the grid.
fn neighbours(o: usize, nx: usize, ny: usize, nz: usize) -> [Option<usize>; 6] {
    let i = o % nx;
    let j = (o / nx) % ny;
    let k = o / (nx * ny);
    let plane = nx * ny;
    [
        (i > 0).then(|| o - 1),
        (i + 1 < nx).then(|| o + 1),
        (j > 0).then(|| o - nx),
        (j + 1 < ny).then(|| o + nx),
        (k > 0).then(|| o - plane),
        (k + 1 < nz).then(|| o + plane),
    ]
}

/// Index bounds of the voxels of `data` (dims `[nx, ny, nz]`, `i` fastest) for which `inside`
/// holds: inclusive low corner, exclusive high corner. `None` when there are none.
pub fn bounding_box(
    data: &[u8],
    dims: [usize; 3],
    inside: impl Fn(u8) -> bool,
) -> Option<([usize; 3], [usize; 3])> {
    let [nx, ny, _] = dims;
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    for (o, &l) in data.iter().enumerate() {
        if inside(l) {
            let idx = [o % nx, (o / nx) % ny, o / (nx * ny)];
            for a in 0..3 {
                lo[a] = lo[a].min(idx[a]);
                hi[a] = hi[a].max(idx[a] + 1);
            }
        }
    }
    (lo[0] != usize::MAX).then_some((lo, hi))
}

/// The bounding box of some voxels widened by a margin and clipped to the grid: the sub-grid on
/// which a distance transform sees every voxel within the margin of those voxels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubBox {
    /// Low corner in the grid (inclusive).
    pub lo: [usize; 3],
    /// Size of the box per axis.
    pub dims: [usize; 3],
    grid_dims: [usize; 3],
}

impl SubBox {
    /// The bounding box of the voxels of `data` (dims `[nx, ny, nz]`, `i` fastest) for which
    /// `inside` holds, widened on every side by `margin_mm` (`spacing_mm` per axis) plus one
    /// voxel. `None` when there are none.
    pub fn around(
        data: &[u8],
        dims: [usize; 3],
        spacing_mm: [f64; 3],
        margin_mm: f64,
        inside: impl Fn(u8) -> bool,
    ) -> Option<Self> {
        let (lo, hi) = bounding_box(data, dims, inside)?;
        let margin = spacing_mm.map(|s| (margin_mm.max(0.0) / s.max(1e-6)).ceil() as usize + 1);
        let lo: [usize; 3] = [0, 1, 2].map(|a| lo[a].saturating_sub(margin[a]));
        let hi: [usize; 3] = [0, 1, 2].map(|a| (hi[a] + margin[a]).min(dims[a]));
        Some(Self {
            lo,
            dims: [0, 1, 2].map(|a| hi[a] - lo[a]),
            grid_dims: dims,
        })
    }

    /// Voxels in the box.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the box holds no voxel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The grid offset of the box's voxel `s` (`i` fastest within the box).
    pub fn grid_offset(&self, s: usize) -> usize {
        let [bx, by, _] = self.dims;
        let i = s % bx + self.lo[0];
        let j = (s / bx) % by + self.lo[1];
        let k = s / (bx * by) + self.lo[2];
        i + self.grid_dims[0] * (j + self.grid_dims[1] * k)
    }
}

/// Keeps only the largest 6-connected component of `mask`; returns how many voxels were dropped.
pub fn keep_largest_component(mask: &mut [bool], dims: [usize; 3]) -> usize {
    let (labels, sizes) = connected_components(mask, dims);
    let Some((largest, _)) = sizes.iter().enumerate().skip(1).max_by_key(|(_, &s)| s) else {
        return 0;
    };
    let mut dropped = 0;
    for (m, &l) in mask.iter_mut().zip(&labels) {
        if *m && l as usize != largest {
            *m = false;
            dropped += 1;
        }
    }
    dropped
}

/// Fills every background region of `mask` that does not touch the grid border (enclosed holes);
/// returns how many voxels were filled.
pub fn fill_holes(mask: &mut [bool], dims: [usize; 3]) -> usize {
    let [nx, ny, nz] = dims;
    let background: Vec<bool> = mask.iter().map(|&m| !m).collect();
    let (labels, sizes) = connected_components(&background, dims);
    let mut touches_border = vec![false; sizes.len()];
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                if i == 0 || j == 0 || k == 0 || i + 1 == nx || j + 1 == ny || k + 1 == nz {
                    touches_border[labels[i + nx * (j + ny * k)] as usize] = true;
                }
            }
        }
    }
    let mut filled = 0;
    for (m, &l) in mask.iter_mut().zip(&labels) {
        if !*m && !touches_border[l as usize] {
            *m = true;
            filled += 1;
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounding_box_spans_the_chosen_labels_only() {
        let dims = [6, 5, 4];
        let mut data = vec![0u8; 120];
        data[1 + 6 * (2 + 5 * 3)] = 2; // (1, 2, 3)
        data[4 + 6 * (1 + 5)] = 4; // (4, 1, 1)
        data[5 + 6 * (4 + 5 * 2)] = 7; // (5, 4, 2), not chosen
        let chosen = bounding_box(&data, dims, |l| l == 2 || l == 4);
        assert_eq!(chosen, Some(([1, 1, 1], [5, 3, 4])));
        assert_eq!(bounding_box(&data, dims, |l| l == 9), None);
    }

    fn cube(dims: [usize; 3], lo: usize, hi: usize) -> Vec<bool> {
        let [nx, ny, nz] = dims;
        let mut m = vec![false; nx * ny * nz];
        for k in lo..hi {
            for j in lo..hi {
                for i in lo..hi {
                    m[i + nx * (j + ny * k)] = true;
                }
            }
        }
        m
    }

    #[test]
    fn two_blobs_are_two_components_and_the_small_one_goes() {
        let dims = [12, 12, 12];
        let mut m = cube(dims, 1, 6);
        m[10 + 12 * (10 + 12 * 10)] = true;
        let (_, sizes) = connected_components(&m, dims);
        assert_eq!(sizes[1..], [125, 1]);
        assert_eq!(keep_largest_component(&mut m, dims), 1);
        assert_eq!(m.iter().filter(|&&x| x).count(), 125);
    }

    #[test]
    fn an_enclosed_cavity_is_filled_and_an_open_one_is_not() {
        let dims = [10, 10, 10];
        let mut m = cube(dims, 2, 8);
        let hole = cube(dims, 4, 6);
        for (x, h) in m.iter_mut().zip(&hole) {
            if *h {
                *x = false;
            }
        }
        assert_eq!(fill_holes(&mut m, dims), 8);
        assert_eq!(m.iter().filter(|&&x| x).count(), 216);
        // A tunnel to the border is not a hole.
        let mut open = cube(dims, 0, 10);
        for k in 0..10 {
            open[5 + 10 * (5 + 10 * k)] = false;
        }
        assert_eq!(fill_holes(&mut open, dims), 0);
    }
}
