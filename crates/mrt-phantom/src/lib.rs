//! Digital trial generator: anthropomorphic abdominal phantoms with SPECT/CT time series after
//! 177Lu-DOTATATE and their ground truth (organ masses, activities, TIA, absorbed doses).
//!
//! Pure simulation in [`anatomy`], [`biokinetics`], [`simulate`] and [`truth`]; file output in
//! [`output`] only (through mrt-io). Deterministic: a seed gives the same files, byte for byte.
//! Must not depend on the dosimetry engine: the truth is computed here, independently, so that it
//! can judge that engine.

pub mod anatomy;
pub mod biokinetics;
pub mod output;
pub mod patient;
pub mod rng;
pub mod shapes;
pub mod simulate;
pub mod tissue;
pub mod truth;

pub use anatomy::AnatomyRevision;
pub use output::{write_phantom, Format, PhantomError};
pub use patient::{Options, Patient, Preset};
