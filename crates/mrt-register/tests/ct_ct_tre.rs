//! CT↔CT rigid registration on phantoms repositioned by up to ±20 mm and ±5°: target
//! registration error over the organs against the generator's true positioning.

use mrt_core::linalg;
use mrt_io::nifti_io::read_nifti;
use mrt_phantom::{write_phantom, Format, Options};
use mrt_register::{register, Metric, RegisterError, RegisterOptions, TransformKind};

/// Organ TRE over three phantoms (two repositioned visits each) with `opts`.
fn organ_tre(opts: &RegisterOptions) -> (f64, f64) {
    let mut tre: Vec<f64> = Vec::new();
    for seed in [301u64, 302, 303] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = Options::new(seed);
        o.timepoints_h = vec![4.0, 24.0, 72.0];
        let truth = write_phantom(dir.path(), o, Format::Nifti).expect("phantom");
        let fixed = read_nifti(&dir.path().join(&truth.timepoints[0].ct))
            .expect("ct")
            .volume;
        let labels = read_nifti(&dir.path().join(&truth.timepoints[0].labels))
            .expect("labels")
            .volume;
        let b2w_fixed = truth.timepoints[0].body_to_world;
        for tp in &truth.timepoints[1..] {
            let moving = read_nifti(&dir.path().join(&tp.ct)).expect("ct").volume;
            let r = register(&fixed, &moving, opts).expect("registration");
            // True map fixed world → moving world: body_to_world(moving) ∘ body_to_world(fixed)⁻¹.
            let truth_map = tp
                .body_to_world
                .to_affine()
                .compose(&b2w_fixed.inverse_affine());
            let est = r.transform.to_affine();
            let g = labels.grid();
            let mut errs = Vec::new();
            for k in (0..g.dims[2]).step_by(2) {
                for j in (0..g.dims[1]).step_by(2) {
                    for i in (0..g.dims[0]).step_by(2) {
                        if (1.0..=4.0).contains(labels.at(i, j, k)) {
                            let p = g.index_to_world([i as f64, j as f64, k as f64]);
                            errs.push(linalg::norm(linalg::sub(est.apply(p), truth_map.apply(p))));
                        }
                    }
                }
            }
            errs.sort_by(f64::total_cmp);
            println!(
                "seed {seed}, {} h: {} {:.3} → {:.3}, organ TRE median {:.2} mm, max {:.2} mm, {} evaluations; true {:?}",
                tp.hours_post_injection,
                r.metric.name(),
                r.metric_before,
                r.metric_after,
                errs[errs.len() / 2],
                errs[errs.len() - 1],
                r.evaluations,
                tp.body_to_world
            );
            tre.extend(errs);
        }
    }
    tre.sort_by(f64::total_cmp);
    (tre[tre.len() / 2], tre[tre.len() * 95 / 100])
}

#[test]
fn rigid_ncc_organ_tre_is_below_a_millimetre_median() {
    let (median, p95) = organ_tre(&RegisterOptions::default());
    println!("rigid NCC, all pairs: organ TRE median {median:.2} mm, 95th percentile {p95:.2} mm");
    assert!(median < 1.0, "median TRE {median}");
    assert!(p95 < 2.0, "95th percentile TRE {p95}");
}

#[test]
fn rigid_mattes_mi_and_affine_ncc_also_meet_the_goal() {
    for (kind, metric) in [
        (TransformKind::Rigid, Metric::MattesMi),
        (TransformKind::Affine, Metric::Ncc),
    ] {
        let opts = RegisterOptions {
            kind,
            metric,
            ..RegisterOptions::default()
        };
        let (median, p95) = organ_tre(&opts);
        println!(
            "{kind:?} {metric:?}: organ TRE median {median:.2} mm, 95th percentile {p95:.2} mm"
        );
        assert!(median < 1.0, "{kind:?} {metric:?}: median TRE {median}");
        assert!(p95 < 2.0, "{kind:?} {metric:?}: 95th percentile TRE {p95}");
    }
}

#[test]
fn empty_and_constant_images_are_refused() {
    let g = mrt_core::Grid::axis_aligned([20, 20, 20], [3.0; 3], [0.0; 3]).expect("grid");
    let air = mrt_core::Volume::filled(g.clone(), -1000.0f32);
    let mut body = air.clone();
    for (n, v) in body.data_mut().iter_mut().take(4000).enumerate() {
        *v = 40.0 + (n % 50) as f32;
    }
    assert!(matches!(
        register(&body, &air, &RegisterOptions::default()),
        Err(RegisterError::EmptyMask {
            which: "moving",
            ..
        })
    ));
    let constant = mrt_core::Volume::filled(g, 40.0f32);
    assert!(matches!(
        register(&body, &constant, &RegisterOptions::default()),
        Err(RegisterError::Constant { which: "moving" })
    ));
}
