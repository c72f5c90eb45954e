//! `mrtdose dosimetry`: image-free mode, wiring files to mrt-dosimetry.

use std::io::Write;

use anyhow::Context;
use mrt_dosimetry::TacsInput;

use crate::cli::DosimetryArgs;
use crate::fmt_opt as fmt;

/// Runs the command.
pub fn run(args: &DosimetryArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("reading {}", args.input.display()))?;
    let input = TacsInput::parse(&text).with_context(|| format!("{}", args.input.display()))?;
    let result = mrt_dosimetry::run(&input);
    let json = serde_json::to_string_pretty(&result)?;
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&args.out, json + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    writeln!(
        out,
        "{:<13} {:>18} {:>11} {:>9} {:>8} {:>7} {:>8}",
        "organ", "model", "TIA MBq·h", "dose Gy", "Gy/GBq", "± %", "BED Gy"
    )?;
    for (name, r) in &result.organs {
        let model = r.fit.as_ref().map(|f| f.model.as_str()).unwrap_or("-");
        writeln!(
            out,
            "{name:<13} {model:>18} {:>11} {:>9} {:>8} {:>7} {:>8}",
            fmt(r.tia_mbq_h, 1),
            fmt(r.absorbed_dose_gy, 3),
            fmt(r.absorbed_dose_gy_per_gbq, 3),
            fmt(r.uncertainty_percent, 1),
            fmt(r.bed_gy, 3)
        )?;
        if let Some(e) = &r.error {
            writeln!(out, "  error: {e}")?;
        }
    }
    writeln!(out, "written: {}", args.out.display())?;
    Ok(())
}
