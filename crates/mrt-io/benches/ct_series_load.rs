//! Benchmark (not a test): loading a 512×512×300 CT series written by our writer, side by side
//! with dcm2niix converting the same series, in the same run on the same files.
//!
//! `cargo bench -p mrt-io --bench ct_series_load [-- --slices N --runs R --dir DIR]`
//!
//! Reported: median wall time over R runs (after one warm-up each, so both read from the page
//! cache) and throughput in MB/s of DICOM input. Two figures for mrtdose: load only (directory
//! scan + decode into a volume, what the pipeline does), and load + NIfTI write (the same job as
//! dcm2niix's conversion). dcm2niix comes from Debian (`apt-get install dcm2niix`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mrt_core::linalg::rotation_xyz_deg;
use mrt_core::{Grid, Volume};
use mrt_io::datetime::parse_dt;
use mrt_io::dicom::read_series;
use mrt_io::dicom::write::{write_ct_series, SeriesMeta};
use mrt_io::nifti_io::write_nifti;
use mrt_io::study::scan;

struct Options {
    slices: usize,
    runs: usize,
    dir: Option<PathBuf>,
}

fn options() -> Options {
    let mut o = Options {
        slices: 300,
        runs: 5,
        dir: None,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--slices" => {
                o.slices = args[i + 1].parse().expect("--slices N");
                i += 1;
            }
            "--runs" => {
                o.runs = args[i + 1].parse().expect("--runs N");
                i += 1;
            }
            "--dir" => {
                o.dir = Some(PathBuf::from(&args[i + 1]));
                i += 1;
            }
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    o
}

fn synthetic_ct(slices: usize) -> Volume<f32> {
    let grid = Grid::new(
        [512, 512, slices],
        [0.9765625, 0.9765625, 1.0],
        [-250.0, -250.0, -150.0],
        rotation_xyz_deg([0.0, 0.0, 0.0]),
    )
    .expect("grid");
    let mut data = Vec::with_capacity(grid.len());
    let mut x: u32 = 12345;
    for k in 0..slices {
        for j in 0..512usize {
            for i in 0..512usize {
                // Body-like disc with noise: realistic mix of air (-1000) and tissue values.
                let (di, dj) = (i as f64 - 256.0, j as f64 - 256.0);
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let noise = (x % 41) as f32 - 20.0;
                let v = if di * di + dj * dj < 200.0 * 200.0 {
                    40.0 + ((k + i / 32 + j / 32) % 7) as f32 * 10.0 + noise
                } else {
                    -1000.0
                };
                data.push(v);
            }
        }
    }
    Volume::new(grid, data).expect("volume")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum()
}

fn time_runs(runs: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let o = options();
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = o.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let series_dir = base.join("ct_series");
    let out_dir = base.join("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    if !series_dir.exists() || std::fs::read_dir(&series_dir).expect("dir").count() != o.slices {
        let _ = std::fs::remove_dir_all(&series_dir);
        eprintln!(
            "writing a 512×512×{} CT series with mrt-io's writer ...",
            o.slices
        );
        let ct = synthetic_ct(o.slices);
        let meta = SeriesMeta::new("benchmark CT", parse_dt("20261127120000").expect("dt"));
        write_ct_series(&series_dir, &ct, &meta).expect("write series");
    }
    let bytes = dir_bytes(&series_dir);
    let mb = bytes as f64 / 1e6;
    let threads = rayon::current_num_threads();
    eprintln!(
        "series: {} files, {mb:.1} MB; {threads} rayon threads; {} runs each",
        o.slices, o.runs
    );

    let load = || {
        let s = scan(&series_dir).expect("scan");
        let series = s.series().next().expect("one series");
        let v = read_series(&series.files).expect("read");
        assert_eq!(v.volume.grid().dims, [512, 512, o.slices]);
        v
    };
    let t_load = time_runs(o.runs, || {
        load();
    });
    let nii = out_dir.join("mrtdose.nii");
    // dcm2niix writes int16 for this series; so do we here (HU are integers, exact).
    let t_convert = time_runs(o.runs, || {
        let v = load();
        let hu = v.volume.map(|&x| x as i16);
        write_nifti(&nii, &hu).expect("nifti");
    });

    let dcm2niix = Command::new("dcm2niix").arg("-v").output();
    let t_dcm2niix = match dcm2niix {
        Ok(_) => Some(time_runs(o.runs, || {
            let st = Command::new("dcm2niix")
                .args(["-z", "n", "-b", "n", "-f", "dcm2niix", "-o"])
                .arg(&out_dir)
                .arg(&series_dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .expect("dcm2niix runs");
            assert!(st.success(), "dcm2niix failed");
        })),
        Err(_) => {
            eprintln!("dcm2niix not found: apt-get install dcm2niix");
            None
        }
    };

    let rate = |t: Duration| mb / t.as_secs_f64();
    println!("| tool | task | median s | MB/s |");
    println!("|---|---|---|---|");
    println!(
        "| mrtdose | load (scan + decode to volume) | {:.3} | {:.0} |",
        t_load.as_secs_f64(),
        rate(t_load)
    );
    println!(
        "| mrtdose | load + write NIfTI int16 | {:.3} | {:.0} |",
        t_convert.as_secs_f64(),
        rate(t_convert)
    );
    if let Some(t) = t_dcm2niix {
        println!(
            "| dcm2niix | convert to NIfTI (-z n) | {:.3} | {:.0} |",
            t.as_secs_f64(),
            rate(t)
        );
        println!();
        println!(
            "throughput ratio mrtdose/dcm2niix: load {:.2}×, load + NIfTI write {:.2}×",
            rate(t_load) / rate(t),
            rate(t_convert) / rate(t)
        );
    }
}
