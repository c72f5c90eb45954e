//! Typed errors that always name the file (or series) and the problem.

use std::fmt;
use std::path::PathBuf;

/// An I/O failure: which file or series, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct IoError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: Problem,
}

impl IoError {
    /// Pairs a path with a problem.
    pub fn new(path: impl Into<PathBuf>, problem: Problem) -> Self {
        Self {
            path: path.into(),
            problem,
        }
    }

    /// Short machine-readable code of the problem (stable; used in JSON output).
    pub fn code(&self) -> &'static str {
        self.problem.code()
    }
}

/// What went wrong with a file or series.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The file system refused.
    #[error("cannot read or write: {0}")]
    Io(#[from] std::io::Error),
    /// Not parseable as DICOM (truncated, corrupt, not DICOM at all).
    #[error("not a readable DICOM file: {0}")]
    Parse(String),
    /// A required attribute is absent.
    #[error("missing attribute {0}")]
    MissingAttribute(&'static str),
    /// An attribute is present but its value is unusable.
    #[error("invalid {attribute}: {detail}")]
    InvalidAttribute {
        /// Attribute keyword, e.g. `ImageOrientationPatient`.
        attribute: &'static str,
        /// Why it is unusable.
        detail: String,
    },
    /// A DICOM object that holds no image (structured report, RT plan, ...).
    #[error("not an image object (SOP class {sop_class}, modality {modality})")]
    NotAnImage {
        /// SOP Class UID.
        sop_class: String,
        /// Modality, or `?`.
        modality: String,
    },
    /// The pixel data could not be decoded.
    #[error("cannot decode pixel data (transfer syntax {transfer_syntax}): {detail}")]
    Decode {
        /// Transfer syntax UID.
        transfer_syntax: String,
        /// Decoder message.
        detail: String,
    },
    /// A third-party decoder panicked on this input; caught and reported instead of crashing.
    #[error("decoder crashed on corrupt input (transfer syntax {transfer_syntax}): {detail}")]
    DecoderPanicked {
        /// Transfer syntax UID.
        transfer_syntax: String,
        /// Panic message.
        detail: String,
    },
    /// Valid DICOM that mrtdose does not handle (colour images, LUT modality transforms, ...).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Files of one series disagree or do not form a regular volume.
    #[error("inconsistent series: {0}")]
    Series(String),
    /// A NIfTI file problem.
    #[error("NIfTI: {0}")]
    Nifti(String),
    /// A DICOM encoding/writing problem.
    #[error("cannot write DICOM: {0}")]
    Write(String),
}

impl Problem {
    /// Short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::Io(_) => "io",
            Problem::Parse(_) => "parse",
            Problem::MissingAttribute(_) => "missing_attribute",
            Problem::InvalidAttribute { .. } => "invalid_attribute",
            Problem::NotAnImage { .. } => "not_an_image",
            Problem::Decode { .. } => "decode",
            Problem::DecoderPanicked { .. } => "decoder_panicked",
            Problem::Unsupported(_) => "unsupported",
            Problem::Series(_) => "series",
            Problem::Nifti(_) => "nifti",
            Problem::Write(_) => "write",
        }
    }
}

/// Renders a panic payload for [`Problem::DecoderPanicked`].
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Convenience: `Result<T, IoError>`.
pub type Result<T> = std::result::Result<T, IoError>;

/// A file that was skipped while scanning a directory, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Machine-readable code (see [`Problem::code`]).
    pub code: &'static str,
    /// Human-readable reason.
    pub reason: String,
}

impl From<&IoError> for Skipped {
    fn from(e: &IoError) -> Self {
        Self {
            path: e.path.clone(),
            code: e.code(),
            reason: e.problem.to_string(),
        }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// The error and its sources, joined, so the innermost cause (e.g. "unexpected end of file")
/// reaches the user.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}
