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
