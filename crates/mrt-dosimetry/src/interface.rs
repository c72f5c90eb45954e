//! Where two organ masks touch: where the SPECT puts the boundary between them.
//!
//! A CT segmentation that confuses two touching organs of similar CT number (left kidney and
//! spleen without contrast) moves their shared boundary, by centimetres at times; the organ that
//! gains the slab then carries the neighbour's tissue in its mass and the neighbour's uptake in
//! its activity. Where the two uptakes differ, the SPECT tells where the boundary lies, even at
//! its own resolution: moving the boundary changes the predicted image Σ_j c_j (M_j⊗h) over a
//! PSF-wide band along the whole contact surface, coherently.
//!
//! So the boundary is moved along its own normal by a signed offset d (d > 0: the voxels of
//! organ `a` within d of organ `b` become `b`; d < 0: the voxels of `b` within |d| of `a` become
//! `a`). For each offset the SPECT around the two organs is fitted by least squares with every
//! region's concentration free, and the sum of squared residuals is returned. Which offset to
//! take, and over how many time points, is the caller's decision. Pure computation.

use crate::quantify::supersample_offsets;
use mrt_core::distance::squared_distance_mm2;
use mrt_core::morphology::SubBox;
use mrt_core::{dense, Grid, RigidTransform, Volume};

use mrt_core::filter::{gaussian_blur, Edge};

/// Two touching regions of a label volume, with every voxel's distance to each, on the bounding
/// box of the pair widened by the largest offset.
#[derive(Debug, Clone)]
pub struct Contact {
    a: u8,
    b: u8,
    lo: [usize; 3],
    sub: [usize; 3],
    /// Per sub-box voxel: distance (mm) to the nearest voxel of `a`.
    to_a_mm: Vec<f32>,
    /// Per sub-box voxel: distance (mm) to the nearest voxel of `b`.
    to_b_mm: Vec<f32>,
}

impl Contact {
    /// The contact of `a` and `b` in `labels`, for offsets up to `max_offset_mm`; `None` when
    /// either is absent or no voxel of one lies within `touch_mm` of the other.
    pub fn new(
        labels: &Volume<u8>,
        a: u8,
        b: u8,
        max_offset_mm: f64,
        touch_mm: f64,
    ) -> Option<Self> {
        let grid = labels.grid();
        let dims = grid.dims;
        let spacing = [grid.spacing_mm[0], grid.spacing_mm[1], grid.spacing_mm[2]];
        let sub_box = SubBox::around(labels.data(), dims, spacing, max_offset_mm, |l| {
            l == a || l == b
        })?;
        let (lo, sub) = (sub_box.lo, sub_box.dims);
        let [nx, ny, _] = dims;
        let mut in_a = vec![false; sub[0] * sub[1] * sub[2]];
        let mut in_b = in_a.clone();
        for k in 0..sub[2] {
            for j in 0..sub[1] {
                for i in 0..sub[0] {
                    let l = labels.data()[(lo[0] + i) + nx * ((lo[1] + j) + ny * (lo[2] + k))];
                    let s = i + sub[0] * (j + sub[1] * k);
                    in_a[s] = l == a;
                    in_b[s] = l == b;
                }
            }
        }
        if !in_a.contains(&true) || !in_b.contains(&true) {
            return None;
        }
        let dist = |m: &[bool]| -> Vec<f32> {
            squared_distance_mm2(m, sub, spacing)
                .into_iter()
                .map(|d2| d2.sqrt() as f32)
                .collect()
        };
        let (to_a_mm, to_b_mm) = (dist(&in_a), dist(&in_b));
        let touching = in_a
            .iter()
            .zip(&to_b_mm)
            .any(|(&m, &d)| m && f64::from(d) <= touch_mm);
        touching.then_some(Self {
            a,
            b,
            lo,
            sub,
            to_a_mm,
            to_b_mm,
        })
    }

    /// Distance (mm) of CT voxel `ct` to the nearest voxel of `b` (`to_b`) or of `a`; infinite
    /// outside the contact's box.
    fn distance_mm(&self, ct: [usize; 3], to_b: bool) -> f32 {
        let mut s = 0;
        let mut stride = 1;
        for ((&c, &lo), &n) in ct.iter().zip(&self.lo).zip(&self.sub) {
            if c < lo || c >= lo + n {
                return f32::INFINITY;
            }
            s += (c - lo) * stride;
            stride *= n;
        }
        if to_b {
            self.to_b_mm[s]
        } else {
            self.to_a_mm[s]
        }
    }

    /// The two labels, `a` first.
    pub fn labels(&self) -> (u8, u8) {
        (self.a, self.b)
    }

    /// `labels` with the boundary moved by `offset_mm` (see the module docs), and how many
    /// voxels changed. `labels` must be the volume the contact was made from (or one that holds
    /// `a` and `b` where it did).
    pub fn shifted(&self, labels: &Volume<u8>, offset_mm: f64) -> (Volume<u8>, usize) {
        let mut out = labels.clone();
        let [nx, ny, _] = labels.grid().dims;
        let mut changed = 0;
        let data = out.data_mut();
        for k in 0..self.sub[2] {
            for j in 0..self.sub[1] {
                for i in 0..self.sub[0] {
                    let s = i + self.sub[0] * (j + self.sub[1] * k);
                    let o = (self.lo[0] + i) + nx * ((self.lo[1] + j) + ny * (self.lo[2] + k));
                    let (in_a, to) = match data[o] {
                        l if l == self.a => (true, self.b),
                        l if l == self.b => (false, self.a),
                        _ => continue,
                    };
                    let to_other = if in_a {
                        self.to_b_mm[s]
                    } else {
                        self.to_a_mm[s]
                    };
                    if crosses(in_a, to_other, offset_mm) {
                        data[o] = to;
                        changed += 1;
                    }
                }
            }
        }
        (out, changed)
    }
}

/// Whether a voxel of `a` (`in_a`) or of `b`, `to_other_mm` from the other organ, changes sides
/// when the boundary moves by `offset_mm` (> 0: into `b`, `a`'s voxels within it become `b`'s;
/// < 0: the reverse).
fn crosses(in_a: bool, to_other_mm: f32, offset_mm: f64) -> bool {
    let toward_other = if in_a {
        offset_mm > 0.0
    } else {
        offset_mm < 0.0
    };
    toward_other && to_other_mm <= offset_mm.abs() as f32
}

/// The part of `spect`'s grid around the SPECT voxels that `labels` (CT grid) puts in the
/// contact's two organs, as (outer grid, inner index range within it): the inner box is the
/// pair's bounding box grown by one PSF FWHM, the outer one by three PSF standard deviations
/// more, so that masks blurred on the outer box are exact on the inner one (to the Gaussian's
/// tail).
fn around_pair(
    labels: &Volume<u8>,
    contact: &Contact,
    spect: &Grid,
    spect_to_ct: &RigidTransform,
    psf_fwhm_mm: f64,
) -> Option<(Grid, [usize; 3], [usize; 3])> {
    let grid = labels.grid();
    let ct_to_spect = spect
        .world_to_index_map()
        .compose(&spect_to_ct.inverse_affine())
        .compose(&grid.index_to_world_map());
    let [nx, ny, _] = grid.dims;
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    // The pair lies inside the contact's box.
    for k in contact.lo[2]..contact.lo[2] + contact.sub[2] {
        for j in contact.lo[1]..contact.lo[1] + contact.sub[1] {
            for i in contact.lo[0]..contact.lo[0] + contact.sub[0] {
                let l = labels.data()[i + nx * (j + ny * k)];
                if l != contact.a && l != contact.b {
                    continue;
                }
                let p = ct_to_spect.apply([i as f64, j as f64, k as f64]);
                for x in 0..3 {
                    lo[x] = lo[x].min(p[x]);
                    hi[x] = hi[x].max(p[x]);
                }
            }
        }
    }
    if !lo[0].is_finite() {
        return None;
    }
    let sigma_mm = psf_fwhm_mm / (8.0 * std::f64::consts::LN_2).sqrt();
    let mut outer_lo = [0usize; 3];
    let mut outer_hi = [0usize; 3];
    let mut inner_lo = [0usize; 3];
    let mut inner_hi = [0usize; 3];
    for x in 0..3 {
        let s = spect.spacing_mm[x].max(1e-6);
        let inner = (psf_fwhm_mm / s).ceil();
        let outer = inner + (3.0 * sigma_mm / s).ceil() + 1.0;
        let n = spect.dims[x] as f64;
        let clamp = |v: f64| v.clamp(0.0, n) as usize;
        outer_lo[x] = clamp((lo[x] - outer).floor());
        outer_hi[x] = clamp((hi[x] + outer).ceil() + 1.0);
        inner_lo[x] = clamp((lo[x] - inner).floor()).max(outer_lo[x]) - outer_lo[x];
        inner_hi[x] = clamp((hi[x] + inner).ceil() + 1.0).min(outer_hi[x]) - outer_lo[x];
        if inner_hi[x] <= inner_lo[x] {
            return None;
        }
    }
    let dims = [0, 1, 2].map(|x| outer_hi[x] - outer_lo[x]);
    let origin = spect.index_to_world(outer_lo.map(|v| v as f64));
    let outer = Grid::new(dims, spect.spacing_mm, origin, spect.direction).ok()?;
    Some((outer, inner_lo, inner_hi))
}

/// Points per SPECT voxel edge at which the CT labels are sampled (as the GTM's masks are).
const SUPERSAMPLE: usize = 3;

/// For each of `offsets_mm`: the sum of squared residuals (Bq/mL)² of the least-squares fit of
/// `spect` around the contact, over the regions `regions` of `body` (CT grid: organs, lesions,
/// body tissue classes, as the GTM's regions; the contact's two labels among them) with the
/// contact's boundary moved by that offset. `spect_to_ct` maps SPECT world to CT world. `None`
/// when the pair lies outside the SPECT. Regions with almost no presence near the pair are left
/// out of the fit.
///
/// The CT is sampled once: the fractions of the other regions are fixed, and each sample of
/// the pair keeps its distance to the other organ, which says for every offset on which side it
/// falls; per offset only the pair's two masks are blurred again.
pub fn boundary_residuals(
    spect: &Volume<f32>,
    body: &Volume<u8>,
    contact: &Contact,
    regions: &[u8],
    spect_to_ct: &RigidTransform,
    psf_fwhm_mm: f64,
    offsets_mm: &[f64],
) -> Option<Vec<f64>> {
    let (outer, ilo, ihi) = around_pair(body, contact, spect.grid(), spect_to_ct, psf_fwhm_mm)?;
    let origin_index = spect
        .grid()
        .world_to_index(outer.origin_mm)
        .map(|v| v.round() as usize);
    let [snx, sny, _] = spect.grid().dims;
    let [onx, ony, onz] = outer.dims;
    let inner: Vec<usize> = (ilo[2]..ihi[2])
        .flat_map(|k| {
            (ilo[1]..ihi[1])
                .flat_map(move |j| (ilo[0]..ihi[0]).map(move |i| i + onx * (j + ony * k)))
        })
        .collect();
    let observed: Vec<f64> = inner
        .iter()
        .map(|&o| {
            let (i, j, k) = (o % onx, (o / onx) % ony, o / (onx * ony));
            let s =
                (origin_index[0] + i) + snx * ((origin_index[1] + j) + sny * (origin_index[2] + k));
            f64::from(spect.data()[s])
        })
        .collect();
    // Sample the CT labels once.
    let map = body
        .grid()
        .world_to_index_map()
        .compose(&spect_to_ct.to_affine())
        .compose(&outer.index_to_world_map());
    let ct_dims = body.grid().dims;
    let [cnx, cny, _] = ct_dims;
    let mut lookup = [usize::MAX; 256];
    for (r, &l) in regions.iter().enumerate() {
        if l != contact.a && l != contact.b {
            lookup[l as usize] = r;
        }
    }
    let (steps, weight) = supersample_offsets(SUPERSAMPLE);
    let mut fixed = vec![vec![0.0f32; outer.len()]; regions.len()];
    // (outer voxel, sample in `a`, distance to the other organ in mm).
    let mut pair: Vec<(u32, bool, f32)> = Vec::new();
    for k in 0..onz {
        for j in 0..ony {
            for i in 0..onx {
                let v = i + onx * (j + ony * k);
                for &dz in &steps {
                    for &dy in &steps {
                        for &dx in &steps {
                            let c = map.apply([i as f64 + dx, j as f64 + dy, k as f64 + dz]);
                            let idx = c.map(f64::round);
                            if !(0..3).all(|x| idx[x] >= 0.0 && idx[x] < ct_dims[x] as f64) {
                                continue;
                            }
                            let ct = [idx[0] as usize, idx[1] as usize, idx[2] as usize];
                            let l = body.data()[ct[0] + cnx * (ct[1] + cny * ct[2])];
                            if l == contact.a || l == contact.b {
                                let in_a = l == contact.a;
                                pair.push((v as u32, in_a, contact.distance_mm(ct, in_a)));
                            } else if lookup[l as usize] != usize::MAX {
                                fixed[lookup[l as usize]][v] += weight;
                            }
                        }
                    }
                }
            }
        }
    }
    let column = |data: &[f32]| -> Vec<f64> { inner.iter().map(|&o| f64::from(data[o])).collect() };
    let blurred_column = |fractions: Vec<f32>| -> Option<Vec<f64>> {
        let v = Volume::new(outer.clone(), fractions).ok()?;
        Some(column(gaussian_blur(&v, psf_fwhm_mm, Edge::Zero).data()))
    };
    let mut others = Vec::new();
    for f in fixed {
        if f.iter().sum::<f32>() > 0.0 {
            let c = blurred_column(f)?;
            if c.iter().sum::<f64>() >= 1.0 {
                others.push(c);
            }
        }
    }
    offsets_mm
        .iter()
        .map(|&d| {
            let (mut fa, mut fb) = (vec![0.0f32; outer.len()], vec![0.0f32; outer.len()]);
            for &(v, in_a, to_other) in &pair {
                if in_a != crosses(in_a, to_other, d) {
                    fa[v as usize] += weight;
                } else {
                    fb[v as usize] += weight;
                }
            }
            let mut columns = others.clone();
            for f in [fa, fb] {
                let c = blurred_column(f)?;
                if c.iter().sum::<f64>() >= 1.0 {
                    columns.push(c);
                }
            }
            least_squares_residual(&columns, &observed)
        })
        .collect()
}

/// Σ (y − X·c)² at the least-squares c (normal equations), X given by its columns; `None` when
/// singular.
fn least_squares_residual(columns: &[Vec<f64>], y: &[f64]) -> Option<f64> {
    let n = columns.len();
    let gram: Vec<Vec<f64>> = (0..n)
        .map(|r| (0..n).map(|c| dot(&columns[r], &columns[c])).collect())
        .collect();
    let rhs: Vec<f64> = columns.iter().map(|c| dot(c, y)).collect();
    let coef = dense::solve(&gram, &rhs)?;
    Some(
        y.iter()
            .enumerate()
            .map(|(v, &obs)| {
                let fit: f64 = columns.iter().zip(&coef).map(|(c, k)| c[v] * k).sum();
                (obs - fit).powi(2)
            })
            .sum(),
    )
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantify::{blur_masks, fractional_masks, SOFT_TISSUE};

    const KIDNEY: u8 = 2;
    const SPLEEN: u8 = 4;

    /// Kidney (i < `split`) beside spleen (i ≥ `split`) in soft tissue, 2 mm CT voxels.
    fn labels(split: usize) -> Volume<u8> {
        let dims = [48, 32, 32];
        let grid = Grid::axis_aligned(dims, [2.0; 3], [0.0; 3]).expect("grid");
        let mut data = vec![SOFT_TISSUE; 48 * 32 * 32];
        for k in 8..24 {
            for j in 8..24 {
                for i in 8..40 {
                    data[i + 48 * (j + 32 * k)] = if i < split { KIDNEY } else { SPLEEN };
                }
            }
        }
        Volume::new(grid, data).expect("labels")
    }

    #[test]
    fn a_shift_moves_the_slab_next_to_the_other_organ() {
        let l = labels(24);
        let c = Contact::new(&l, KIDNEY, SPLEEN, 10.0, 3.0).expect("they touch");
        // +4 mm: the kidney columns i = 22, 23 (2 and 4 mm from the spleen at i = 24), 16 × 16
        // voxels each, become spleen.
        let (moved, n) = c.shifted(&l, 4.0);
        assert_eq!(n, 2 * 16 * 16);
        assert_eq!(*moved.at(21, 10, 10), KIDNEY);
        assert_eq!(*moved.at(22, 10, 10), SPLEEN);
        // −6 mm: spleen columns 24, 25, 26 become kidney.
        let (moved, n) = c.shifted(&l, -6.0);
        assert_eq!(n, 3 * 16 * 16);
        assert_eq!(*moved.at(26, 10, 10), KIDNEY);
        assert_eq!(*moved.at(27, 10, 10), SPLEEN);
        assert_eq!(c.shifted(&l, 0.0).1, 0);
        // Apart by more than the touch distance: no contact.
        let mut apart = labels(24);
        for v in apart.data_mut().iter_mut() {
            if *v == SPLEEN {
                *v = SOFT_TISSUE;
            }
        }
        assert!(Contact::new(&apart, KIDNEY, SPLEEN, 10.0, 3.0).is_none());
    }

    /// The SPECT of the true anatomy (boundary at `true_split`): Σ concentration × (region ⊗
    /// PSF) on a 4 mm grid, with multiplicative noise of `noise` (deterministic).
    fn spect(true_split: usize, kidney: f32, spleen: f32, noise: f32) -> Volume<f32> {
        let truth = labels(true_split);
        let grid = Grid::axis_aligned([24, 16, 16], [4.0; 3], [1.0; 3]).expect("grid");
        let regions = [KIDNEY, SPLEEN, SOFT_TISSUE];
        let masks = fractional_masks(&truth, &grid, &RigidTransform::identity(), &regions, 3);
        let blurred = blur_masks(&masks, 11.0);
        let mut out = Volume::filled(grid, 0.0f32);
        let mut state = 12345u64;
        for (v, s) in out.data_mut().iter_mut().enumerate() {
            let clean = kidney * blurred[0].data()[v]
                + spleen * blurred[1].data()[v]
                + 50.0 * blurred[2].data()[v];
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5;
            *s = clean * (1.0 + noise * 2.0 * u);
        }
        out
    }

    fn residuals(true_split: usize, mask_split: usize, kidney: f32, spleen: f32) -> Vec<f64> {
        let body = labels(mask_split);
        let c = Contact::new(&body, KIDNEY, SPLEEN, 12.0, 3.0).expect("contact");
        let offsets: Vec<f64> = (-6..=6).map(|i| f64::from(i) * 2.0).collect();
        boundary_residuals(
            &spect(true_split, kidney, spleen, 0.1),
            &body,
            &c,
            &[KIDNEY, SPLEEN, SOFT_TISSUE],
            &RigidTransform::identity(),
            11.0,
            &offsets,
        )
        .expect("inside the SPECT")
    }

    fn argmin(v: &[f64]) -> usize {
        (0..v.len())
            .min_by(|&a, &b| v[a].total_cmp(&v[b]))
            .expect("not empty")
    }

    #[test]
    fn the_residual_is_smallest_where_the_true_boundary_is() {
        // The kidney mask reaches 4 voxels (8 mm) into a spleen of 0.4 times its concentration:
        // the smallest residual is at +8 mm (offsets −12..12 mm by 2, index 10), both ways round.
        let r = residuals(20, 24, 1000.0, 400.0);
        assert_eq!(argmin(&r), 10, "{r:?}");
        assert!(r[10] < 0.5 * r[6], "{r:?}");
        // The spleen mask reaches 3 voxels (6 mm) into a kidney of 2.5 times its concentration:
        // −6 mm (index 3).
        let r = residuals(24, 21, 1000.0, 400.0);
        assert_eq!(argmin(&r), 3, "{r:?}");
    }

    #[test]
    fn with_equal_uptake_no_offset_explains_the_spect_better() {
        // Then the SPECT cannot tell where the boundary is: within 1 % of the residual at 0.
        let r = residuals(20, 24, 700.0, 700.0);
        for v in &r {
            assert!((v / r[6] - 1.0).abs() < 0.01, "{r:?}");
        }
    }
}
