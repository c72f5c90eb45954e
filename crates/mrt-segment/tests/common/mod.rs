//! Helpers shared by the integration tests: the repository root and the ONNX Runtime library
//! that `scripts/test-data.sh` fetches.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ONNX Runtime library (`.ort/lib/libonnxruntime.so`); panics with what to run when absent.
pub fn runtime() -> PathBuf {
    let p = root().join(".ort/lib/libonnxruntime.so");
    assert!(
        p.exists(),
        "run scripts/test-data.sh first (needs {})",
        p.display()
    );
    p
}
