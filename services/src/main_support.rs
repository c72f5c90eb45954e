//! What every service `main` does around its `run`: telemetry before the runtime (its exporters
//! use blocking HTTP on their own threads), a runtime, a shutdown token cancelled by SIGTERM or
//! Ctrl-C, and telemetry flushed after the runtime has stopped.

use std::future::Future;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

use mrt_runtime::telemetry::{self, TelemetryConfig};
use tokio_util::sync::CancellationToken;

use crate::args::CommonArgs;
use crate::workers::{self, WorkerKind};

/// Runs `run(shutdown)` as service `cfg.service_name`; the exit code says whether it failed.
pub fn serve<F, Fut>(cfg: TelemetryConfig, run: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let telemetry = match telemetry::init(&cfg) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", cfg.service_name);
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: starting the async runtime: {e}", cfg.service_name);
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = mrt_runtime::shutdown::on_signal();
        run(shutdown).await
    });
    drop(runtime);
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e:#}", cfg.service_name);
            ExitCode::FAILURE
        }
    }
}

/// The whole `main` of a stage worker that needs no model (registration, quantification,
/// dosimetry): parse the common flags, then [`serve`] the worker of `kind`.
pub fn worker_main(kind: WorkerKind) -> ExitCode {
    /// The flags every worker takes.
    #[derive(Debug, Parser)]
    #[command(version)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }
    let about = format!(
        "mrtdose's {} service: consumes its stage queue(s) on RabbitMQ and runs the pipeline's \
         stage functions against the object store.",
        kind.service_name().trim_start_matches("mrtdose-")
    );
    let matches = Cli::command()
        .name(kind.service_name())
        .about(about)
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let telemetry = cli.common.telemetry(kind.service_name());
    serve(telemetry, |shutdown| {
        workers::run(kind, cli.common, None, shutdown)
    })
}
