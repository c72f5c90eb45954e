//! Time points into one frame: each CT registered to a reference CT, and each SPECT carried along
//! with its CT (through its own SPECT↔CT correction).

use mrt_core::transform::Singular;
use mrt_core::{Transform, Volume};
use rayon::prelude::*;

use crate::register::{register, RegisterError, RegisterOptions, Registration};

/// Registers every CT to `cts[reference]` (the reference gets the identity without work).
/// Each result maps reference world → that time point's CT world.
pub fn register_timepoints(
    cts: &[&Volume<f32>],
    reference: usize,
    opts: &RegisterOptions,
) -> Vec<Result<Registration, RegisterError>> {
    cts.par_iter()
        .enumerate()
        .map(|(t, ct)| {
            if t == reference {
                Ok(Registration {
                    transform: Transform::identity(),
                    metric: opts.metric,
                    metric_before: f64::NAN,
                    metric_after: f64::NAN,
                    evaluations: 0,
                })
            } else {
                register(cts[reference], ct, opts)
            }
        })
        .collect()
}

/// Reference world → SPECT_t world, from reference world → CT_t world (`ct_from_reference`) and
/// SPECT_t world → CT_t world (`spect_to_ct`, the misalignment correction). Resampling SPECT_t
/// through it puts the SPECT on the reference grid.
pub fn reference_to_spect(
    ct_from_reference: &Transform,
    spect_to_ct: &Transform,
) -> Result<Transform, Singular> {
    Ok(spect_to_ct.inverse()?.compose(ct_from_reference))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mrt_core::RigidTransform;

    #[test]
    fn a_body_point_lands_where_the_spect_shows_it() {
        // Body frame → CT world per visit (B0, Bt) and SPECT world → CT world (St).
        let b0 = RigidTransform {
            rotation_deg: [1.0, -2.0, 3.0],
            translation_mm: [5.0, 0.0, -8.0],
        };
        let bt = RigidTransform {
            rotation_deg: [-3.0, 4.0, 1.0],
            translation_mm: [-12.0, 7.0, 15.0],
        };
        let st = RigidTransform {
            rotation_deg: [0.0, 1.5, -2.0],
            translation_mm: [6.0, -4.0, 2.0],
        };
        let ct_from_reference = Transform::Rigid(bt.compose(&b0.inverse()));
        let map = reference_to_spect(&ct_from_reference, &Transform::Rigid(st)).expect("rigid");
        let body = [30.0, -40.0, 120.0];
        let in_reference = b0.apply(body);
        let in_spect = st.inverse().apply(bt.apply(body));
        let got = map.apply(in_reference);
        for a in 0..3 {
            assert!(
                (got[a] - in_spect[a]).abs() < 1e-9,
                "{got:?} vs {in_spect:?}"
            );
        }
    }
}
