//! Registration in physical space (LPS mm) for mrtdose, pure and synchronous.
//!
//! - [`register`]: rigid or affine registration of any two volumes, NCC (CT↔CT) or Mattes MI,
//!   centre-of-mass initialisation, Gaussian pyramid, Nelder-Mead, sample masks.
//! - [`timepoints`]: every time point's CT onto a reference CT; each SPECT follows its CT.
//! - [`spect_ct`]: SPECT↔CT misalignment from the organ masks, with a QA score and a review flag.
//!
//! Transforms are [`mrt_core::Transform`] (JSON, compose, invert). Must not depend on file
//! formats, I/O or async: callers load volumes and write results.

pub mod gauss_newton;
pub mod metric;
pub mod nelder_mead;
pub mod register;
pub mod spect_ct;
pub mod timepoints;

pub use metric::Metric;
pub use register::{register, RegisterError, RegisterOptions, Registration, TransformKind};
pub use spect_ct::{align_spect_to_ct, SpectAlignOptions, SpectAlignment};
