//! Shared by the end-to-end test and the throughput benchmark of the services: the `mrtdose` CLI
//! run in-process, an OTLP/HTTP collector, and a handle on `scripts/local-cluster.sh`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A path as a string argument.
pub fn s(p: &Path) -> String {
    p.to_string_lossy().to_string()
}

/// Runs the `mrtdose` CLI in this process; returns what it printed (panics on error).
pub fn mrtdose(args: &[&str]) -> String {
    try_mrtdose(args).unwrap_or_else(|e| panic!("mrtdose {args:?}: {e}"))
}

/// Runs the `mrtdose` CLI in this process.
pub fn try_mrtdose(args: &[&str]) -> Result<String, String> {
    let cli = mrtdose::cli::Cli::parse_from(std::iter::once("mrtdose").chain(args.iter().copied()));
    let mut out = Vec::new();
    mrtdose::run(cli, &mut out).map_err(|e| format!("{e:#}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Points the in-process CLI at the bundled model and the ONNX Runtime of scripts/test-data.sh.
pub fn use_bundled_model() {
    let ort = root().join(".ort/lib/libonnxruntime.so");
    assert!(
        ort.exists(),
        "run scripts/test-data.sh first ({} missing)",
        ort.display()
    );
    std::env::set_var("ORT_DYLIB_PATH", &ort);
    std::env::set_var("MRTDOSE_MODEL", root().join("models/ct-organs"));
}

/// One span as the collector saw it.
#[derive(Debug, Clone)]
pub struct SpanSeen {
    /// Hex trace id.
    pub trace_id: String,
    /// `service.name` of its resource.
    pub service: String,
    /// Span name.
    pub name: String,
    /// The `study_id` attribute.
    pub study_id: Option<String>,
    /// Start and end (Unix ns).
    pub start_ns: u64,
    /// End (Unix ns).
    pub end_ns: u64,
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

/// What an OTLP/HTTP collector received.
#[derive(Default)]
pub struct Collector {
    /// Spans.
    pub spans: Mutex<Vec<SpanSeen>>,
    /// Metric export requests.
    pub metric_posts: Mutex<usize>,
}

/// An OTLP/HTTP (protobuf) receiver for traces and metrics on 127.0.0.1.
pub fn start_collector(rt: &tokio::runtime::Runtime) -> (SocketAddr, Arc<Collector>) {
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
                                for sp in ss.spans {
                                    spans.push(SpanSeen {
                                        trace_id: sp
                                            .trace_id
                                            .iter()
                                            .map(|b| format!("{b:02x}"))
                                            .collect(),
                                        service: service.clone(),
                                        name: sp.name.clone(),
                                        study_id: string_attr(&sp.attributes, "study_id"),
                                        start_ns: sp.start_time_unix_nano,
                                        end_ns: sp.end_time_unix_nano,
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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A cluster from `scripts/local-cluster.sh`, with its own queues, store prefix, API port and
/// collector; brought down on drop, even when an assertion fails.
pub struct Cluster {
    env: Vec<(String, String)>,
    prefix: String,
    /// Pid files and logs.
    pub dir: PathBuf,
    /// `http://127.0.0.1:<port>` of the API.
    pub endpoint: String,
}

impl Cluster {
    /// Brings it up with `replicas` of each worker, exporting telemetry to `otlp`.
    pub fn up(dir: &Path, replicas: usize, otlp: SocketAddr) -> Self {
        let run_id = format!(
            "e2e-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis()
        );
        let listen = format!("127.0.0.1:{}", free_port());
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_mrtdose-ingest"))
            .parent()
            .expect("bin dir")
            .to_path_buf();
        let cluster = Self {
            env: vec![
                ("MRTDOSE_CLUSTER_DIR".into(), s(dir)),
                ("MRTDOSE_BIN_DIR".into(), s(&bin_dir)),
                ("MRTDOSE_REPLICAS".into(), replicas.to_string()),
                ("MRTDOSE_LISTEN".into(), listen.clone()),
                ("MRTDOSE_AMQP_PREFIX".into(), run_id.clone()),
                ("MRTDOSE_STORE_PREFIX".into(), run_id.clone()),
                ("MRTDOSE_RETRY_DELAY_MS".into(), "1000".into()),
                ("MRTDOSE_OTLP_ENDPOINT".into(), format!("http://{otlp}")),
                ("MRTDOSE_METRICS_INTERVAL_S".into(), "2".into()),
                ("MRTDOSE_DEVICE".into(), "cpu".into()),
                ("RUST_LOG".into(), "info,lapin=warn,ort=warn".into()),
            ],
            dir: dir.to_path_buf(),
            endpoint: format!("http://{listen}"),
            prefix: run_id,
        };
        cluster.script(&["up"]);
        cluster
    }

    /// Runs `scripts/local-cluster.sh ARGS` against this cluster.
    pub fn script(&self, args: &[&str]) {
        let status = Command::new("bash")
            .arg(root().join("scripts/local-cluster.sh"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status()
            .expect("local-cluster.sh runs");
        assert!(status.success(), "local-cluster.sh {args:?} failed");
    }

    /// The log of replica 0 of `service`.
    pub fn log(&self, service: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{service}-0.log"))).unwrap_or_default()
    }

    /// Submits a study directory; returns its id.
    pub fn submit(&self, study: &Path) -> String {
        mrtdose(&["submit", &s(study), "--endpoint", &self.endpoint])
            .trim()
            .to_string()
    }

    /// `mrtdose status ID` as text (or the error).
    pub fn status(&self, id: &str) -> String {
        try_mrtdose(&["status", id, "--endpoint", &self.endpoint])
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    /// Whether study `id` has its report; panics if it failed.
    pub fn finished(&self, id: &str) -> bool {
        let st = self.status(id);
        assert!(
            !st.contains(&format!("study {id}: failed")),
            "study {id} failed:\n{st}"
        );
        st.contains(&format!("study {id}: done"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/local-cluster.sh"))
            .arg("down")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status();
        // This run's queues go too: the broker outlives the test.
        if let Ok(rt) = tokio::runtime::Runtime::new() {
            let cfg = mrt_runtime::amqp::AmqpConfig {
                url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
                prefix: self.prefix.clone(),
                retry_delay_ms: 1000,
                max_attempts: 3,
            };
            rt.block_on(async {
                if let Ok(bus) = mrt_runtime::amqp::AmqpBus::connect(cfg).await {
                    let _ = bus.delete_queues().await;
                }
            });
        }
    }
}
