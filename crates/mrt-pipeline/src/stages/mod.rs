//! The stages, each a synchronous function from the artifacts of the stages it depends on (files
//! under `work/<stage>/`) to its own artifacts (files in `out/`). The same functions run in
//! `mrtdose run` and in the services; only the runner around them differs.

use std::path::Path;
use std::sync::Arc;

use mrt_segment::Segmenter;
use serde::{Deserialize, Serialize};

use crate::config::SiteConfig;

pub mod boundary_search;
pub mod dose;
pub mod ingest;
pub mod quantify;
pub mod register;
pub mod report;
pub mod segment;
pub mod uptake_exclusion;

/// A pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Study assembly: time points, CT and SPECT volumes, injection data.
    Ingest,
    /// CT_t → CT_ref.
    Register,
    /// Organ labels on every CT.
    Segment,
    /// SPECT↔CT correction and organ activities per time point.
    Quantify,
    /// Fits, TIA, organ and voxel dose, DVH, BED.
    Dose,
    /// report.json and report.html.
    Report,
}

impl Stage {
    /// In pipeline order.
    pub const ALL: [Stage; 6] = [
        Stage::Ingest,
        Stage::Register,
        Stage::Segment,
        Stage::Quantify,
        Stage::Dose,
        Stage::Report,
    ];

    /// Lower-case name (artifact prefix, queue name).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Register => "register",
            Stage::Segment => "segment",
            Stage::Quantify => "quantify",
            Stage::Dose => "dose",
            Stage::Report => "report",
        }
    }

    /// The stage after this one.
    pub fn next(self) -> Option<Stage> {
        let i = Stage::ALL.iter().position(|&s| s == self)?;
        Stage::ALL.get(i + 1).copied()
    }

    /// Stages whose artifacts this one reads.
    pub fn inputs(self) -> &'static [Stage] {
        match self {
            Stage::Ingest => &[],
            Stage::Register => &[Stage::Ingest],
            Stage::Segment => &[Stage::Ingest, Stage::Register],
            Stage::Quantify => &[Stage::Ingest, Stage::Register, Stage::Segment],
            Stage::Dose => &[
                Stage::Ingest,
                Stage::Register,
                Stage::Segment,
                Stage::Quantify,
            ],
            Stage::Report => &[
                Stage::Ingest,
                Stage::Register,
                Stage::Segment,
                Stage::Quantify,
                Stage::Dose,
            ],
        }
    }
}

/// What a stage needs besides its input artifacts.
#[derive(Clone)]
pub struct StageContext {
    /// Site settings.
    pub config: SiteConfig,
    /// The loaded segmentation model (one per process).
    pub segmenter: Option<Arc<Segmenter>>,
    /// Called once per time point processed (progress bars).
    pub tick: Arc<dyn Fn(Stage) + Send + Sync>,
}

/// Why a stage could not produce its artifacts at all (partial results are not errors: they
/// are written with the reason for what is missing).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Input that makes the whole study impossible (no time point, unreadable directory).
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// What happened.
        detail: String,
    },
}

/// Reads and parses a JSON artifact.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StageError> {
    let text = std::fs::read_to_string(path).map_err(|e| StageError::File {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| StageError::File {
        path: path.display().to_string(),
        detail: format!("not valid JSON for this artifact: {e}"),
    })
}

/// Writes a JSON artifact.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StageError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| StageError::File {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    std::fs::write(path, text + "\n").map_err(|e| StageError::File {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// Maps an mrt-io error to a stage error.
pub fn io_err(e: mrt_io::IoError) -> StageError {
    StageError::File {
        path: e.path.display().to_string(),
        detail: e.problem.to_string(),
    }
}
