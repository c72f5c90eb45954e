//! The physics core of mrtdose: time-activity curve fitting, time-integrated activity, organ
//! absorbed dose from S-values with mass scaling, BED and uncertainty propagation.
//!
//! Pure and synchronous: no file I/O, no async, no logging. Formulas cite their sources in the
//! module docs (design brief §4). Depends on mrt-reference for data tables only; must not depend
//! on mrt-phantom, whose truth judges this crate.

pub mod bed;
pub mod contact_band;
pub mod density;
pub mod fit;
pub mod image_free;
pub mod input;
pub mod interface;
pub mod lesions;
pub mod mask_exclusion;
pub mod organ_dose;
pub mod quantify;
pub mod residual;
pub mod stp;
pub mod tac;
pub mod voxel;

pub use image_free::{run, DosimetryResult};
pub use input::{InputError, TacsInput};
