//! From model-grid probabilities to labels on the CT's own grid, then clean-up: one connected
//! piece per organ (the largest; for kidneys and spleen the largest that is not fat-like, see
//! [`crate::parenchyma`]), enclosed holes filled, the left/right kidney check by patient
//! side, and per-organ volume plausibility flags.

use mrt_core::morphology::{bounding_box, fill_holes};
use mrt_core::resample::sample_linear_channels;
use mrt_core::{Grid, Volume};
use rayon::prelude::*;
use serde::Serialize;

use crate::fat_like::{holds_no_fat, remove_thick_fat_like};
use crate::parenchyma::{keep_parenchyma_piece, parenchyma_floor_hu, CtLookup};

/// Labels on `target` (the CT grid): per voxel the channel with the highest probability, the
/// probabilities interpolated trilinearly from the model grid.
pub fn labels_on_grid(probs: &[f32], model: &Grid, channels: usize, target: &Grid) -> Volume<u8> {
    let map = model
        .world_to_index_map()
        .compose(&target.index_to_world_map());
    let [nx, ny, _] = target.dims;
    let mut labels = vec![0u8; target.len()];
    labels
        .par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(k, slab)| {
            for j in 0..ny {
                for i in 0..nx {
                    let p = map.apply([i as f64, j as f64, k as f64]);
                    let mut best = (0u8, f32::NEG_INFINITY);
                    // The channels share one grid: outside it, background (channel 0, p = 1).
                    let inside = sample_linear_channels(probs, model.dims, channels, p, |c, v| {
                        if v > best.1 {
                            best = (c as u8, v);
                        }
                    });
                    slab[i + nx * j] = if inside { best.0 } else { 0 };
                }
            }
        });
    Volume::new(target.clone(), labels).expect("labels cover the target grid")
}

/// What the clean-up did and found, per organ.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct OrganSummary {
    /// Label value.
    pub label: u8,
    /// Name from the model card.
    pub name: String,
    /// Volume after clean-up (mL).
    pub volume_ml: f64,
    /// Voxels removed as smaller disconnected pieces.
    pub removed_voxels: usize,
    /// Voxels removed as a thick fat-like region inside an organ that holds no fat, see
    /// [`crate::fat_like`] (before the pieces are counted), less those hole filling returned
    /// (a fat-like region the organ encloses on every side stays in it, like any hole).
    #[serde(default)]
    pub fat_like_voxels: usize,
    /// Voxels added by hole filling.
    pub filled_voxels: usize,
    /// Plausibility flag, when the volume is outside the expected adult range.
    pub flag: Option<String>,
}

/// Removing at least this much fat-like tissue from an organ (mL) leaves a note.
const FAT_LIKE_NOTE_ML: f64 = 5.0;

/// Expected adult volume range (mL) by organ name, generous on purpose (splenomegaly, large
/// livers, single kidneys exist: a flag asks a human to look, it does not reject).
fn plausible_ml(name: &str) -> Option<(f64, f64)> {
    match name {
        "liver" => Some((500.0, 4500.0)),
        "spleen" => Some((30.0, 2000.0)),
        "kidney_left" | "kidney_right" => Some((40.0, 450.0)),
        _ => None,
    }
}

/// The bounding box (inclusive lo, exclusive hi) of `label` in `v`, grown by one voxel.
fn bbox(v: &Volume<u8>, label: u8) -> Option<([usize; 3], [usize; 3])> {
    let dims = v.grid().dims;
    bounding_box(v.data(), dims, |l| l == label).map(|(lo, hi)| {
        (
            lo.map(|x| x.saturating_sub(1)),
            [0, 1, 2].map(|a| (hi[a] + 1).min(dims[a])),
        )
    })
}

/// Removes thick fat-like regions from the organs that hold no fat ([`crate::fat_like`]), keeps
/// one piece of each organ (the largest, or the largest whose median CT number in
/// `ct_hu_model_grid` is not fat-like, see [`crate::parenchyma`]) and fills its enclosed holes
/// (within its bounding box, so large CTs stay fast), then checks kidney sides and volumes.
pub fn clean_up(
    labels: &mut Volume<u8>,
    names: &[String],
    ct_hu_model_grid: &Volume<f32>,
) -> (Vec<OrganSummary>, Vec<String>) {
    let mut notes = Vec::new();
    let dims = labels.grid().dims;
    let lookup = CtLookup::new(ct_hu_model_grid, labels.grid());
    let voxel_ml = labels.grid().voxel_volume_mm3() / 1000.0;
    let [nx, ny, _] = dims;
    let mut summaries = Vec::new();
    for (c, name) in names.iter().enumerate().skip(1) {
        let label = c as u8;
        let (mut removed, mut filled, mut fat_like_voxels) = (0, 0, 0);
        if let Some((lo, hi)) = bbox(labels, label) {
            let sub = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
            let offset =
                |i: usize, j: usize, k: usize| (lo[0] + i) + nx * ((lo[1] + j) + ny * (lo[2] + k));
            let mut mask = vec![false; sub[0] * sub[1] * sub[2]];
            for k in 0..sub[2] {
                for j in 0..sub[1] {
                    for i in 0..sub[0] {
                        mask[i + sub[0] * (j + sub[1] * k)] =
                            labels.data()[offset(i, j, k)] == label;
                    }
                }
            }
            let box_index = |m: usize| {
                [
                    lo[0] + m % sub[0],
                    lo[1] + (m / sub[0]) % sub[1],
                    lo[2] + m / (sub[0] * sub[1]),
                ]
            };
            let fat_like = match (holds_no_fat(name), parenchyma_floor_hu(name)) {
                (true, Some(floor)) => remove_thick_fat_like(&mut mask, box_index, &lookup, floor),
                _ => None,
            };
            let kept = keep_parenchyma_piece(
                &mut mask,
                sub,
                parenchyma_floor_hu(name),
                |m| lookup.at(box_index(m)),
                name,
                voxel_ml,
            );
            removed = kept.removed;
            notes.extend(kept.note);
            let before = mask.clone();
            fill_holes(&mut mask, sub);
            if let Some(r) = &fat_like {
                // Hole filling returns fat-like regions the organ encloses: count what stays out.
                fat_like_voxels = r.removed.iter().filter(|&&m| !mask[m]).count();
                let ml = fat_like_voxels as f64 * voxel_ml;
                if ml >= FAT_LIKE_NOTE_ML {
                    notes.push(format!(
                        "{name}: {ml:.1} mL of fat-like tissue (below {:.0} HU over 9 mm or more; the mask's median {:.0} HU) removed from the mask",
                        r.floor_hu, r.organ_median_hu
                    ));
                }
            }
            let data = labels.data_mut();
            for k in 0..sub[2] {
                for j in 0..sub[1] {
                    for i in 0..sub[0] {
                        let m = i + sub[0] * (j + sub[1] * k);
                        let o = offset(i, j, k);
                        if data[o] == label && !mask[m] {
                            data[o] = 0;
                        } else if mask[m] && !before[m] && data[o] == 0 {
                            data[o] = label;
                            filled += 1;
                        }
                    }
                }
            }
        }
        summaries.push(OrganSummary {
            label,
            name: name.clone(),
            volume_ml: 0.0,
            removed_voxels: removed,
            fat_like_voxels,
            filled_voxels: filled,
            flag: None,
        });
    }
    check_kidney_sides(labels, names, &mut notes);
    let mut counts = vec![0usize; names.len()];
    for &l in labels.data() {
        if (l as usize) < counts.len() {
            counts[l as usize] += 1;
        }
    }
    for s in &mut summaries {
        s.volume_ml = counts[s.label as usize] as f64 * voxel_ml;
        if counts[s.label as usize] == 0 {
            s.flag = Some(format!("{} not found", s.name));
        } else if let Some((lo, hi)) = plausible_ml(&s.name) {
            if !(lo..=hi).contains(&s.volume_ml) {
                s.flag = Some(format!(
                    "{} volume {:.0} mL outside the expected {lo:.0}-{hi:.0} mL",
                    s.name, s.volume_ml
                ));
            }
        }
    }
    (summaries, notes)
}

/// LPS: patient left is +x. A "kidney_left" whose centre lies right of "kidney_right"'s means
/// the sides were swapped (e.g. a flipped image); the labels are exchanged and a note says so.
fn check_kidney_sides(labels: &mut Volume<u8>, names: &[String], notes: &mut Vec<String>) {
    let find = |n: &str| names.iter().position(|x| x == n).map(|c| c as u8);
    let (Some(left), Some(right)) = (find("kidney_left"), find("kidney_right")) else {
        return;
    };
    let centre_x = |label: u8| label_centre(labels, label).map(|c| c[0]);
    if let (Some(xl), Some(xr)) = (centre_x(left), centre_x(right)) {
        if xl < xr {
            for l in labels.data_mut() {
                if *l == left {
                    *l = right;
                } else if *l == right {
                    *l = left;
                }
            }
            notes.push(format!(
                "kidney labels exchanged: the model's kidney_left lay on the patient's right (x {xl:.0} mm < {xr:.0} mm)"
            ));
        }
    }
}

/// World centre (LPS mm) of the voxels with `label`.
pub fn label_centre(labels: &Volume<u8>, label: u8) -> Option<[f64; 3]> {
    let g = labels.grid();
    let [nx, ny, _] = g.dims;
    let (mut sum, mut n) = ([0.0; 3], 0.0);
    for (o, &l) in labels.data().iter().enumerate() {
        if l == label {
            let w = g.index_to_world([
                (o % nx) as f64,
                ((o / nx) % ny) as f64,
                (o / (nx * ny)) as f64,
            ]);
            for a in 0..3 {
                sum[a] += w[a];
            }
            n += 1.0;
        }
    }
    (n > 0.0).then(|| sum.map(|s| s / n))
}
