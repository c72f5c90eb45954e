//! mrtdose's distributed services. Each binary in `src/bin` is a thin `main` around one
//! `run(config, shutdown)` here:
//!
//! - `mrtdose-ingest`: the public gRPC `StudyService` (proto/mrtdose/v1/study.proto); assembles
//!   submitted studies with the pipeline's ingest stage and writes raw files and volumes to the
//!   store;
//! - `mrtdose-registration`, `mrtdose-segmentation` (GPU-capable, prefetch 1),
//!   `mrtdose-quantification`, `mrtdose-dosimetry` (dose and report): stage workers on RabbitMQ.
//!
//! Every stage is the same function `mrtdose run` calls, so the numbers are the same. Must not
//! contain imaging or dosimetry code.

pub mod api;
pub mod args;
pub mod ingest;
pub mod main_support;
pub mod workers;
