//! `mrtdose.v1.StudyService`: the public API. Status is read from the store's status markers
//! (no state lives only in this process), so any replica answers for any study.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use mrt_pipeline::bus::Outcome;
use mrt_pipeline::stages::report::Report;
use mrt_pipeline::store::{key, Store};
use mrt_pipeline::{Runner, Stage, StageContext};
use mrt_proto::v1 as pb;
use mrt_proto::v1::study_service_server::StudyService;
use mrt_runtime::amqp::{AmqpBus, AmqpConfig};
use mrt_runtime::health::Readiness;
use mrt_runtime::telemetry::adopt_traceparent;
use mrt_runtime::wire::stage_status;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

/// Size of the chunks GetReport sends.
const CHUNK_BYTES: usize = 1 << 20;

/// A broker connection that is re-opened when it has dropped.
pub struct BusHandle {
    cfg: AmqpConfig,
    ready: Readiness,
    current: Mutex<Option<Arc<AmqpBus>>>,
}

impl BusHandle {
    /// Not connected yet.
    pub fn new(cfg: AmqpConfig, ready: Readiness) -> Self {
        Self {
            cfg,
            ready,
            current: Mutex::new(None),
        }
    }

    /// The live connection, reconnecting if needed.
    pub async fn get(&self) -> Result<Arc<AmqpBus>, mrt_runtime::amqp::AmqpError> {
        let mut slot = self.current.lock().await;
        if let Some(bus) = slot.as_ref().filter(|b| b.is_connected()) {
            return Ok(bus.clone());
        }
        self.ready.set(false);
        let bus = Arc::new(AmqpBus::connect(self.cfg.clone()).await?);
        *slot = Some(bus.clone());
        self.ready.set(true);
        Ok(bus)
    }

    /// Closes the connection.
    pub async fn close(&self) {
        if let Some(bus) = self.current.lock().await.take() {
            let _ = bus.close().await;
        }
    }
}

/// The service.
pub struct StudyApi {
    /// Artifacts and status markers.
    pub store: Store,
    /// Where ingest announces.
    pub bus: Arc<BusHandle>,
    /// Site settings for the ingest stage.
    pub ctx: StageContext,
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// A submitted path inside the study, refused when it could escape it.
fn safe_relative(path: &str) -> Result<PathBuf, Status> {
    let p = Path::new(path);
    let ok = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(p.to_path_buf())
    } else {
        Err(Status::invalid_argument(format!(
            "FileChunk.relative_path {path:?}: must be a relative path inside the study"
        )))
    }
}

fn span_for<T>(name: &str, req: &Request<T>) -> tracing::Span {
    let span = tracing::info_span!(
        "rpc",
        otel.name = %format!("mrtdose-ingest {name}"),
        study_id = tracing::field::Empty,
        files = tracing::field::Empty,
        input_bytes = tracing::field::Empty,
        output_bytes = tracing::field::Empty,
    );
    if let Some(tp) = req
        .metadata()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        adopt_traceparent(&span, tp);
    }
    span
}

impl StudyApi {
    async fn runner(&self) -> Result<Runner<Arc<AmqpBus>>, Status> {
        let bus = self
            .bus
            .get()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Runner {
            store: self.store.clone(),
            bus,
            ctx: self.ctx.clone(),
        })
    }

    /// Receives the files into `dir`; returns how many files and bytes.
    async fn receive(
        &self,
        mut stream: Streaming<pb::SubmitStudyRequest>,
        dir: &Path,
    ) -> Result<(usize, u64), Status> {
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let mut bytes = 0u64;
        while let Some(msg) = stream.next().await {
            match msg?.item {
                Some(pb::submit_study_request::Item::Chunk(c)) => {
                    let rel = safe_relative(&c.relative_path)?;
                    let path = dir.join(&rel);
                    if let Some(parent) = path.parent() {
                        tokio::fs::create_dir_all(parent).await.map_err(internal)?;
                    }
                    let mut file = tokio::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .truncate(false)
                        .open(&path)
                        .await
                        .map_err(internal)?;
                    file.write_all(&c.data).await.map_err(internal)?;
                    bytes += c.data.len() as u64;
                    seen.insert(rel);
                }
                Some(pb::submit_study_request::Item::ObjectPrefix(prefix)) => {
                    let prefix = prefix.trim_end_matches('/').to_string();
                    let keys = self.store.list(&prefix).await.map_err(internal)?;
                    if keys.is_empty() {
                        return Err(Status::not_found(format!(
                            "object_prefix {prefix:?}: no objects in the store"
                        )));
                    }
                    for k in keys {
                        let rel = safe_relative(&k[prefix.len() + 1..])?;
                        let data = self.store.get(&k).await.map_err(internal)?;
                        let path = dir.join(&rel);
                        if let Some(parent) = path.parent() {
                            tokio::fs::create_dir_all(parent).await.map_err(internal)?;
                        }
                        tokio::fs::write(&path, &data).await.map_err(internal)?;
                        bytes += data.len() as u64;
                        seen.insert(rel);
                    }
                }
                None => return Err(Status::invalid_argument("SubmitStudyRequest.item is empty")),
            }
        }
        if seen.is_empty() {
            return Err(Status::invalid_argument("SubmitStudy: no files"));
        }
        Ok((seen.len(), bytes))
    }

    /// Keeps the submitted files as `studies/<id>/raw/<path>` (write-once).
    async fn keep_raw(&self, study: &str, dir: &Path) -> Result<(), Status> {
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.map_err(internal)?;
            if entry.file_type().is_dir() {
                continue;
            }
            let entry = entry.into_path();
            let rel = entry
                .strip_prefix(dir)
                .map_err(internal)?
                .to_string_lossy()
                .replace('\\', "/");
            let data = tokio::fs::read(&entry).await.map_err(internal)?;
            self.store
                .put_new(&key(study, "raw", &rel), Bytes::from(data))
                .await
                .map_err(internal)?;
        }
        Ok(())
    }

    async fn status_of(&self, study: &str) -> Result<pb::StudyStatus, Status> {
        let runner = Runner {
            store: self.store.clone(),
            bus: NoBus,
            ctx: self.ctx.clone(),
        };
        let stages = runner.study_status(study).await.map_err(internal)?;
        if stages.iter().all(|(_, o)| o.is_none()) {
            return Err(Status::not_found(format!("no study {study}")));
        }
        let failed = stages
            .iter()
            .any(|(_, o)| matches!(o, Some(Outcome::Failed { .. })));
        let reported = stages
            .iter()
            .any(|(s, o)| *s == Stage::Report && o.is_some());
        let state = match (reported, failed) {
            (false, _) => pb::StudyState::Running,
            (true, false) => pb::StudyState::Done,
            (true, true) => pb::StudyState::Failed,
        };
        let mut status = pb::StudyStatus {
            study_id: study.to_string(),
            stages: stages
                .iter()
                .map(|(s, o)| stage_status(*s, o.as_ref()))
                .collect(),
            state: state as i32,
            needs_review: false,
            qa_flags: Vec::new(),
        };
        let report_key = key(study, "report", "report.json");
        if reported && self.store.exists(&report_key).await.map_err(internal)? {
            let bytes = self.store.get(&report_key).await.map_err(internal)?;
            if let Ok(r) = serde_json::from_slice::<Report>(&bytes) {
                status.needs_review = r.qa.needs_review;
                status.qa_flags = r.qa.flags.iter().map(|f| f.code.clone()).collect();
            }
        }
        Ok(status)
    }
}

/// Reading status needs no bus.
struct NoBus;

impl mrt_pipeline::bus::Bus for NoBus {
    fn publish(
        &self,
        _event: mrt_pipeline::bus::StageEvent,
    ) -> futures::future::BoxFuture<'_, Result<(), mrt_pipeline::bus::BusError>> {
        Box::pin(async { Err(mrt_pipeline::bus::BusError("read-only".into())) })
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl StudyService for StudyApi {
    async fn submit_study(
        &self,
        request: Request<Streaming<pb::SubmitStudyRequest>>,
    ) -> Result<Response<pb::SubmitStudyResponse>, Status> {
        let span = span_for("SubmitStudy", &request);
        async move {
            let scratch = tempfile::tempdir().map_err(internal)?;
            let dir = scratch.path().join("study");
            tokio::fs::create_dir_all(&dir).await.map_err(internal)?;
            let (files, bytes) = self.receive(request.into_inner(), &dir).await?;
            let span = tracing::Span::current();
            span.record("files", files);
            span.record("input_bytes", bytes);
            let runner = self.runner().await?;
            let (study, outcome) = runner.ingest(&dir).await.map_err(|e| {
                Status::invalid_argument(format!("the submitted files are not a study: {e}"))
            })?;
            span.record("study_id", study.as_str());
            self.keep_raw(&study, &dir).await?;
            tracing::info!(files, bytes, "study submitted");
            Ok(Response::new(pb::SubmitStudyResponse {
                study_id: study,
                ingest: Some(stage_status(Stage::Ingest, Some(&outcome))),
            }))
        }
        .instrument(span)
        .await
    }

    async fn get_study(
        &self,
        request: Request<pb::GetStudyRequest>,
    ) -> Result<Response<pb::StudyStatus>, Status> {
        Ok(Response::new(
            self.status_of(&request.get_ref().study_id).await?,
        ))
    }

    type WatchStudyStream = BoxStream<pb::StudyStatus>;

    async fn watch_study(
        &self,
        request: Request<pb::GetStudyRequest>,
    ) -> Result<Response<Self::WatchStudyStream>, Status> {
        let study = request.into_inner().study_id;
        let first = self.status_of(&study).await?;
        let api = StudyApi {
            store: self.store.clone(),
            bus: self.bus.clone(),
            ctx: self.ctx.clone(),
        };
        // Polls the durable markers: any replica can serve any watcher.
        let stream = futures::stream::unfold(
            (api, study, None::<pb::StudyStatus>, Some(first)),
            |(api, study, last, pending)| async move {
                let mut next = pending;
                loop {
                    let status = match next.take() {
                        Some(s) => s,
                        None => {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            match api.status_of(&study).await {
                                Ok(s) => s,
                                Err(e) => return Some((Err(e), (api, study, last, None))),
                            }
                        }
                    };
                    if last.as_ref() == Some(&status) {
                        continue;
                    }
                    if last
                        .as_ref()
                        .is_some_and(|l| l.state != pb::StudyState::Running as i32)
                    {
                        return None;
                    }
                    return Some((Ok(status.clone()), (api, study, Some(status), None)));
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_studies(
        &self,
        _request: Request<pb::ListStudiesRequest>,
    ) -> Result<Response<pb::ListStudiesResponse>, Status> {
        let mut studies = Vec::new();
        for id in self.store.list_dirs("studies").await.map_err(internal)? {
            if let Ok(s) = self.status_of(&id).await {
                studies.push(s);
            }
        }
        Ok(Response::new(pb::ListStudiesResponse { studies }))
    }

    type GetReportStream = BoxStream<pb::ReportChunk>;

    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<Self::GetReportStream>, Status> {
        let study = request.into_inner().study_id;
        let status = self.status_of(&study).await?;
        if status.state == pb::StudyState::Running as i32 {
            return Err(Status::failed_precondition(format!(
                "study {study}: the report stage has not run yet"
            )));
        }
        let keys = self.store.result_keys(&study).await.map_err(internal)?;
        let mut chunks = Vec::new();
        for k in keys {
            let data = self.store.get(&k).await.map_err(internal)?;
            let name = k.rsplit('/').next().unwrap_or_default().to_string();
            if data.is_empty() {
                chunks.push(Ok(pb::ReportChunk {
                    name,
                    data: Vec::new(),
                }));
                continue;
            }
            for part in data.chunks(CHUNK_BYTES) {
                chunks.push(Ok(pb::ReportChunk {
                    name: name.clone(),
                    data: part.to_vec(),
                }));
            }
        }
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_escape_the_study_are_refused() {
        assert!(safe_relative("ct/1.dcm").is_ok());
        assert!(safe_relative("manifest.json").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "./a"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
    }
}
