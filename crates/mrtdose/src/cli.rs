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
    /// Generate one digital phantom study (SPECT/CT time series after 177Lu-DOTATATE) with its
    /// ground truth in DIR/truth/truth.json. Deterministic for a seed.
    Phantom(PhantomArgs),
    /// Generate a cohort: N phantom studies in DIR/patient-XXX/, seeds SEED, SEED+1, ...
    PhantomTrial(PhantomTrialArgs),
    /// Image-free dosimetry: organ time-activity curves and masses (mrtdose.tacs.v1) → fits,
    /// time-integrated activity, absorbed dose (OpenDose S-values, mass-scaled), kidney BED and
    /// uncertainty (mrtdose.dosimetry.v1).
    Dosimetry(DosimetryArgs),
    /// Register two volumes (DICOM series or NIfTI): rigid or affine, NCC or Mattes MI. Writes
    /// the fixed-world → moving-world transform (mrtdose.transform.v1) and prints the metric
    /// before and after.
    Register(RegisterArgs),
    /// Segment liver, kidneys and spleen on a CT (DICOM series or NIfTI) with an ONNX model and
    /// its model card; labels are written on the CT's own grid (NIfTI, values as in the card).
    Segment(SegmentArgs),
    /// The whole pipeline on one study, in this process: ingest → register → segment → quantify →
    /// dose → report. STUDY is a directory of DICOM files in any layout, or a NIfTI study with a
    /// manifest.json. Writes OUT/report.json, OUT/report.html, OUT/labels_tpN.nii.gz,
    /// OUT/dose_Gy.nii.gz (artifacts of every stage stay in OUT/store).
    Run(RunArgs),
    /// Compare a `mrtdose run` result with a phantom's ground truth: Dice per organ and time
    /// point, and activity, TIA and dose errors (%), as a table and as JSON.
    Evaluate(EvaluateArgs),
    /// Send a study (a directory, as for `run`) to the mrtdose services' API and print its study
    /// id; with --wait, follow it to its report and print the status per stage and the QA.
    Submit(SubmitArgs),
    /// Status per stage, errors and QA of one study on the services (all studies without ID).
    Status(StatusArgs),
    /// Fetch a study's results from the services into DIR: report.json, report.html,
    /// dose_Gy.nii.gz, labels_tpN.nii.gz.
    Report(ReportArgs),
}

/// How to reach the services' API (shared by `submit`, `status` and `report`).
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// URL of the ingest service's gRPC API.
    #[arg(
        long,
        env = "MRTDOSE_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub endpoint: String,
}

/// `mrtdose submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Study directory.
    pub study: PathBuf,
    /// Where the services' API is.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Wait until the report stage has run, printing the final status.
    #[arg(long)]
    pub wait: bool,
}

/// `mrtdose status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Study id (as printed by `submit`); every study when absent.
    pub study_id: Option<String>,
    /// Where the services' API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `mrtdose report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Study id.
    pub study_id: String,
    /// Directory for the files (created).
    #[arg(long, env = "MRTDOSE_OUT")]
    pub out: PathBuf,
    /// Where the services' API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `mrtdose evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The phantom's truth directory (holding truth.json and tpN_labels.nii.gz).
    #[arg(long, env = "MRTDOSE_TRUTH")]
    pub truth: PathBuf,
    /// report.json from `mrtdose run` (its labels_tpN.nii.gz are read from the same directory).
    #[arg(long, env = "MRTDOSE_REPORT")]
    pub report: PathBuf,
    /// Also write the evaluation as JSON (schema mrtdose.evaluation.v1) here.
    #[arg(long, env = "MRTDOSE_EVALUATION_JSON")]
    pub json: Option<PathBuf>,
}

/// The segmentation model and where it runs (shared by `segment` and `run`).
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model directory holding model-card.json and the ONNX file it names.
    #[arg(long, env = "MRTDOSE_MODEL", default_value = "models/ct-organs")]
    pub model: PathBuf,
    /// Device for the model.
    #[arg(long, env = "MRTDOSE_DEVICE", value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// ONNX Runtime shared library (scripts/setup-ort.sh puts it in .ort/lib).
    #[arg(
        long,
        env = "ORT_DYLIB_PATH",
        default_value = ".ort/lib/libonnxruntime.so"
    )]
    pub ort_library: PathBuf,
}

/// `mrtdose run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Study directory.
    pub study: PathBuf,
    /// Output directory (created).
    #[arg(long, env = "MRTDOSE_OUT")]
    pub out: PathBuf,
    /// Segmentation model and runtime.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Site settings (TOML; see docs/site-config.md). Defaults apply to anything not given.
    #[arg(long, env = "MRTDOSE_SITE_CONFIG")]
    pub site_config: Option<PathBuf>,
    /// No progress bars (logs and the summary only).
    #[arg(long, env = "MRTDOSE_QUIET")]
    pub quiet: bool,
}

/// Where `mrtdose segment` runs the model.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DeviceArg {
    /// CUDA when available, else the CPU (the log says which ran).
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA, or an error.
    Cuda,
}

/// `mrtdose segment`.
#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// CT: DICOM series directory or file, or .nii/.nii.gz.
    pub ct: PathBuf,
    /// Output label map (.nii.gz).
    #[arg(long, env = "MRTDOSE_OUT")]
    pub out: PathBuf,
    /// Model and runtime.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Degrees of freedom of `mrtdose register`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RegisterKind {
    /// Rotation and translation (6).
    Rigid,
    /// Plus scaling and shear (12).
    Affine,
}

/// Similarity metric of `mrtdose register`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RegisterMetric {
    /// Normalised cross-correlation (same modality).
    Ncc,
    /// Mattes mutual information (any modalities).
    MattesMi,
}

/// `mrtdose register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Fixed volume: DICOM series directory or file, or .nii/.nii.gz.
    #[arg(long, env = "MRTDOSE_FIXED")]
    pub fixed: PathBuf,
    /// Moving volume (same forms).
    #[arg(long, env = "MRTDOSE_MOVING")]
    pub moving: PathBuf,
    /// Output transform JSON (schema mrtdose.transform.v1).
    #[arg(long, env = "MRTDOSE_OUT")]
    pub out: PathBuf,
    /// Degrees of freedom.
    #[arg(long, env = "MRTDOSE_REGISTER_KIND", value_enum, default_value_t = RegisterKind::Rigid)]
    pub kind: RegisterKind,
    /// Similarity metric.
    #[arg(long, env = "MRTDOSE_REGISTER_METRIC", value_enum, default_value_t = RegisterMetric::Ncc)]
    pub metric: RegisterMetric,
    /// Voxels of the fixed image above this value are sampled (HU for CT: the body).
    #[arg(long, env = "MRTDOSE_REGISTER_MASK_THRESHOLD", default_value_t = -400.0, allow_hyphen_values = true)]
    pub mask_threshold: f32,
    /// Intensity window applied to both images before the metric, as LOW,HIGH.
    #[arg(
        long,
        env = "MRTDOSE_REGISTER_WINDOW",
        default_value = "-300,400",
        allow_hyphen_values = true
    )]
    pub window: String,
    /// Also write the moving image resampled onto the fixed grid (NIfTI).
    #[arg(long, env = "MRTDOSE_REGISTER_RESAMPLED")]
    pub resampled: Option<PathBuf>,
}

/// `mrtdose dosimetry`.
#[derive(Debug, Args)]
pub struct DosimetryArgs {
    /// Input JSON (schema mrtdose.tacs.v1).
    #[arg(long, env = "MRTDOSE_DOSIMETRY_INPUT")]
    pub input: PathBuf,
    /// Output JSON (schema mrtdose.dosimetry.v1); the summary table goes to stdout.
    #[arg(long, env = "MRTDOSE_DOSIMETRY_OUT")]
    pub out: PathBuf,
}

/// Output format of the phantom generator.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PhantomFormat {
    /// DICOM: CT series and NM multi-frame SPECT (Bq/mL), as scanners write them.
    Dicom,
    /// NIfTI volumes and a JSON manifest.
    Nifti,
}

/// Size preset of the phantom generator.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PhantomPreset {
    /// 128×128×100 CT at 3 mm (for tests).
    Small,
    /// 512×512×140 CT at 0.9 × 0.9 × 2.5 mm.
    Clinical,
}

/// Options shared by `phantom` and `phantom-trial`.
#[derive(Debug, Args)]
pub struct PhantomCommon {
    /// Size preset.
    #[arg(
        long,
        env = "MRTDOSE_PHANTOM_PRESET",
        value_enum,
        default_value = "small"
    )]
    pub preset: PhantomPreset,
    /// SPECT/CT time points, hours after injection.
    #[arg(
        long,
        env = "MRTDOSE_PHANTOM_TIMEPOINTS_H",
        value_delimiter = ',',
        default_value = "4,24,72,168"
    )]
    pub timepoints_h: Vec<f64>,
    /// SPECT point spread function FWHM (mm).
    #[arg(long, env = "MRTDOSE_PHANTOM_PSF_FWHM_MM", default_value_t = 11.0)]
    pub psf_fwhm_mm: f64,
    /// Largest SPECT↔CT misalignment per time point (mm; 0 = aligned).
    #[arg(long, env = "MRTDOSE_PHANTOM_MISALIGN_MM", default_value_t = 0.0)]
    pub misalign_mm: f64,
    /// Output format.
    #[arg(
        long,
        env = "MRTDOSE_PHANTOM_FORMAT",
        value_enum,
        default_value = "dicom"
    )]
    pub format: PhantomFormat,
    /// Leave out liver tumours.
    #[arg(long, env = "MRTDOSE_PHANTOM_NO_TUMOURS")]
    pub no_tumours: bool,
    /// Revision of the procedural anatomy: 2 (default) gives each kidney a perirenal fat capsule
    /// that the liver and spleen yield to; 1 reproduces phantoms drawn before it (overlapping
    /// organs, bare kidneys), e.g. the training data of segmentation model 1.8.0.
    #[arg(
        long,
        env = "MRTDOSE_PHANTOM_ANATOMY_REVISION",
        default_value_t = 2,
        value_parser = clap::value_parser!(u8).range(1..=2)
    )]
    pub anatomy_revision: u8,
}

/// `mrtdose phantom`.
#[derive(Debug, Args)]
pub struct PhantomArgs {
    /// Output directory (created).
    #[arg(long, env = "MRTDOSE_OUT")]
    pub out: PathBuf,
    /// Seed.
    #[arg(long, env = "MRTDOSE_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Shared options.
    #[command(flatten)]
    pub common: PhantomCommon,
}

/// `mrtdose phantom-trial`.
#[derive(Debug, Args)]
pub struct PhantomTrialArgs {
    /// Number of patients.
    #[arg(long, env = "MRTDOSE_TRIAL_N")]
    pub n: usize,
    /// Output directory (created).
    #[arg(long, env = "MRTDOSE_OUT")]
    pub out: PathBuf,
    /// Seed of the first patient.
    #[arg(long, env = "MRTDOSE_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Shared options.
    #[command(flatten)]
    pub common: PhantomCommon,
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
