//! `mrtdose submit`, `mrtdose status` and `mrtdose report`: the command-line client of the
//! services' public gRPC API (`mrtdose.v1.StudyService`, served by `mrtdose-ingest`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mrt_proto::v1 as pb;
use mrt_proto::v1::study_service_client::StudyServiceClient;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::cli::{ReportArgs, StatusArgs, SubmitArgs};

/// Size of the upload chunks.
const CHUNK_BYTES: usize = 1 << 20;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn connect(endpoint: &str) -> anyhow::Result<StudyServiceClient<Channel>> {
    StudyServiceClient::connect(endpoint.to_string())
        .await
        .with_context(|| format!("connecting to the mrtdose API at {endpoint}"))
}

/// Every file under `dir`, sorted, with its '/'-separated path relative to `dir`.
fn files_of(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .context("path outside the study")?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        out.push((entry.into_path(), rel));
    }
    Ok(out)
}

fn stage_name(v: i32) -> &'static str {
    match pb::Stage::try_from(v) {
        Ok(pb::Stage::Ingest) => "ingest",
        Ok(pb::Stage::Register) => "register",
        Ok(pb::Stage::Segment) => "segment",
        Ok(pb::Stage::Quantify) => "quantify",
        Ok(pb::Stage::Dose) => "dose",
        Ok(pb::Stage::Report) => "report",
        _ => "?",
    }
}

fn state_name(v: i32) -> &'static str {
    match pb::StageState::try_from(v) {
        Ok(pb::StageState::Pending) => "pending",
        Ok(pb::StageState::Done) => "done",
        Ok(pb::StageState::Failed) => "FAILED",
        _ => "?",
    }
}

fn study_state(v: i32) -> &'static str {
    match pb::StudyState::try_from(v) {
        Ok(pb::StudyState::Running) => "running",
        Ok(pb::StudyState::Done) => "done",
        Ok(pb::StudyState::Failed) => "failed",
        _ => "?",
    }
}

fn print_status(s: &pb::StudyStatus, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "study {}: {}", s.study_id, study_state(s.state))?;
    for st in &s.stages {
        let reason = if st.reason.is_empty() {
            String::new()
        } else {
            format!("  {}", st.reason)
        };
        writeln!(
            out,
            "  {:<9} {}{reason}",
            stage_name(st.stage),
            state_name(st.state)
        )?;
    }
    if s.state != pb::StudyState::Running as i32 {
        let flags = if s.qa_flags.is_empty() {
            "none".to_string()
        } else {
            s.qa_flags.join(", ")
        };
        writeln!(
            out,
            "  needs review: {}  QA flags: {flags}",
            if s.needs_review { "yes" } else { "no" }
        )?;
    }
    Ok(())
}

/// `mrtdose submit`.
pub fn submit(args: &SubmitArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let files = files_of(&args.study)?;
    anyhow::ensure!(!files.is_empty(), "{}: no files", args.study.display());
    runtime()?.block_on(async {
        let mut client = connect(&args.api.endpoint).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let reader = tokio::spawn(async move {
            for (path, rel) in files {
                let data = tokio::fs::read(&path)
                    .await
                    .with_context(|| format!("reading {}", path.display()))?;
                for part in data.chunks(CHUNK_BYTES.max(1)) {
                    let chunk = pb::SubmitStudyRequest {
                        item: Some(pb::submit_study_request::Item::Chunk(pb::FileChunk {
                            relative_path: rel.clone(),
                            data: part.to_vec(),
                        })),
                    };
                    if tx.send(chunk).await.is_err() {
                        return Ok::<(), anyhow::Error>(());
                    }
                }
            }
            Ok(())
        });
        let response = client
            .submit_study(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .with_context(|| format!("submitting {}", args.study.display()))?
            .into_inner();
        reader.await.context("upload task")??;
        writeln!(out, "{}", response.study_id)?;
        if args.wait {
            let mut events = client
                .watch_study(pb::GetStudyRequest {
                    study_id: response.study_id.clone(),
                })
                .await?
                .into_inner();
            let mut last = None;
            while let Some(status) = events.next().await {
                last = Some(status.context("watching the study")?);
            }
            if let Some(s) = last {
                print_status(&s, out)?;
            }
        }
        Ok(())
    })
}

/// `mrtdose status`.
pub fn status(args: &StatusArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let mut client = connect(&args.api.endpoint).await?;
        match &args.study_id {
            Some(id) => {
                let s = client
                    .get_study(pb::GetStudyRequest {
                        study_id: id.clone(),
                    })
                    .await
                    .with_context(|| format!("study {id}"))?
                    .into_inner();
                print_status(&s, out)
            }
            None => {
                let list = client
                    .list_studies(pb::ListStudiesRequest {})
                    .await?
                    .into_inner();
                for s in &list.studies {
                    print_status(s, out)?;
                }
                Ok(())
            }
        }
    })
}

/// `mrtdose report`.
pub fn report(args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    runtime()?.block_on(async {
        let mut client = connect(&args.api.endpoint).await?;
        let mut chunks = client
            .get_report(pb::GetReportRequest {
                study_id: args.study_id.clone(),
            })
            .await
            .with_context(|| format!("report of study {}", args.study_id))?
            .into_inner();
        let mut written: Vec<String> = Vec::new();
        let mut current: Option<(String, std::fs::File)> = None;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.context("receiving the report")?;
            let name = Path::new(&chunk.name)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .context("report file without a name")?;
            if current.as_ref().map(|(n, _)| n) != Some(&name) {
                let path = args.out.join(&name);
                let file = std::fs::File::create(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                written.push(name.clone());
                current = Some((name, file));
            }
            if let Some((_, f)) = current.as_mut() {
                f.write_all(&chunk.data)?;
            }
        }
        for n in written {
            writeln!(out, "{}", args.out.join(n).display())?;
        }
        Ok(())
    })
}
