//! Shared test helpers: where the prepared test data and the reference Python live.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `testdata/` prepared by `scripts/test-data.sh`; panics with instructions when missing, so a
/// missing reference can never make a test pass silently.
pub fn testdata(sub: &str) -> PathBuf {
    let dir = std::env::var_os("MRTDOSE_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("testdata"))
        .join(sub);
    assert!(
        dir.exists(),
        "{} is missing: run scripts/test-data.sh first (README, command 2)",
        dir.display()
    );
    dir
}

/// The Python with pydicom and nibabel installed by `scripts/test-data.sh`.
pub fn python() -> PathBuf {
    let p = std::env::var_os("MRTDOSE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/test-data.sh first (README, command 2)",
        p.display()
    );
    p
}

/// Runs a reference script from `scripts/` and returns its stdout parsed as JSON.
pub fn run_python(script: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(repo_root().join("scripts").join(script))
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("script prints JSON")
}

use mrt_core::linalg::rotation_xyz_deg;
use mrt_core::{Grid, Volume};

/// A small CT-like volume (integer HU) on a slightly rotated grid.
pub fn small_ct(dims: [usize; 3], spacing: [f64; 3]) -> Volume<f32> {
    let grid = Grid::new(
        dims,
        spacing,
        [-60.0, -80.0, 120.0],
        rotation_xyz_deg([0.0, 0.0, 3.0]),
    )
    .expect("valid grid");
    let mut data = Vec::with_capacity(grid.len());
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                data.push(((i * 3 + j * 5 + k * 11) % 400) as f32 - 200.0);
            }
        }
    }
    Volume::new(grid, data).expect("sized")
}

/// A small SPECT-like volume (Bq/mL) covering the same region.
pub fn small_spect() -> Volume<f32> {
    let grid = Grid::axis_aligned([12, 12, 8], [4.8, 4.8, 4.8], [-70.0, -90.0, 110.0])
        .expect("valid grid");
    let data = (0..grid.len()).map(|n| (n % 97) as f32 * 1234.5).collect();
    Volume::new(grid, data).expect("sized")
}
