//! Acceptance of the dosimetry engine on digital phantoms with their true masks: organ activity by
//! GTM from the simulated quantitative SPECT (misaligned by up to 5 mm, mapped with the true
//! SPECT→CT transform), masses from the CT (HU → density), TAC fits by AICc, S-value doses, all
//! compared with the phantom's independent ground truth.

use mrt_dosimetry::density::organ_mass;
use mrt_dosimetry::input::{FitChoice, OrganInput, TacsInput};
use mrt_dosimetry::quantify::{body_regions, fractional_masks, quantify};
use mrt_io::nifti_io::read_nifti;
use mrt_phantom::{write_phantom, Format, Options};

const ORGANS: [(u8, &str); 4] = [
    (1, "liver"),
    (2, "kidney_left"),
    (3, "kidney_right"),
    (4, "spleen"),
];

#[test]
fn organ_doses_on_ten_phantoms_with_true_masks() {
    let table = mrt_reference::hu_density_table();
    let mut errors: Vec<(String, f64)> = Vec::new();
    println!("| seed | organ | true Gy | ours Gy | error % | method |");
    println!("|---|---|---|---|---|---|");
    for seed in 201..=210u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = Options::new(seed);
        o.misalign_mm = 5.0;
        let truth = write_phantom(dir.path(), o, Format::Nifti).expect("phantom");
        let mut activities = vec![Vec::new(); ORGANS.len()];
        let mut masses = vec![0.0; ORGANS.len()];
        for (n, tp) in truth.timepoints.iter().enumerate() {
            let spect = read_nifti(&dir.path().join(&tp.spect))
                .expect("spect")
                .volume;
            let ct = read_nifti(&dir.path().join(&tp.ct)).expect("ct").volume;
            let truth_labels = read_nifti(&dir.path().join(&tp.labels))
                .expect("labels")
                .volume;
            // Regions: organs and tumours as labelled; the rest of the body split into soft
            // tissue (255) and low-density lung/gas/fat (254) by CT number.
            let labels = truth_labels.map(|&l| l as u8);
            let regions_map = body_regions(&labels, &ct, &[1, 2, 3, 4, 5]).expect("same grid");
            let regions = [1u8, 2, 3, 4, 5, 255, 254];
            let masks = fractional_masks(&regions_map, spect.grid(), &tp.spect_to_ct, &regions, 3);
            let q = quantify(&spect, &masks, &regions, truth.psf_fwhm_mm);
            for (i, (label, _)) in ORGANS.iter().enumerate() {
                let r = q.iter().find(|r| r.label == *label).expect("organ region");
                activities[i].push(r.gtm_mbq.expect("GTM solvable"));
                if n == 0 {
                    masses[i] = organ_mass(&labels, &ct, *label, &table).mass_g;
                }
            }
        }
        let input = TacsInput {
            schema: mrt_dosimetry::input::SCHEMA.into(),
            radionuclide: "Lu-177".into(),
            injected_activity_mbq: Some(truth.injected_activity_mbq),
            phantom: truth.phantom.into(),
            calibration_uncertainty_percent: None,
            organs: ORGANS
                .iter()
                .enumerate()
                .map(|(i, (_, name))| OrganInput {
                    name: name.to_string(),
                    mass_g: masses[i],
                    times_h: truth
                        .timepoints
                        .iter()
                        .map(|t| t.hours_post_injection)
                        .collect(),
                    activity_mbq: activities[i].clone(),
                    fit_model: FitChoice::Auto,
                    activity_uncertainty_percent: Some(5.0),
                    mass_uncertainty_percent: None,
                    recovery_uncertainty_percent: None,
                    previous_cycles: Vec::new(),
                })
                .collect(),
        };
        input.validate().expect("valid input");
        let result = mrt_dosimetry::run(&input);
        for (_, name) in ORGANS {
            let ours = result.organs[name].absorbed_dose_gy.expect("dose");
            let want = truth.organs[name].absorbed_dose_gy;
            let err = ours / want - 1.0;
            let model = result.organs[name]
                .fit
                .as_ref()
                .map(|f| f.model.clone())
                .unwrap_or_default();
            println!(
                "| {seed} | {name} | {want:.3} | {ours:.3} | {:+.1} | {model} |",
                err * 100.0
            );
            errors.push((name.to_string(), err));
        }
    }
    for (_, name) in ORGANS {
        let e: Vec<f64> = errors
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, e)| *e)
            .collect();
        let mae = e.iter().map(|x| x.abs()).sum::<f64>() / e.len() as f64;
        let worst = e.iter().map(|x| x.abs()).fold(0.0, f64::max);
        println!(
            "{name}: mean absolute error {:.2} %, worst {:.2} %",
            mae * 100.0,
            worst * 100.0
        );
        assert!(mae <= 0.05, "{name}: MAE {mae}");
        assert!(worst <= 0.10, "{name}: worst {worst}");
    }
}
