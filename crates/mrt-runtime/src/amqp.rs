//! The `Bus` seam on RabbitMQ (lapin). Topology, declared idempotently at start, for prefix `p`:
//!
//! - `p.events` (topic): stage events, routing key `<stage>.done` or `<stage>.failed`;
//! - a durable queue `p.<stage>` per consuming stage, bound to the event that starts it
//!   (`<previous stage>.done`; the report stage also to `*.failed`) and to `retry.<stage>`;
//!   its dead-letter exchange is `p.retry`, so a rejected delivery goes to the retry queue;
//! - `p.<stage>.retry` (TTL = retry delay) dead-letters back to `p.events` as `retry.<stage>`:
//!   delayed retry without a plugin; RabbitMQ's `x-death` header counts the attempts;
//! - `p.<stage>.dead` (via `p.dead`): where a message that keeps failing ends, with its reason.
//!
//! Payloads are protobuf `mrtdose.v1.StageEvent` (proto/mrtdose/v1/stage.proto).
//! Publishing waits for the broker's confirm; consumers ack only after their outputs are durably
//! written (the runner's status marker), so redelivery is harmless.

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use mrt_pipeline::bus::{Bus, BusError, Outcome, StageEvent};
use mrt_pipeline::Stage;

/// Broker settings.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: String,
    /// Prefix of every exchange and queue name.
    pub prefix: String,
    /// Delay before a failed delivery is tried again (ms).
    pub retry_delay_ms: u32,
    /// Attempts before a message is dead-lettered.
    pub max_attempts: u32,
}

/// Broker errors.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// The broker refused or the connection failed.
    #[error("RabbitMQ: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker did not confirm a publish.
    #[error("RabbitMQ did not confirm the publish of {0}")]
    NotConfirmed(String),
    /// The broker ended the consumer.
    #[error("RabbitMQ closed the consumer")]
    Closed,
}

/// A RabbitMQ-backed bus.
pub struct AmqpBus {
    connection: Connection,
    channel: Channel,
    cfg: AmqpConfig,
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// Stages that consume from a queue, with the event that starts each.
fn consumers() -> Vec<(Stage, Vec<String>)> {
    Stage::ALL
        .windows(2)
        .map(|w| {
            let mut keys = vec![format!("{}.done", w[0].name())];
            if w[1] == Stage::Report {
                keys.push("*.failed".into());
            }
            (w[1], keys)
        })
        .collect()
}

impl AmqpBus {
    /// Connects, enables publisher confirms and declares the topology (idempotent).
    pub async fn connect(cfg: AmqpConfig) -> Result<Self, AmqpError> {
        let connection = Connection::connect(&cfg.url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let bus = Self {
            connection,
            channel,
            cfg,
        };
        bus.declare_topology().await?;
        Ok(bus)
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.cfg.prefix)
    }

    async fn declare_topology(&self) -> Result<(), AmqpError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let ch = &self.channel;
        for (exchange, kind) in [
            ("events", ExchangeKind::Topic),
            ("retry", ExchangeKind::Direct),
            ("dead", ExchangeKind::Direct),
        ] {
            ch.exchange_declare(&self.name(exchange), kind, durable, FieldTable::default())
                .await?;
        }
        for (stage, keys) in consumers() {
            let s = stage.name();
            let queue = self.name(s);
            let args = table(&[
                ("x-dead-letter-exchange", text(&self.name("retry"))),
                ("x-dead-letter-routing-key", text(s)),
            ]);
            ch.queue_declare(&queue, durable_queue(), args).await?;
            for key in keys.iter().cloned().chain([format!("retry.{s}")]) {
                ch.queue_bind(
                    &queue,
                    &self.name("events"),
                    &key,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            }
            let retry = self.name(&format!("{s}.retry"));
            let retry_args = table(&[
                (
                    "x-message-ttl",
                    AMQPValue::LongUInt(self.cfg.retry_delay_ms),
                ),
                ("x-dead-letter-exchange", text(&self.name("events"))),
                ("x-dead-letter-routing-key", text(&format!("retry.{s}"))),
            ]);
            ch.queue_declare(&retry, durable_queue(), retry_args)
                .await?;
            ch.queue_bind(
                &retry,
                &self.name("retry"),
                s,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
            let dead = self.name(&format!("{s}.dead"));
            ch.queue_declare(&dead, durable_queue(), FieldTable::default())
                .await?;
            ch.queue_bind(
                &dead,
                &self.name("dead"),
                s,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        Ok(())
    }

    async fn publish_confirmed(
        &self,
        exchange: &str,
        key: &str,
        payload: &[u8],
        headers: FieldTable,
    ) -> Result<(), AmqpError> {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/x-protobuf"))
            .with_headers(headers);
        let confirm = self
            .channel
            .basic_publish(
                exchange,
                key,
                BasicPublishOptions::default(),
                payload,
                props,
            )
            .await?
            .await?;
        if confirm.is_ack() {
            Ok(())
        } else {
            Err(AmqpError::NotConfirmed(key.into()))
        }
    }

    /// Publishes a stage event (protobuf `mrtdose.v1.StageEvent`, persistent, confirmed). The
    /// trace context (the event's own, else the current span's) rides in the payload and in the
    /// `traceparent` header.
    pub async fn publish_event(&self, event: &StageEvent) -> Result<(), AmqpError> {
        let status = match event.outcome {
            Outcome::Done => "done",
            Outcome::Failed { .. } => "failed",
        };
        let key = format!("{}.{status}", event.stage.name());
        let mut event = event.clone();
        if event.traceparent.is_none() {
            event.traceparent = crate::telemetry::current_traceparent();
        }
        let payload = crate::wire::encode_event(&event, crate::wire::now_unix_ms());
        let headers = match &event.traceparent {
            Some(t) => table(&[("traceparent", text(t))]),
            None => FieldTable::default(),
        };
        self.publish_confirmed(&self.name("events"), &key, &payload, headers)
            .await
    }

    /// Sends a delivery to its stage's retry queue (rejected without requeue: the queue's
    /// dead-letter exchange routes it there; it comes back after the retry delay).
    pub async fn retry_later(&self, delivery: &lapin::message::Delivery) -> Result<(), AmqpError> {
        delivery
            .reject(BasicRejectOptions { requeue: false })
            .await?;
        Ok(())
    }

    /// Whether the connection to the broker is still up.
    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    /// Closes the connection; unacknowledged deliveries go back to their queues.
    pub async fn close(&self) -> Result<(), AmqpError> {
        self.connection.close(200, "shutdown").await?;
        Ok(())
    }

    /// Consumes the queue of `stage` with `prefetch` unacknowledged deliveries at most.
    pub async fn consume(
        &self,
        stage: Stage,
        prefetch: u16,
        tag: &str,
    ) -> Result<Consumer, AmqpError> {
        self.channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        Ok(self
            .channel
            .basic_consume(
                &self.name(stage.name()),
                tag,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?)
    }

    /// Consumes any queue by its full name (dead-letter inspection, tests).
    pub async fn consume_queue(&self, queue: &str, tag: &str) -> Result<Consumer, AmqpError> {
        Ok(self
            .channel
            .basic_consume(
                queue,
                tag,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?)
    }

    /// Attempts so far of a delivery (1 on first delivery), from RabbitMQ's `x-death` records.
    pub fn attempts(delivery: &lapin::message::Delivery) -> u32 {
        let deaths = delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-death").cloned());
        let count = match deaths {
            Some(AMQPValue::FieldArray(a)) => a
                .as_slice()
                .iter()
                .filter_map(|d| match d {
                    AMQPValue::FieldTable(t) => match t.inner().get("count") {
                        Some(AMQPValue::LongLongInt(n)) => Some(*n as u32),
                        Some(AMQPValue::LongInt(n)) => Some(*n as u32),
                        _ => None,
                    },
                    _ => None,
                })
                .max()
                .unwrap_or(0),
            _ => 0,
        };
        count + 1
    }

    /// Whether a delivery has used up its attempts.
    pub fn exhausted(&self, delivery: &lapin::message::Delivery) -> bool {
        Self::attempts(delivery) >= self.cfg.max_attempts
    }

    /// Moves a delivery to `p.<stage>.dead` with the reason, then acks it.
    pub async fn dead_letter(
        &self,
        stage: Stage,
        delivery: &lapin::message::Delivery,
        reason: &str,
    ) -> Result<(), AmqpError> {
        let headers = table(&[("x-mrtdose-reason", text(reason))]);
        self.publish_confirmed(&self.name("dead"), stage.name(), &delivery.data, headers)
            .await?;
        delivery.ack(BasicAckOptions::default()).await?;
        Ok(())
    }

    /// The `traceparent` header of a delivery.
    pub fn traceparent(delivery: &lapin::message::Delivery) -> Option<String> {
        match delivery
            .properties
            .headers()
            .as_ref()?
            .inner()
            .get("traceparent")?
        {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            _ => None,
        }
    }

    /// The reason a dead-lettered delivery carries.
    pub fn reason(delivery: &lapin::message::Delivery) -> Option<String> {
        match delivery
            .properties
            .headers()
            .as_ref()?
            .inner()
            .get("x-mrtdose-reason")?
        {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            _ => None,
        }
    }

    /// Deletes every queue of this prefix (tests).
    pub async fn delete_queues(&self) -> Result<(), AmqpError> {
        for (stage, _) in consumers() {
            let s = stage.name();
            for q in [s.to_string(), format!("{s}.retry"), format!("{s}.dead")] {
                self.channel
                    .queue_delete(&self.name(&q), QueueDeleteOptions::default())
                    .await?;
            }
        }
        Ok(())
    }
}

impl Bus for AmqpBus {
    fn publish(&self, event: StageEvent) -> futures::future::BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            self.publish_event(&event)
                .await
                .map_err(|e| BusError(e.to_string()))
        })
    }
}

/// Reads the next delivery of a consumer, if any arrives within `timeout`.
pub async fn next_delivery(
    consumer: &mut Consumer,
    timeout: std::time::Duration,
) -> Option<lapin::message::Delivery> {
    match tokio::time::timeout(timeout, consumer.next()).await {
        Ok(Some(Ok(d))) => Some(d),
        _ => None,
    }
}
