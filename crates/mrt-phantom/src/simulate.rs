//! Image formation: CT (HU), truth labels and quantitative SPECT (Bq/mL) for one time point.
//!
//! Frames: the anatomy lives in the body frame; `Session::body_to_world` places it in the CT
//! world for that visit; the SPECT shows the CT world through `Session::spect_to_ct`
//! (SPECT world → CT world). SPECT formation: true activity concentration sampled on a fine grid
//! aligned with the SPECT voxels (a sub-division factor per axis) → 3D Gaussian PSF blur →
//! average over each SPECT voxel → Poisson counts from sensitivity × duration × detection
//! fraction → back to Bq/mL at acquisition time (not decay corrected).

use std::collections::BTreeMap;

use mrt_core::filter::{gaussian_blur, Edge};
use mrt_core::grid::AffineMap;
use mrt_core::linalg::Vec3;
use mrt_core::{Grid, Volume};
use rayon::prelude::*;
use serde::Serialize;

use crate::anatomy::Anatomy;
use crate::patient::{Patient, Preset, Session};
use crate::rng::Rng;
use crate::tissue::{label, Tissue};

/// Image grids of a preset.
#[derive(Debug, Clone)]
pub struct Geometry {
    /// CT grid (same for every visit: the patient moves, not the scanner).
    pub ct: Grid,
    /// SPECT grid.
    pub spect: Grid,
    /// Sub-division of SPECT voxels for the true activity sampling.
    pub fine_factor: usize,
    /// CT in-plane blur (FWHM, mm).
    pub ct_blur_fwhm_mm: f64,
    /// Spacing of the body-frame raster used to measure organ volumes (mm).
    pub volume_raster_mm: f64,
}

fn centred(dims: [usize; 3], spacing: Vec3) -> Grid {
    let origin = [0, 1, 2].map(|a| -(dims[a] as f64 - 1.0) / 2.0 * spacing[a]);
    Grid::axis_aligned(dims, spacing, origin).expect("preset grids are valid")
}

impl Geometry {
    /// Grids of a preset.
    pub fn for_preset(preset: Preset) -> Self {
        let spect = centred([128, 128, 84], [4.7952; 3]);
        match preset {
            Preset::Small => Self {
                ct: centred([128, 128, 100], [3.0, 3.0, 3.0]),
                spect,
                fine_factor: 2,
                ct_blur_fwhm_mm: 2.0,
                volume_raster_mm: 1.25,
            },
            Preset::Clinical => Self {
                ct: centred([512, 512, 140], [0.9, 0.9, 2.5]),
                spect,
                fine_factor: 2,
                ct_blur_fwhm_mm: 1.0,
                volume_raster_mm: 1.0,
            },
        }
    }
}

/// Organ volumes measured on a body-frame raster (mL), per truth label.
pub fn organ_volumes_ml(anatomy: &Anatomy, raster_mm: f64) -> BTreeMap<u8, f64> {
    let mut out = BTreeMap::new();
    let organs: [(u8, &crate::shapes::Blob); 4] = [
        (label::LIVER, &anatomy.liver),
        (label::SPLEEN, &anatomy.spleen),
        (label::KIDNEY_LEFT, &anatomy.kidneys[0].outer),
        (label::KIDNEY_RIGHT, &anatomy.kidneys[1].outer),
    ];
    for (lab, blob) in organs {
        let (lo, hi) = Anatomy::blob_box(blob, 20.0);
        let n = [0, 1, 2].map(|a| ((hi[a] - lo[a]) / raster_mm).ceil() as usize);
        let count: usize = (0..n[2])
            .into_par_iter()
            .map(|k| {
                let mut c = 0;
                for j in 0..n[1] {
                    for i in 0..n[0] {
                        let p = [
                            lo[0] + (i as f64 + 0.5) * raster_mm,
                            lo[1] + (j as f64 + 0.5) * raster_mm,
                            lo[2] + (k as f64 + 0.5) * raster_mm,
                        ];
                        if anatomy.tissue_at(p).label() == lab {
                            c += 1;
                        }
                    }
                }
                c
            })
            .sum();
        out.insert(lab, count as f64 * raster_mm.powi(3) / 1000.0);
    }
    out
}

/// Relative share of the remainder concentration a tissue receives (blood-rich soft tissue 1,
/// fat and lung 0.3, cortical bone 0.1, gas and air 0).
fn remainder_weight(t: Tissue) -> f64 {
    match t {
        Tissue::Air | Tissue::Gas => 0.0,
        Tissue::CorticalBone => 0.1,
        Tissue::Fat | Tissue::Lung => 0.3,
        _ => 1.0,
    }
}

/// Smooth per-patient CT texture (HU) at body point `p`.
fn texture_hu(seed: u64, p: Vec3) -> f64 {
    let s = (seed % 1000) as f64;
    4.0 * (0.031 * p[0] + 0.017 * p[1] + s).sin() * (0.023 * p[2] + 0.5 * s).cos()
        + 3.0 * (0.071 * p[1] - 0.043 * p[2] + 0.3 * s).sin()
}

/// What one time point produced.
#[derive(Debug, Clone)]
pub struct TimePointImages {
    /// CT in HU.
    pub ct_hu: Volume<f32>,
    /// Truth labels on the CT grid.
    pub labels: Volume<u8>,
    /// SPECT in Bq/mL.
    pub spect_bq_per_ml: Volume<f32>,
    /// True activity inside the SPECT field of view before blur and noise (MBq).
    pub activity_in_spect_fov_mbq: f64,
    /// Truth facts of this time point.
    pub facts: TimePointFacts,
}

/// Numbers of one time point that go into truth.json.
#[derive(Debug, Clone, Serialize)]
pub struct TimePointFacts {
    /// Organ activity (MBq), by organ name.
    pub organ_activity_mbq: BTreeMap<String, f64>,
    /// Remainder concentration (MBq/mL) at weight 1.
    pub remainder_mbq_per_ml: f64,
}

/// Activities at `t_h` (MBq) of the scored organs and tumours, and the remainder concentration.
pub fn activities(
    patient: &Patient,
    organ_volumes: &BTreeMap<u8, f64>,
    t_h: f64,
) -> (BTreeMap<u8, f64>, Vec<f64>, f64) {
    let k = &patient.kinetics;
    let mut organs = BTreeMap::new();
    organs.insert(label::LIVER, k.liver.activity_mbq(t_h));
    organs.insert(label::KIDNEY_LEFT, k.kidney_left.activity_mbq(t_h));
    organs.insert(label::KIDNEY_RIGHT, k.kidney_right.activity_mbq(t_h));
    organs.insert(label::SPLEEN, k.spleen.activity_mbq(t_h));
    let tumours: Vec<f64> = k.tumours.iter().map(|c| c.activity_mbq(t_h)).collect();
    let retained = k.whole_body.retained_mbq(patient.injected_mbq, t_h);
    let remainder =
        (retained - organs.values().sum::<f64>() - tumours.iter().sum::<f64>()).max(0.0);
    let organ_ml: f64 = organ_volumes.values().sum();
    let remainder_ml = (patient.body_mass_kg * 1000.0 / 1.03 - organ_ml).max(1000.0);
    (organs, tumours, remainder / remainder_ml)
}

/// Region code of a point: tissue index, or 64 + tumour index for tumours.
fn region(anatomy: &Anatomy, p: Vec3) -> u8 {
    let t = anatomy.tissue_at(p);
    if t == Tissue::LiverTumour {
        if let Some(i) = anatomy.tumour_at(p) {
            return 64 + i as u8;
        }
    }
    t.index() as u8
}

/// Renders one time point.
pub fn render(
    patient: &Patient,
    geometry: &Geometry,
    organ_volumes: &BTreeMap<u8, f64>,
    index: usize,
) -> TimePointImages {
    let session = &patient.sessions[index];
    let (ct_hu, labels) = render_ct(patient, geometry, session, index);
    let (spect, in_fov, facts) = render_spect(patient, geometry, organ_volumes, session, index);
    TimePointImages {
        ct_hu,
        labels,
        spect_bq_per_ml: spect,
        activity_in_spect_fov_mbq: in_fov,
        facts,
    }
}

fn render_ct(
    patient: &Patient,
    geometry: &Geometry,
    session: &Session,
    index: usize,
) -> (Volume<f32>, Volume<u8>) {
    let grid = &geometry.ct;
    let world_to_body = session.body_to_world.inverse_affine();
    let index_to_body = world_to_body.compose(&grid.index_to_world_map());
    let [nx, ny, _] = grid.dims;
    let seed = patient.options.seed;
    let mut offsets_rng = Rng::new(seed, 40);
    let offsets: Vec<f64> = Tissue::ALL
        .iter()
        .map(|_| 6.0 * offsets_rng.normal())
        .collect();
    let contrast = patient.contrast;
    let anatomy = &patient.anatomy;
    let mut hu = vec![0.0f32; grid.len()];
    let mut lab = vec![0u8; grid.len()];
    hu.par_chunks_mut(nx * ny)
        .zip(lab.par_chunks_mut(nx * ny))
        .enumerate()
        .for_each(|(k, (hs, ls))| {
            for j in 0..ny {
                for i in 0..nx {
                    let b = index_to_body.apply([i as f64, j as f64, k as f64]);
                    let t = anatomy.tissue_at(b);
                    let mut v = t.hu(contrast);
                    if !matches!(t, Tissue::Air | Tissue::Gas) {
                        v += offsets[t.index()] + texture_hu(seed, b);
                    }
                    hs[i + nx * j] = v as f32;
                    ls[i + nx * j] = t.label();
                }
            }
        });
    let ideal = Volume::new(grid.clone(), hu).expect("sized");
    let mut ct = gaussian_blur(&ideal, geometry.ct_blur_fwhm_mm, Edge::Replicate);
    let sd = session.ct_noise_hu;
    ct.data_mut()
        .par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, slab)| {
            let mut rng = Rng::new(seed, 1000 + 1000 * index as u64 + k as u64);
            for v in slab.iter_mut() {
                *v += (sd * rng.normal()) as f32;
            }
        });
    (ct, Volume::new(grid.clone(), lab).expect("sized"))
}

/// The true activity concentration on a fine grid aligned with the SPECT voxels.
#[derive(Debug, Clone)]
pub struct FineActivity {
    /// MBq/mL on the fine grid.
    pub fine: Volume<f32>,
    /// Sub-division factor per axis.
    pub factor: usize,
    /// SPECT voxel index range `[start, end)` per axis that the fine grid covers (may extend
    /// beyond the SPECT field of view, for blur from outside).
    pub range: [(i64, i64); 3],
}

impl FineActivity {
    /// A fine grid for SPECT voxel ranges `range`, all zero.
    pub fn empty(spect: &Grid, factor: usize, range: [(i64, i64); 3]) -> Self {
        let f = factor as f64;
        let dims = [0, 1, 2].map(|a| (range[a].1 - range[a].0) as usize * factor);
        let spacing = spect.spacing_mm.map(|s| s / f);
        let origin_index = [0, 1, 2].map(|a| range[a].0 as f64 - 0.5 + 0.5 / f);
        // SPECT grids here are axis-aligned; the fine grid shares their direction.
        let origin = spect.index_to_world(origin_index);
        let fine = Grid::new(dims, spacing, origin, spect.direction).expect("fine grid");
        Self {
            fine: Volume::filled(fine, 0.0),
            factor,
            range,
        }
    }

    /// True activity (MBq) of fine voxels whose SPECT voxel lies inside `spect`.
    pub fn activity_in_fov_mbq(&self, spect: &Grid) -> f64 {
        let g = self.fine.grid();
        let f = self.factor;
        let inside = |a: usize, fi: usize| {
            let s = self.range[a].0 + (fi / f) as i64;
            s >= 0 && s < spect.dims[a] as i64
        };
        let mut sum = 0.0f64;
        for k in (0..g.dims[2]).filter(|&k| inside(2, k)) {
            for j in (0..g.dims[1]).filter(|&j| inside(1, j)) {
                for i in (0..g.dims[0]).filter(|&i| inside(0, i)) {
                    sum += f64::from(*self.fine.at(i, j, k));
                }
            }
        }
        sum * g.voxel_volume_mm3() / 1000.0
    }
}

/// Camera image formation from the true concentration: PSF blur, average over SPECT voxels,
/// Poisson counts (`counts_per_mbq` = sensitivity × duration × detection fraction; `None` gives
/// the noise-free expectation), back to Bq/mL.
pub fn form_spect(
    activity: &FineActivity,
    spect: &Grid,
    psf_fwhm_mm: f64,
    counts_per_mbq: Option<f64>,
    seed: u64,
    stream: u64,
) -> Volume<f32> {
    let f = activity.factor;
    let range = activity.range;
    let blurred = gaussian_blur(&activity.fine, psf_fwhm_mm, Edge::Zero);
    let [sx, sy, _] = spect.dims;
    let voxel_ml = spect.voxel_volume_mm3() / 1000.0;
    let f3 = (f * f * f) as f64;
    let mut out = vec![0.0f32; spect.len()];
    out.par_chunks_mut(sx * sy)
        .enumerate()
        .for_each(|(k, slab)| {
            let mut rng = Rng::new(seed, stream + k as u64);
            let fk0 = k as i64 - range[2].0;
            for j in 0..sy {
                let fj0 = j as i64 - range[1].0;
                for i in 0..sx {
                    let fi0 = i as i64 - range[0].0;
                    let inside = [fi0, fj0, fk0]
                        .iter()
                        .zip(&range)
                        .all(|(&v, r)| v >= 0 && v < r.1 - r.0);
                    let mean_mbq_per_ml = if inside {
                        let mut s = 0.0f64;
                        for dk in 0..f {
                            for dj in 0..f {
                                for di in 0..f {
                                    s += f64::from(*blurred.at(
                                        fi0 as usize * f + di,
                                        fj0 as usize * f + dj,
                                        fk0 as usize * f + dk,
                                    ));
                                }
                            }
                        }
                        s / f3
                    } else {
                        0.0
                    };
                    let value = match counts_per_mbq {
                        Some(c) => {
                            let counts = rng.poisson(mean_mbq_per_ml * voxel_ml * c);
                            counts / (voxel_ml * c)
                        }
                        None => mean_mbq_per_ml,
                    };
                    slab[i + sx * j] = (value * 1e6) as f32;
                }
            }
        });
    Volume::new(spect.clone(), out).expect("sized")
}

fn render_spect(
    patient: &Patient,
    geometry: &Geometry,
    organ_volumes: &BTreeMap<u8, f64>,
    session: &Session,
    index: usize,
) -> (Volume<f32>, f64, TimePointFacts) {
    let spect = &geometry.spect;
    let f = geometry.fine_factor;
    let sigma_mm = patient.options.psf_fwhm_mm / mrt_core::filter::FWHM_PER_SIGMA;
    // Fine region: SPECT voxels that can see the body, plus a 4σ margin for blur from outside.
    let half = patient.anatomy.half_length_mm + 40.0;
    // Body extent after repositioning (≤ 20 mm, ≤ 5°) and misalignment: the semi-axes plus a
    // margin that also covers the other axis rotating in (5° of the larger semi-axis ≈ 16 mm).
    let [lat, ap] = patient.anatomy.body_semi_axes_mm;
    let extra = 45.0 + patient.options.misalign_mm;
    let (reach_x, reach_y) = (lat + extra, ap + extra);
    let margin = (4.0 * sigma_mm / spect.spacing_mm[0]).ceil() as i64 + 1;
    let lo_i = spect.world_to_index([-reach_x, -reach_y, -half]);
    let hi_i = spect.world_to_index([reach_x, reach_y, half]);
    let range: [(i64, i64); 3] = [0, 1, 2].map(|a| {
        let n = spect.dims[a] as i64;
        let a0 = (lo_i[a].min(hi_i[a]).floor() as i64).max(0) - margin;
        let a1 = (lo_i[a].max(hi_i[a]).ceil() as i64 + 1).min(n) + margin;
        (a0, a1)
    });
    let mut activity = FineActivity::empty(spect, f, range);
    let fine = activity.fine.grid().clone();
    let spect_to_body: AffineMap = session
        .body_to_world
        .inverse_affine()
        .compose(&session.spect_to_ct.to_affine())
        .compose(&fine.index_to_world_map());
    let [fx, fy, _] = fine.dims;
    let anatomy = &patient.anatomy;
    let mut regions = vec![0u8; fine.len()];
    regions
        .par_chunks_mut(fx * fy)
        .enumerate()
        .for_each(|(k, slab)| {
            for j in 0..fy {
                for i in 0..fx {
                    slab[i + fx * j] =
                        region(anatomy, spect_to_body.apply([i as f64, j as f64, k as f64]));
                }
            }
        });
    // Concentrations: organs and tumours normalised by their voxel count on this fine grid, so
    // the image holds exactly the true activity; remainder by weight.
    let dv_ml = fine.voxel_volume_mm3() / 1000.0;
    let mut counts = [0usize; 256];
    for &r in &regions {
        counts[r as usize] += 1;
    }
    let t_h = session.hours_post_injection;
    let (organs, tumours, c_rem) = activities(patient, organ_volumes, t_h);
    let mut conc = [0.0f64; 256];
    for t in Tissue::ALL {
        conc[t.index()] = c_rem * remainder_weight(t);
    }
    for (&lab, &a) in &organs {
        let idx: Vec<usize> = Tissue::ALL
            .iter()
            .filter(|t| t.label() == lab)
            .map(|t| t.index())
            .collect();
        let n: usize = idx.iter().map(|&i| counts[i]).sum();
        for i in idx {
            conc[i] = if n > 0 { a / (n as f64 * dv_ml) } else { 0.0 };
        }
    }
    for (ti, &a) in tumours.iter().enumerate() {
        let r = 64 + ti;
        conc[r] = if counts[r] > 0 {
            a / (counts[r] as f64 * dv_ml)
        } else {
            0.0
        };
    }
    activity
        .fine
        .data_mut()
        .par_iter_mut()
        .zip(regions.par_iter())
        .for_each(|(v, &r)| *v = conc[r as usize] as f32);
    let in_fov = activity.activity_in_fov_mbq(spect);
    let cam = &patient.camera;
    let counts_per_mbq = cam.sensitivity_cps_per_mbq * cam.acquisition_s * cam.detection_fraction;
    let image = form_spect(
        &activity,
        spect,
        patient.options.psf_fwhm_mm,
        Some(counts_per_mbq),
        patient.options.seed,
        500_000 + 1000 * index as u64,
    );
    let names: BTreeMap<u8, &str> = label::NAMES.iter().copied().collect();
    let facts = TimePointFacts {
        organ_activity_mbq: organs
            .iter()
            .map(|(l, a)| (names[l].to_string(), *a))
            .collect(),
        remainder_mbq_per_ml: c_rem,
    };
    (image, in_fov, facts)
}
