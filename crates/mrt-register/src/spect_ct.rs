//! SPECT↔CT misalignment: find the rigid transform (SPECT world → CT world) under which the
//! SPECT is best explained by the CT organ masks blurred with the camera PSF.
//!
//! Model: SPECT(v) ≈ c_bg + Σ_o c_o·(M_o⊗h)(T(v)) (+ an optional body-remainder component), with
//! concentrations fitted by linear least squares for every candidate T. Organ masks have their
//! enclosed holes filled (lesions inside an organ), and each fit is a trimmed one: the 15 % of
//! samples with the largest positive residuals (activity no mask explains: lesions, bowel) are left
//! out and the model refitted, so hot spots cannot pull the masks onto themselves. The metric is
//! the trimmed R². Nelder-Mead over six parameters (rotations about the masks' centre,
//! translations), started at identity, within ±40 mm and ±10°. A second fit also leaves out the
//! 5 % most negative residuals (mask parts the SPECT finds cold, such as foreign tissue inside a
//! CNN mask, which can pull the first fit centimetres off: phantom seed 9547); where the two move
//! a mask voxel more than 5 mm apart, the smaller correction is kept and the time point flagged.
//! The result carries the R² as a QA score and a `needs_review` flag for large, weakly supported
//! or ambiguous corrections.
//!
//! On phantoms with hot liver tumours misaligned by up to 15 mm, 20 of 20 time points end below
//! 3 mm (tests/spect_ct_alignment.rs).

use mrt_core::filter::{gaussian_blur, Edge};
use mrt_core::grid::AffineMap;
use mrt_core::linalg::{self, Vec3};
use mrt_core::morphology::fill_holes;
use mrt_core::stacked::StackedVolumes;
use mrt_core::{RigidTransform, Volume};
use rayon::prelude::*;
use serde::Serialize;

use crate::nelder_mead::minimize_within;
use crate::register::to_transform;
use mrt_core::dense::solve;

/// Result of the SPECT↔CT alignment.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SpectAlignment {
    /// SPECT world → CT world.
    pub spect_to_ct: RigidTransform,
    /// R² of the mask model before correction (identity).
    pub r2_before: f64,
    /// R² after.
    pub r2_after: f64,
    /// Largest displacement the correction applies to a mask voxel (mm).
    pub correction_mm: f64,
    /// True when a human should look: R² after < `min_r2`, or correction > `review_above_mm`.
    pub needs_review: bool,
    /// Why review is needed.
    pub reasons: Vec<String>,
}

/// Settings.
#[derive(Debug, Clone)]
pub struct SpectAlignOptions {
    /// Camera PSF FWHM (mm).
    pub psf_fwhm_mm: f64,
    /// Flag corrections larger than this (mm).
    pub review_above_mm: f64,
    /// Flag fits explaining less than this fraction of the SPECT variance.
    pub min_r2: f64,
    /// Nelder-Mead evaluations.
    pub max_evals: usize,
    /// Share of samples with the largest positive residuals left out of each fit (unexplained
    /// hot spots such as lesions must not pull the masks onto themselves).
    pub trim_fraction: f64,
    /// Share of samples with the largest negative residuals left out of the second, cross-check
    /// fit (mask parts the SPECT finds cold: tissue segmented into an organ that is not it).
    pub trim_low_fraction: f64,
    /// When the two fits move a mask voxel further apart than this (mm), the smaller correction
    /// is kept and the time point flagged.
    pub disagreement_mm: f64,
}

impl Default for SpectAlignOptions {
    fn default() -> Self {
        Self {
            psf_fwhm_mm: 11.0,
            review_above_mm: 10.0,
            min_r2: 0.8,
            max_evals: 800,
            trim_fraction: 0.15,
            trim_low_fraction: 0.05,
            disagreement_mm: 5.0,
        }
    }
}

/// Estimates the SPECT→CT transform from `labels` (on the CT grid; `organs` are the labels to
/// use) and the SPECT (any units proportional to activity).
///
/// `body` (same grid as `labels`, non-zero inside the patient, e.g. CT > −400 HU) adds the
/// remainder of the body as one more model component, so the body outline is explained too.
pub fn align_spect_to_ct(
    spect: &Volume<f32>,
    labels: &Volume<u8>,
    organs: &[u8],
    body: Option<&Volume<u8>>,
    opts: &SpectAlignOptions,
) -> SpectAlignment {
    // Blurred masks on the CT grid (PSF applied once).
    // Enclosed holes (lesions inside an organ) are filled: their activity sits where the organ is.
    // Organs absent from the labels would make the model singular: they are left out.
    let present: Vec<u8> = organs
        .iter()
        .copied()
        .filter(|o| labels.data().contains(o))
        .collect();
    let organs = present.as_slice();
    let mut components: Vec<Volume<f32>> = organs
        .iter()
        .map(|&o| {
            let mut mask: Vec<bool> = labels.data().iter().map(|&l| l == o).collect();
            fill_holes(&mut mask, labels.grid().dims);
            let data = mask.iter().map(|&m| f32::from(u8::from(m))).collect();
            Volume::new(labels.grid().clone(), data).expect("mask on the label grid")
        })
        .collect();
    if let Some(b) = body {
        let data = b
            .data()
            .iter()
            .zip(labels.data())
            .map(|(&inside, l)| f32::from(u8::from(inside != 0 && !organs.contains(l))))
            .collect();
        components
            .push(Volume::new(labels.grid().clone(), data).expect("body mask on the label grid"));
    }
    let blurred: Vec<Volume<f32>> = components
        .into_par_iter()
        .map(|m| gaussian_blur(&m, opts.psf_fwhm_mm, Edge::Zero))
        .collect();
    // Interleaved for the sampling below; the separate volumes are not kept.
    let stacked = StackedVolumes::new(&blurred);
    drop(blurred);
    let Some(stacked) = stacked else {
        // No organ in the labels: nothing to align by.
        return SpectAlignment {
            spect_to_ct: RigidTransform::identity(),
            r2_before: 0.0,
            r2_after: 0.0,
            correction_mm: 0.0,
            needs_review: true,
            reasons: vec!["no organ masks to align the SPECT by".into()],
        };
    };
    // Centre of the masks (rotation centre) and mask points (for the correction size).
    let g = labels.grid();
    let mut pts = Vec::new();
    for k in (0..g.dims[2]).step_by(2) {
        for j in (0..g.dims[1]).step_by(2) {
            for i in (0..g.dims[0]).step_by(2) {
                if organs.contains(labels.at(i, j, k)) {
                    pts.push(g.index_to_world([i as f64, j as f64, k as f64]));
                }
            }
        }
    }
    let n = pts.len().max(1) as f64;
    let centre = pts
        .iter()
        .fold([0.0; 3], |a, p| linalg::add(a, *p))
        .map(|v| v / n);
    // SPECT samples: voxels near the organs or hot.
    let sg = spect.grid();
    let max = spect.data().iter().copied().fold(0.0f32, f32::max);
    let ct_index = g.world_to_index_map();
    let mut samples: Vec<(Vec3, f64)> = Vec::new();
    let mut columns = vec![0.0f64; stacked.len()];
    for k in 0..sg.dims[2] {
        for j in 0..sg.dims[1] {
            for i in 0..sg.dims[0] {
                let p = sg.index_to_world([i as f64, j as f64, k as f64]);
                let v = *spect.at(i, j, k);
                let near = stacked.sample_linear_into(ct_index.apply(p), &mut columns)
                    && columns.iter().any(|&x| x > f64::from(0.01f32));
                if near || v > 0.2 * max {
                    samples.push((p, f64::from(v)));
                }
            }
        }
    }
    let model = MaskModel {
        blurred: &stacked,
        samples: &samples,
        ct_index: &ct_index,
    };
    let r2 = |t: &RigidTransform| model.trimmed_r2(t, opts.trim_fraction, 0.0);
    let r2_before = r2(&RigidTransform::identity());
    // The main fit trims only positive residuals (hot spots). A mask holding cold foreign
    // tissue leaves negative ones, which can pull the fit far off: a cross-check fit also trims
    // those, and where the two disagree the smaller correction is the more plausible one.
    // The two fits are independent: run side by side (each is mostly serial least squares).
    let (main, check) = rayon::join(
        || fit_transform(&model, centre, opts, 0.0),
        || fit_transform(&model, centre, opts, opts.trim_low_fraction),
    );
    let mut reasons = Vec::new();
    let (spect_to_ct, disagreement) = reconcile(main, check, &pts, opts.disagreement_mm);
    if let Some(reason) = disagreement {
        reasons.push(reason);
    }
    let correction_mm = largest_displacement(&spect_to_ct, &RigidTransform::identity(), &pts);
    let r2_after = r2(&spect_to_ct);
    if r2_after < opts.min_r2 {
        reasons.push(format!(
            "organ masks explain only {:.0} % of the SPECT after alignment",
            r2_after * 100.0
        ));
    }
    if correction_mm > opts.review_above_mm {
        reasons.push(format!("large SPECT/CT correction: {correction_mm:.1} mm"));
    }
    SpectAlignment {
        spect_to_ct,
        r2_before,
        r2_after,
        correction_mm,
        needs_review: !reasons.is_empty(),
        reasons,
    }
}

/// Largest distance (mm) between where `a` and `b` move any of `pts`.
fn largest_displacement(a: &RigidTransform, b: &RigidTransform, pts: &[Vec3]) -> f64 {
    let (a, b) = (a.to_affine(), b.to_affine());
    pts.iter()
        .map(|p| linalg::norm(linalg::sub(a.apply(*p), b.apply(*p))))
        .fold(0.0, f64::max)
}

/// The main fit, unless the cross-check fit moves some mask point more than `disagreement_mm`
/// away from it: then the one with the smaller correction (a misalignment of a few mm is far
/// likelier than one of several cm), and the reason.
fn reconcile(
    main: RigidTransform,
    check: RigidTransform,
    pts: &[Vec3],
    disagreement_mm: f64,
) -> (RigidTransform, Option<String>) {
    let apart = largest_displacement(&main, &check, pts);
    if apart <= disagreement_mm {
        return (main, None);
    }
    let identity = RigidTransform::identity();
    let (main_mm, check_mm) = (
        largest_displacement(&main, &identity, pts),
        largest_displacement(&check, &identity, pts),
    );
    let reason = format!(
        "the alignment depends on cold parts of the masks: fits {apart:.1} mm apart \
         ({main_mm:.1} and {check_mm:.1} mm corrections), the smaller kept"
    );
    (if check_mm < main_mm { check } else { main }, Some(reason))
}

/// Nelder-Mead over rotations about `centre` and translations, coarse then fine, maximising the
/// trimmed R² (`trim_low`: share of negative residuals left out besides the positive ones).
fn fit_transform(
    model: &MaskModel,
    centre: Vec3,
    opts: &SpectAlignOptions,
    trim_low: f64,
) -> RigidTransform {
    // Plausible misalignments: ±40 mm, ±10°; beyond, a steep penalty keeps the simplex home.
    let cost = |x: &[f64]| {
        let excess: f64 = x[..3]
            .iter()
            .map(|a| (a.abs() - 10.0).max(0.0) / 10.0)
            .sum::<f64>()
            + x[3..]
                .iter()
                .map(|t| (t.abs() - 40.0).max(0.0) / 40.0)
                .sum::<f64>();
        -model.trimmed_r2(&to_transform(x, centre), opts.trim_fraction, trim_low) + excess
    };
    // The trimmed R² jumps a little wherever a sample crosses the trimming threshold, so the
    // value spread rarely meets its tolerance: each stage also ends once the simplex is within
    // `XTOL` (degrees and mm) of its best vertex.
    const XTOL: f64 = 1e-3;
    let (x1, _, _) = minimize_within(
        &cost,
        &[0.0; 6],
        &[2.0, 2.0, 2.0, 8.0, 8.0, 8.0],
        opts.max_evals / 2,
        1e-10,
        XTOL,
    );
    let (x, _, _) = minimize_within(
        &cost,
        &x1,
        &[0.5, 0.5, 0.5, 2.0, 2.0, 2.0],
        opts.max_evals / 2,
        1e-12,
        XTOL,
    );
    to_transform(&x, centre)
}

/// The linear model of the SPECT samples by blurred mask components at a candidate transform.
struct MaskModel<'a> {
    blurred: &'a StackedVolumes,
    samples: &'a [(Vec3, f64)],
    ct_index: &'a AffineMap,
}

impl MaskModel<'_> {
    /// Design rows (intercept then one column per component), row-major, for transform `t`.
    fn rows(&self, t: &RigidTransform) -> Vec<f64> {
        let map = self.ct_index.compose(&t.to_affine());
        let k = self.blurred.len() + 1;
        let mut rows = vec![0.0f64; self.samples.len() * k];
        rows.par_chunks_mut(k)
            .zip(self.samples.par_iter())
            .for_each(|(row, (p, _))| {
                let q = map.apply(*p);
                row[0] = 1.0;
                // Outside the CT grid every column stays 0.
                self.blurred.sample_linear_into(q, &mut row[1..]);
            });
        rows
    }

    /// Least-squares coefficients and R² over the samples with `keep[s]`.
    fn fit(&self, rows: &[f64], keep: &[bool]) -> Option<(Vec<f64>, f64)> {
        let k = self.blurred.len() + 1;
        // AᵀA is symmetric: its upper triangle, row by row, accumulated flat.
        let mut upper = vec![0.0f64; k * (k + 1) / 2];
        let mut atb = vec![0.0f64; k];
        let (mut yy, mut sy, mut n) = (0.0, 0.0, 0.0);
        for ((row, (_, y)), _) in rows
            .chunks_exact(k)
            .zip(self.samples)
            .zip(keep)
            .filter(|(_, &kept)| kept)
        {
            let mut u = 0;
            for (a, &ra) in row.iter().enumerate() {
                atb[a] += ra * y;
                for (acc, &rc) in upper[u..u + k - a].iter_mut().zip(&row[a..]) {
                    *acc += ra * rc;
                }
                u += k - a;
            }
            yy += y * y;
            sy += y;
            n += 1.0;
        }
        let mut ata = vec![vec![0.0f64; k]; k];
        let pairs = (0..k).flat_map(|a| (a..k).map(move |c| (a, c)));
        for ((a, c), &v) in pairs.zip(&upper) {
            ata[a][c] = v;
            ata[c][a] = v;
        }
        let coef = solve(&ata, &atb)?;
        // RSS = yᵀy − cᵀAᵀy for the least-squares solution.
        let rss = yy - coef.iter().zip(&atb).map(|(a, b)| a * b).sum::<f64>();
        let tss = yy - sy * sy / f64::max(n, 1.0);
        (tss > 0.0).then(|| (coef, 1.0 - rss / tss))
    }

    /// R² after leaving out the `trim` share of samples with the largest positive residuals
    /// (activity the masks cannot explain: lesions, bowel, bladder) and the `trim_low` share with
    /// the largest negative ones (mask parts without activity), refitted once.
    fn trimmed_r2(&self, t: &RigidTransform, trim: f64, trim_low: f64) -> f64 {
        let k = self.blurred.len() + 1;
        let rows = self.rows(t);
        let all = vec![true; self.samples.len()];
        let Some((coef, r2_all)) = self.fit(&rows, &all) else {
            return 0.0;
        };
        let cut = (trim * self.samples.len() as f64) as usize;
        if cut == 0 {
            return r2_all;
        }
        let residuals: Vec<f64> = rows
            .chunks(k)
            .zip(self.samples)
            .map(|(row, (_, y))| y - row.iter().zip(&coef).map(|(a, c)| a * c).sum::<f64>())
            .collect();
        let mut sorted = residuals.clone();
        let nth = sorted.len() - cut;
        let (_, &mut threshold, _) = sorted.select_nth_unstable_by(nth, f64::total_cmp);
        let low_cut = (trim_low * self.samples.len() as f64) as usize;
        let low = if low_cut > 0 {
            let (_, &mut low, _) = sorted.select_nth_unstable_by(low_cut, f64::total_cmp);
            low
        } else {
            f64::NEG_INFINITY
        };
        let keep: Vec<bool> = residuals
            .iter()
            .map(|&r| r < threshold && r > low)
            .collect();
        self.fit(&rows, &keep).map_or(0.0, |(_, r2)| r2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shift(x: f64) -> RigidTransform {
        RigidTransform {
            rotation_deg: [0.0; 3],
            translation_mm: [x, 0.0, 0.0],
        }
    }

    #[test]
    fn fits_that_agree_keep_the_main_one_and_raise_nothing() {
        let pts = [[0.0, 0.0, 0.0], [50.0, 10.0, -20.0]];
        let (kept, reason) = reconcile(shift(6.0), shift(3.0), &pts, 5.0);
        assert_eq!(kept.translation_mm, [6.0, 0.0, 0.0]);
        assert!(reason.is_none());
    }

    #[test]
    fn fits_that_disagree_keep_the_smaller_correction_and_say_so() {
        let pts = [[0.0, 0.0, 0.0], [50.0, 10.0, -20.0]];
        let (kept, reason) = reconcile(shift(30.0), shift(7.0), &pts, 5.0);
        assert_eq!(kept.translation_mm, [7.0, 0.0, 0.0]);
        let reason = reason.expect("a reason");
        assert!(reason.contains("23.0 mm apart"), "{reason}");
        let (kept, _) = reconcile(shift(-4.0), shift(20.0), &pts, 5.0);
        assert_eq!(kept.translation_mm, [-4.0, 0.0, 0.0]);
    }
}
