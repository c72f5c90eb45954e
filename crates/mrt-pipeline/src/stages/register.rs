//! Register: every time point's CT onto the reference CT (rigid, NCC). The SPECT↔CT correction
//! needs organ masks and runs in the quantify stage.

use std::path::Path;

use mrt_core::Transform;
use mrt_io::nifti_io::read_nifti;
use mrt_register::timepoints::register_timepoints;
use mrt_register::RegisterOptions;
use serde::{Deserialize, Serialize};

use super::ingest::StudyManifest;
use super::{io_err, read_json, write_json, Stage, StageContext, StageError};

/// One time point's CT registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CtRegistration {
    /// Time point (1-based).
    pub index: usize,
    /// Reference world → this CT's world (identity for the reference).
    pub ct_from_reference: Option<Transform>,
    /// NCC at identity.
    pub metric_before: Option<f64>,
    /// NCC after.
    pub metric_after: Option<f64>,
    /// Why there is no transform.
    pub error: Option<String>,
}

/// `register/registration.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistrationArtifact {
    /// `mrtdose.registration.v1`.
    pub schema: String,
    /// Reference time point (1-based).
    pub reference_index: Option<usize>,
    /// Per time point with a CT.
    pub timepoints: Vec<CtRegistration>,
}

impl RegistrationArtifact {
    /// The transform of time point `index`.
    pub fn of(&self, index: usize) -> Option<&Transform> {
        self.timepoints
            .iter()
            .find(|t| t.index == index)
            .and_then(|t| t.ct_from_reference.as_ref())
    }
}

/// Runs the stage: `work/ingest/` → `out/registration.json`.
pub fn run(
    ctx: &StageContext,
    work: &Path,
    out: &Path,
) -> Result<RegistrationArtifact, StageError> {
    let study: StudyManifest = read_json(&work.join("ingest/study.json"))?;
    let with_ct: Vec<_> = study.timepoints.iter().filter(|t| t.ct.is_some()).collect();
    let wanted = ctx.config.reference_timepoint;
    let reference = with_ct
        .iter()
        .position(|t| t.index == wanted)
        .or(if with_ct.is_empty() { None } else { Some(0) });
    let mut timepoints = Vec::new();
    if let Some(r) = reference {
        let cts = with_ct
            .iter()
            .map(|t| {
                let name = t.ct.as_deref().unwrap_or_default();
                read_nifti(&work.join("ingest").join(name))
                    .map(|n| n.volume)
                    .map_err(io_err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&_> = cts.iter().collect();
        let results = register_timepoints(&refs, r, &RegisterOptions::default());
        for (t, result) in with_ct.iter().zip(results) {
            (ctx.tick)(Stage::Register);
            timepoints.push(match result {
                Ok(reg) => CtRegistration {
                    index: t.index,
                    ct_from_reference: Some(reg.transform),
                    metric_before: reg.metric_before.is_finite().then_some(reg.metric_before),
                    metric_after: reg.metric_after.is_finite().then_some(reg.metric_after),
                    error: None,
                },
                Err(e) => CtRegistration {
                    index: t.index,
                    ct_from_reference: None,
                    metric_before: None,
                    metric_after: None,
                    error: Some(e.to_string()),
                },
            });
        }
    }
    let artifact = RegistrationArtifact {
        schema: "mrtdose.registration.v1".into(),
        reference_index: reference.map(|r| with_ct[r].index),
        timepoints,
    };
    write_json(&out.join("registration.json"), &artifact)?;
    Ok(artifact)
}
