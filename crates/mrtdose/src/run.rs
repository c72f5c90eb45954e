//! `mrtdose run`: the embedded pipeline with progress bars and a one-screen summary.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mrt_pipeline::stages::report::Report;
use mrt_pipeline::{run_embedded, SiteConfig, Stage, StageContext};

use crate::cli::RunArgs;
use crate::fmt_opt as f;
use crate::segment::load;

/// Runs the command.
pub fn run(args: &RunArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = match &args.site_config {
        Some(p) => SiteConfig::load(p)?,
        None => SiteConfig::default(),
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let segmenter = load(&args.model)?;
    let multi = MultiProgress::with_draw_target(if args.quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let bars: Arc<Mutex<HashMap<Stage, ProgressBar>>> = Arc::default();
    let style = ProgressStyle::with_template("{prefix:>9} {spinner} {pos} done  {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let tick = {
        let (bars, multi) = (bars.clone(), multi.clone());
        move |stage: Stage| {
            if let Ok(mut b) = bars.lock() {
                let bar = b.entry(stage).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new_spinner().with_style(style.clone()));
                    bar.set_prefix(stage.name());
                    bar
                });
                bar.inc(1);
            }
        }
    };
    let ctx = StageContext {
        config,
        segmenter: Some(Arc::new(segmenter)),
        tick: Arc::new(tick),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (study, report) = runtime
        .block_on(run_embedded(&args.study, &args.out, ctx))
        .with_context(|| format!("running the pipeline on {}", args.study.display()))?;
    if let Ok(b) = bars.lock() {
        for bar in b.values() {
            bar.finish();
        }
    }
    summary(
        &study,
        &report,
        &args.out,
        started.elapsed().as_secs_f64(),
        out,
    )?;
    Ok(())
}

fn summary(
    study: &str,
    r: &Report,
    dir: &std::path::Path,
    seconds: f64,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "study {study}: {} time points used ({} h), injected {} MBq, phantom {}",
        r.times_h.len(),
        r.times_h
            .iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        f(r.injected_activity_mbq, 0),
        r.phantom.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "{:<13} {:>8} {:>16} {:>11} {:>8} {:>6} {:>7}",
        "organ", "mass g", "fit", "TIA MBq·h", "dose Gy", "± %", "BED Gy"
    )?;
    for (name, o) in &r.organs {
        let model = o
            .fit
            .as_ref()
            .and_then(|f| f.get("model"))
            .and_then(|m| m.as_str())
            .unwrap_or("-");
        writeln!(
            out,
            "{name:<13} {:>8} {model:>16} {:>11} {:>8} {:>6} {:>7}",
            f(o.mass_g, 0),
            f(o.tia_mbq_h, 0),
            f(o.absorbed_dose_gy, 2),
            f(o.uncertainty_percent, 1),
            f(o.bed_gy, 2)
        )?;
    }
    if r.qa.needs_review {
        writeln!(out, "QA: needs review")?;
        for fl in &r.qa.flags {
            writeln!(out, "  [{}] {}", fl.code, fl.message)?;
        }
    } else {
        writeln!(out, "QA: no flag raised")?;
    }
    for n in &r.not_computed {
        writeln!(out, "not computed: {n}")?;
    }
    writeln!(
        out,
        "wrote {}/report.json, report.html, labels_tpN.nii.gz, dose_Gy.nii.gz in {seconds:.1} s",
        dir.display()
    )?;
    Ok(())
}
