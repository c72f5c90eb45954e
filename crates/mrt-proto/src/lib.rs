//! mrtdose's wire types, generated at build time from `proto/mrtdose/v1` (see `build.rs`): the
//! public `StudyService` (client and server stubs) and the stage events carried on RabbitMQ.
//!
//! Proto types stop at the service edge: the pipeline and the math crates never see them, and
//! this crate depends on nothing of mrtdose's.

#![allow(missing_docs, clippy::doc_lazy_continuation)]

/// `mrtdose.v1`.
pub mod v1 {
    tonic::include_proto!("mrtdose.v1");
}
