//! Why segmentation refused or failed; every message says what to do.

use std::path::PathBuf;

/// Segmentation errors.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The ONNX Runtime shared library is not where we looked.
    #[error("ONNX Runtime library not found at {path}: run `bash scripts/setup-ort.sh` (fetches onnxruntime 1.31.1 from PyPI into .ort/lib) or set ORT_DYLIB_PATH to a libonnxruntime.so")]
    RuntimeMissing {
        /// Where we looked.
        path: PathBuf,
    },
    /// The library exists but could not be loaded or initialised.
    #[error("cannot load ONNX Runtime from {path}: {detail}")]
    RuntimeLoad {
        /// The library.
        path: PathBuf,
        /// Loader message.
        detail: String,
    },
    /// The model card is missing or wrong.
    #[error("model card {path}: {problem}")]
    Card {
        /// The card (or the file it names).
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The ONNX file is not the one the card describes.
    #[error("{path}: SHA-256 is {actual} but the model card says {card}; the model file was changed or the card is stale (re-export, or fix the card)")]
    Sha256Mismatch {
        /// ONNX file.
        path: PathBuf,
        /// Hash in the card.
        card: String,
        /// Hash of the file.
        actual: String,
    },
    /// The ONNX graph does not match its card.
    #[error("{path} does not match its model card: {problem}")]
    ModelMismatch {
        /// ONNX file.
        path: PathBuf,
        /// What differs.
        problem: String,
    },
    /// The requested device cannot be used.
    #[error("device {requested}: {detail}")]
    Device {
        /// What was asked for.
        requested: String,
        /// Why not.
        detail: String,
    },
    /// The CT cannot be segmented by this model.
    #[error("CT unsuitable for the model: {0}")]
    Ct(String),
    /// ONNX Runtime failed while running.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
}
