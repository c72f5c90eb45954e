//! Benchmark (not a test): wall time, peak memory and size on disk of a 4-time-point phantom
//! study, `small` and `clinical` presets, DICOM output.
//!
//! `cargo bench -p mrt-phantom --bench phantom_generation [-- --runs N]`
//! Goals (issue "Digital trial generator"): small < 5 s, clinical < 60 s on 2 cores.

use std::path::Path;
use std::time::Instant;

use mrt_phantom::{write_phantom, Format, Options, Preset};

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.map(|e| {
                let e = e.expect("entry");
                let m = e.metadata().expect("meta");
                if m.is_dir() {
                    dir_size(&e.path())
                } else {
                    m.len()
                }
            })
            .sum()
        })
        .unwrap_or(0)
}

/// Peak resident memory of this process so far (VmHWM), MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!("| preset | runs | median s | peak RSS so far MB | size on disk MB |");
    println!("|---|---|---|---|---|");
    for (preset, name) in [(Preset::Small, "small"), (Preset::Clinical, "clinical")] {
        let mut times = Vec::new();
        let mut size = 0;
        for r in 0..runs {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut o = Options::new(100 + r as u64);
            o.preset = preset;
            o.misalign_mm = 10.0;
            let t = Instant::now();
            write_phantom(dir.path(), o, Format::Dicom).expect("phantom");
            times.push(t.elapsed().as_secs_f64());
            size = dir_size(dir.path());
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {runs} | {:.2} | {:.0} | {:.1} |",
            times[times.len() / 2],
            peak_rss_mb(),
            size as f64 / 1e6
        );
    }
    println!("rayon threads: {}", rayon::current_num_threads());
}
