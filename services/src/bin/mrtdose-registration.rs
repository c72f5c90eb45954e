//! `mrtdose-registration`: the registration stage worker (see `mrtdose_services::workers`).

use std::process::ExitCode;

use mrtdose_services::main_support::worker_main;
use mrtdose_services::workers::WorkerKind;

fn main() -> ExitCode {
    worker_main(WorkerKind::Registration)
}
