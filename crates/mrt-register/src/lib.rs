//! Rigid registration in physical space (LPS mm), pure and synchronous.
//!
//! Today: CT↔CT rigid registration for time points — centre-of-mass initialisation, a
//! three-level pyramid (Gaussian-smoothed images, coarser sampling), normalised cross-correlation
//! on a body mask, Nelder-Mead over six parameters (three rotations about the fixed image's body
//! centre, three translations). SPECT↔CT misalignment correction, affine, Mattes MI and the
//! `mrtdose register` command are the rest of issue 5.

pub mod nelder_mead;
pub mod rigid;
pub mod spect_ct;

pub use rigid::{register_rigid, RegisterError, Registration, RigidOptions};
pub use spect_ct::{align_spect_to_ct, SpectAlignOptions, SpectAlignment};
