//! The RabbitMQ bus against the real broker on 127.0.0.1:5672 (guest/guest; `MRTDOSE_TEST_AMQP`
//! overrides): idempotent topology, routing of a stage event to the next stage's queue,
//! delayed retry with counted attempts, and the dead-letter queue after the last attempt.

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicNackOptions};
use mrt_pipeline::bus::{Outcome, StageEvent};
use mrt_pipeline::Stage;
use mrt_runtime::amqp::{next_delivery, AmqpBus, AmqpConfig};
use mrt_runtime::wire::decode_event;

fn config() -> AmqpConfig {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    AmqpConfig {
        url: std::env::var("MRTDOSE_TEST_AMQP")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        prefix: format!("mrtdose-test-{}-{nanos}", std::process::id()),
        retry_delay_ms: 200,
        max_attempts: 3,
    }
}

#[tokio::test]
async fn events_route_retry_and_dead_letter() {
    let cfg = config();
    let bus = match AmqpBus::connect(cfg.clone()).await {
        Ok(b) => b,
        Err(e) => panic!(
            "no RabbitMQ at {} (start it with `rabbitmq-server -detached`): {e}",
            cfg.url
        ),
    };
    // Declaring again is harmless.
    AmqpBus::connect(cfg.clone())
        .await
        .expect("idempotent topology");
    let event = StageEvent {
        study_id: "s0123456789ab".into(),
        stage: Stage::Ingest,
        outcome: Outcome::Done,
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    };
    bus.publish_event(&event).await.expect("confirmed");
    let mut register = bus
        .consume(Stage::Register, 1, "test-register")
        .await
        .expect("consume");
    let d = next_delivery(&mut register, Duration::from_secs(5))
        .await
        .expect("delivered to register");
    let (got, published_ms) = decode_event(&d.data).expect("protobuf StageEvent");
    assert_eq!(got, event);
    assert!(published_ms > 0, "publication time stamped");
    assert_eq!(
        AmqpBus::traceparent(&d).as_deref(),
        event.traceparent.as_deref()
    );
    assert_eq!(AmqpBus::attempts(&d), 1);
    // Fail it: it comes back after the retry delay, attempts counted, until the last attempt.
    d.nack(BasicNackOptions {
        requeue: false,
        ..Default::default()
    })
    .await
    .expect("nack");
    let d2 = next_delivery(&mut register, Duration::from_secs(5))
        .await
        .expect("retried");
    assert_eq!(AmqpBus::attempts(&d2), 2);
    d2.nack(BasicNackOptions {
        requeue: false,
        ..Default::default()
    })
    .await
    .expect("nack");
    let d3 = next_delivery(&mut register, Duration::from_secs(5))
        .await
        .expect("retried again");
    assert_eq!(AmqpBus::attempts(&d3), 3);
    assert!(bus.exhausted(&d3));
    bus.dead_letter(Stage::Register, &d3, "registration failed: no overlap")
        .await
        .expect("dead-lettered");
    // The dead-letter queue holds it with the reason; the work queue is empty.
    let mut dead = bus
        .consume_queue(&format!("{}.register.dead", cfg.prefix), "test-dead")
        .await
        .expect("consume dead");
    let dd = next_delivery(&mut dead, Duration::from_secs(5))
        .await
        .expect("in the dead-letter queue");
    assert_eq!(decode_event(&dd.data).expect("protobuf").0, event);
    assert_eq!(
        AmqpBus::reason(&dd).as_deref(),
        Some("registration failed: no overlap")
    );
    dd.ack(BasicAckOptions::default()).await.expect("ack");
    assert!(next_delivery(&mut register, Duration::from_millis(600))
        .await
        .is_none());
    // A failed stage routes to the report stage.
    let failed = StageEvent {
        stage: Stage::Quantify,
        outcome: Outcome::Failed { reason: "x".into() },
        ..event.clone()
    };
    bus.publish_event(&failed).await.expect("confirmed");
    let mut report = bus
        .consume(Stage::Report, 1, "test-report")
        .await
        .expect("consume");
    let r = next_delivery(&mut report, Duration::from_secs(5))
        .await
        .expect("report gets failures");
    r.ack(BasicAckOptions::default()).await.expect("ack");
    bus.delete_queues().await.expect("clean up");
}
