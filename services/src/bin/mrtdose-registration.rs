//! `mrtdose-registration`: the registration stage worker (see `mrtdose_services::workers`).

use std::process::ExitCode;

use clap::Parser;
use mrtdose_services::args::CommonArgs;
use mrtdose_services::workers::{run, WorkerKind};

/// mrtdose's registration service: consumes its stage queue(s) on RabbitMQ and runs the pipeline's
/// stage functions against the object store.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let kind = WorkerKind::Registration;
    let telemetry = cli.common.telemetry(kind.service_name());
    mrtdose_services::main_support::serve(telemetry, |shutdown| {
        run(kind, cli.common, None, shutdown)
    })
}
