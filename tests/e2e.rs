//! End-to-end test of the distributed system (issue 8): `scripts/local-cluster.sh` brings up
//! SeaweedFS (if needed) and the five services against the local RabbitMQ; three phantom studies
//! are submitted concurrently through the public gRPC API; the segmentation worker is killed
//! (SIGKILL) while it holds a study and then restarted. Asserts that
//!
//! (a) every report equals, byte for byte, the one `mrtdose run` writes for the same files;
//! (b) each study is one OpenTelemetry trace holding spans of all five services, as received by
//!     the OTLP/HTTP collector this test runs itself;
//! (c) the crash loses nothing: every study completes, and the study the worker held is
//!     redelivered and finished by its restarted replica.
//!
//! Needs RabbitMQ on 127.0.0.1:5672, SeaweedFS's binary (scripts/test-data.sh) and the ONNX
//! Runtime library (.ort/lib); `scripts/test-all.sh` provides all three.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the `mrtdose` CLI in this process; returns what it printed.
fn mrtdose(args: &[&str]) -> String {
    let cli = mrtdose::cli::Cli::parse_from(std::iter::once("mrtdose").chain(args.iter().copied()));
    let mut out = Vec::new();
    if let Err(e) = mrtdose::run(cli, &mut out) {
        panic!("mrtdose {args:?}: {e:#}");
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One span as the collector saw it.
#[derive(Debug, Clone)]
struct SpanSeen {
    trace_id: String,
    service: String,
    study_id: Option<String>,
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

#[derive(Default)]
struct Collector {
    spans: Mutex<Vec<SpanSeen>>,
    metric_posts: Mutex<usize>,
}

/// An OTLP/HTTP (protobuf) receiver for traces and metrics on 127.0.0.1.
fn start_collector(rt: &tokio::runtime::Runtime) -> (SocketAddr, Arc<Collector>) {
    use axum::routing::post;
    let seen = Arc::new(Collector::default());
    let (s1, s2) = (seen.clone(), seen.clone());
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            post(move |body: axum::body::Bytes| {
                let seen = s1.clone();
                async move {
                    if let Ok(req) = ExportTraceServiceRequest::decode(body) {
                        let mut spans = seen.spans.lock().expect("lock");
                        for rs in req.resource_spans {
                            let service = rs
                                .resource
                                .as_ref()
                                .and_then(|r| string_attr(&r.attributes, "service.name"))
                                .unwrap_or_default();
                            for ss in rs.scope_spans {
                                for s in ss.spans {
                                    spans.push(SpanSeen {
                                        trace_id: s
                                            .trace_id
                                            .iter()
                                            .map(|b| format!("{b:02x}"))
                                            .collect(),
                                        service: service.clone(),
                                        study_id: string_attr(&s.attributes, "study_id"),
                                    });
                                }
                            }
                        }
                    }
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }),
        )
        .route(
            "/v1/metrics",
            post(move |_body: axum::body::Bytes| {
                let seen = s2.clone();
                async move {
                    *seen.metric_posts.lock().expect("lock") += 1;
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }),
        );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind collector");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The cluster of this test; brought down on drop, even when an assertion fails.
struct Cluster {
    env: Vec<(String, String)>,
    dir: PathBuf,
}

impl Cluster {
    fn script(&self, args: &[&str]) {
        let status = Command::new("bash")
            .arg(root().join("scripts/local-cluster.sh"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status()
            .expect("local-cluster.sh runs");
        assert!(status.success(), "local-cluster.sh {args:?} failed");
    }

    fn log(&self, service: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{service}-0.log"))).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/local-cluster.sh"))
            .arg("down")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status();
    }
}

fn status_of(endpoint: &str, id: &str) -> String {
    let cli = mrtdose::cli::Cli::parse_from(["mrtdose", "status", id, "--endpoint", endpoint]);
    let mut out = Vec::new();
    match mrtdose::run(cli, &mut out) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => format!("error: {e:#}"),
    }
}

#[test]
fn three_concurrent_studies_survive_a_worker_crash_and_match_the_embedded_run() {
    let ort = root().join(".ort/lib/libonnxruntime.so");
    assert!(
        ort.exists(),
        "run scripts/test-data.sh first ({} missing)",
        ort.display()
    );
    std::env::set_var("ORT_DYLIB_PATH", &ort);
    std::env::set_var("MRTDOSE_MODEL", root().join("models/ct-organs"));
    let work = tempfile::tempdir().expect("tempdir");
    let s = |p: &Path| p.to_string_lossy().to_string();

    // Three small phantom studies, and what `mrtdose run` makes of each.
    let seeds = [9601u64, 9602, 9603];
    let mut studies = Vec::new();
    for seed in seeds {
        let study = work.path().join(format!("study-{seed}"));
        let embedded = work.path().join(format!("embedded-{seed}"));
        mrtdose(&[
            "phantom",
            "--seed",
            &seed.to_string(),
            "--misalign-mm",
            "10",
            "--out",
            &s(&study),
        ]);
        mrtdose(&["run", &s(&study), "--out", &s(&embedded), "--quiet"]);
        studies.push((study, embedded));
    }

    // The cluster, with its own queues, store prefix, API port and collector.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (collector_addr, collector) = start_collector(&rt);
    let run_id = format!(
        "e2e-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis()
    );
    let listen = format!("127.0.0.1:{}", free_port());
    let endpoint = format!("http://{listen}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_mrtdose-ingest"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let cluster_dir = work.path().join("cluster");
    let cluster = Cluster {
        env: vec![
            ("MRTDOSE_CLUSTER_DIR".into(), s(&cluster_dir)),
            ("MRTDOSE_BIN_DIR".into(), s(&bin_dir)),
            ("MRTDOSE_LISTEN".into(), listen.clone()),
            ("MRTDOSE_AMQP_PREFIX".into(), run_id.clone()),
            ("MRTDOSE_STORE_PREFIX".into(), run_id.clone()),
            ("MRTDOSE_RETRY_DELAY_MS".into(), "1000".into()),
            (
                "MRTDOSE_OTLP_ENDPOINT".into(),
                format!("http://{collector_addr}"),
            ),
            ("MRTDOSE_METRICS_INTERVAL_S".into(), "2".into()),
            ("MRTDOSE_DEVICE".into(), "cpu".into()),
            ("RUST_LOG".into(), "info,lapin=warn".into()),
        ],
        dir: cluster_dir.clone(),
    };
    cluster.script(&["up"]);

    // Submit the three at once through the CLI's client.
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = studies
            .iter()
            .map(|(study, _)| {
                let (endpoint, study) = (endpoint.clone(), s(study));
                scope.spawn(move || {
                    mrtdose(&["submit", &study, "--endpoint", &endpoint])
                        .trim()
                        .to_string()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("submit thread"))
            .collect()
    });
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        3,
        "three distinct study ids: {ids:?}"
    );

    // Crash the segmentation worker while it holds a study, then bring it back.
    let deadline = Instant::now() + Duration::from_secs(300);
    while !cluster.log("segmentation").contains("stage started") {
        assert!(
            Instant::now() < deadline,
            "segmentation never started:\n{}",
            cluster.log("segmentation")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.script(&["kill", "segmentation"]);
    cluster.script(&["start", "segmentation"]);

    // Every study reaches its report.
    let deadline = Instant::now() + Duration::from_secs(900);
    for id in &ids {
        loop {
            let st = status_of(&endpoint, id);
            if st.contains(&format!("study {id}: done"))
                || st.contains(&format!("study {id}: failed"))
            {
                assert!(st.contains(": done"), "study {id} failed:\n{st}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "study {id} did not finish:\n{st}\n{}",
                cluster.log("segmentation")
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let after = cluster.log("segmentation");
    assert!(
        after.contains("redelivered=true"),
        "the study the killed worker held was not redelivered:\n{after}"
    );

    // (a) The reports equal `mrtdose run`'s, byte for byte.
    let mut study_of_id = BTreeMap::new();
    for id in &ids {
        let got = work.path().join(format!("got-{id}"));
        mrtdose(&["report", id, "--out", &s(&got), "--endpoint", &endpoint]);
        let got_report = std::fs::read(got.join("report.json")).expect("distributed report.json");
        let (study, embedded) = studies
            .iter()
            .find(|(_, e)| {
                std::fs::read(e.join("report.json"))
                    .map(|b| b == got_report)
                    .unwrap_or(false)
            })
            .unwrap_or_else(|| {
                let r: serde_json::Value = serde_json::from_slice(&got_report).expect("json");
                panic!("study {id}: no embedded report is identical; distributed report:\n{r:#}")
            });
        for f in ["dose_Gy.nii.gz", "labels_tp1.nii.gz", "labels_tp4.nii.gz"] {
            assert_eq!(
                std::fs::read(got.join(f)).expect("distributed file"),
                std::fs::read(embedded.join(f)).expect("embedded file"),
                "study {id}: {f} differs from mrtdose run's"
            );
        }
        study_of_id.insert(id.clone(), study.clone());
    }
    assert_eq!(study_of_id.values().collect::<BTreeSet<_>>().len(), 3);

    // (b) One trace per study, with spans of all five services. SIGTERM flushes the exporters.
    drop(cluster);
    let spans = collector.spans.lock().expect("lock").clone();
    for id in &ids {
        let traces: BTreeSet<&str> = spans
            .iter()
            .filter(|sp| sp.study_id.as_deref() == Some(id))
            .map(|sp| sp.trace_id.as_str())
            .collect();
        assert_eq!(
            traces.len(),
            1,
            "study {id}: spans in {} traces",
            traces.len()
        );
        let trace = traces.into_iter().next().expect("one trace");
        let services: BTreeSet<&str> = spans
            .iter()
            .filter(|sp| sp.trace_id == trace)
            .map(|sp| sp.service.as_str())
            .collect();
        for want in [
            "mrtdose-ingest",
            "mrtdose-registration",
            "mrtdose-segmentation",
            "mrtdose-quantification",
            "mrtdose-dosimetry",
        ] {
            assert!(
                services.contains(want),
                "study {id}: trace {trace} has no span of {want}: {services:?}"
            );
        }
    }
    assert!(
        *collector.metric_posts.lock().expect("lock") > 0,
        "no metrics were exported"
    );
}
