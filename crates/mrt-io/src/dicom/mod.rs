//! DICOM: header parsing, pixel decoding, single files, series volumes and writing.
//!
//! Layering: [`attrs`] reads typed values with errors naming the attribute; [`header`] turns a
//! dataset into a [`header::DicomHeader`] (everything but pixels); [`pixels`] decodes and
//! rescales pixel data ([`j2k`] checks JPEG 2000 codestreams against the header first); [`file`]
//! reads one image file; [`series`] assembles a [`mrt_core::Volume`] from a CT/PT-style slice
//! series or an NM multi-frame SPECT; [`write`] writes CT series and NM SPECT files.

pub mod attrs;
pub mod file;
pub mod header;
pub mod j2k;
pub mod jpeg12;
pub mod pixels;
pub mod rle;
pub mod series;
pub mod uid;
pub mod write;

pub use file::{open_dataset, open_header, read_image_file, DicomImage};
pub use header::{DicomHeader, Radiopharmaceutical, SeriesKind};
pub use series::{read_series, SeriesVolume};
