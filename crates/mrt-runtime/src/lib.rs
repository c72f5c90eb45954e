//! The services' runtime: what connects mrt-pipeline's seams to real infrastructure. Today the
//! RabbitMQ [`amqp::AmqpBus`]; gRPC, OpenTelemetry and shutdown glue follow (issue 8).
//!
//! Must not contain imaging or dosimetry code: stages live in mrt-pipeline and run unchanged.

pub mod amqp;
