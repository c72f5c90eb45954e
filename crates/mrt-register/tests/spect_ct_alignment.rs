//! SPECT↔CT misalignment correction on phantoms misaligned by up to 15 mm, against the
//! generator's true transform. Masks: the true organ labels (the pipeline will use the CNN's).

use mrt_core::linalg;
use mrt_io::nifti_io::read_nifti;
use mrt_phantom::{write_phantom, Format, Options};
use mrt_register::{align_spect_to_ct, SpectAlignOptions};

/// The phantom acceptance of issue 5: ≥ 95 % of time points below 3 mm, and every case left
/// above 5 mm flagged for review. Measured: 20/20 below 3 mm (worst 2.79 mm).
#[test]
fn misalignment_up_to_15_mm_is_corrected_below_3_mm() {
    let (mut ok, mut total, mut unflagged_bad) = (0, 0, 0);
    for seed in [311u64, 312, 313, 314, 315] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = Options::new(seed);
        o.misalign_mm = 15.0;
        let truth = write_phantom(dir.path(), o, Format::Nifti).expect("phantom");
        for tp in &truth.timepoints {
            let spect = read_nifti(&dir.path().join(&tp.spect))
                .expect("spect")
                .volume;
            let labels = read_nifti(&dir.path().join(&tp.labels))
                .expect("labels")
                .volume
                .map(|&l| l as u8);
            let a = align_spect_to_ct(
                &spect,
                &labels,
                &[1, 2, 3, 4],
                None,
                &SpectAlignOptions {
                    psf_fwhm_mm: truth.psf_fwhm_mm,
                    ..Default::default()
                },
            );
            // Residual: worst displacement over organ voxels between estimate and truth.
            let (est, tru) = (a.spect_to_ct.to_affine(), tp.spect_to_ct.to_affine());
            let g = labels.grid();
            let (mut before, mut after) = (0.0f64, 0.0f64);
            for k in (0..g.dims[2]).step_by(3) {
                for j in (0..g.dims[1]).step_by(3) {
                    for i in (0..g.dims[0]).step_by(3) {
                        if (1..=4).contains(labels.at(i, j, k)) {
                            let p = g.index_to_world([i as f64, j as f64, k as f64]);
                            before = before.max(linalg::norm(linalg::sub(tru.apply(p), p)));
                            after =
                                after.max(linalg::norm(linalg::sub(est.apply(p), tru.apply(p))));
                        }
                    }
                }
            }
            total += 1;
            if after < 3.0 {
                ok += 1;
            }
            if after > 5.0 && !a.needs_review {
                unflagged_bad += 1;
            }
            println!(
                "seed {seed} {:>5} h: misaligned {before:5.1} mm → residual {after:4.2} mm; R² {:.3} → {:.3}; review {}",
                tp.hours_post_injection, a.r2_before, a.r2_after, a.needs_review
            );
        }
    }
    println!("{ok}/{total} time points corrected below 3 mm; {unflagged_bad} left above 5 mm without a review flag");
    assert!(ok as f64 >= 0.95 * total as f64, "{ok}/{total}");
    assert_eq!(unflagged_bad, 0);
}

#[test]
fn a_shift_is_recovered_when_the_masks_explain_the_activity() {
    // Two hot ellipsoids ("kidneys") on a 2 mm CT grid; the SPECT is their blurred activity seen
    // through a known 10 mm / 2° misalignment, on 4.8 mm voxels.
    let (worst, a) = ellipsoid_case(false, &SpectAlignOptions::default());
    println!(
        "residual {worst:.2} mm, R² {:.3} → {:.3}",
        a.r2_before, a.r2_after
    );
    assert!(worst < 1.0, "{worst}");
    assert!(a.r2_after > 0.99 && a.r2_after > a.r2_before);
}

/// Two hot ellipsoids on a 2 mm CT grid, the SPECT their blurred activity seen through a known
/// 10 mm / 2° misalignment on 4.8 mm voxels; with `cold_block`, one's mask also holds a block of
/// foreign tissue without activity, as a CNN mask that ran into a neighbour does. Returns the
/// worst residual displacement (mm) over mask voxels and the alignment.
fn ellipsoid_case(
    cold_block: bool,
    opts: &SpectAlignOptions,
) -> (f64, mrt_register::SpectAlignment) {
    use mrt_core::filter::{gaussian_blur, Edge};
    use mrt_core::{resample_mapped, Grid, Interpolation, RigidTransform, Volume};
    let g = Grid::axis_aligned([120, 100, 90], [2.0; 3], [-119.0, -99.0, -89.0]).expect("grid");
    let mut labels = Volume::filled(g.clone(), 0u8);
    let mut activity = Volume::filled(g.clone(), 0f32);
    for k in 0..90 {
        for j in 0..100 {
            for i in 0..120 {
                let p = g.index_to_world([i as f64, j as f64, k as f64]);
                let o = g.offset(i, j, k);
                for (l, cx, a) in [(2u8, 60.0, 1000.0f32), (3u8, -60.0, 700.0)] {
                    if ((p[0] - cx) / 28.0).powi(2)
                        + ((p[1] - 20.0) / 22.0).powi(2)
                        + (p[2] / 50.0).powi(2)
                        <= 1.0
                    {
                        labels.data_mut()[o] = l;
                        activity.data_mut()[o] = a;
                    }
                }
                // Cold foreign tissue labelled 3, below and in front of its ellipsoid.
                if cold_block
                    && (-100.0..-40.0).contains(&p[0])
                    && (-40.0..0.0).contains(&p[1])
                    && (-80.0..-30.0).contains(&p[2])
                {
                    labels.data_mut()[o] = 3;
                    activity.data_mut()[o] = 0.0;
                }
            }
        }
    }
    let blurred = gaussian_blur(&activity, 11.0, Edge::Zero);
    let truth = RigidTransform {
        rotation_deg: [0.0, 2.0, 1.0],
        translation_mm: [6.0, -5.0, 6.0],
    };
    let spect_grid =
        Grid::axis_aligned([50, 42, 38], [4.8; 3], [-117.6, -98.4, -88.8]).expect("grid");
    let spect = resample_mapped(
        &blurred,
        &spect_grid,
        &truth.to_affine(),
        Interpolation::Linear,
        0.0,
    );
    let a = align_spect_to_ct(&spect, &labels, &[2, 3], None, opts);
    let (est, tru) = (a.spect_to_ct.to_affine(), truth.to_affine());
    let mut worst = 0.0f64;
    for k in (0..90).step_by(3) {
        for j in (0..100).step_by(3) {
            for i in (0..120).step_by(3) {
                if *labels.at(i, j, k) != 0 {
                    let p = g.index_to_world([i as f64, j as f64, k as f64]);
                    worst = worst.max(linalg::norm(linalg::sub(est.apply(p), tru.apply(p))));
                }
            }
        }
    }
    (worst, a)
}

/// In this clean case the main fit is right despite the block and the cross-check agrees with
/// it (so nothing is flagged for it); the phantom trial's failing case (seed 9547, CNN masks) is
/// in the README.
#[test]
fn a_cold_block_in_a_mask_does_not_pull_the_alignment_away() {
    let without_check = SpectAlignOptions {
        disagreement_mm: f64::INFINITY,
        ..Default::default()
    };
    let (worst_main, _) = ellipsoid_case(true, &without_check);
    let (worst, a) = ellipsoid_case(true, &SpectAlignOptions::default());
    println!("main fit alone: residual {worst_main:.2} mm; with the cross-check: {worst:.2} mm");
    assert!(worst_main < 1.0 && worst < 1.0, "{worst_main} {worst}");
    assert!(
        !a.reasons.iter().any(|r| r.contains("cold parts")),
        "{:?}",
        a.reasons
    );
}
