//! Benchmark (not a test): CT↔CT rigid registration, mrtdose vs SimpleITK (Mattes MI,
//! multi-resolution), side by side in one run on the same phantom pairs.
//!
//! `cargo bench -p mrt-register --bench vs_simpleitk [-- --seeds 321,322,323]`
//!
//! Each seed gives a phantom with three visits repositioned by up to ±20 mm and ±5°; visits 2 and
//! 3 are registered onto visit 1. Error: organ target registration error against the generator's
//! true repositioning (every 2nd organ voxel of visit 1). Time: the registration itself (files
//! already read), on this machine's cores (SimpleITK is told to use 2 threads; rayon uses all).
//! The peer runs as `scripts/simpleitk_register.py` in the repository's `.venv` (made by
//! `scripts/test-data.sh`, which pins SimpleITK).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use mrt_core::{linalg, Transform};
use mrt_io::nifti_io::read_nifti;
use mrt_phantom::{write_phantom, Format, Options};
use mrt_register::{register, Metric, RegisterOptions};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn seeds() -> Vec<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--seeds")
        .and_then(|i| args.get(i + 1))
        .map(|s| {
            s.split(',')
                .map(|x| x.parse().expect("--seeds N,N"))
                .collect()
        })
        .unwrap_or_else(|| vec![321, 322, 323])
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "run scripts/test-data.sh first (needs {})",
        python.display()
    );
    let script = repo_root().join("scripts/simpleitk_register.py");
    let methods = ["mrtdose NCC", "mrtdose Mattes MI", "SimpleITK Mattes MI"];
    let mut errors: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut seconds = [0.0f64; 3];
    let mut pairs = 0;
    for seed in seeds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = Options::new(seed);
        o.timepoints_h = vec![4.0, 24.0, 72.0];
        let truth = write_phantom(dir.path(), o, Format::Nifti).expect("phantom");
        let fixed_path = dir.path().join(&truth.timepoints[0].ct);
        let fixed = read_nifti(&fixed_path).expect("ct").volume;
        let labels = read_nifti(&dir.path().join(&truth.timepoints[0].labels))
            .expect("labels")
            .volume;
        let g = labels.grid();
        let mut organ_points = Vec::new();
        for k in (0..g.dims[2]).step_by(2) {
            for j in (0..g.dims[1]).step_by(2) {
                for i in (0..g.dims[0]).step_by(2) {
                    if (1.0..=4.0).contains(labels.at(i, j, k)) {
                        organ_points.push(g.index_to_world([i as f64, j as f64, k as f64]));
                    }
                }
            }
        }
        let b_fixed = truth.timepoints[0].body_to_world;
        for tp in &truth.timepoints[1..] {
            pairs += 1;
            let moving_path = dir.path().join(&tp.ct);
            let moving = read_nifti(&moving_path).expect("ct").volume;
            let true_map = tp
                .body_to_world
                .to_affine()
                .compose(&b_fixed.inverse_affine());
            let mut estimates: Vec<Transform> = Vec::new();
            for (m, metric) in [Metric::Ncc, Metric::MattesMi].into_iter().enumerate() {
                let opts = RegisterOptions {
                    metric,
                    ..RegisterOptions::default()
                };
                let started = Instant::now();
                let r = register(&fixed, &moving, &opts).expect("registration");
                seconds[m] += started.elapsed().as_secs_f64();
                estimates.push(r.transform);
            }
            let out = Command::new(&python)
                .arg(&script)
                .arg(&fixed_path)
                .arg(&moving_path)
                .output()
                .expect("python runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            seconds[2] += v["seconds"].as_f64().expect("seconds");
            estimates.push(Transform::Affine {
                matrix: serde_json::from_value(v["matrix"].clone()).expect("matrix"),
                translation_mm: serde_json::from_value(v["translation_mm"].clone())
                    .expect("translation"),
            });
            for (m, t) in estimates.iter().enumerate() {
                let pair_errors: Vec<f64> = organ_points
                    .iter()
                    .map(|&p| linalg::norm(linalg::sub(t.apply(p), true_map.apply(p))))
                    .collect();
                let mean = pair_errors.iter().sum::<f64>() / pair_errors.len() as f64;
                println!(
                    "seed {seed} {:>4} h  {:<20} mean organ TRE {mean:.2} mm",
                    tp.hours_post_injection, methods[m]
                );
                errors[m].extend(pair_errors);
            }
        }
    }
    println!(
        "\n{pairs} pairs, {} threads for rayon",
        rayon::current_num_threads()
    );
    println!(
        "{:<20} {:>12} {:>12} {:>12} {:>14}",
        "method", "median mm", "p95 mm", "max mm", "s per pair"
    );
    for m in 0..3 {
        errors[m].sort_by(f64::total_cmp);
        println!(
            "{:<20} {:>12.2} {:>12.2} {:>12.2} {:>14.2}",
            methods[m],
            percentile(&errors[m], 0.5),
            percentile(&errors[m], 0.95),
            percentile(&errors[m], 1.0),
            seconds[m] / pairs as f64
        );
    }
    println!(
        "time ratio SimpleITK / mrtdose: {:.1}× (NCC), {:.1}× (Mattes MI)",
        seconds[2] / seconds[0],
        seconds[2] / seconds[1]
    );
}
