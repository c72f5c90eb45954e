//! Reference physics data compiled into the binary: 177Lu decay data (ICRP 107) and OpenDose
//! self-dose S-values for the ICRP-110 adult phantoms (see data/reference/README.md).
//!
//! Data only: no physics beyond unit conversion lives here, so the phantom generator (which
//! computes ground truth) and the dosimetry engine (which is judged against it) share the tables
//! but not the formulas.

use serde::{Deserialize, Serialize};

/// ICRP-110 adult reference phantom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sex {
    /// ICRP-110 adult male (`ICRP110_AM`).
    Male,
    /// ICRP-110 adult female (`ICRP110_AF`).
    Female,
}

impl Sex {
    /// `ICRP110_AM` or `ICRP110_AF`.
    pub fn phantom_name(self) -> &'static str {
        match self {
            Sex::Male => "ICRP110_AM",
            Sex::Female => "ICRP110_AF",
        }
    }

    /// Parses `ICRP110_AM` / `ICRP110_AF` (case-insensitive).
    pub fn from_phantom_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "ICRP110_AM" => Some(Sex::Male),
            "ICRP110_AF" => Some(Sex::Female),
            _ => None,
        }
    }
}

/// Organs with self-dose S-values.
pub const ORGANS: [&str; 4] = ["liver", "spleen", "kidney_left", "kidney_right"];

/// ICRP 107 177Lu decay data (JSON string inside a JSON file, as packaged).
const LU177: &str = include_str!("../../../data/reference/lu177-icrp107.json");

/// OpenDose S-value tables: (phantom, source organ, JSON rows).
const S_TABLES: [(Sex, &str, &str); 8] = [
    (
        Sex::Male,
        "liver",
        include_str!("../../../data/reference/opendose-s-values/ICRP_110_AM/lu-177_liver.json"),
    ),
    (
        Sex::Male,
        "spleen",
        include_str!("../../../data/reference/opendose-s-values/ICRP_110_AM/lu-177_spleen.json"),
    ),
    (
        Sex::Male,
        "kidney_left",
        include_str!(
            "../../../data/reference/opendose-s-values/ICRP_110_AM/lu-177_left_kidney_c_m_p.json"
        ),
    ),
    (
        Sex::Male,
        "kidney_right",
        include_str!(
            "../../../data/reference/opendose-s-values/ICRP_110_AM/lu-177_right_kidney_c_m_p.json"
        ),
    ),
    (
        Sex::Female,
        "liver",
        include_str!("../../../data/reference/opendose-s-values/ICRP_110_AF/lu-177_liver.json"),
    ),
    (
        Sex::Female,
        "spleen",
        include_str!("../../../data/reference/opendose-s-values/ICRP_110_AF/lu-177_spleen.json"),
    ),
    (
        Sex::Female,
        "kidney_left",
        include_str!(
            "../../../data/reference/opendose-s-values/ICRP_110_AF/lu-177_left_kidney_c_m_p.json"
        ),
    ),
    (
        Sex::Female,
        "kidney_right",
        include_str!(
            "../../../data/reference/opendose-s-values/ICRP_110_AF/lu-177_right_kidney_c_m_p.json"
        ),
    ),
];

/// OpenDose target names of the self-dose rows.
fn target_name(organ: &str) -> &'static str {
    match organ {
        "liver" => "Liver",
        "spleen" => "Spleen",
        "kidney_left" => "Left kidney C+M+P",
        "kidney_right" => "Right kidney C+M+P",
        _ => "",
    }
}

/// Physical constants of 177Lu derived from ICRP 107.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Lu177 {
    /// Half-life in hours.
    pub half_life_h: f64,
    /// Mean energy per decay of non-penetrating emissions (β⁻, conversion and Auger electrons), MeV.
    pub electron_energy_mev: f64,
}

/// Joules per MeV.
pub const J_PER_MEV: f64 = 1.602_176_634e-13;

impl Lu177 {
    /// Physical decay constant, 1/h.
    pub fn lambda_per_h(&self) -> f64 {
        std::f64::consts::LN_2 / self.half_life_h
    }

    /// Half-life in seconds.
    pub fn half_life_s(&self) -> f64 {
        self.half_life_h * 3600.0
    }
}

/// Parses the ICRP 107 file.
pub fn lu177() -> Lu177 {
    let inner: String =
        serde_json::from_str(LU177).expect("bundled ICRP 107 file is a JSON string");
    let v: serde_json::Value = serde_json::from_str(&inner).expect("bundled ICRP 107 JSON");
    assert_eq!(v["time_unit"], "d", "ICRP 107 half-life unit");
    let half_life_d = v["half_life"].as_f64().expect("half_life");
    let sum = |key: &str| -> f64 {
        v["emissions"][key]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| r[0].as_f64().unwrap_or(0.0) * r[1].as_f64().unwrap_or(0.0))
                    .sum()
            })
            .unwrap_or(0.0)
    };
    Lu177 {
        half_life_h: half_life_d * 24.0,
        electron_energy_mev: sum("beta-") + sum("IE") + sum("auger"),
    }
}

/// Self-dose S-value (mGy per MBq·s) and the reference phantom's organ mass (g).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SelfDose {
    /// S(organ ← organ), mGy/(MBq·s).
    pub s_mgy_per_mbq_s: f64,
    /// Reference organ mass, g.
    pub reference_mass_g: f64,
}

/// OpenDose self-dose S-value for `organ` (liver, spleen, kidney_left, kidney_right).
pub fn self_dose(sex: Sex, organ: &str) -> Option<SelfDose> {
    let (_, _, json) = S_TABLES.iter().find(|(s, o, _)| *s == sex && *o == organ)?;
    let rows: Vec<Vec<String>> = serde_json::from_str(json).ok()?;
    let target = target_name(organ);
    let row = rows
        .iter()
        .find(|r| r.first().map(String::as_str) == Some(target))?;
    Some(SelfDose {
        s_mgy_per_mbq_s: row.get(1)?.parse().ok()?,
        reference_mass_g: row.get(3)?.parse().ok()?,
    })
}

/// Schneider et al. 2000 (Phys Med Biol 45:459) HU → mass density calibration points.
const SCHNEIDER: &str = include_str!("../../../data/reference/ct-density-schneider2000.txt");

/// The HU → density (g/mL) calibration points, in increasing HU.
pub fn hu_density_table() -> Vec<(f64, f64)> {
    SCHNEIDER
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut it = l.split_whitespace().map(|v| v.parse::<f64>());
            match (it.next(), it.next()) {
                (Some(Ok(h)), Some(Ok(d))) => Some((h, d)),
                _ => None,
            }
        })
        .collect()
}

/// 177Lu soft-tissue dose voxel kernel (pytheranostics 0.1, Apache-2.0; data/kernels/README.md):
/// PMOD Interfile, little-endian float32, 51³ voxels of 4.7952 mm, mGy per MBq·s in the centre.
const LU177_SOFT_TISSUE_KERNEL: &[u8] =
    include_bytes!("../../../data/kernels/DK_softtissueICRP_mGyperMBqs.img");

/// A dose voxel kernel: values (mGy per MBq·s in the centre voxel), i fastest.
#[derive(Debug, Clone)]
pub struct DoseKernel {
    /// Voxels along i, j, k (odd).
    pub dims: [usize; 3],
    /// Voxel spacing (mm).
    pub spacing_mm: f64,
    /// Values.
    pub mgy_per_mbq_s: Vec<f32>,
    /// Medium density the kernel was computed in (g/mL).
    pub density_g_per_ml: f64,
}

/// The bundled 177Lu soft-tissue kernel.
pub fn lu177_soft_tissue_kernel() -> DoseKernel {
    let values: Vec<f32> = LU177_SOFT_TISSUE_KERNEL
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(values.len(), 51 * 51 * 51, "bundled kernel size");
    DoseKernel {
        dims: [51, 51, 51],
        spacing_mm: 4.7952,
        mgy_per_mbq_s: values,
        // ICRP soft tissue.
        density_g_per_ml: 1.03,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_reference_readme() {
        // ../shared/reference/README.md: "Values worth knowing by heart".
        let lu = lu177();
        assert!((lu.half_life_h - 159.528).abs() < 1e-9);
        assert!(
            (lu.electron_energy_mev - 0.147_92).abs() < 5e-5,
            "{}",
            lu.electron_energy_mev
        );
        let k = self_dose(Sex::Male, "kidney_left").expect("AM left kidney");
        assert_eq!(k.s_mgy_per_mbq_s, 1.5662e-4);
        assert_eq!(k.reference_mass_g, 152.983);
        let l = self_dose(Sex::Female, "liver").expect("AF liver");
        assert_eq!(l.s_mgy_per_mbq_s, 1.7533e-5);
        assert!(self_dose(Sex::Male, "pancreas").is_none());
    }
}
