//! The ingest service: serves the public `StudyService` over gRPC and its health probes.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use mrt_pipeline::StageContext;
use mrt_proto::v1::study_service_server::StudyServiceServer;
use mrt_runtime::health::{spawn_health_server, Readiness};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::api::{BusHandle, StudyApi};
use crate::args::CommonArgs;

/// mrtdose's ingest service: the public gRPC API (SubmitStudy, GetStudy, WatchStudy,
/// ListStudies, GetReport). It assembles submitted studies, writes their raw files and volumes
/// to the store and starts the pipeline on RabbitMQ.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct IngestArgs {
    /// Address of the gRPC API.
    #[arg(long, env = "MRTDOSE_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Broker, store, telemetry, probes, site settings.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the service until `shutdown`: in-flight calls finish, then the broker connection closes.
pub async fn run(args: IngestArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = args.common.store()?;
    let config = args.common.site_config()?;
    let ready = Readiness::default();
    let bus = Arc::new(BusHandle::new(args.common.amqp(), ready.clone()));
    // Declares the topology and proves the broker is there before the API opens.
    bus.get().await.context("connecting to RabbitMQ")?;
    let health = spawn_health_server(args.common.health_addr, ready.clone(), shutdown.clone())
        .await
        .with_context(|| format!("binding the health probes on {}", args.common.health_addr))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the gRPC API on {}", args.listen))?;
    tracing::info!(api = %listener.local_addr()?, %health, "mrtdose-ingest listening");
    let api = StudyApi {
        store,
        bus: bus.clone(),
        ctx: StageContext {
            config,
            segmenter: None,
            tick: Arc::new(|_| {}),
        },
    };
    tonic::transport::Server::builder()
        .add_service(StudyServiceServer::new(api))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled())
        .await
        .context("gRPC server")?;
    ready.set(false);
    bus.close().await;
    tracing::info!("mrtdose-ingest stopped");
    Ok(())
}
