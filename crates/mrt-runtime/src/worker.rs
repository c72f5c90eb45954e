//! A stage worker: consumes the queues of its stages on RabbitMQ and runs each delivery through
//! the pipeline's [`Runner`] (the same stage functions as `mrtdose run`), one at a time.
//!
//! - ack only after the stage's outputs and status marker are in the store;
//! - an infrastructure error (store or broker) sends the delivery to the retry queue; after
//!   `max_attempts` the stage is marked failed with the reason, the report stage is told, and
//!   the delivery goes to the dead-letter queue;
//! - a stage's own failure is an outcome, not an error: it is recorded and acked;
//! - the broker going away is survived by reconnecting; unacked deliveries come back;
//! - on shutdown the worker stops taking deliveries, finishes the one it holds, then closes.

use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use mrt_pipeline::bus::{Outcome, StageEvent};
use mrt_pipeline::store::Store;
use mrt_pipeline::{Runner, Stage, StageContext};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::amqp::{AmqpBus, AmqpConfig, AmqpError};
use crate::health::Readiness;
use crate::metrics::StageMetrics;
use crate::telemetry::adopt_traceparent;
use crate::wire::{decode_event, now_unix_ms};

/// What a worker consumes and how.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Broker.
    pub amqp: AmqpConfig,
    /// Stages whose queues this worker consumes.
    pub stages: Vec<Stage>,
    /// Unacknowledged deliveries per queue (1 on GPU workers).
    pub prefetch: u16,
    /// Wait between reconnection attempts.
    pub reconnect_delay: Duration,
    /// Service name, for span names and consumer tags.
    pub service: String,
}

/// Runs until `shutdown`. Errors only for what reconnecting cannot mend.
pub async fn run_worker(
    cfg: WorkerConfig,
    store: Store,
    ctx: StageContext,
    ready: Readiness,
    shutdown: CancellationToken,
) -> Result<(), AmqpError> {
    let metrics = StageMetrics::new();
    while !shutdown.is_cancelled() {
        let bus = match AmqpBus::connect(cfg.amqp.clone()).await {
            Ok(bus) => bus,
            Err(e) => {
                tracing::warn!(error = %e, "broker unreachable; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(cfg.reconnect_delay) => continue,
                }
            }
        };
        let runner = Runner {
            store: store.clone(),
            bus,
            ctx: ctx.clone(),
        };
        ready.set(true);
        let served = serve(&cfg, &runner, &metrics, &shutdown).await;
        ready.set(false);
        match served {
            Ok(()) => {
                if let Err(e) = runner.bus.close().await {
                    tracing::debug!(error = %e, "closing the broker connection");
                }
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "lost the broker; reconnecting");
                tokio::time::sleep(cfg.reconnect_delay).await;
            }
        }
    }
    Ok(())
}

/// Consumes until shutdown (`Ok`) or until the connection fails (`Err`).
async fn serve(
    cfg: &WorkerConfig,
    runner: &Runner<AmqpBus>,
    metrics: &StageMetrics,
    shutdown: &CancellationToken,
) -> Result<(), AmqpError> {
    let mut streams = Vec::new();
    for &stage in &cfg.stages {
        let tag = format!("{}-{}-{}", cfg.service, stage.name(), std::process::id());
        let consumer = runner.bus.consume(stage, cfg.prefetch, &tag).await?;
        streams.push(consumer.map(move |d| (stage, d)).boxed());
    }
    let mut deliveries = futures::stream::select_all(streams);
    tracing::info!(stages = ?cfg.stages, "consuming");
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = deliveries.next() => next,
        };
        match next {
            Some((stage, Ok(delivery))) => handle(cfg, runner, metrics, stage, delivery).await?,
            Some((_, Err(e))) => return Err(e.into()),
            None => return Err(AmqpError::Closed),
        }
    }
}

/// Whether `event` is one that starts `stage`. The report's own failure also matches the report
/// queue's `*.failed` binding; nothing follows the report.
fn starts(stage: Stage, event: &StageEvent) -> bool {
    if event.stage == Stage::Report {
        return false;
    }
    match event.outcome {
        Outcome::Failed { .. } => stage == Stage::Report,
        Outcome::Done => event.stage.next() == Some(stage),
    }
}

/// Runs one delivery to the end: ack, retry later or dead-letter.
async fn handle(
    cfg: &WorkerConfig,
    runner: &Runner<AmqpBus>,
    metrics: &StageMetrics,
    stage: Stage,
    delivery: Delivery,
) -> Result<(), AmqpError> {
    let attempt = AmqpBus::attempts(&delivery);
    let (event, published_ms) = match decode_event(&delivery.data) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(stage = stage.name(), error = %e, "undecodable delivery dead-lettered");
            return runner
                .bus
                .dead_letter(stage, &delivery, &format!("undecodable: {e}"))
                .await;
        }
    };
    if !starts(stage, &event) {
        delivery.ack(BasicAckOptions::default()).await?;
        return Ok(());
    }
    let span = tracing::info_span!(
        "stage",
        otel.name = %format!("{} {}", cfg.service, stage.name()),
        stage = stage.name(),
        study_id = %event.study_id,
        attempt,
        redelivered = delivery.redelivered,
        input_bytes = tracing::field::Empty,
        output_bytes = tracing::field::Empty,
        seconds = tracing::field::Empty,
    );
    if let Some(tp) = AmqpBus::traceparent(&delivery).or(event.traceparent.clone()) {
        adopt_traceparent(&span, &tp);
    }
    tracing::info!(parent: &span, "stage started");
    if published_ms > 0 {
        metrics.queue_wait(stage.name(), (now_unix_ms() - published_ms) as f64 / 1000.0);
    }
    let failure = match &event.outcome {
        Outcome::Failed { reason } => Some(reason.clone()),
        Outcome::Done => None,
    };
    let started = Instant::now();
    let result = runner
        .run_stage(&event.study_id, stage, failure)
        .instrument(span.clone())
        .await;
    metrics.duration(stage.name(), started.elapsed().as_secs_f64());
    match result {
        Ok(outcome) => {
            if let Outcome::Failed { reason } = &outcome {
                metrics.failure(stage.name());
                tracing::warn!(parent: &span, reason = %reason, "stage failed");
            }
            delivery.ack(BasicAckOptions::default()).await?;
        }
        Err(e) if runner.bus.exhausted(&delivery) => {
            let reason = format!("{}: gave up after {attempt} attempts: {e}", stage.name());
            tracing::error!(parent: &span, reason = %reason, "dead-lettering");
            metrics.failure(stage.name());
            if let Err(e2) = runner
                .give_up(&event.study_id, stage, reason.clone())
                .instrument(span.clone())
                .await
            {
                tracing::error!(parent: &span, error = %e2, "could not mark the study failed");
            }
            runner.bus.dead_letter(stage, &delivery, &reason).await?;
        }
        Err(e) => {
            tracing::warn!(parent: &span, error = %e, attempt, "stage error; retrying later");
            metrics.retry(stage.name());
            runner.bus.retry_later(&delivery).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stage: Stage, outcome: Outcome) -> StageEvent {
        StageEvent {
            study_id: "S".into(),
            stage,
            outcome,
            traceparent: None,
        }
    }

    #[test]
    fn only_the_previous_stage_or_a_failure_starts_a_stage() {
        let failed = || Outcome::Failed { reason: "x".into() };
        assert!(starts(
            Stage::Register,
            &event(Stage::Ingest, Outcome::Done)
        ));
        assert!(!starts(
            Stage::Segment,
            &event(Stage::Ingest, Outcome::Done)
        ));
        assert!(starts(Stage::Report, &event(Stage::Dose, Outcome::Done)));
        assert!(starts(Stage::Report, &event(Stage::Register, failed())));
        assert!(!starts(Stage::Segment, &event(Stage::Register, failed())));
        assert!(!starts(Stage::Report, &event(Stage::Report, failed())));
        assert!(!starts(Stage::Report, &event(Stage::Report, Outcome::Done)));
    }
}
