//! Benchmark (not a test): wall time and peak memory of whole commands on this machine, through
//! the release binary, measured by GNU time (`apt-get install time`):
//! - `mrtdose segment` on a `clinical` CT (512×512×140, DICOM): read, canonicalise, infer,
//!   post-process, write — goal < 60 s on 2 CPU cores;
//! - `mrtdose run` on a `small` and a `clinical` 4-time-point study (DICOM) — goals < 60 s and
//!   < 5 min.
//!
//! `cargo bench -p mrtdose --bench pipeline [-- --runs N --skip-clinical-run]`
//! Uses `models/ct-organs` and `.ort/lib/libonnxruntime.so` (scripts/setup-ort.sh).

mod common;

/// Runs `mrtdose ARGS` under GNU time; returns (seconds, peak RSS MB).
fn timed(args: &[&str]) -> (f64, f64) {
    let out = common::command(args, true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    let mut it = last.split_whitespace();
    let secs: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
    let kb: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
    (secs, kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = common::arg("--runs", 3) as usize;
    let skip_clinical_run = args.iter().any(|a| a == "--skip-clinical-run");
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| dir.path().join(name).to_string_lossy().to_string();
    for (preset, seed) in [("small", "9301"), ("clinical", "9302")] {
        timed(&[
            "phantom",
            "--preset",
            preset,
            "--seed",
            seed,
            "--misalign-mm",
            "10",
            "--out",
            &p(preset),
        ]);
    }
    println!("{:<44} {:>10} {:>12}", "command", "median s", "peak RSS MB");
    let (mut t, mut m) = (Vec::new(), Vec::new());
    for r in 0..runs {
        let (s, mb) = timed(&[
            "segment",
            &p("clinical/tp1/ct"),
            "--device",
            "cpu",
            "--out",
            &p(&format!("seg{r}.nii.gz")),
        ]);
        t.push(s);
        m.push(mb);
    }
    println!(
        "{:<44} {:>10.1} {:>12.0}",
        "segment clinical CT (512×512×140), CPU",
        median(t),
        m.iter().copied().fold(0.0, f64::max)
    );
    let presets: &[&str] = if skip_clinical_run {
        &["small"]
    } else {
        &["small", "clinical"]
    };
    for preset in presets {
        let (s, mb) = timed(&[
            "run",
            &p(preset),
            "--out",
            &p(&format!("{preset}-out")),
            "--device",
            "cpu",
            "--quiet",
        ]);
        println!(
            "{:<44} {:>10.1} {:>12.0}",
            format!("run {preset} study, 4 time points"),
            s,
            mb
        );
    }
    println!(
        "{} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
