//! Everything drawn for one phantom patient from its seed: anatomy, biokinetics, camera and
//! positioning per time point.

use mrt_core::RigidTransform;
use serde::Serialize;

use crate::anatomy::{Anatomy, AnatomyRevision};
use crate::biokinetics::{self, UptakeWashout, WholeBody};
use crate::rng::Rng;

/// Size preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// ~128×128×100 CT at 3 mm: for tests.
    Small,
    /// 512×512 CT at 0.9 mm, 2.5 mm slices, 35 cm.
    Clinical,
}

/// Generator options (the CLI flags).
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Seed: same seed, same phantom, byte for byte.
    pub seed: u64,
    /// Size preset.
    pub preset: Preset,
    /// SPECT/CT time points, hours after injection.
    pub timepoints_h: Vec<f64>,
    /// SPECT point spread function FWHM (mm).
    pub psf_fwhm_mm: f64,
    /// Largest SPECT↔CT misalignment: translation up to MAX mm (norm), rotation up to MAX/10 degrees
    /// per axis; 0 = aligned.
    pub misalign_mm: f64,
    /// Add liver tumours.
    pub tumours: bool,
    /// Revision of the procedural anatomy.
    pub anatomy_revision: AnatomyRevision,
}

impl Options {
    /// Defaults: small, 4/24/72/168 h, 11 mm PSF, aligned, tumours on, the latest anatomy.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            preset: Preset::Small,
            timepoints_h: vec![4.0, 24.0, 72.0, 168.0],
            psf_fwhm_mm: 11.0,
            misalign_mm: 0.0,
            tumours: true,
            anatomy_revision: AnatomyRevision::default(),
        }
    }
}

/// Organ kinetics of the patient.
#[derive(Debug, Clone, Serialize)]
pub struct Kinetics {
    /// Liver parenchyma.
    pub liver: UptakeWashout,
    /// Left kidney.
    pub kidney_left: UptakeWashout,
    /// Right kidney.
    pub kidney_right: UptakeWashout,
    /// Spleen.
    pub spleen: UptakeWashout,
    /// Each liver tumour.
    pub tumours: Vec<UptakeWashout>,
    /// Whole-body retention.
    pub whole_body: WholeBody,
}

/// One imaging session.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// Hours after injection of the SPECT start.
    pub hours_post_injection: f64,
    /// Body frame → CT world: where the patient lies on the table this time.
    pub body_to_world: RigidTransform,
    /// SPECT world → CT world (the misalignment a registration must find; identity if aligned).
    pub spect_to_ct: RigidTransform,
    /// CT noise SD (HU).
    pub ct_noise_hu: f64,
}

/// Camera model.
#[derive(Debug, Clone, Serialize)]
pub struct Camera {
    /// System sensitivity, counts per second per MBq (LN(6.0, 0.2), biokinetics reference §4).
    pub sensitivity_cps_per_mbq: f64,
    /// Total acquisition duration (s): 120 projections over 2 heads.
    pub acquisition_s: f64,
    /// Fraction of emitted photons that reach the reconstruction after attenuation and scatter
    /// windows (U(0.3, 0.6)); the calibration divides it out again.
    pub detection_fraction: f64,
}

/// The patient.
#[derive(Debug, Clone)]
pub struct Patient {
    /// Options it was drawn with.
    pub options: Options,
    /// Anatomy.
    pub anatomy: Anatomy,
    /// Injected activity (MBq): N(7400, 150) in [7000, 7800].
    pub injected_mbq: f64,
    /// Body mass (kg), for the whole-body remainder concentration.
    pub body_mass_kg: f64,
    /// Organ kinetics.
    pub kinetics: Kinetics,
    /// Camera.
    pub camera: Camera,
    /// Contrast-enhanced CT (portal venous) or not.
    pub contrast: bool,
    /// One per time point.
    pub sessions: Vec<Session>,
}

fn random_rigid(rng: &mut Rng, max_mm: f64, max_deg: f64) -> RigidTransform {
    RigidTransform {
        rotation_deg: [0, 1, 2].map(|_| rng.range(-max_deg, max_deg)),
        translation_mm: [0, 1, 2].map(|_| rng.range(-max_mm, max_mm)),
    }
}

impl Patient {
    /// Draws the patient for `options.seed`.
    pub fn sample(options: Options) -> Self {
        let mut rng = Rng::new(options.seed, 1);
        let anatomy = Anatomy::sample(&mut rng, options.tumours, options.anatomy_revision);
        let mut rng = Rng::new(options.seed, 2);
        let injected_mbq = rng.normal_in(7400.0, 150.0, 7000.0, 7800.0);
        let [lat, ap] = anatomy.body_semi_axes_mm;
        let body_mass_kg = (75.0 * (lat / 162.0) * (ap / 115.0)).clamp(45.0, 140.0);
        let kidney_volume = |i: usize| {
            let b = &anatomy.kidneys[i].outer;
            crate::shapes::superquadric_volume(b.semi_axes, b.exponent) / 1000.0
        };
        let kinetics = Kinetics {
            liver: biokinetics::liver(&mut rng, injected_mbq),
            kidney_left: biokinetics::kidney(&mut rng, injected_mbq, kidney_volume(0)),
            kidney_right: biokinetics::kidney(&mut rng, injected_mbq, kidney_volume(1)),
            spleen: biokinetics::spleen(&mut rng, injected_mbq),
            tumours: anatomy
                .tumours
                .iter()
                .map(|t| {
                    biokinetics::lesion(
                        &mut rng,
                        injected_mbq,
                        crate::shapes::superquadric_volume(t.semi_axes, 2.0) / 1000.0,
                    )
                })
                .collect(),
            whole_body: biokinetics::whole_body(&mut rng),
        };
        let camera = Camera {
            sensitivity_cps_per_mbq: rng.lognormal_in(6.0, 0.2, 3.0, 12.0),
            acquisition_s: 60.0 * rng.range(20.0, 30.0),
            detection_fraction: rng.range(0.3, 0.6),
        };
        let contrast = rng.uniform() < 0.25;
        let sessions = options
            .timepoints_h
            .iter()
            .map(|&h| Session {
                hours_post_injection: h,
                body_to_world: random_rigid(&mut rng, 20.0, 5.0),
                spect_to_ct: if options.misalign_mm > 0.0 {
                    random_rigid(
                        &mut rng,
                        options.misalign_mm / 3f64.sqrt(),
                        options.misalign_mm / 10.0,
                    )
                } else {
                    RigidTransform::identity()
                },
                ct_noise_hu: rng.range(10.0, 30.0),
            })
            .collect();
        Self {
            options,
            anatomy,
            injected_mbq,
            body_mass_kg,
            kinetics,
            camera,
            contrast,
            sessions,
        }
    }
}
