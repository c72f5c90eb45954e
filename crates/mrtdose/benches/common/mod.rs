//! Shared by the whole-command benchmarks: the repository root, the release binary run with the
//! bundled model and runtime, and `--name VALUE` arguments.

#![allow(dead_code)] // each bench uses part of this

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `mrtdose ARGS` with the bundled model and ONNX Runtime, optionally under GNU time
/// (`/usr/bin/time -f "%e %M"`); panics with stderr when it fails.
pub fn command(args: &[&str], gnu_time: bool) -> std::process::Output {
    let mut c = if gnu_time {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "%e %M", env!("CARGO_BIN_EXE_mrtdose")]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_mrtdose"))
    };
    let out = c
        .args(args)
        .env("ORT_DYLIB_PATH", root().join(".ort/lib/libonnxruntime.so"))
        .env("MRTDOSE_MODEL", root().join("models/ct-organs"))
        .output()
        .expect(
            "mrtdose runs (GNU time at /usr/bin/time for the timed ones: apt-get install time)",
        );
    assert!(
        out.status.success(),
        "mrtdose {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `mrtdose ARGS`; its standard output.
pub fn mrtdose(args: &[&str]) -> String {
    String::from_utf8_lossy(&command(args, false).stdout).to_string()
}

/// The value after `--name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
