//! Benchmark (not a test): voxel dose by kernel convolution (FFT) on a 256³ grid with the bundled
//! 51³ 177Lu kernel. Goal (issue "Quantification and dosimetry engine"): < 2 s on 2 cores.
//!
//! `cargo bench -p mrt-dosimetry --bench kernel_convolution`

use std::time::Instant;

use mrt_core::{Grid, Volume};
use mrt_dosimetry::voxel::kernel_dose_gy;

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
    let kernel = mrt_reference::lu177_soft_tissue_kernel();
    let g = Grid::axis_aligned([256; 3], [kernel.spacing_mm; 3], [0.0; 3]).expect("grid");
    let tia = Volume::new(
        g.clone(),
        (0..g.len()).map(|n| ((n * 7919) % 1000) as f32).collect(),
    )
    .expect("tia");
    let rho = Volume::filled(g, 1.03f32);
    let before = peak_rss_mb();
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let d = kernel_dose_gy(&tia, &rho, &kernel);
        times.push(t.elapsed().as_secs_f64());
        assert!(d.data()[0].is_finite());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "256³ kernel convolution (51³ kernel): median {:.2} s of 3; peak RSS {:.0} MB (inputs alone {:.0} MB); {} rayon threads",
        times[1],
        peak_rss_mb(),
        before,
        rayon::current_num_threads()
    );
}
