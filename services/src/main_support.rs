//! What every service `main` does around its `run`: telemetry before the runtime (its exporters
//! use blocking HTTP on their own threads), a runtime, a shutdown token cancelled by SIGTERM or
//! Ctrl-C, and telemetry flushed after the runtime has stopped.

use std::future::Future;
use std::process::ExitCode;

use mrt_runtime::telemetry::{self, TelemetryConfig};
use tokio_util::sync::CancellationToken;

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
