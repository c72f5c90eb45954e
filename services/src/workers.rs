//! The four stage-worker services: which stages each consumes, and their `run`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mrt_pipeline::{Stage, StageContext};
use mrt_runtime::health::{spawn_health_server, Readiness};
use mrt_runtime::worker::{run_worker, WorkerConfig};
use mrt_segment::{Device, Segmenter};
use tokio_util::sync::CancellationToken;

use crate::args::{CommonArgs, ModelArgs};

/// A stage-worker service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerKind {
    /// CT ↔ CT registration.
    Registration,
    /// Organ segmentation (ONNX Runtime; GPU when present).
    Segmentation,
    /// SPECT↔CT correction and organ activities.
    Quantification,
    /// Fits, TIA, dose, and the report.
    Dosimetry,
}

impl WorkerKind {
    /// Binary and `service.name`.
    pub fn service_name(self) -> &'static str {
        match self {
            WorkerKind::Registration => "mrtdose-registration",
            WorkerKind::Segmentation => "mrtdose-segmentation",
            WorkerKind::Quantification => "mrtdose-quantification",
            WorkerKind::Dosimetry => "mrtdose-dosimetry",
        }
    }

    /// The stage queues it consumes.
    pub fn stages(self) -> Vec<Stage> {
        match self {
            WorkerKind::Registration => vec![Stage::Register],
            WorkerKind::Segmentation => vec![Stage::Segment],
            WorkerKind::Quantification => vec![Stage::Quantify],
            WorkerKind::Dosimetry => vec![Stage::Dose, Stage::Report],
        }
    }
}

/// Parses `--device`.
pub fn device(name: &str) -> Device {
    match name {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda,
        _ => Device::Auto,
    }
}

/// Runs a worker service until `shutdown`. `model` is needed by the segmentation service only.
pub async fn run(
    kind: WorkerKind,
    common: CommonArgs,
    model: Option<ModelArgs>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = common.store()?;
    let config = common.site_config()?;
    let segmenter = match model {
        Some(m) => {
            let loaded = tokio::task::spawn_blocking(move || {
                Segmenter::load(&m.model, device(&m.device), &m.ort_library)
                    .with_context(|| format!("loading the model in {}", m.model.display()))
            })
            .await??;
            Some(Arc::new(loaded))
        }
        None => None,
    };
    let ready = Readiness::default();
    let health = spawn_health_server(common.health_addr, ready.clone(), shutdown.clone())
        .await
        .with_context(|| format!("binding the health probes on {}", common.health_addr))?;
    tracing::info!(service = kind.service_name(), %health, "health probes listening");
    let ctx = StageContext {
        config,
        segmenter,
        tick: Arc::new(|_| {}),
    };
    let cfg = WorkerConfig {
        amqp: common.amqp(),
        stages: kind.stages(),
        prefetch: 1,
        reconnect_delay: Duration::from_secs(2),
        service: kind.service_name().to_string(),
    };
    run_worker(cfg, store, ctx, ready, shutdown).await?;
    tracing::info!(service = kind.service_name(), "stopped");
    Ok(())
}
