//! The services' runtime: what connects mrt-pipeline's seams to real infrastructure and what
//! every service binary shares: the RabbitMQ [`amqp::AmqpBus`] and the stage [`worker`], the
//! wire conversions to `mrt-proto` ([`wire`]), OpenTelemetry ([`telemetry`], [`metrics`]),
//! health probes ([`health`]) and graceful shutdown ([`shutdown`]).
//!
//! Must not contain imaging or dosimetry code: stages live in mrt-pipeline and run unchanged.

pub mod amqp;
pub mod health;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
pub mod wire;
pub mod worker;
