//! Pure, synchronous imaging core of mrtdose.
//!
//! What lives here: [`Grid`] (voxel lattice placed in LPS world millimetres), [`Volume`] (a grid
//! plus voxel values), small 3×3 linear algebra, and resampling of one volume onto another grid.
//!
//! What must not: file formats, I/O, async, logging of patient data. Every other crate builds on
//! this one, so it stays dependency-light (rayon for data parallelism, serde for geometry JSON).

pub mod dense;
pub mod distance;
pub mod fft;
pub mod filter;
pub mod grid;
pub mod linalg;
pub mod morphology;
pub mod resample;
pub mod stacked;
pub mod transform;
pub mod volume;

pub use grid::{Grid, GridError};
pub use linalg::{Mat3, Vec3};
pub use resample::{resample, resample_mapped, Interpolation};
pub use transform::{RigidTransform, Transform};
pub use volume::{Volume, VolumeStats};
