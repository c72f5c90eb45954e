//! CT organ segmentation for mrtdose: any ONNX model with a model card (`mrtdose.model-card.v1`)
//! runs through ONNX Runtime (the `ort` crate, loaded dynamically from the PyPI library).
//!
//! Steps: check the card against the ONNX file (SHA-256, input/output names and channels), check
//! the CT is in HU, resample it to the model's axis-aligned LPS frame, slide Gaussian-weighted
//! windows (on that grid and, when the card asks for it, on grids shifted from it by fractions of a
//! voxel, averaged), refine the probabilities near organ boundaries with the CT's own intensities and, where
//! two organs touch, with the CT numbers averaged over the organs (when the card asks for it), map
//! probabilities back onto the CT's own grid, remove thick fat-like regions from the spleen's mask,
//! keep one piece per organ (the largest, or for kidneys and spleen the largest that is not
//! fat-like), fill holes,
//! check kidney sides, flag implausible volumes.
//!
//! This is the only crate that depends on `ort`. It does no file I/O besides reading the model
//! and loading the runtime library; no async.

pub mod canonical;
pub mod card;
pub mod error;
pub mod fat_like;
pub mod fusion;
pub mod organ_contact;
pub mod parenchyma;
pub mod postprocess;
pub mod refine;
pub mod segmenter;
pub mod window;

pub use card::{ModelBundle, ModelCard};
pub use error::SegmentError;
pub use segmenter::{default_runtime_path, Device, Inferred, Segmentation, Segmenter};
