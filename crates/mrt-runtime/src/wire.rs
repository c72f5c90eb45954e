//! Conversions between the pipeline's types and the wire types of `mrt-proto` (the AMQP stage
//! event and the per-stage status of the public API). Proto types stop here.

use mrt_pipeline::bus::{Outcome, StageEvent};
use mrt_pipeline::Stage;
use mrt_proto::v1 as pb;
use prost::Message;

/// A stage event that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not a protobuf `mrtdose.v1.StageEvent`.
    #[error("stage event: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A field holds a value this version does not know.
    #[error("stage event field {field}: unknown value {value}")]
    Unknown {
        /// Field name.
        field: &'static str,
        /// Value received.
        value: i32,
    },
}

/// The proto enum value of a stage.
pub fn stage_to_pb(stage: Stage) -> pb::Stage {
    match stage {
        Stage::Ingest => pb::Stage::Ingest,
        Stage::Register => pb::Stage::Register,
        Stage::Segment => pb::Stage::Segment,
        Stage::Quantify => pb::Stage::Quantify,
        Stage::Dose => pb::Stage::Dose,
        Stage::Report => pb::Stage::Report,
    }
}

/// The stage of a proto enum value.
pub fn stage_from_pb(value: i32) -> Result<Stage, WireError> {
    let unknown = WireError::Unknown {
        field: "stage",
        value,
    };
    Ok(match pb::Stage::try_from(value).map_err(|_| unknown)? {
        pb::Stage::Ingest => Stage::Ingest,
        pb::Stage::Register => Stage::Register,
        pb::Stage::Segment => Stage::Segment,
        pb::Stage::Quantify => Stage::Quantify,
        pb::Stage::Dose => Stage::Dose,
        pb::Stage::Report => Stage::Report,
        pb::Stage::Unspecified => {
            return Err(WireError::Unknown {
                field: "stage",
                value,
            })
        }
    })
}

/// Per-stage status for the public API (`None` = no marker yet).
pub fn stage_status(stage: Stage, outcome: Option<&Outcome>) -> pb::StageStatus {
    let (state, reason) = match outcome {
        None => (pb::StageState::Pending, String::new()),
        Some(Outcome::Done) => (pb::StageState::Done, String::new()),
        Some(Outcome::Failed { reason }) => (pb::StageState::Failed, reason.clone()),
    };
    pb::StageStatus {
        stage: stage_to_pb(stage) as i32,
        state: state as i32,
        reason,
    }
}

/// Encodes an event for RabbitMQ, stamped with its publication time (Unix ms).
pub fn encode_event(event: &StageEvent, published_unix_ms: i64) -> Vec<u8> {
    let (state, reason) = match &event.outcome {
        Outcome::Done => (pb::StageState::Done, String::new()),
        Outcome::Failed { reason } => (pb::StageState::Failed, reason.clone()),
    };
    pb::StageEvent {
        study_id: event.study_id.clone(),
        stage: stage_to_pb(event.stage) as i32,
        state: state as i32,
        reason,
        traceparent: event.traceparent.clone().unwrap_or_default(),
        published_unix_ms,
    }
    .encode_to_vec()
}

/// Decodes an event from RabbitMQ; also returns its publication time (Unix ms, 0 if unknown).
pub fn decode_event(bytes: &[u8]) -> Result<(StageEvent, i64), WireError> {
    let m = pb::StageEvent::decode(bytes)?;
    let outcome = match pb::StageState::try_from(m.state) {
        Ok(pb::StageState::Done) => Outcome::Done,
        Ok(pb::StageState::Failed) => Outcome::Failed { reason: m.reason },
        _ => {
            return Err(WireError::Unknown {
                field: "state",
                value: m.state,
            })
        }
    };
    let event = StageEvent {
        study_id: m.study_id,
        stage: stage_from_pb(m.stage)?,
        outcome,
        traceparent: Some(m.traceparent).filter(|t| !t.is_empty()),
    };
    Ok((event, m.published_unix_ms))
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_the_wire() {
        for stage in Stage::ALL {
            for outcome in [
                Outcome::Done,
                Outcome::Failed {
                    reason: "segment: no CT".into(),
                },
            ] {
                let e = StageEvent {
                    study_id: "S1".into(),
                    stage,
                    outcome,
                    traceparent: Some(
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
                    ),
                };
                let (back, t) = decode_event(&encode_event(&e, 1234)).expect("decode");
                assert_eq!(back, e);
                assert_eq!(t, 1234);
            }
        }
    }

    #[test]
    fn garbage_and_unknown_values_are_refused() {
        assert!(decode_event(b"\xff\xff\xff").is_err());
        let unknown_stage = pb::StageEvent {
            study_id: "S".into(),
            stage: 42,
            state: pb::StageState::Done as i32,
            ..Default::default()
        }
        .encode_to_vec();
        assert!(matches!(
            decode_event(&unknown_stage),
            Err(WireError::Unknown { field: "stage", .. })
        ));
    }
}
