//! The `Bus` seam: stage completion events. In-process (a tokio channel) for `mrtdose run`;
//! RabbitMQ for the services. A consumer reacts to "stage X done for study S" by starting the
//! next stage, which is all the embedded runner and the services have to agree on.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::stages::Stage;

/// What happened to a stage of a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Outputs are durably written.
    Done,
    /// The stage gave up; the study cannot go on past it.
    Failed {
        /// Why, for people.
        reason: String,
    },
}

/// A stage event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageEvent {
    /// Pseudonymous study id.
    pub study_id: String,
    /// The stage.
    pub stage: Stage,
    /// What happened.
    pub outcome: Outcome,
    /// W3C trace context of the study, when traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// Bus errors.
#[derive(Debug, thiserror::Error)]
#[error("bus: {0}")]
pub struct BusError(pub String);

/// Publishes stage events.
pub trait Bus: Send + Sync {
    /// Publishes `event`; returns once the bus has accepted it.
    fn publish(&self, event: StageEvent) -> BoxFuture<'_, Result<(), BusError>>;
}

impl<B: Bus + ?Sized> Bus for std::sync::Arc<B> {
    fn publish(&self, event: StageEvent) -> BoxFuture<'_, Result<(), BusError>> {
        (**self).publish(event)
    }
}

/// The in-process bus: an unbounded channel to one consumer.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    tx: mpsc::UnboundedSender<StageEvent>,
}

impl InProcessBus {
    /// A bus and the receiving end its consumer reads.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<StageEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }
}

impl Bus for InProcessBus {
    fn publish(&self, event: StageEvent) -> BoxFuture<'_, Result<(), BusError>> {
        let sent = self
            .tx
            .send(event)
            .map_err(|_| BusError("in-process consumer has stopped".into()));
        Box::pin(async move { sent })
    }
}
