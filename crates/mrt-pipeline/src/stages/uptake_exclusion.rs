//! The quantify stage's uptake exclusion (site setting `exclude_uptake_mismatch`): tissue whose
//! SPECT uptake contradicts an organ is relabelled out of the organ's CT mask, as a GTM region of
//! its own, and the time point is measured again, up to [`EXCLUSION_ROUNDS`] times.
//!
//! Which tissue is foreign is `mrt_dosimetry::mask_exclusion`'s decision; this module only runs
//! the rounds, names the new regions, gives a kidney whose mask the residual splits in two the
//! other kidney's concentration as the reference that decides which half is foreign (when the
//! other kidney's own residual is clean), and undoes a round whose refit is unphysical. No I/O.

use std::collections::BTreeMap;

use mrt_core::transform::RigidTransform;
use mrt_core::{Grid, Volume};
use mrt_dosimetry::mask_exclusion::{clean, exclude_spect_voxels, foreign_cluster, Side};
use mrt_dosimetry::quantify::RegionActivity;
use mrt_dosimetry::residual::ClusterVoxels;

use super::quantify::{ExcludedTissue, EXCLUDED_BASE, ORGANS};
use super::StageError;

/// Rounds of exclusion and refit per time point (the second takes what the first refit reveals).
pub const EXCLUSION_ROUNDS: usize = 2;

/// A time point's region model for the GTM.
#[derive(Debug, Clone)]
pub struct RegionModel {
    /// CT labels (organs, lesions, excluded tissue).
    pub labels: Volume<u8>,
    /// Label values that are regions as they are (the rest of the body is split by CT number).
    pub kept: Vec<u8>,
    /// The GTM's regions in order, the two body regions last.
    pub regions: Vec<u8>,
    /// Per CT voxel, whether it lies in an organ's contact band (site setting
    /// `contact_band_mm`) or a kidney's surface band (`kidney_surface_band_mm`); empty when
    /// both are off. Applies to the voxels still holding their organ.
    pub contact: Vec<bool>,
    /// An organ (label value) and, per CT voxel, the shell of that organ's halo around hot
    /// lesions it lies in, 0 for none (site setting `lesion_halo_mm`;
    /// `mrt_dosimetry::lesions::lesion_halo`); `None` when off or without lesions. Applies to
    /// the voxels still holding the organ.
    pub halo: Option<(u8, Vec<u8>)>,
}

/// One measurement of a [`RegionModel`]: each region's activity and residual clusters, in the
/// order of its `regions`.
pub type Measurement = (Vec<RegionActivity>, Vec<Option<ClusterVoxels>>);

/// Takes foreign tissue out of each organ of `organs` (label value, name) in `model`, refitting
/// with `measure` after each round, and leaves `model` and `measured` as the last physical
/// measurement: a round after which an organ whose GTM was solvable and non-negative no longer
/// is is undone, and the rounds stop. `spect_grid` is the grid the residual clusters index,
/// `spect_to_ct` maps SPECT world to CT world, and a cluster must hold `min_share` of an organ's
/// VOI to be taken. Returns what was taken out of each organ (by label value).
pub fn exclude_foreign_tissue(
    model: &mut RegionModel,
    measured: &mut Measurement,
    organs: &[(u8, &str)],
    spect_grid: &Grid,
    spect_to_ct: &RigidTransform,
    min_share: f64,
    measure: impl Fn(&RegionModel) -> Result<Measurement, StageError>,
) -> Result<BTreeMap<u8, ExcludedTissue>, StageError> {
    let ct_voxel_ml = model.labels.grid().voxel_volume_mm3() / 1000.0;
    let mut excluded: BTreeMap<u8, ExcludedTissue> = BTreeMap::new();
    for _ in 0..EXCLUSION_ROUNDS {
        let (q, clusters) = &*measured;
        let region = |label: u8| model.regions.iter().position(|&r| r == label);
        let is_clean = |i: usize| {
            clusters[i]
                .as_ref()
                .is_some_and(|c| clean(c, q[i].voi_voxels, min_share))
        };
        let foreign: Vec<(u8, &str, Side, Vec<usize>)> = organs
            .iter()
            .filter_map(|&(label, name)| {
                let i = region(label)?;
                let c = clusters[i].as_ref()?;
                let reference = other_kidney(name)
                    .and_then(|other| organs.iter().find(|(_, n)| *n == other))
                    .and_then(|&(l, _)| region(l))
                    .filter(|&j| is_clean(j))
                    .and_then(|j| q[j].gtm_concentration_bq_per_ml());
                let (side, voxels) = foreign_cluster(c, q[i].voi_voxels, min_share, reference)?;
                Some((label, name, side, voxels.to_vec()))
            })
            .collect();
        if foreign.is_empty() {
            break;
        }
        // Only now the copy that an unphysical refit returns to.
        let before = (model.clone(), excluded.clone());
        let mut changed = false;
        for (label, name, side, voxels) in &foreign {
            let organ_index = ORGANS.iter().position(|o| o == name).unwrap_or(0) as u8;
            let new_label = EXCLUDED_BASE + 2 * organ_index + u8::from(*side == Side::Hot);
            let n = exclude_spect_voxels(
                &mut model.labels,
                *label,
                new_label,
                spect_grid,
                voxels,
                spect_to_ct,
            );
            if n == 0 {
                continue;
            }
            changed = true;
            if !model.kept.contains(&new_label) {
                model.kept.push(new_label);
                // Before the body regions, as the liver lesions are.
                let at = model.regions.len() - 2;
                model.regions.insert(at, new_label);
            }
            let e = excluded.entry(*label).or_default();
            match side {
                Side::Cold => e.cold_ml += n as f64 * ct_voxel_ml,
                Side::Hot => e.hot_ml += n as f64 * ct_voxel_ml,
            }
        }
        if !changed {
            break;
        }
        let refit = measure(model)?;
        // A region too small to solve for makes the GTM unsolvable, and one the PSF cannot tell
        // from the organ makes it trade activity between them (down to a negative organ); keep
        // the last physical measurement instead.
        let physical = |q: &[RegionActivity], l: u8| {
            q.iter()
                .find(|r| r.label == l)
                .and_then(|r| r.gtm_mbq)
                .is_some_and(|g| g.is_finite() && g >= 0.0)
        };
        if organs
            .iter()
            .any(|(l, _)| physical(&measured.0, *l) && !physical(&refit.0, *l))
        {
            (*model, excluded) = before;
            break;
        }
        *measured = refit;
    }
    Ok(excluded)
}

/// Whether the organ named `name` is a kidney.
pub fn is_kidney(name: &str) -> bool {
    other_kidney(name).is_some()
}

/// The kidney on the other side, whose concentration a split kidney mask must match.
fn other_kidney(name: &str) -> Option<&'static str> {
    match name {
        "kidney_left" => Some("kidney_right"),
        "kidney_right" => Some("kidney_left"),
        _ => None,
    }
}
