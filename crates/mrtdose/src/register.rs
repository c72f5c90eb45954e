//! `mrtdose register`: two volumes from disk → mrt-register → transform JSON.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context};
use mrt_core::{resample_mapped, Interpolation, Transform};
use mrt_io::load::load_volume;
use mrt_io::nifti_io::write_nifti;
use mrt_register::{register, Metric, RegisterOptions, TransformKind};
use serde::Serialize;

use crate::cli::{RegisterArgs, RegisterKind, RegisterMetric};

/// The transform file (schema `mrtdose.transform.v1`).
#[derive(Debug, Serialize)]
pub struct TransformFile {
    /// `mrtdose.transform.v1`.
    pub schema: &'static str,
    /// How to read the transform.
    pub convention: &'static str,
    /// Fixed image path.
    pub fixed: String,
    /// Moving image path.
    pub moving: String,
    /// Fixed world → moving world.
    pub transform: Transform,
    /// Metric maximised.
    pub metric: Metric,
    /// Metric at identity.
    pub metric_before: f64,
    /// Metric at the result.
    pub metric_after: f64,
    /// Metric evaluations.
    pub evaluations: usize,
    /// Wall time of the registration itself (s).
    pub seconds: f64,
}

fn parse_window(text: &str) -> anyhow::Result<(f32, f32)> {
    let parts: Vec<&str> = text.split(',').collect();
    let [lo, hi] = parts.as_slice() else {
        bail!("--window must be LOW,HIGH, got {text:?}");
    };
    let (lo, hi): (f32, f32) = (
        lo.trim()
            .parse()
            .with_context(|| format!("--window low {lo:?}"))?,
        hi.trim()
            .parse()
            .with_context(|| format!("--window high {hi:?}"))?,
    );
    if lo >= hi {
        bail!("--window: LOW {lo} must be below HIGH {hi}");
    }
    Ok((lo, hi))
}

/// Runs the command.
pub fn run(args: &RegisterArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let window = parse_window(&args.window)?;
    let fixed = load_volume(&args.fixed).context("fixed volume")?;
    let moving = load_volume(&args.moving).context("moving volume")?;
    let opts = RegisterOptions {
        kind: match args.kind {
            RegisterKind::Rigid => TransformKind::Rigid,
            RegisterKind::Affine => TransformKind::Affine,
        },
        metric: match args.metric {
            RegisterMetric::Ncc => Metric::Ncc,
            RegisterMetric::MattesMi => Metric::MattesMi,
        },
        mask_threshold: args.mask_threshold,
        window,
        ..RegisterOptions::default()
    };
    let started = Instant::now();
    let r = register(&fixed.volume, &moving.volume, &opts).with_context(|| {
        format!(
            "registering {} onto {}",
            args.moving.display(),
            args.fixed.display()
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let file = TransformFile {
        schema: "mrtdose.transform.v1",
        convention: "fixed world → moving world, LPS mm; resample the moving image through it onto the fixed grid",
        fixed: args.fixed.display().to_string(),
        moving: args.moving.display().to_string(),
        transform: r.transform,
        metric: r.metric,
        metric_before: r.metric_before,
        metric_after: r.metric_after,
        evaluations: r.evaluations,
        seconds,
    };
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&file)? + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    if let Some(path) = &args.resampled {
        let landed = resample_mapped(
            &moving.volume,
            fixed.volume.grid(),
            &r.transform.to_affine(),
            Interpolation::Linear,
            moving
                .volume
                .data()
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min),
        );
        write_nifti(path, &landed).with_context(|| format!("writing {}", path.display()))?;
    }
    writeln!(
        out,
        "{}: {:.4} before → {:.4} after ({} evaluations, {seconds:.1} s)",
        r.metric.name(),
        r.metric_before,
        r.metric_after,
        r.evaluations
    )?;
    writeln!(out, "transform written to {}", args.out.display())?;
    Ok(())
}
