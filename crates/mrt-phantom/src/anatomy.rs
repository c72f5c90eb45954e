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
    /// Outer surface of the perirenal fat around it (anatomy revision 2; `None` in revision 1).
    pub perirenal_fat: Option<Blob>,
}

/// Which version of the procedural anatomy a phantom is drawn with. A seed gives the same
/// phantom within one revision; a revision never changes once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnatomyRevision {
    /// The generator through commit 92c26de: organs may overlap (priority liver > spleen > kidney) and the
    /// kidneys lie bare in soft tissue, so a kidney can touch the liver or spleen with no fat
    /// between them. The segmentation model 1.8.0 was trained on this revision.
    R1,
    /// Revision 1 plus the perirenal fat of real anatomy: each kidney lies in its own fat capsule
    /// (Gerota's fascia), 1.5-14 mm thick with more subcutaneous fat; each kidney moves down (at
    /// most 36 mm), then the liver and the spleen (also away from the liver) sideways, until the
    /// capsules hold at most 2 % of the liver and 4 % of the spleen, and kidney and
    /// capsule take precedence over what still overlaps (a shallow renal impression) instead of
    /// being cut by it. The draws of revision 1 are kept; the capsule thickness is drawn after them.
    #[default]
    R2,
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
    /// Which revision of this generator drew it.
    pub revision: AnatomyRevision,
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
    pub fn sample(rng: &mut Rng, with_tumours: bool, revision: AnatomyRevision) -> Self {
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
                perirenal_fat: None,
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
        let mut anatomy = Self {
            revision,
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
        };
        if revision == AnatomyRevision::R2 {
            // Perirenal fat thickness grows with the body's fat (subcutaneous 8-35 mm): thin
            // patients 1.5-5 mm, where the 3 mm model grid barely resolves it, obese ones up to 14 mm.
            let fat_fraction = (fat_mm - 8.0) / 27.0;
            for k in &mut anatomy.kidneys {
                let thickness_mm = rng.range(1.5, 5.0) + 9.0 * fat_fraction * rng.uniform();
                k.perirenal_fat = Some(k.outer.grown(thickness_mm));
            }
            anatomy.displace_from_kidneys();
        }
        anatomy
    }

    /// Revision 2: separates the kidneys from the liver and spleen, which revision 1's blobs
    /// could overlap by up to ~70 % of the spleen. First each kidney (with pelvis and capsule)
    /// moves down, up to [`KIDNEY_DESCENT_MAX_MM`], until its capsule holds at most
    /// [`LIVER_IN_CAPSULES`] of the liver and [`SPLEEN_IN_CAPSULES`] of the spleen; what overlap
    /// remains, the liver (with its tumours), then the spleen (also away from the liver) resolve
    /// by moving sideways. What still overlaps is a shallow renal impression, as in real anatomy.
    fn displace_from_kidneys(&mut self) {
        self.lower_kidneys();
        let capsules: Vec<Blob> = self
            .kidneys
            .iter()
            .map(|k| k.perirenal_fat.clone().unwrap_or_else(|| k.outer.clone()))
            .collect();
        let shift = displacement(&self.liver, &capsules, LIVER_IN_CAPSULES);
        self.liver.centre = mrt_core::linalg::add(self.liver.centre, shift);
        for t in &mut self.tumours {
            t.centre = mrt_core::linalg::add(t.centre, shift);
        }
        // The spleen also yields to the (moved) liver, which revision 1 let cut into it.
        let mut obstacles = capsules;
        obstacles.push(self.liver.clone());
        let shift = displacement(&self.spleen, &obstacles, SPLEEN_IN_CAPSULES);
        self.spleen.centre = mrt_core::linalg::add(self.spleen.centre, shift);
    }

    /// Moves each kidney down in 2 mm steps (at most [`KIDNEY_DESCENT_MAX_MM`]) until its capsule
    /// holds no more of the liver and spleen than the limits allow.
    fn lower_kidneys(&mut self) {
        use mrt_core::linalg::add;
        const STEP_MM: f64 = 2.0;
        let organs = [
            (self.liver.clone(), LIVER_IN_CAPSULES),
            (self.spleen.clone(), SPLEEN_IN_CAPSULES),
        ];
        let organ_points: Vec<(Vec<Vec3>, f64)> = organs
            .iter()
            .map(|(b, limit)| (Anatomy::lattice_points(b, 3.0), *limit))
            .collect();
        for k in &mut self.kidneys {
            let Some(capsule) = k.perirenal_fat.clone() else {
                continue;
            };
            let mut descent_mm = 0.0;
            while descent_mm < KIDNEY_DESCENT_MAX_MM {
                let moved = add(capsule.centre, [0.0, 0.0, -descent_mm]);
                let mut probe = capsule.clone();
                probe.centre = moved;
                let too_much = organ_points.iter().any(|(points, limit)| {
                    let inside = points.iter().filter(|&&p| probe.contains(p)).count();
                    inside as f64 > limit * points.len().max(1) as f64
                });
                if !too_much {
                    break;
                }
                descent_mm += STEP_MM;
            }
            let down = [0.0, 0.0, -descent_mm];
            k.outer.centre = add(k.outer.centre, down);
            k.pelvis.centre = add(k.pelvis.centre, down);
            if let Some(fat) = &mut k.perirenal_fat {
                fat.centre = add(fat.centre, down);
            }
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
        if self.revision == AnatomyRevision::R2 {
            if let Some(t) = self.kidney_at(p) {
                return t;
            }
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
        if self.revision == AnatomyRevision::R1 {
            if let Some(t) = self.kidney_at(p) {
                return t;
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

/// Largest fraction of the spleen's volume the kidney capsules and the liver may take (revision 2).
pub const SPLEEN_IN_CAPSULES: f64 = 0.04;
/// Largest fraction of the liver's volume a kidney capsule may take (revision 2).
pub const LIVER_IN_CAPSULES: f64 = 0.02;
/// How far (mm) revision 2 may move a kidney down, out of the liver and spleen (about one
/// vertebra: real kidneys lie a vertebra higher or lower from person to person).
pub const KIDNEY_DESCENT_MAX_MM: f64 = 36.0;

/// Offsets (mm) from `blob`'s centre of the points of a 3 mm lattice inside it.
fn lattice_offsets(blob: &Blob) -> Vec<Vec3> {
    Anatomy::lattice_points(blob, 3.0)
        .into_iter()
        .map(|p| mrt_core::linalg::sub(p, blob.centre))
        .collect()
}

/// Translation (mm) that moves `blob` out of `obstacles` until at most `max_fraction` of its
/// volume lies inside them: 2 mm steps away from the obstacles' centres (their z difference
/// weighted 0.35), each weighted by how much of the blob it holds, for at most 40 steps (80 mm).
fn displacement(blob: &Blob, obstacles: &[Blob], max_fraction: f64) -> Vec3 {
    use mrt_core::linalg::{add, norm, scale, sub};
    const STEP_MM: f64 = 2.0;
    const Z_WEIGHT: f64 = 0.35;
    let offsets = lattice_offsets(blob);
    if offsets.is_empty() {
        return [0.0; 3];
    }
    let mut shift = [0.0; 3];
    for _ in 0..40 {
        let centre = add(blob.centre, shift);
        let counts: Vec<usize> = obstacles
            .iter()
            .map(|o| {
                offsets
                    .iter()
                    .filter(|&&d| o.contains(add(centre, d)))
                    .count()
            })
            .collect();
        let inside: usize = counts.iter().sum();
        if inside as f64 <= max_fraction * offsets.len() as f64 {
            break;
        }
        let mut direction = [0.0; 3];
        for (o, &c) in obstacles.iter().zip(&counts) {
            let away = sub(centre, o.centre);
            // Mostly sideways: the body section is short in z, and real spleens and livers lie
            // beside and in front of the kidneys more than above them.
            let away = [away[0], away[1], Z_WEIGHT * away[2]];
            let length = norm(away).max(1e-9);
            direction = add(direction, scale(away, c as f64 / length));
        }
        let length = norm(direction);
        if length < 1e-12 {
            break;
        }
        shift = add(shift, scale(direction, STEP_MM / length));
    }
    shift
}

impl Anatomy {
    /// Kidney tissue, or the fat of its capsule, at `p`; `None` outside both kidneys' capsules.
    fn kidney_at(&self, p: Vec3) -> Option<Tissue> {
        for k in &self.kidneys {
            if let Some(l) = k.outer.level(p) {
                if l <= 1.0 {
                    if k.pelvis.contains(p) {
                        return Some(Tissue::KidneyPelvis(k.side));
                    }
                    return Some(if l > 0.45 {
                        Tissue::KidneyCortex(k.side)
                    } else {
                        Tissue::KidneyMedulla(k.side)
                    });
                }
            }
        }
        self.kidneys
            .iter()
            .any(|k| k.perirenal_fat.as_ref().is_some_and(|f| f.contains(p)))
            .then_some(Tissue::Fat)
    }

    /// Index of the liver tumour containing `p`, if any (the one [`Anatomy::tissue_at`] reports).
    pub fn tumour_at(&self, p: Vec3) -> Option<usize> {
        self.tumours.iter().position(|t| t.contains(p))
    }

    /// The points inside `blob` of a lattice with spacing `step_mm` anchored at the low corner of
    /// its [`Anatomy::blob_box`] (for volume fractions and overlaps).
    pub fn lattice_points(blob: &Blob, step_mm: f64) -> Vec<Vec3> {
        let (lo, hi) = Self::blob_box(blob, 0.0);
        let n = |a: usize| ((hi[a] - lo[a]) / step_mm).ceil() as usize + 1;
        let mut out = Vec::new();
        for k in 0..n(2) {
            for j in 0..n(1) {
                for i in 0..n(0) {
                    let p = [
                        lo[0] + i as f64 * step_mm,
                        lo[1] + j as f64 * step_mm,
                        lo[2] + k as f64 * step_mm,
                    ];
                    if blob.contains(p) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }

    /// Bounding box (min, max corners, body frame) of an organ blob, padded by `pad_mm`.
    pub fn blob_box(blob: &Blob, pad_mm: f64) -> (Vec3, Vec3) {
        let r = blob.semi_axes.iter().copied().fold(0.0, f64::max) * 1.25 + pad_mm;
        (blob.centre.map(|c| c - r), blob.centre.map(|c| c + r))
    }
}
