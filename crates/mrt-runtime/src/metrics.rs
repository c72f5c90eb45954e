//! Stage metrics (OpenTelemetry; exported only when telemetry has an OTLP endpoint):
//! `mrtdose.stage.duration` and `mrtdose.stage.queue_wait` (seconds, per stage),
//! `mrtdose.stage.retries` and `mrtdose.stage.failures` (counts, per stage).

use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::KeyValue;

/// The instruments of a worker.
#[derive(Clone)]
pub struct StageMetrics {
    duration_s: Histogram<f64>,
    queue_wait_s: Histogram<f64>,
    retries: Counter<u64>,
    failures: Counter<u64>,
}

impl Default for StageMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl StageMetrics {
    /// Instruments on the global meter provider.
    pub fn new() -> Self {
        let meter = opentelemetry::global::meter("mrtdose");
        Self {
            duration_s: meter
                .f64_histogram("mrtdose.stage.duration")
                .with_unit("s")
                .with_description("Service time of a stage, download to status marker")
                .build(),
            queue_wait_s: meter
                .f64_histogram("mrtdose.stage.queue_wait")
                .with_unit("s")
                .with_description("Time from the event's publication to the start of the stage")
                .build(),
            retries: meter
                .u64_counter("mrtdose.stage.retries")
                .with_description("Deliveries sent to the retry queue")
                .build(),
            failures: meter
                .u64_counter("mrtdose.stage.failures")
                .with_description("Stages that ended failed (own failure or attempts exhausted)")
                .build(),
        }
    }

    fn attrs(stage: &str) -> [KeyValue; 1] {
        [KeyValue::new("stage", stage.to_string())]
    }

    /// Records a stage's service time.
    pub fn duration(&self, stage: &str, seconds: f64) {
        self.duration_s.record(seconds, &Self::attrs(stage));
    }

    /// Records a delivery's wait in the queue.
    pub fn queue_wait(&self, stage: &str, seconds: f64) {
        self.queue_wait_s
            .record(seconds.max(0.0), &Self::attrs(stage));
    }

    /// Counts a retry.
    pub fn retry(&self, stage: &str) {
        self.retries.add(1, &Self::attrs(stage));
    }

    /// Counts a failure.
    pub fn failure(&self, stage: &str) {
        self.failures.add(1, &Self::attrs(stage));
    }
}
