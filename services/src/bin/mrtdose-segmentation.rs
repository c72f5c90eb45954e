//! `mrtdose-segmentation`: the segmentation stage worker (see `mrtdose_services::workers`). Loads
//! the model once and serves every study with it; prefetch 1, so a GPU node holds one study.

use std::process::ExitCode;

use clap::Parser;
use mrtdose_services::args::{CommonArgs, ModelArgs};
use mrtdose_services::workers::{run, WorkerKind};

/// mrtdose's segmentation service: consumes the segment queue on RabbitMQ and segments every CT
/// of a study with the ONNX model (CUDA when available).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    model: ModelArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let kind = WorkerKind::Segmentation;
    let telemetry = cli.common.telemetry(kind.service_name());
    mrtdose_services::main_support::serve(telemetry, |shutdown| {
        run(kind, cli.common, Some(cli.model), shutdown)
    })
}
