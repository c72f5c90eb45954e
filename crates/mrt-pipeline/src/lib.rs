//! mrtdose's pipeline: ingest → register → segment → quantify → dose → report, each stage a
//! synchronous function from named artifacts to named artifacts, run through two seams:
//! [`store::Store`] (any `object_store`: a local directory here, S3 in the services) and
//! [`bus::Bus`] (in-process here, RabbitMQ in the services). [`runner::run_embedded`] is
//! `mrtdose run`.
//!
//! Depends on the math and I/O crates; must not depend on a broker client, gRPC or telemetry
//! exporters (those live in the services' runtime).

pub mod bus;
pub mod config;
pub mod html;
pub mod overlay;
pub mod runner;
pub mod stages;
pub mod store;
pub mod svg;

pub use config::SiteConfig;
pub use runner::{run_embedded, PipelineError, Runner};
pub use stages::{Stage, StageContext};
