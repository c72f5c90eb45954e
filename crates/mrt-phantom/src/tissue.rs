//! Tissues of the phantom: what each voxel is made of, its CT number and its density.

use serde::Serialize;

/// Truth label values (the `labels` map of truth.json; the design brief's contract).
pub mod label {
    /// Liver parenchyma (tumours excluded).
    pub const LIVER: u8 = 1;
    /// Left kidney (cortex, medulla and pelvis).
    pub const KIDNEY_LEFT: u8 = 2;
    /// Right kidney.
    pub const KIDNEY_RIGHT: u8 = 3;
    /// Spleen.
    pub const SPLEEN: u8 = 4;
    /// Liver tumours.
    pub const LIVER_TUMOUR: u8 = 5;
    /// `(value, name)` pairs for truth.json.
    pub const NAMES: [(u8, &str); 5] = [
        (LIVER, "liver"),
        (KIDNEY_LEFT, "kidney_left"),
        (KIDNEY_RIGHT, "kidney_right"),
        (SPLEEN, "spleen"),
        (LIVER_TUMOUR, "liver_tumour"),
    ];
}

/// Which side of the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Side {
    /// Patient's left (+x in LPS).
    Left,
    /// Patient's right (−x in LPS).
    Right,
}

/// Material of a voxel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Tissue {
    /// Outside the patient.
    Air,
    /// Subcutaneous and visceral fat.
    Fat,
    /// Skeletal muscle.
    Muscle,
    /// Other soft tissue (mesentery, connective tissue): the "remainder" region.
    SoftTissue,
    /// Lung.
    Lung,
    /// Cortical bone (vertebral shell, ribs).
    CorticalBone,
    /// Cancellous bone (vertebral bodies).
    CancellousBone,
    /// Aorta (blood).
    Aorta,
    /// Inferior vena cava (blood).
    VenaCava,
    /// Stomach content and wall.
    Stomach,
    /// Bowel content and wall.
    Bowel,
    /// Gas in stomach or bowel.
    Gas,
    /// Liver parenchyma.
    Liver,
    /// Liver tumour.
    LiverTumour,
    /// Spleen.
    Spleen,
    /// Renal cortex.
    KidneyCortex(Side),
    /// Renal medulla.
    KidneyMedulla(Side),
    /// Renal pelvis (urine).
    KidneyPelvis(Side),
}

impl Tissue {
    /// Truth label (0 for tissues that are not scored organs).
    pub fn label(self) -> u8 {
        match self {
            Tissue::Liver => label::LIVER,
            Tissue::LiverTumour => label::LIVER_TUMOUR,
            Tissue::Spleen => label::SPLEEN,
            Tissue::KidneyCortex(s) | Tissue::KidneyMedulla(s) | Tissue::KidneyPelvis(s) => match s
            {
                Side::Left => label::KIDNEY_LEFT,
                Side::Right => label::KIDNEY_RIGHT,
            },
            _ => 0,
        }
    }

    /// Mass density in g/mL (ICRP Publication 89 / 110 reference values).
    pub fn density_g_per_ml(self) -> f64 {
        match self {
            Tissue::Air => 0.0012,
            Tissue::Fat => 0.95,
            Tissue::Muscle => 1.05,
            Tissue::SoftTissue => 1.03,
            Tissue::Lung => 0.26,
            Tissue::CorticalBone => 1.92,
            Tissue::CancellousBone => 1.18,
            Tissue::Aorta | Tissue::VenaCava => 1.06,
            Tissue::Stomach | Tissue::Bowel => 1.03,
            Tissue::Gas => 0.0012,
            Tissue::Liver | Tissue::LiverTumour => 1.06,
            Tissue::Spleen => 1.06,
            Tissue::KidneyCortex(_) | Tissue::KidneyMedulla(_) => 1.05,
            Tissue::KidneyPelvis(_) => 1.02,
        }
    }

    /// Mean CT number (HU) without and with portal-venous contrast (typical literature values).
    pub fn hu(self, contrast: bool) -> f64 {
        let (plain, enhanced) = match self {
            Tissue::Air => (-1000.0, -1000.0),
            Tissue::Fat => (-100.0, -100.0),
            Tissue::Muscle => (50.0, 60.0),
            Tissue::SoftTissue => (-20.0, 0.0),
            Tissue::Lung => (-850.0, -850.0),
            Tissue::CorticalBone => (900.0, 900.0),
            Tissue::CancellousBone => (230.0, 240.0),
            Tissue::Aorta => (40.0, 170.0),
            Tissue::VenaCava => (40.0, 150.0),
            Tissue::Stomach => (20.0, 40.0),
            Tissue::Bowel => (25.0, 60.0),
            Tissue::Gas => (-1000.0, -1000.0),
            Tissue::Liver => (58.0, 110.0),
            Tissue::LiverTumour => (40.0, 75.0),
            Tissue::Spleen => (48.0, 120.0),
            Tissue::KidneyCortex(_) => (32.0, 160.0),
            Tissue::KidneyMedulla(_) => (28.0, 110.0),
            Tissue::KidneyPelvis(_) => (8.0, 10.0),
        };
        if contrast {
            enhanced
        } else {
            plain
        }
    }

    /// Every tissue, for tables.
    pub const ALL: [Tissue; 21] = [
        Tissue::Air,
        Tissue::Fat,
        Tissue::Muscle,
        Tissue::SoftTissue,
        Tissue::Lung,
        Tissue::CorticalBone,
        Tissue::CancellousBone,
        Tissue::Aorta,
        Tissue::VenaCava,
        Tissue::Stomach,
        Tissue::Bowel,
        Tissue::Gas,
        Tissue::Liver,
        Tissue::LiverTumour,
        Tissue::Spleen,
        Tissue::KidneyCortex(Side::Left),
        Tissue::KidneyMedulla(Side::Left),
        Tissue::KidneyPelvis(Side::Left),
        Tissue::KidneyCortex(Side::Right),
        Tissue::KidneyMedulla(Side::Right),
        Tissue::KidneyPelvis(Side::Right),
    ];

    /// Dense index into [`Tissue::ALL`].
    pub fn index(self) -> usize {
        Tissue::ALL
            .iter()
            .position(|&t| t == self)
            .expect("every tissue is listed in ALL")
    }
}
