//! TAC fitting against known curves: exact recovery from noise-free samples, unbiased TIA and
//! honest uncertainty from noisy ones, sensible model choice.

use mrt_dosimetry::fit::{fit_auto, fit_model, fit_with_uptake, uptake_observed, TacData};
use mrt_dosimetry::tac::Model;

const LAMBDA_PHYS: f64 = std::f64::consts::LN_2 / 159.528;

/// Deterministic normal deviates (SplitMix64 + Box-Muller) so tests need no RNG crate.
struct Normal(u64);
impl Normal {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn next(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

fn truth() -> Vec<(Model, Vec<f64>)> {
    vec![
        (Model::MonoExponential, vec![120.0, 0.0139]),
        (Model::UptakeWashout, vec![150.0, 0.0120, 0.45]),
        (Model::BiExponential, vec![80.0, 0.15, 60.0, 0.011]),
        (Model::TriExponential, vec![80.0, 0.15, 60.0, 0.011, 1.2]),
    ]
}

const TIMES: [f64; 8] = [0.5, 2.0, 4.0, 12.0, 24.0, 72.0, 120.0, 168.0];

#[test]
fn noise_free_samples_give_back_the_parameters() {
    for (model, p) in truth() {
        let a: Vec<f64> = TIMES.iter().map(|&t| model.activity(&p, t)).collect();
        let d = TacData::with_relative_error(TIMES.to_vec(), a, 0.1, LAMBDA_PHYS);
        let f = fit_model(model, &d).unwrap_or_else(|| panic!("{model:?} fit failed"));
        for (got, want) in f.params.iter().zip(&p) {
            assert!(
                (got / want - 1.0).abs() < 1e-6,
                "{model:?}: {:?} vs {p:?}",
                f.params
            );
        }
        assert!((f.tia_mbq_h / model.tia(&p) - 1.0).abs() < 1e-6);
    }
}

#[test]
fn noisy_samples_give_unbiased_tia_with_honest_uncertainty() {
    // Clinical sampling (4, 24, 72, 168 h + 2 more for the richer models), 10 % noise, 300 seeds.
    let times = [1.0, 4.0, 24.0, 48.0, 72.0, 168.0];
    for (model, p) in truth().into_iter().take(3) {
        let true_tia = model.tia(&p);
        let mut rng = Normal(17);
        let (mut errors, mut covered, mut trials) = (Vec::new(), 0, 0);
        for _ in 0..300 {
            let a: Vec<f64> = times
                .iter()
                .map(|&t| model.activity(&p, t) * (1.0 + 0.1 * rng.next()))
                .collect();
            let d = TacData::with_relative_error(times.to_vec(), a, 0.1, LAMBDA_PHYS);
            let Some(f) = fit_model(model, &d) else {
                continue;
            };
            trials += 1;
            errors.push(f.tia_mbq_h / true_tia - 1.0);
            if (f.tia_mbq_h - true_tia).abs() <= 2.0 * f.tia_sd_mbq_h {
                covered += 1;
            }
        }
        errors.sort_by(f64::total_cmp);
        let median = errors[errors.len() / 2];
        let coverage = covered as f64 / trials as f64;
        println!(
            "{model:?}: {trials} fits, median TIA error {:+.2} %, ±2σ coverage {:.0} %",
            median * 100.0,
            coverage * 100.0
        );
        assert!(trials >= 290, "{model:?}: only {trials} fits converged");
        assert!(median.abs() < 0.02, "{model:?}: median TIA error {median}");
        assert!(
            coverage > 0.85,
            "{model:?}: ±2σ covers the truth in {coverage}"
        );
    }
}

#[test]
fn aicc_prefers_the_generating_model_on_rich_data() {
    // Seven points with an early uptake phase: uptake-washout data should usually beat the
    // mono-exponential; mono-exponential data should usually keep the simpler model.
    let times = [0.5, 1.0, 2.0, 4.0, 24.0, 72.0, 168.0];
    for (model, p, min_share) in [
        (Model::UptakeWashout, vec![150.0, 0.012, 0.45], 0.8),
        (Model::MonoExponential, vec![120.0, 0.0139], 0.6),
    ] {
        let mut rng = Normal(99);
        let mut hits = 0;
        for _ in 0..100 {
            let a: Vec<f64> = times
                .iter()
                .map(|&t| model.activity(&p, t) * (1.0 + 0.05 * rng.next()))
                .collect();
            let fits = fit_auto(&TacData::with_relative_error(
                times.to_vec(),
                a,
                0.05,
                LAMBDA_PHYS,
            ));
            if fits.first().map(|f| f.model) == Some(model) {
                hits += 1;
            }
        }
        println!("{model:?} chosen in {hits} of 100");
        assert!(
            hits as f64 >= 100.0 * min_share,
            "{model:?}: chosen {hits}/100"
        );
    }
}

#[test]
fn effective_half_life_never_exceeds_the_physical_one() {
    // Rising data at late times would need λ < λ_phys: the bound holds.
    let times = vec![24.0, 72.0, 168.0];
    let a = vec![10.0, 10.5, 11.0];
    let d = TacData::with_relative_error(times, a, 0.1, LAMBDA_PHYS);
    let f = fit_model(Model::MonoExponential, &d).expect("fit");
    assert!(
        f.params[1] >= LAMBDA_PHYS * (1.0 - 1e-12),
        "{}",
        f.params[1]
    );
}

/// The clinical four-point schedule (4, 24, 72, 168 h) on a liver-like curve that is still rising
/// at 4 h (uptake half-time 8 h, T_eff 67 h): the reference TIA is the closed form of the curve
/// written out here, A0·(1/λe − 1/(λe + λu)), independently of the library's models.
#[test]
fn a_rise_after_the_first_point_is_fitted_with_an_uptake_phase() {
    let (a0, t_up, t_eff) = (200.0f64, 8.0f64, 67.0f64);
    let (lu, le) = (
        std::f64::consts::LN_2 / t_up,
        std::f64::consts::LN_2 / t_eff,
    );
    let activity = |t: f64| a0 * (1.0 - (-lu * t).exp()) * (-le * t).exp();
    let tia_true = a0 * (1.0 / le - 1.0 / (le + lu));
    let times = vec![4.0, 24.0, 72.0, 168.0];
    let a: Vec<f64> = times.iter().map(|&t| activity(t)).collect();
    let d = TacData::with_relative_error(times, a, 0.05, LAMBDA_PHYS);
    assert!(uptake_observed(&d));
    let ranked = fit_auto(&d);
    // Four points only support the mono-exponential for AICc; it starts at its maximum at
    // injection and over-counts the first day.
    let mono = &ranked[0];
    assert_eq!(mono.model, Model::MonoExponential);
    assert!(
        mono.tia_mbq_h / tia_true - 1.0 > 0.05,
        "mono {}",
        mono.tia_mbq_h
    );
    let f = fit_with_uptake(&d, &ranked).expect("uptake-washout converges");
    assert_eq!(f.model, Model::UptakeWashout);
    assert!(
        (f.tia_mbq_h / tia_true - 1.0).abs() < 0.01,
        "{} vs {tia_true}",
        f.tia_mbq_h
    );
}

#[test]
fn a_curve_that_only_falls_shows_no_uptake() {
    let times = vec![4.0, 24.0, 72.0, 168.0];
    // Falling, with the second point 4 % above the first: within twice the 5 % noise.
    let a = vec![100.0, 104.0, 60.0, 25.0];
    assert!(!uptake_observed(&TacData::with_relative_error(
        times.clone(),
        a,
        0.05,
        LAMBDA_PHYS
    )));
    let a = vec![100.0, 80.0, 50.0, 20.0];
    assert!(!uptake_observed(&TacData::with_relative_error(
        times,
        a,
        0.05,
        LAMBDA_PHYS
    )));
}
