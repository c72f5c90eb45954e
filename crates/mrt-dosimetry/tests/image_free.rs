//! Image-free dosimetry end to end against hand calculations, and its input validation.

use mrt_dosimetry::{run, InputError, TacsInput};

fn doc(organs: &str) -> String {
    format!(
        r#"{{ "schema": "mrtdose.tacs.v1", "radionuclide": "Lu-177", "injected_activity_MBq": 7400,
             "phantom": "ICRP110_AM", "calibration_uncertainty_percent": 5, "organs": [ {organs} ] }}"#
    )
}

#[test]
fn mono_exponential_kidney_matches_the_hand_calculation() {
    // A(t) = 100·e^(−λt), T_eff = 50 h, sampled without noise at 4 points.
    let l = std::f64::consts::LN_2 / 50.0;
    let times = [4.0, 24.0, 72.0, 168.0];
    let acts: Vec<String> = times
        .iter()
        .map(|t| format!("{}", 100.0 * (-l * t).exp()))
        .collect();
    let organ = format!(
        r#"{{ "name": "kidney_left", "mass_g": 160.0, "times_h": [4, 24, 72, 168],
             "activity_MBq": [{}], "mass_uncertainty_percent": 4, "activity_uncertainty_percent": 8,
             "previous_cycles": [ {{ "absorbed_dose_Gy": 4.0, "bed_Gy": 4.5 }} ] }}"#,
        acts.join(", ")
    );
    let input = TacsInput::parse(&doc(&organ)).expect("valid");
    let r = run(&input);
    let k = &r.organs["kidney_left"];
    let tia = 100.0 / l; // 7213.48 MBq·h
    assert!((k.tia_mbq_h.expect("tia") / tia - 1.0).abs() < 1e-6);
    // D = TIA·3600·S·m_ref/m with AM left kidney S = 1.5662e-4 mGy/(MBq·s), m_ref = 152.983 g.
    let dose = tia * 3600.0 * 1.5662e-4 * 152.983 / 160.0 / 1000.0;
    assert!((k.absorbed_dose_gy.expect("dose") / dose - 1.0).abs() < 1e-6);
    assert!((k.absorbed_dose_gy_per_gbq.expect("Gy/GBq") - dose / 7.4).abs() < 1e-9);
    // BED = D + D²·λ/((μ + λ)·α/β), α/β 2.6 Gy, T_rep 2.8 h.
    let mu = std::f64::consts::LN_2 / 2.8;
    let bed = dose + dose * dose * l / ((mu + l) * 2.6);
    assert!(
        (k.bed_gy.expect("bed") / bed - 1.0).abs() < 1e-4,
        "{:?} vs {bed}",
        k.bed_gy
    );
    let c = k.cumulative.expect("cumulative");
    assert_eq!(c.cycles, 2);
    assert!((c.dose_gy - (4.0 + dose)).abs() < 1e-9);
    assert!((c.bed_gy - (4.5 + k.bed_gy.expect("bed"))).abs() < 1e-9);
    // Uncertainty: noise-free data leave calibration (5 %) and mass (4 %) plus the fit's share of
    // the stated 8 % activity uncertainty; combined in quadrature.
    let u = k.uncertainty_percent.expect("u");
    let fit = k.uncertainty_components_percent["fit"];
    assert!((u - (fit * fit + 25.0 + 16.0).sqrt()).abs() < 1e-9);
    assert!(fit > 0.0 && fit < 8.0, "{fit}");
}

#[test]
fn single_time_point_uses_madsen_with_the_population_half_life() {
    let organ = r#"{ "name": "spleen", "mass_g": 150.0, "times_h": [96], "activity_MBq": [50] }"#;
    let r = run(&TacsInput::parse(&doc(organ)).expect("valid"));
    let s = &r.organs["spleen"];
    let l = std::f64::consts::LN_2 / 67.0;
    let tia = 50.0 * (l * 96.0f64).exp() / l;
    assert!((s.tia_mbq_h.expect("tia") / tia - 1.0).abs() < 1e-12);
    assert_eq!(s.fit.as_ref().expect("fit").model, "madsen");
    let forced = r#"{ "name": "spleen", "mass_g": 150.0, "times_h": [96], "activity_MBq": [50], "fit_model": "hanscheid" }"#;
    let r = run(&TacsInput::parse(&doc(forced)).expect("valid"));
    let h = 50.0 * 2.0 * 96.0 / std::f64::consts::LN_2;
    assert!((r.organs["spleen"].tia_mbq_h.expect("tia") / h - 1.0).abs() < 1e-12);
}

#[test]
fn forced_models_are_honoured() {
    for model in [
        "mono_exponential",
        "uptake_washout",
        "bi_exponential",
        "trapezoid",
    ] {
        let organ = format!(
            r#"{{ "name": "liver", "mass_g": 1700, "times_h": [1, 4, 24, 48, 72, 168],
                 "activity_MBq": [120, 210, 230, 200, 170, 90], "fit_model": "{model}" }}"#
        );
        let r = run(&TacsInput::parse(&doc(&organ)).expect("valid"));
        let l = &r.organs["liver"];
        assert!(l.error.is_none(), "{model}: {:?}", l.error);
        assert_eq!(l.fit.as_ref().expect("fit").model, model);
        assert!(l.tia_mbq_h.expect("tia") > 0.0);
    }
}

#[test]
fn bad_inputs_name_the_organ_and_the_field() {
    let good =
        r#"{ "name": "liver", "mass_g": 1700, "times_h": [4, 24], "activity_MBq": [10, 8] }"#;
    assert!(TacsInput::parse(&doc(good)).is_ok());
    let cases = [
        (
            r#"{ "name": "liver", "mass_g": 1700, "times_h": [24, 4], "activity_MBq": [10, 8] }"#,
            "not strictly increasing",
        ),
        (
            r#"{ "name": "liver", "mass_g": 1700, "times_h": [-1, 4], "activity_MBq": [10, 8] }"#,
            "times must be > 0",
        ),
        (
            r#"{ "name": "liver", "mass_g": 1700, "times_h": [4, 24], "activity_MBq": [10] }"#,
            "1 values for 2 time points",
        ),
        (
            r#"{ "name": "pancreas", "mass_g": 70, "times_h": [4], "activity_MBq": [1] }"#,
            "unknown organ",
        ),
        (
            r#"{ "name": "liver", "mass_g": 0, "times_h": [4], "activity_MBq": [1] }"#,
            "mass_g",
        ),
        (
            r#"{ "name": "liver", "mass_g": 1700, "times_h": [4, 24], "activity_MBq": [10, -8] }"#,
            "not a valid activity",
        ),
        (
            r#"{ "name": "liver", "mass_g": 1700, "times_h": [4, 24, 48], "activity_MBq": [10, 8, 6], "fit_model": "bi_exponential" }"#,
            "needs at least 4",
        ),
    ];
    for (organ, needle) in cases {
        let err = TacsInput::parse(&doc(organ)).expect_err(needle).to_string();
        assert!(err.contains(needle), "{err}");
        assert!(err.contains("organ \""), "{err}");
    }
    // Absent injected activity: absolute doses still come, Gy/GBq does not, and it is said.
    let no_activity = doc(good).replace(r#""injected_activity_MBq": 7400,"#, "");
    let input = TacsInput::parse(&no_activity).expect("valid without injected activity");
    let result = run(&input);
    assert!(result.injected_activity_mbq.is_none());
    let liver = &result.organs["liver"];
    assert!(liver.absorbed_dose_gy.is_some() && liver.absorbed_dose_gy_per_gbq.is_none());
    assert!(result
        .warnings
        .iter()
        .any(|w| w.contains("no injected activity")));
    let negative = doc(good).replace(
        r#""injected_activity_MBq": 7400"#,
        r#""injected_activity_MBq": -5"#,
    );
    let err = TacsInput::parse(&negative).expect_err("negative");
    assert!(
        matches!(
            err,
            InputError::Field {
                field: "injected_activity_MBq",
                ..
            }
        ),
        "{err}"
    );
    let other = doc(good).replace("Lu-177", "Y-90");
    assert!(TacsInput::parse(&other)
        .expect_err("nuclide")
        .to_string()
        .contains("radionuclide"));
    let phantom = doc(good).replace("ICRP110_AM", "MIRD");
    assert!(TacsInput::parse(&phantom)
        .expect_err("phantom")
        .to_string()
        .contains("phantom"));
}
