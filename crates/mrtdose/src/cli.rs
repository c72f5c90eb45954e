//! Command-line flags. Every flag can also be set through the environment variable named in
//! `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// 177Lu SPECT/CT dosimetry: from DICOM studies to organ and voxel absorbed doses.
#[derive(Debug, Parser)]
#[command(name = "mrtdose", version, about)]
pub struct Cli {
    /// Log filter (tracing syntax, e.g. `info`, `mrt_io=debug`); logs go to stderr.
    #[arg(
        long,
        global = true,
        env = "MRTDOSE_LOG",
        default_value = "warn,dicom_object=error"
    )]
    pub log_level: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe a DICOM file, a series or study directory (any layout), or a NIfTI file:
    /// modality, geometry (LPS mm), units, value statistics, acquisition times, study grouping
    /// and time points, and every file that was skipped and why.
    Inspect(InspectArgs),
}

/// `mrtdose inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// DICOM file, directory tree of DICOM files, or .nii/.nii.gz file.
    pub path: PathBuf,
    /// Print JSON (schema `mrtdose.inspect.v1`) instead of text.
    #[arg(long, env = "MRTDOSE_JSON")]
    pub json: bool,
    /// Only group files and read headers; do not load pixel data (no statistics).
    #[arg(long, env = "MRTDOSE_HEADERS_ONLY")]
    pub headers_only: bool,
}
