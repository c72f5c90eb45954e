//! Procedural abdominal anatomy in the patient's body frame (LPS mm: +x patient left,
//! +y posterior, +z head; origin near the centre of the simulated abdominal section).
//!
//! Variability: body habitus (superelliptic outline, fat and muscle thickness), organ volumes
//! (lognormal around adult CT volumetry; ../shared/reference/biokinetics-177Lu.md §5: Geraghty
//! 2004 kidneys, Caglar 2014 / Jasper 2019 spleen and liver), positions, orientations and smooth
//! random deformation of every organ.

use mrt_core::linalg::Vec3;
use serde::Serialize;

use crate::rng::Rng;
use crate::shapes::{Blob, BlobSpec};
use crate::tissue::{Side, Tissue};

pub use mrt_reference::Sex;

/// One kidney: outer shape (cortex), inner medulla and pelvis.
#[derive(Debug, Clone)]
pub struct Kidney {
    /// Which side.
    pub side: Side,
    /// Outer surface.
    pub outer: Blob,
    /// Pelvis (urine), medial.
    pub pelvis: Blob,
}

/// Tubular structure along z (aorta, vena cava).
#[derive(Debug, Clone, Serialize)]
pub struct Vessel {
    /// x, y of the centre line at z = 0 (mm).
    pub centre: [f64; 2],
    /// Drift of x, y per mm of z.
    pub slope: [f64; 2],
    /// Radius (mm).
    pub radius_mm: f64,
}

impl Vessel {
    fn contains(&self, p: Vec3) -> bool {
        let dx = p[0] - (self.centre[0] + self.slope[0] * p[2]);
        let dy = p[1] - (self.centre[1] + self.slope[1] * p[2]);
        dx * dx + dy * dy <= self.radius_mm * self.radius_mm
    }
}

/// The patient's anatomy.
#[derive(Debug, Clone)]
pub struct Anatomy {
    /// Sex (reference phantom).
    pub sex: Sex,
    /// Body outline semi-axes (lateral, AP) in mm at z = 0.
    pub body_semi_axes_mm: [f64; 2],
    /// Superellipse exponent of the outline.
    pub body_exponent: f64,
    /// Subcutaneous fat thickness (mm).
    pub fat_mm: f64,
    /// Abdominal wall muscle thickness (mm).
    pub muscle_mm: f64,
    /// Axial extent of the body section simulated (mm, z from −half to +half).
    pub half_length_mm: f64,
    /// Liver.
    pub liver: Blob,
    /// Liver tumours.
    pub tumours: Vec<Blob>,
    /// Spleen.
    pub spleen: Blob,
    /// Kidneys, left then right.
    pub kidneys: [Kidney; 2],
    /// Stomach.
    pub stomach: Blob,
    /// Bowel loops.
    pub bowel: Vec<Blob>,
    /// Lungs (bases).
    pub lungs: [Blob; 2],
    /// Aorta.
    pub aorta: Vessel,
    /// Inferior vena cava.
    pub vena_cava: Vessel,
    /// Spine centre (x, y) and vertebral body radius.
    pub spine: (f64, f64, f64),
    /// z above which ribs appear.
    pub rib_start_z: f64,
    /// Visceral fat pattern: wave vectors (rad/mm) and phases of three plane waves.
    pub visceral_fat_waves: [(Vec3, f64); 3],
    /// Threshold of the visceral fat pattern (higher: less fat).
    pub visceral_fat_threshold: f64,
}

impl Anatomy {
    /// Draws a patient. `with_tumours` adds 0-3 liver tumours.
    pub fn sample(rng: &mut Rng, with_tumours: bool) -> Self {
        let sex = if rng.uniform() < 0.5 {
            Sex::Male
        } else {
            Sex::Female
        };
        // Female medians ~0.85 of male (Geraghty: kidney 156.5 vs 193.1 mL; Caglar: spleen 180 vs
        // 238 mL; liver 1411 vs 1710 mL); the generator's pooled medians are scaled ±8 %.
        let sex_scale = if sex == Sex::Male { 1.08 } else { 0.92 };
        let lateral = rng.range(140.0, 185.0) * if sex == Sex::Male { 1.03 } else { 0.97 };
        let ap = rng.range(95.0, 135.0);
        let fat_mm = rng.range(8.0, 35.0);
        let muscle_mm = rng.range(6.0, 14.0);
        let inner_lat = lateral - fat_mm - muscle_mm;
        let inner_ap = ap - fat_mm - muscle_mm;

        // Volumes, mL (biokinetics reference, "Volumes" row).
        let v_kidney = [0, 1].map(|_| rng.lognormal_in(175.0 * sex_scale, 0.20, 100.0, 300.0));
        let v_liver = rng.lognormal_in(1550.0 * sex_scale, 0.18, 900.0, 2600.0);
        let v_spleen = rng.lognormal_in(200.0 * sex_scale, 0.40, 60.0, 800.0);

        let jitter = |rng: &mut Rng, s: f64| s * rng.normal();
        let liver = Blob::random(
            BlobSpec {
                centre: [
                    -0.45 * inner_lat + jitter(rng, 6.0),
                    -0.1 * inner_ap + jitter(rng, 5.0),
                    75.0 + jitter(rng, 8.0),
                ],
                shape: [1.0, 0.85, 0.75],
                volume_ml: v_liver,
                exponent: rng.range(2.0, 2.6),
                angles_deg: [0.0, 0.0, -15.0],
                jitter_deg: 6.0,
                deform: 0.10,
            },
            rng,
        );
        let spleen = Blob::random(
            BlobSpec {
                centre: [
                    0.62 * inner_lat + jitter(rng, 5.0),
                    0.35 * inner_ap + jitter(rng, 5.0),
                    70.0 + jitter(rng, 8.0),
                ],
                shape: [0.6, 0.4, 1.0],
                volume_ml: v_spleen,
                exponent: 2.2,
                angles_deg: [0.0, 20.0, 30.0],
                jitter_deg: 8.0,
                deform: 0.10,
            },
            rng,
        );
        let spine_y = 0.62 * inner_ap;
        let kidney = |rng: &mut Rng, side: Side, volume: f64| {
            let sx = if side == Side::Left { 1.0 } else { -1.0 };
            let z = if side == Side::Left { 15.0 } else { 0.0 } + jitter(rng, 8.0);
            let centre = [
                sx * (62.0 + jitter(rng, 5.0)),
                spine_y - 15.0 + jitter(rng, 4.0),
                z,
            ];
            let outer = Blob::random(
                BlobSpec {
                    centre,
                    shape: [0.55, 0.45, 1.0],
                    volume_ml: volume,
                    exponent: 2.0,
                    angles_deg: [0.0, sx * 12.0, sx * 25.0],
                    jitter_deg: 5.0,
                    deform: 0.06,
                },
                rng,
            );
            // Pelvis: small, medial (towards the spine).
            let pelvis_centre = [
                centre[0] - sx * 0.45 * outer.semi_axes[0],
                centre[1],
                centre[2],
            ];
            let pelvis = Blob::random(
                BlobSpec {
                    centre: pelvis_centre,
                    shape: [0.6, 0.5, 1.0],
                    volume_ml: volume * 0.05,
                    exponent: 2.0,
                    angles_deg: [0.0, 0.0, sx * 25.0],
                    jitter_deg: 5.0,
                    deform: 0.05,
                },
                rng,
            );
            Kidney {
                side,
                outer,
                pelvis,
            }
        };
        let kidneys = [
            kidney(rng, Side::Left, v_kidney[0]),
            kidney(rng, Side::Right, v_kidney[1]),
        ];

        let tumours = if with_tumours {
            let n = (rng.uniform() * 4.0) as usize;
            (0..n)
                .map(|_| {
                    let v = rng.lognormal_in(8.0, 1.0, 0.5, 80.0);
                    let off = [0, 1, 2].map(|a| 0.45 * liver.semi_axes[a] * rng.range(-1.0, 1.0));
                    let c = [
                        liver.centre[0] + off[0],
                        liver.centre[1] + off[1],
                        liver.centre[2] + off[2],
                    ];
                    Blob::random(
                        BlobSpec {
                            centre: c,
                            shape: [1.0, 1.0, 1.0],
                            volume_ml: v,
                            exponent: 2.0,
                            angles_deg: [0.0; 3],
                            jitter_deg: 20.0,
                            deform: 0.08,
                        },
                        rng,
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let stomach = Blob::random(
            BlobSpec {
                centre: [
                    0.3 * inner_lat + jitter(rng, 8.0),
                    -0.35 * inner_ap + jitter(rng, 5.0),
                    80.0 + jitter(rng, 10.0),
                ],
                shape: [1.0, 0.6, 1.1],
                volume_ml: rng.range(250.0, 700.0),
                exponent: 2.0,
                angles_deg: [0.0, 0.0, 30.0],
                jitter_deg: 10.0,
                deform: 0.12,
            },
            rng,
        );
        let bowel = (0..rng.range(5.0, 9.0) as usize)
            .map(|_| {
                let c = [
                    rng.range(-0.6, 0.6) * inner_lat,
                    rng.range(-0.6, 0.2) * inner_ap,
                    rng.range(-140.0, -10.0),
                ];
                Blob::random(
                    BlobSpec {
                        centre: c,
                        shape: [0.45, 0.45, 1.0],
                        volume_ml: rng.range(60.0, 250.0),
                        exponent: 2.0,
                        angles_deg: [rng.range(0.0, 180.0), rng.range(0.0, 180.0), 0.0],
                        jitter_deg: 0.0,
                        deform: 0.15,
                    },
                    rng,
                )
            })
            .collect();
        let lung = |rng: &mut Rng, sx: f64| {
            Blob::random(
                BlobSpec {
                    centre: [
                        sx * 0.5 * inner_lat,
                        0.1 * inner_ap,
                        215.0 + jitter(rng, 10.0),
                    ],
                    shape: [0.8, 1.0, 1.3],
                    volume_ml: rng.range(1800.0, 2600.0),
                    exponent: 2.0,
                    angles_deg: [0.0; 3],
                    jitter_deg: 3.0,
                    deform: 0.05,
                },
                rng,
            )
        };
        let lungs = [lung(rng, 1.0), lung(rng, -1.0)];
        let aorta = Vessel {
            centre: [14.0 + jitter(rng, 3.0), spine_y - 32.0],
            slope: [jitter(rng, 0.03), jitter(rng, 0.03)],
            radius_mm: rng.range(9.0, 13.0),
        };
        let vena_cava = Vessel {
            centre: [-22.0 + jitter(rng, 3.0), spine_y - 36.0],
            slope: [jitter(rng, 0.03), jitter(rng, 0.03)],
            radius_mm: rng.range(9.0, 13.0),
        };
        Self {
            sex,
            body_semi_axes_mm: [lateral, ap],
            body_exponent: rng.range(2.2, 3.0),
            fat_mm,
            muscle_mm,
            half_length_mm: 260.0,
            liver,
            tumours,
            spleen,
            kidneys,
            stomach,
            bowel,
            lungs,
            aorta,
            vena_cava,
            spine: (0.0, spine_y, rng.range(17.0, 22.0)),
            rib_start_z: rng.range(30.0, 70.0),
            visceral_fat_waves: [0, 1, 2].map(|_| {
                let dir = [rng.normal(), rng.normal(), 0.5 * rng.normal()];
                let norm = mrt_core::linalg::norm(dir).max(1e-9);
                let k = rng.range(0.025, 0.06);
                (
                    dir.map(|d| d / norm * k),
                    rng.range(0.0, std::f64::consts::TAU),
                )
            }),
            visceral_fat_threshold: rng.range(0.1, 0.45),
        }
    }

    /// Normalised radial position in the body outline (1 on the skin).
    fn body_radius(&self, p: Vec3) -> f64 {
        let n = self.body_exponent;
        let [a, b] = self.body_semi_axes_mm;
        // Gentle narrowing towards the thorax and pelvis.
        let taper = 1.0 - 0.05 * (p[2] / 250.0).powi(2);
        ((p[0] / (a * taper)).abs().powf(n) + (p[1] / (b * taper)).abs().powf(n)).powf(1.0 / n)
    }

    /// The tissue at body-frame point `p`.
    pub fn tissue_at(&self, p: Vec3) -> Tissue {
        if p[2].abs() > self.half_length_mm {
            return Tissue::Air;
        }
        // Cheap rejection outside the outline's bounding box (the taper only narrows it).
        if p[0].abs() > self.body_semi_axes_mm[0] || p[1].abs() > self.body_semi_axes_mm[1] {
            return Tissue::Air;
        }
        let r = self.body_radius(p);
        if r > 1.0 {
            return Tissue::Air;
        }
        let mean_axis = 0.5 * (self.body_semi_axes_mm[0] + self.body_semi_axes_mm[1]);
        let depth_mm = (1.0 - r) * mean_axis;
        if depth_mm < self.fat_mm {
            return Tissue::Fat;
        }
        if depth_mm < self.fat_mm + self.muscle_mm {
            return Tissue::Muscle;
        }
        // Ribs: slanted bands just inside the wall, lateral and posterior, above rib_start_z.
        let wall = self.fat_mm + self.muscle_mm;
        if p[2] > self.rib_start_z
            && depth_mm < wall + 9.0
            && p[1] > -0.4 * self.body_semi_axes_mm[1]
        {
            let phase = (p[2] + 0.25 * p[1]).rem_euclid(24.0);
            if phase < 8.0 {
                return if depth_mm < wall + 2.0
                    || depth_mm > wall + 7.0
                    || !(1.5..=6.5).contains(&phase)
                {
                    Tissue::CorticalBone
                } else {
                    Tissue::CancellousBone
                };
            }
        }
        // Spine: vertebral bodies with cortical shell, discs every 30 mm.
        let (sx, sy, sr) = self.spine;
        let d = ((p[0] - sx).powi(2) + (p[1] - sy).powi(2)).sqrt();
        if d < sr {
            let phase = (p[2] + 1000.0).rem_euclid(30.0);
            if phase < 6.0 {
                return Tissue::Muscle; // intervertebral disc: soft-tissue density
            }
            return if d > sr - 2.0 || !(7.5..=28.5).contains(&phase) {
                Tissue::CorticalBone
            } else {
                Tissue::CancellousBone
            };
        }
        // Posterior elements behind the vertebral body.
        if (p[0] - sx).abs() < 0.45 * sr && p[1] > sy + sr && p[1] < sy + 2.2 * sr {
            return Tissue::CorticalBone;
        }
        for t in &self.tumours {
            if t.contains(p) && self.liver.contains(p) {
                return Tissue::LiverTumour;
            }
        }
        if self.liver.contains(p) {
            return Tissue::Liver;
        }
        if self.spleen.contains(p) {
            return Tissue::Spleen;
        }
        for k in &self.kidneys {
            if let Some(l) = k.outer.level(p) {
                if l <= 1.0 {
                    if k.pelvis.contains(p) {
                        return Tissue::KidneyPelvis(k.side);
                    }
                    return if l > 0.45 {
                        Tissue::KidneyCortex(k.side)
                    } else {
                        Tissue::KidneyMedulla(k.side)
                    };
                }
            }
        }
        if self.aorta.contains(p) {
            return Tissue::Aorta;
        }
        if self.vena_cava.contains(p) {
            return Tissue::VenaCava;
        }
        if let Some(u) = self.stomach.normalized(p) {
            if u[0] * u[0] + u[1] * u[1] + u[2] * u[2] <= 1.0 {
                // Gas rises anteriorly (supine patient: −y is up).
                return if u[1] < -0.6 {
                    Tissue::Gas
                } else {
                    Tissue::Stomach
                };
            }
        }
        for b in &self.bowel {
            if let Some(u) = b.normalized(p) {
                let l = u[0] * u[0] + u[1] * u[1] + u[2] * u[2];
                if l <= 1.0 {
                    return if u[1] < -0.75 && l < 0.9 {
                        Tissue::Gas
                    } else {
                        Tissue::Bowel
                    };
                }
            }
        }
        for l in &self.lungs {
            if l.contains(p) {
                return Tissue::Lung;
            }
        }
        // Visceral fat interleaved with soft tissue (smooth pattern).
        let s: f64 = self
            .visceral_fat_waves
            .iter()
            .map(|(k, phase)| (mrt_core::linalg::dot(*k, p) + phase).sin())
            .sum::<f64>()
            / 3.0;
        if s > self.visceral_fat_threshold {
            Tissue::Fat
        } else {
            Tissue::SoftTissue
        }
    }
}

impl Anatomy {
    /// Index of the liver tumour containing `p`, if any (the one [`Anatomy::tissue_at`] reports).
    pub fn tumour_at(&self, p: Vec3) -> Option<usize> {
        self.tumours.iter().position(|t| t.contains(p))
    }

    /// Bounding box (min, max corners, body frame) of an organ blob, padded by `pad_mm`.
    pub fn blob_box(blob: &Blob, pad_mm: f64) -> (Vec3, Vec3) {
        let r = blob.semi_axes.iter().copied().fold(0.0, f64::max) * 1.25 + pad_mm;
        (blob.centre.map(|c| c - r), blob.centre.map(|c| c + r))
    }
}
