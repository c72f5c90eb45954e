//! Site settings (`--site-config FILE`, TOML). Every field has a stated default; the report
//! records the settings used. Clinical values (injected activity, injection time) are never
//! settings: they come from the data or are reported missing.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// How organ activity is taken from the SPECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantMethod {
    /// Geometric transfer matrix over organs and body regions (Rousset 1998). Default.
    Gtm,
    /// Counts in the organ mask divided by its PSF recovery coefficient.
    PsfRecovery,
    /// Counts in the organ mask, no correction.
    Voi,
}

/// How the voxel dose map is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoxelDoseMethod {
    /// Convolution with the 177Lu soft-tissue dose kernel. Default.
    Kernel,
    /// All energy deposited in the voxel of emission (mass from CT density).
    LocalDeposition,
}

/// Site settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    /// SPECT point-spread-function FWHM (mm) of the site's camera and reconstruction. Default 11.
    pub psf_fwhm_mm: f64,
    /// Its standard uncertainty (mm), propagated into recovery. Default 1.
    pub psf_fwhm_uncertainty_mm: f64,
    /// Camera calibration uncertainty (%); when absent the report says it was not included.
    pub calibration_uncertainty_percent: Option<f64>,
    /// Uncertainty (%) of each time point's organ activity, used to weight the fits. Default 5.
    pub activity_uncertainty_percent: f64,
    /// Reference phantom when the data do not say the patient's sex: `ICRP110_AM` or
    /// `ICRP110_AF`. Default: none, and the study is flagged and AM used.
    pub default_phantom: Option<String>,
    /// Organ quantification. Default `gtm`.
    pub quantification: QuantMethod,
    /// Voxel dose. Default `kernel`.
    pub voxel_dose: VoxelDoseMethod,
    /// Time point whose CT is the reference frame (1-based). Default 1.
    pub reference_timepoint: usize,
    /// Flag organ volumes that differ between time points by more than this (%). Default 15.
    pub organ_volume_tolerance_percent: f64,
    /// Flag SPECT↔CT corrections larger than this (mm). Default 10.
    pub review_correction_mm: f64,
    /// Flag SPECT↔CT alignments explaining less than this share of the SPECT. Default 0.8.
    pub min_alignment_r2: f64,
    /// Flag studies with fewer usable time points than this. Default 3.
    pub min_timepoints: usize,
    /// Count hot liver lesions (tumours) as their own region, not as liver, so the liver dose is
    /// the parenchyma's. Default true.
    pub exclude_liver_lesions: bool,
    /// A liver voxel is lesion when its SPECT concentration exceeds this multiple of the liver's
    /// median. Default 2.5.
    pub lesion_uptake_ratio: f64,
    /// Smallest lesion (mL); smaller hot clusters are noise. Default 2.
    pub lesion_min_ml: f64,
    /// Each lesion is trimmed to its voxels above median + this × (lesion maximum − median).
    /// Default 0.5.
    pub lesion_edge_fraction: f64,
    /// The liver's voxels within this distance (mm) of a hot lesion are fitted as a region of
    /// their own, and the liver's concentration comes from the rest of its mask: a tumour rim the
    /// lesion's edge missed stays out of the parenchyma. 0 turns it off, else 5-50. Default 15.
    pub lesion_halo_mm: f64,
    /// Segment each time point from the mean class probabilities of all registered time points'
    /// CTs (the same organs, seen several times), instead of from its own CT alone. Default true.
    pub fuse_timepoints: bool,
    /// An organ's SPECT contradicts its mask where the GTM residual, smoothed at the PSF's scale,
    /// departs from the organ's fitted concentration by more than this fraction of it (bowel or
    /// a cyst in a kidney mask: colder; a neighbouring organ: hotter). Default 0.35.
    pub uptake_mismatch_fraction: f64,
    /// Flag an organ when such a cluster holds at least this share (%) of the organ's volume at
    /// any time point: cold tissue of that share inflates the organ's mass, and so lowers its
    /// dose, by about as much. Default 5.
    pub uptake_mismatch_min_percent: f64,
    /// Take such a cluster out of the organ's mask (as its own GTM region; the mass loses it
    /// too) and measure the organ again, up to twice per time point; of a cold and a hot cluster
    /// the one departing further, and only while it is under half the organ (a hot one without
    /// its PSF halo), except that a kidney mask split into a cold and a hot cluster holding half
    /// of it or more loses the side further from the other kidney's concentration (when the other
    /// kidney's residual is clean); a round leaving an organ's GTM negative or unsolvable is
    /// undone. The flag is raised all the same. Default true.
    pub exclude_uptake_mismatch: bool,
    /// Where two organ masks touch, each mask's voxels within this distance (mm) of the other
    /// organ are a GTM region of their own, and the organ's concentration is taken from the rest
    /// of its mask (times the whole mask's volume for its activity): a segmentation boundary
    /// error of up to this depth then does not carry the neighbour's uptake into the organ.
    /// 0 turns it off. Default 3.
    pub contact_band_mm: f64,
    /// Each kidney mask's voxels within this distance (mm) of tissue outside it are a GTM region
    /// of their own, with the contact band, and the kidney's concentration is taken from the rest
    /// of its mask (times the whole mask's volume): a mask a voxel too wide all round then
    /// changes the kidney's mass and activity together, and so its dose little (a mask too
    /// narrow, only in part). 0 turns it off, else up to 15. Default 3.
    pub kidney_surface_band_mm: f64,
    /// Where two organ masks touch, the SPECT is asked where their shared boundary lies: the
    /// boundary is moved along its normal by offsets up to this distance (mm, both ways, in
    /// steps of `boundary_step_mm`), the SPECT around the pair is fitted for each, and the offset
    /// with the smallest residual over all time points is taken when it lowers the residual by
    /// at least `boundary_min_gain_percent`. Moves the masks (and so the masses) of both organs
    /// at every time point. Held back (offset 0, with the reason) for a pair with a mask that
    /// the SPECT residual splits into a cold and a hot half at some time point. 0 turns it off.
    /// Default 15.
    pub boundary_search_mm: f64,
    /// Step of the boundary search (mm). Default 3.
    pub boundary_step_mm: f64,
    /// Smallest drop of the summed relative residual (%, mean over time points) for which the
    /// boundary is moved. Default 2.
    pub boundary_min_gain_percent: f64,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            psf_fwhm_mm: 11.0,
            psf_fwhm_uncertainty_mm: 1.0,
            calibration_uncertainty_percent: None,
            activity_uncertainty_percent: 5.0,
            default_phantom: None,
            quantification: QuantMethod::Gtm,
            voxel_dose: VoxelDoseMethod::Kernel,
            reference_timepoint: 1,
            organ_volume_tolerance_percent: 15.0,
            review_correction_mm: 10.0,
            min_alignment_r2: 0.8,
            min_timepoints: 3,
            exclude_liver_lesions: true,
            lesion_uptake_ratio: 2.5,
            lesion_min_ml: 2.0,
            lesion_edge_fraction: 0.5,
            lesion_halo_mm: 15.0,
            fuse_timepoints: true,
            uptake_mismatch_fraction: 0.35,
            uptake_mismatch_min_percent: 5.0,
            exclude_uptake_mismatch: true,
            contact_band_mm: 3.0,
            kidney_surface_band_mm: 3.0,
            boundary_search_mm: 15.0,
            boundary_step_mm: 3.0,
            boundary_min_gain_percent: 2.0,
        }
    }
}

/// Config file problems.
#[derive(Debug, thiserror::Error)]
#[error("site config {path}: {problem}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

impl SiteConfig {
    /// Reads a TOML file; fields not given keep their defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bad = |problem: String| ConfigError {
            path: path.display().to_string(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let cfg: SiteConfig = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if !(cfg.psf_fwhm_mm > 0.0 && cfg.psf_fwhm_mm < 50.0) {
            return Err(bad(format!(
                "psf_fwhm_mm {} outside 0-50 mm",
                cfg.psf_fwhm_mm
            )));
        }
        if cfg.reference_timepoint == 0 {
            return Err(bad("reference_timepoint counts from 1".into()));
        }
        if cfg.uptake_mismatch_fraction.is_nan() || cfg.uptake_mismatch_fraction <= 0.0 {
            return Err(bad(format!(
                "uptake_mismatch_fraction {} must be above 0",
                cfg.uptake_mismatch_fraction
            )));
        }
        if !(cfg.contact_band_mm >= 0.0 && cfg.contact_band_mm <= 30.0) {
            return Err(bad(format!(
                "contact_band_mm {} outside 0-30 mm",
                cfg.contact_band_mm
            )));
        }
        if !(cfg.kidney_surface_band_mm >= 0.0 && cfg.kidney_surface_band_mm <= 15.0) {
            return Err(bad(format!(
                "kidney_surface_band_mm {} outside 0-15 mm",
                cfg.kidney_surface_band_mm
            )));
        }
        if !(cfg.lesion_halo_mm == 0.0 || (5.0..=50.0).contains(&cfg.lesion_halo_mm)) {
            return Err(bad(format!(
                "lesion_halo_mm {} must be 0 (off) or 5-50 mm",
                cfg.lesion_halo_mm
            )));
        }
        if !(cfg.uptake_mismatch_min_percent > 0.0 && cfg.uptake_mismatch_min_percent < 50.0) {
            return Err(bad(format!(
                "uptake_mismatch_min_percent {} outside 0-50 % (both excluded)",
                cfg.uptake_mismatch_min_percent
            )));
        }
        if !(cfg.boundary_search_mm >= 0.0 && cfg.boundary_search_mm <= 50.0) {
            return Err(bad(format!(
                "boundary_search_mm {} outside 0-50 mm",
                cfg.boundary_search_mm
            )));
        }
        if !(cfg.boundary_step_mm > 0.0 && cfg.boundary_step_mm <= 20.0) {
            return Err(bad(format!(
                "boundary_step_mm {} outside 0-20 mm (above 0)",
                cfg.boundary_step_mm
            )));
        }
        if !(cfg.boundary_min_gain_percent >= 0.0 && cfg.boundary_min_gain_percent < 100.0) {
            return Err(bad(format!(
                "boundary_min_gain_percent {} outside 0-100",
                cfg.boundary_min_gain_percent
            )));
        }
        if let Some(p) = &cfg.default_phantom {
            if mrt_reference::Sex::from_phantom_name(p).is_none() {
                return Err(bad(format!(
                    "default_phantom {p:?}: expected ICRP110_AM or ICRP110_AF"
                )));
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_keeps_defaults_and_typos_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("site.toml");
        std::fs::write(
            &p,
            "psf_fwhm_mm = 12.5\nquantification = \"psf_recovery\"\n",
        )
        .expect("write");
        let c = SiteConfig::load(&p).expect("loads");
        assert_eq!(c.psf_fwhm_mm, 12.5);
        assert_eq!(c.quantification, QuantMethod::PsfRecovery);
        assert_eq!(c.reference_timepoint, 1);
        std::fs::write(&p, "psf_fwhm = 12.5\n").expect("write");
        let e = SiteConfig::load(&p).expect_err("unknown field");
        assert!(e.to_string().contains("psf_fwhm"), "{e}");
        std::fs::write(&p, "uptake_mismatch_fraction = 0.0\n").expect("write");
        let e = SiteConfig::load(&p).expect_err("zero fraction");
        assert!(e.to_string().contains("uptake_mismatch_fraction"), "{e}");
        std::fs::write(&p, "uptake_mismatch_min_percent = 0.0\n").expect("write");
        let e = SiteConfig::load(&p).expect_err("zero share");
        assert!(e.to_string().contains("uptake_mismatch_min_percent"), "{e}");
        for bad in ["2.0", "-1.0", "60.0"] {
            std::fs::write(&p, format!("lesion_halo_mm = {bad}\n")).expect("write");
            let e = SiteConfig::load(&p).expect_err("halo out of range");
            assert!(e.to_string().contains("lesion_halo_mm"), "{e}");
        }
        std::fs::write(&p, "lesion_halo_mm = 0.0\n").expect("write");
        assert_eq!(SiteConfig::load(&p).expect("off").lesion_halo_mm, 0.0);
        for bad in ["-1.0", "16.0"] {
            std::fs::write(&p, format!("kidney_surface_band_mm = {bad}\n")).expect("write");
            let e = SiteConfig::load(&p).expect_err("surface band out of range");
            assert!(e.to_string().contains("kidney_surface_band_mm"), "{e}");
        }
        std::fs::write(&p, "kidney_surface_band_mm = 0.0\n").expect("write");
        let off = SiteConfig::load(&p).expect("off");
        assert_eq!(off.kidney_surface_band_mm, 0.0);
    }
}
