//! `mrtdose phantom` and `mrtdose phantom-trial`: wire the CLI to mrt-phantom.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use mrt_phantom::{write_phantom, AnatomyRevision, Format, Options, Preset};

use crate::cli::{PhantomArgs, PhantomCommon, PhantomFormat, PhantomPreset, PhantomTrialArgs};

fn options(seed: u64, c: &PhantomCommon) -> anyhow::Result<(Options, Format)> {
    anyhow::ensure!(
        !c.timepoints_h.is_empty(),
        "--timepoints-h: at least one time point"
    );
    anyhow::ensure!(
        c.timepoints_h.iter().all(|&h| h.is_finite() && h > 0.0),
        "--timepoints-h: hours after injection must be > 0"
    );
    anyhow::ensure!(
        c.timepoints_h.windows(2).all(|w| w[0] < w[1]),
        "--timepoints-h: time points must increase"
    );
    anyhow::ensure!(
        c.psf_fwhm_mm.is_finite() && c.psf_fwhm_mm >= 0.0,
        "--psf-fwhm-mm must be ≥ 0"
    );
    anyhow::ensure!(
        (0.0..=50.0).contains(&c.misalign_mm),
        "--misalign-mm must be within 0..50"
    );
    let mut o = Options::new(seed);
    o.preset = match c.preset {
        PhantomPreset::Small => Preset::Small,
        PhantomPreset::Clinical => Preset::Clinical,
    };
    o.timepoints_h = c.timepoints_h.clone();
    o.psf_fwhm_mm = c.psf_fwhm_mm;
    o.misalign_mm = c.misalign_mm;
    o.tumours = !c.no_tumours;
    o.anatomy_revision = match c.anatomy_revision {
        1 => AnatomyRevision::R1,
        _ => AnatomyRevision::R2,
    };
    let format = match c.format {
        PhantomFormat::Dicom => Format::Dicom,
        PhantomFormat::Nifti => Format::Nifti,
    };
    Ok((o, format))
}

fn summary(
    out: &mut dyn Write,
    dir: &std::path::Path,
    truth: &mrt_phantom::truth::Truth,
    secs: f64,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{} ({:.1} s): {} time points, {} , injected {:.0} MBq",
        dir.display(),
        secs,
        truth.timepoints.len(),
        truth.phantom,
        truth.injected_activity_mbq
    )?;
    for (name, o) in &truth.organs {
        writeln!(
            out,
            "  {name:<13} {:7.1} g  TIA {:9.1} MBq·h  dose {:6.2} Gy",
            o.mass_g, o.tia_mbq_h, o.absorbed_dose_gy
        )?;
    }
    Ok(())
}

/// `mrtdose phantom`.
pub fn run(args: &PhantomArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let (o, format) = options(args.seed, &args.common)?;
    let t = Instant::now();
    let truth = write_phantom(&args.out, o, format)
        .with_context(|| format!("writing phantom to {}", args.out.display()))?;
    summary(out, &args.out, &truth, t.elapsed().as_secs_f64())
}

/// `mrtdose phantom-trial`.
pub fn run_trial(args: &PhantomTrialArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    anyhow::ensure!(args.n > 0, "--n must be at least 1");
    for i in 0..args.n {
        let seed = args.seed + i as u64;
        let (o, format) = options(seed, &args.common)?;
        let dir = args.out.join(format!("patient-{:03}", i + 1));
        let t = Instant::now();
        let truth = write_phantom(&dir, o, format)
            .with_context(|| format!("writing phantom to {}", dir.display()))?;
        summary(out, &dir, &truth, t.elapsed().as_secs_f64())?;
    }
    Ok(())
}
