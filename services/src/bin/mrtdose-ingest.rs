//! `mrtdose-ingest`: the public gRPC API and study assembly (see `mrtdose_services::ingest`).

use std::process::ExitCode;

use clap::Parser;
use mrtdose_services::ingest::{run, IngestArgs};

fn main() -> ExitCode {
    let args = IngestArgs::parse();
    let telemetry = args.common.telemetry("mrtdose-ingest");
    mrtdose_services::main_support::serve(telemetry, |shutdown| run(args, shutdown))
}
