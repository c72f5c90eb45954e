//! Command-line flags shared by the services. Every flag has an environment variable, so a
//! Kubernetes manifest sets them with `env:` and a shell with `--flag`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use mrt_pipeline::store::{S3Config, Store};
use mrt_pipeline::SiteConfig;
use mrt_runtime::amqp::AmqpConfig;
use mrt_runtime::telemetry::TelemetryConfig;

/// Broker, store, telemetry, probes and site settings.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// RabbitMQ URL.
    #[arg(
        long,
        env = "MRTDOSE_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// Prefix of every exchange and queue (one deployment, one prefix).
    #[arg(long, env = "MRTDOSE_AMQP_PREFIX", default_value = "mrtdose")]
    pub amqp_prefix: String,
    /// Delay before a failed delivery is tried again (ms).
    #[arg(long, env = "MRTDOSE_RETRY_DELAY_MS", default_value_t = 5000)]
    pub retry_delay_ms: u32,
    /// Attempts before a delivery is dead-lettered and its study marked failed.
    #[arg(long, env = "MRTDOSE_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// S3 endpoint (any S3-compatible server), e.g. http://127.0.0.1:8333.
    #[arg(long, env = "MRTDOSE_S3_ENDPOINT", conflicts_with = "store_dir")]
    pub s3_endpoint: Option<String>,
    /// S3 bucket.
    #[arg(long, env = "MRTDOSE_S3_BUCKET", default_value = "mrtdose")]
    pub s3_bucket: String,
    /// S3 access key id.
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        default_value = "",
        hide_env_values = true
    )]
    pub s3_access_key_id: String,
    /// S3 secret access key.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub s3_secret_access_key: String,
    /// S3 region (any value for most non-AWS servers).
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// Key prefix inside the bucket or directory (one bucket, several deployments).
    #[arg(long, env = "MRTDOSE_STORE_PREFIX", default_value = "")]
    pub store_prefix: String,
    /// A local directory as the store instead of S3 (every service on one host).
    #[arg(long, env = "MRTDOSE_STORE_DIR")]
    pub store_dir: Option<PathBuf>,
    /// OTLP/HTTP endpoint for traces and metrics, e.g. http://127.0.0.1:4318 (off when unset).
    #[arg(long, env = "MRTDOSE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Metrics export interval (s).
    #[arg(long, env = "MRTDOSE_METRICS_INTERVAL_S", default_value_t = 10)]
    pub metrics_interval_s: u64,
    /// Address of the HTTP health (/healthz) and readiness (/readyz) probes.
    #[arg(long, env = "MRTDOSE_HEALTH_ADDR", default_value = "127.0.0.1:0")]
    pub health_addr: SocketAddr,
    /// Site settings (TOML, docs/site-config.md); the stated defaults when unset.
    #[arg(long, env = "MRTDOSE_SITE_CONFIG")]
    pub site_config: Option<PathBuf>,
}

impl CommonArgs {
    /// Broker settings.
    pub fn amqp(&self) -> AmqpConfig {
        AmqpConfig {
            url: self.amqp_url.clone(),
            prefix: self.amqp_prefix.clone(),
            retry_delay_ms: self.retry_delay_ms,
            max_attempts: self.max_attempts,
        }
    }

    /// The artifact store.
    pub fn store(&self) -> anyhow::Result<Store> {
        Ok(self.backend()?.with_prefix(&self.store_prefix))
    }

    fn backend(&self) -> anyhow::Result<Store> {
        match (&self.s3_endpoint, &self.store_dir) {
            (Some(endpoint), _) => Store::s3(&S3Config {
                endpoint: endpoint.clone(),
                bucket: self.s3_bucket.clone(),
                access_key_id: self.s3_access_key_id.clone(),
                secret_access_key: self.s3_secret_access_key.clone(),
                region: self.s3_region.clone(),
            })
            .with_context(|| format!("S3 store at {endpoint}")),
            (None, Some(dir)) => {
                Store::local(dir).with_context(|| format!("local store at {}", dir.display()))
            }
            (None, None) => anyhow::bail!(
                "no store: give --s3-endpoint (MRTDOSE_S3_ENDPOINT) or --store-dir (MRTDOSE_STORE_DIR)"
            ),
        }
    }

    /// Site settings.
    pub fn site_config(&self) -> anyhow::Result<SiteConfig> {
        match &self.site_config {
            Some(p) => Ok(SiteConfig::load(p)?),
            None => Ok(SiteConfig::default()),
        }
    }

    /// Telemetry settings for `service`.
    pub fn telemetry(&self, service: &str) -> TelemetryConfig {
        TelemetryConfig {
            service_name: service.to_string(),
            otlp_endpoint: self.otlp_endpoint.clone(),
            metrics_interval: Duration::from_secs(self.metrics_interval_s),
        }
    }
}

/// The segmentation model and its runtime.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model directory holding model-card.json and the ONNX file it names.
    #[arg(long, env = "MRTDOSE_MODEL", default_value = "models/ct-organs")]
    pub model: PathBuf,
    /// Device: auto (CUDA when the runtime has it), cpu or cuda.
    #[arg(long, env = "MRTDOSE_DEVICE", default_value = "auto", value_parser = ["auto", "cpu", "cuda"])]
    pub device: String,
    /// ONNX Runtime shared library (scripts/setup-ort.sh puts it in .ort/lib).
    #[arg(
        long,
        env = "ORT_DYLIB_PATH",
        default_value = ".ort/lib/libonnxruntime.so"
    )]
    pub ort_library: PathBuf,
}
