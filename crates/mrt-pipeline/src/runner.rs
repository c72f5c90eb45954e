//! Running stages over the Store and announcing them on the Bus; the embedded driver that chains
//! them in one process (`mrtdose run`). A stage whose status marker exists is not run again: its
//! recorded outcome is re-announced, so redelivery and re-runs are harmless.

use std::path::Path;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::bus::{Bus, BusError, InProcessBus, Outcome, StageEvent};
use crate::stages::report::Report;
use crate::stages::{self, Stage, StageContext, StageError};
use crate::store::{key, Store, StoreError};

/// Pipeline errors (infrastructure; a stage's own failure is an [`Outcome::Failed`]).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A stage could not start at all.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// A worker thread panicked.
    #[error("stage worker crashed: {0}")]
    Crashed(String),
    /// Scratch space.
    #[error("scratch directory: {0}")]
    Scratch(std::io::Error),
}

/// `studies/<study>/status/<stage>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StatusMarker {
    stage: Stage,
    outcome: Outcome,
}

/// `studies/<study>/status/<stage>.json`.
fn status_key(study: &str, stage: Stage) -> String {
    key(study, "status", &format!("{}.json", stage.name()))
}

/// Runs stages of studies against a store and a bus.
pub struct Runner<B: Bus> {
    /// Artifact store.
    pub store: Store,
    /// Where events go.
    pub bus: B,
    /// What stages need.
    pub ctx: StageContext,
}

impl<B: Bus> Runner<B> {
    /// The recorded outcome of `stage`, if it ran.
    pub async fn status(
        &self,
        study: &str,
        stage: Stage,
    ) -> Result<Option<Outcome>, PipelineError> {
        let k = status_key(study, stage);
        if !self.store.exists(&k).await? {
            return Ok(None);
        }
        let bytes = self.store.get(&k).await?;
        let m: StatusMarker = serde_json::from_slice(&bytes)
            .map_err(|e| StageError::Input(format!("status marker {k}: {e}")))?;
        Ok(Some(m.outcome))
    }

    /// When `stage` already ran, re-announces its recorded outcome and returns it.
    async fn already_done(
        &self,
        study: &str,
        stage: Stage,
    ) -> Result<Option<Outcome>, PipelineError> {
        let Some(outcome) = self.status(study, stage).await? else {
            return Ok(None);
        };
        self.announce(study, stage, &outcome).await?;
        Ok(Some(outcome))
    }

    /// Publishes the outcome of `stage` on the bus.
    async fn announce(
        &self,
        study: &str,
        stage: Stage,
        outcome: &Outcome,
    ) -> Result<(), PipelineError> {
        self.bus
            .publish(StageEvent {
                study_id: study.into(),
                stage,
                outcome: outcome.clone(),
                traceparent: None,
            })
            .await?;
        Ok(())
    }

    async fn finish(
        &self,
        study: &str,
        stage: Stage,
        outcome: Outcome,
    ) -> Result<Outcome, PipelineError> {
        let marker = StatusMarker {
            stage,
            outcome: outcome.clone(),
        };
        let bytes =
            serde_json::to_vec_pretty(&marker).map_err(|e| StageError::Input(e.to_string()))?;
        self.store
            .put_new(&status_key(study, stage), Bytes::from(bytes))
            .await?;
        self.announce(study, stage, &outcome).await?;
        Ok(outcome)
    }

    /// Ingest from a local directory; returns the study id and the outcome.
    pub async fn ingest(&self, input: &Path) -> Result<(String, Outcome), PipelineError> {
        let scratch = tempfile::tempdir().map_err(PipelineError::Scratch)?;
        let out = scratch.path().join("ingest");
        std::fs::create_dir_all(&out).map_err(PipelineError::Scratch)?;
        let (input, out2) = (input.to_path_buf(), out.clone());
        let result = tokio::task::spawn_blocking(move || stages::ingest::run(&input, &out2))
            .await
            .map_err(|e| PipelineError::Crashed(e.to_string()))?;
        let manifest = result?;
        let study = manifest.study_id.clone();
        if let Some(outcome) = self.already_done(&study, Stage::Ingest).await? {
            return Ok((study, outcome));
        }
        let bytes = self
            .store
            .upload_stage(&study, Stage::Ingest.name(), &out)
            .await?;
        tracing::Span::current().record("output_bytes", bytes);
        let outcome = self.finish(&study, Stage::Ingest, Outcome::Done).await?;
        Ok((study, outcome))
    }

    /// Runs one stage after ingest (skipped when its marker exists). `failure` is passed to the
    /// report stage when an earlier stage failed.
    pub async fn run_stage(
        &self,
        study: &str,
        stage: Stage,
        failure: Option<String>,
    ) -> Result<Outcome, PipelineError> {
        if let Some(outcome) = self.already_done(study, stage).await? {
            return Ok(outcome);
        }
        let started = std::time::Instant::now();
        let scratch = tempfile::tempdir().map_err(PipelineError::Scratch)?;
        let work = scratch.path().join("work");
        let mut input_bytes = 0;
        for dep in stage.inputs() {
            input_bytes += self.store.download_stage(study, dep.name(), &work).await?;
        }
        let out = scratch.path().join("out");
        std::fs::create_dir_all(&out).map_err(PipelineError::Scratch)?;
        let ctx = self.ctx.clone();
        let (w, o) = (work.clone(), out.clone());
        let result = tokio::task::spawn_blocking(move || -> Result<(), StageError> {
            match stage {
                Stage::Ingest => Err(StageError::Input(
                    "ingest runs through Runner::ingest".into(),
                )),
                Stage::Register => stages::register::run(&ctx, &w, &o).map(|_| ()),
                Stage::Segment => stages::segment::run(&ctx, &w, &o).map(|_| ()),
                Stage::Quantify => stages::quantify::run(&ctx, &w, &o).map(|_| ()),
                Stage::Dose => stages::dose::run(&ctx, &w, &o).map(|_| ()),
                Stage::Report => stages::report::run(&ctx, &w, &o, failure.as_deref()).map(|_| ()),
            }
        })
        .await
        .map_err(|e| PipelineError::Crashed(e.to_string()))?;
        let mut output_bytes = 0;
        let outcome = match result {
            Ok(()) => {
                output_bytes = self.store.upload_stage(study, stage.name(), &out).await?;
                Outcome::Done
            }
            Err(e) => Outcome::Failed {
                reason: format!("{}: {e}", stage.name()),
            },
        };
        let seconds = started.elapsed().as_secs_f64();
        // Recorded on the caller's span when it declares these fields (the services' stage span).
        let span = tracing::Span::current();
        span.record("input_bytes", input_bytes);
        span.record("output_bytes", output_bytes);
        span.record("seconds", seconds);
        tracing::info!(
            stage = stage.name(),
            input_bytes,
            output_bytes,
            seconds,
            "stage finished"
        );
        self.finish(study, stage, outcome).await
    }

    /// Marks `stage` failed with `reason` (e.g. its attempts are used up) and announces it, so
    /// the report stage still says what happened.
    pub async fn give_up(
        &self,
        study: &str,
        stage: Stage,
        reason: String,
    ) -> Result<Outcome, PipelineError> {
        if let Some(outcome) = self.status(study, stage).await? {
            return Ok(outcome);
        }
        self.finish(study, stage, Outcome::Failed { reason }).await
    }

    /// The recorded outcome of every stage of `study`, in pipeline order (`None` = not yet).
    pub async fn study_status(
        &self,
        study: &str,
    ) -> Result<Vec<(Stage, Option<Outcome>)>, PipelineError> {
        let mut out = Vec::new();
        for stage in Stage::ALL {
            out.push((stage, self.status(study, stage).await?));
        }
        Ok(out)
    }
}

/// `mrtdose run`: every stage of one study in this process, results copied into `out`.
pub async fn run_embedded(
    input: &Path,
    out: &Path,
    ctx: StageContext,
) -> Result<(String, Report), PipelineError> {
    let store = Store::local(&out.join("store"))?;
    let (bus, mut events) = InProcessBus::new();
    let runner = Runner { store, bus, ctx };
    let (study, _) = runner.ingest(input).await?;
    // The consumer: each event starts the next stage; a failure jumps to the report.
    while let Some(event) = events.recv().await {
        let next = match (&event.outcome, event.stage) {
            (_, Stage::Report) => break,
            (Outcome::Done, s) => s.next().map(|n| (n, None)),
            (Outcome::Failed { reason }, _) => Some((Stage::Report, Some(reason.clone()))),
        };
        let Some((stage, failure)) = next else { break };
        runner.run_stage(&event.study_id, stage, failure).await?;
    }
    let report_bytes = runner
        .store
        .get(&key(&study, "report", "report.json"))
        .await?;
    let report: Report = serde_json::from_slice(&report_bytes)
        .map_err(|e| StageError::Input(format!("report.json: {e}")))?;
    copy_results(&runner.store, &study, out).await?;
    Ok((study, report))
}

/// Copies the user-facing files out of the store into `out`.
async fn copy_results(store: &Store, study: &str, out: &Path) -> Result<(), PipelineError> {
    for k in store.result_keys(study).await? {
        let path = out.join(k.rsplit('/').next().unwrap_or_default());
        let bytes = store.get(&k).await?;
        std::fs::write(&path, &bytes).map_err(|source| StoreError::Local { path, source })?;
    }
    Ok(())
}
