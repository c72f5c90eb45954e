//! File formats of mrtdose: DICOM (through dicom-rs) and NIfTI, to and from
//! [`mrt_core::Volume`], plus study assembly from a directory tree of DICOM files.
//!
//! This crate does file I/O but no async, no network and no logging of patient identifiers:
//! patient names and IDs are read only to group files and are never stored in what it returns
//! (see [`study::PatientKey`]). Geometry is always converted to LPS world millimetres.

pub mod datetime;
pub mod dicom;
pub mod error;
pub mod load;
pub mod nifti_io;
pub mod study;

pub use error::{IoError, Problem};
