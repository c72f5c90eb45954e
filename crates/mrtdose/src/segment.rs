//! `mrtdose segment`: a CT from disk → mrt-segment → a label map on the CT's grid.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use mrt_io::load::load_volume;
use mrt_io::nifti_io::write_nifti;
use mrt_segment::{Device, Segmenter};

use crate::cli::{DeviceArg, ModelArgs, SegmentArgs};

/// The device flag as the library's type.
pub fn device(arg: DeviceArg) -> Device {
    match arg {
        DeviceArg::Auto => Device::Auto,
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Cuda => Device::Cuda,
    }
}

/// Loads the model the flags name.
pub fn load(m: &ModelArgs) -> anyhow::Result<Segmenter> {
    Segmenter::load(&m.model, device(m.device), &m.ort_library)
        .with_context(|| format!("loading the segmentation model in {}", m.model.display()))
}

/// Runs the command.
pub fn run(args: &SegmentArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let started = Instant::now();
    let segmenter = load(&args.model)?;
    let loaded_at = Instant::now();
    let ct = load_volume(&args.ct).context("CT")?;
    let read_at = Instant::now();
    let seg = segmenter
        .segment(&ct.volume)
        .with_context(|| format!("segmenting {}", args.ct.display()))?;
    let segmented_at = Instant::now();
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_nifti(&args.out, &seg.labels)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let done = Instant::now();
    let card = &segmenter.bundle().card;
    writeln!(
        out,
        "model {} {} on {}",
        card.name, card.version, seg.provider
    )?;
    writeln!(
        out,
        "{:<14} {:>5} {:>10}  flag",
        "organ", "label", "volume mL"
    )?;
    for o in &seg.organs {
        writeln!(
            out,
            "{:<14} {:>5} {:>10.1}  {}",
            o.name,
            o.label,
            o.volume_ml,
            o.flag.as_deref().unwrap_or("")
        )?;
    }
    for note in ct.warnings.iter().chain(&seg.notes) {
        writeln!(out, "note: {note}")?;
    }
    writeln!(
        out,
        "seconds: load model {:.2}, read CT {:.2}, canonicalise {:.2}, infer {:.2}, map back and clean up {:.2}, write {:.2}; total {:.2}",
        (loaded_at - started).as_secs_f64(),
        (read_at - loaded_at).as_secs_f64(),
        seg.seconds[0],
        seg.seconds[1],
        seg.seconds[2],
        (done - segmented_at).as_secs_f64(),
        (done - started).as_secs_f64()
    )?;
    writeln!(out, "labels written to {}", args.out.display())?;
    Ok(())
}
