//! `report.html`: one self-contained page (inline SVG plots, PNG overlays as data URIs) with
//! every section a physicist checks: QA, organ table, time-activity curves with their fits, DVH,
//! CT slices with contours and dose, time points, provenance.

use std::fmt::Write;
use std::path::Path;

use base64::Engine;
use mrt_dosimetry::tac::Model;
use mrt_io::nifti_io::read_nifti;
use serde_json::Value;

use crate::overlay::{slice_png, ORGAN_RGB};
use crate::stages::quantify::ORGANS;
use crate::stages::report::Report;
use crate::svg::{chart, Series};

const COLOURS: [&str; 4] = ["#e69f00", "#56b4e9", "#009e73", "#cc79a7"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn num(v: Option<f64>, prec: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "–".into(), |x| format!("{x:.prec$}"))
}

/// The fitted curve of an organ, from the engine's fit report.
fn fit_curve(fit: &Value, t_max: f64) -> Vec<(f64, f64)> {
    let Some(model) = fit
        .get("model")
        .and_then(|m| serde_json::from_value::<Model>(m.clone()).ok())
    else {
        return Vec::new();
    };
    let Some(params) = fit.get("params").and_then(Value::as_object) else {
        return Vec::new();
    };
    let p: Option<Vec<f64>> = model
        .parameter_names()
        .iter()
        .map(|n| params.get(*n).and_then(Value::as_f64))
        .collect();
    let Some(p) = p else { return Vec::new() };
    (0..=120)
        .map(|i| {
            let t = t_max * f64::from(i) / 120.0;
            (t, model.activity(&p, t))
        })
        .filter(|(_, a)| a.is_finite())
        .collect()
}

/// Renders the page; `work` holds the stage artifacts (for the overlays).
pub fn render_html(r: &Report, work: &Path) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mrtdose report {id}</title>
<style>body{{font-family:sans-serif;margin:24px;max-width:1200px;color:#222}}table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}.flag{{background:#fff3cd;border:1px solid #e0c060;padding:8px;margin:8px 0}}.ok{{background:#e6f4ea;border:1px solid #8c8;padding:8px}}.grid{{display:flex;flex-wrap:wrap;gap:12px}}figure{{margin:0}}figcaption{{font-size:12px;color:#555}}</style></head><body>"#,
        id = esc(&r.study_id)
    );
    let _ = write!(h, "<h1>mrtdose dose report</h1><p>Study <b>{}</b> · {} · injected activity {} MBq · reference phantom {} · time points used: {}</p>",
        esc(&r.study_id), esc(&r.radionuclide), num(r.injected_activity_mbq, 0), esc(r.phantom.as_deref().unwrap_or("–")),
        r.times_h.iter().map(|t| format!("{t:.1} h")).collect::<Vec<_>>().join(", "));
    // QA.
    let _ = write!(h, "<h2 id=\"qa\">Quality assurance</h2>");
    if r.qa.needs_review {
        let _ = write!(h, "<div class=\"flag\"><b>Needs review</b><ul>");
        for f in &r.qa.flags {
            let _ = write!(
                h,
                "<li><code>{}</code> {}</li>",
                esc(&f.code),
                esc(&f.message)
            );
        }
        h.push_str("</ul></div>");
    } else {
        h.push_str("<div class=\"ok\">No QA flag raised.</div>");
    }
    if !r.not_computed.is_empty() {
        h.push_str("<p><b>Not computed</b></p><ul>");
        for n in &r.not_computed {
            let _ = write!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>");
    }
    if !r.warnings.is_empty() {
        h.push_str("<p><b>Warnings</b></p><ul>");
        for n in &r.warnings {
            let _ = write!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>");
    }
    // Organ table.
    let _ = write!(
        h,
        "<h2 id=\"organs\">Organs</h2><table><tr><th>organ</th><th>mass g</th><th>volume mL</th>"
    );
    for t in &r.times_h {
        let _ = write!(h, "<th>A({t:.0} h) MBq</th>");
    }
    h.push_str("<th>fit model</th><th>parameters</th><th>TIA MBq·h</th><th>dose Gy</th><th>± %</th><th>Gy/GBq</th><th>BED Gy</th><th>DVH mean / D2 / D98 Gy</th></tr>");
    for (name, o) in &r.organs {
        let vols: Vec<f64> = o.volume_ml.iter().flatten().copied().collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            esc(name),
            num(o.mass_g, 0),
            if vols.is_empty() {
                "–".into()
            } else {
                format!("{:.0}", vols.iter().sum::<f64>() / vols.len() as f64)
            }
        );
        for a in &o.activity_mbq {
            let _ = write!(h, "<td>{}</td>", num(*a, 1));
        }
        let model = o
            .fit
            .as_ref()
            .and_then(|f| f.get("model"))
            .and_then(Value::as_str)
            .unwrap_or("–");
        let params = o
            .fit
            .as_ref()
            .and_then(|f| f.get("params"))
            .and_then(Value::as_object)
            .map(|p| {
                p.iter()
                    .map(|(k, v)| {
                        format!(
                            "{k}={}",
                            v.as_f64().map_or("?".into(), |x| format!("{x:.4}"))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let dvh = o
            .dvh
            .as_ref()
            .map(|d| {
                format!(
                    "{} / {} / {}",
                    num(d.get("mean_Gy").and_then(Value::as_f64), 2),
                    num(d.get("D2_Gy").and_then(Value::as_f64), 2),
                    num(d.get("D98_Gy").and_then(Value::as_f64), 2)
                )
            })
            .unwrap_or_else(|| "–".into());
        let _ = write!(h, "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(model), esc(&params), num(o.tia_mbq_h, 0), num(o.absorbed_dose_gy, 2), num(o.uncertainty_percent, 1),
            num(o.absorbed_dose_gy_per_gbq, 3), num(o.bed_gy, 2), dvh);
    }
    h.push_str("</table>");
    // TACs.
    let _ = write!(
        h,
        "<h2 id=\"tacs\">Time-activity curves</h2><div class=\"grid\">"
    );
    let t_max = r.times_h.iter().copied().fold(0.0, f64::max) * 1.15;
    for (n, (name, o)) in r.organs.iter().enumerate() {
        let dots: Vec<(f64, f64)> = r
            .times_h
            .iter()
            .zip(&o.activity_mbq)
            .filter_map(|(t, a)| a.map(|a| (*t, a)))
            .collect();
        let line = o
            .fit
            .as_ref()
            .map(|f| fit_curve(f, t_max.max(1.0)))
            .unwrap_or_default();
        let model = o
            .fit
            .as_ref()
            .and_then(|f| f.get("model"))
            .and_then(Value::as_str)
            .unwrap_or("no fit");
        h.push_str(&chart(
            &format!("{name}: {model}"),
            "hours after injection",
            "activity (MBq)",
            &[Series {
                name: name.clone(),
                colour: COLOURS[n % 4],
                line,
                dots,
            }],
        ));
    }
    h.push_str("</div>");
    // DVH.
    let _ = write!(h, "<h2 id=\"dvh\">Dose-volume histograms</h2>");
    let dvh_series: Vec<Series> = r
        .organs
        .iter()
        .enumerate()
        .filter_map(|(n, (name, o))| {
            let cum = o.dvh.as_ref()?.get("cumulative")?.as_array()?;
            let line = cum
                .iter()
                .filter_map(|p| Some((p.get(0)?.as_f64()?, 100.0 * p.get(1)?.as_f64()?)))
                .collect();
            Some(Series {
                name: name.clone(),
                colour: COLOURS[n % 4],
                line,
                dots: Vec::new(),
            })
        })
        .collect();
    if dvh_series.is_empty() {
        h.push_str("<p>No voxel dose map.</p>");
    } else {
        h.push_str(&chart(
            "Cumulative DVH (voxel dose map)",
            "dose (Gy)",
            "volume (%)",
            &dvh_series,
        ));
    }
    // Overlays.
    let _ = write!(
        h,
        "<h2 id=\"overlays\">CT with organ contours and dose</h2>"
    );
    h.push_str(&overlays(r, work));
    // Time points.
    let _ = write!(h, "<h2 id=\"timepoints\">Time points</h2><table><tr><th>#</th><th>h after injection</th><th>used</th><th>SPECT/CT correction mm</th><th>alignment R² before → after</th><th>CT registration NCC before → after</th><th>problems</th></tr>");
    for t in &r.timepoints {
        let a = t.alignment.as_ref();
        let g = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_f64);
        let reg = t.registration.as_ref();
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} → {}</td><td>{} → {}</td><td>{}</td></tr>",
            t.index, num(t.hours_post_injection, 1), if t.used { "yes" } else { "no" }, num(g(a, "correction_mm"), 1),
            num(g(a, "r2_before"), 3), num(g(a, "r2_after"), 3), num(g(reg, "metric_before"), 3), num(g(reg, "metric_after"), 3),
            esc(&t.problems.join("; ")));
    }
    h.push_str("</table>");
    let _ = write!(
        h,
        "<h2 id=\"provenance\">Provenance</h2><pre>{}</pre>",
        esc(&serde_json::to_string_pretty(&r.provenance).unwrap_or_default())
    );
    h.push_str("</body></html>\n");
    h
}

fn overlays(r: &Report, work: &Path) -> String {
    let reference = r.timepoints.iter().find(|t| t.used).map(|t| t.index);
    let Some(index) = reference else {
        return "<p>No usable time point.</p>".into();
    };
    let Ok(ct) = read_nifti(&work.join(format!("ingest/tp{index}_ct.nii.gz"))) else {
        return "<p>Reference CT not available.</p>".into();
    };
    let ct = ct.volume;
    let labels = read_nifti(&work.join(format!("segment/labels_tp{index}.nii.gz")))
        .ok()
        .map(|l| l.volume.map(|&v| v.round().clamp(0.0, 255.0) as u8));
    let dose = read_nifti(&work.join("dose/dose_Gy.nii.gz"))
        .ok()
        .map(|d| d.volume);
    let dose_max = dose.as_ref().map(|d| {
        let mut v: Vec<f32> = d.data().iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f32::total_cmp);
        v.get(v.len().saturating_sub(1 + v.len() / 1000))
            .copied()
            .unwrap_or(1.0)
    });
    let nz = ct.grid().dims[2];
    let mut slices: Vec<(String, usize)> = Vec::new();
    if let Some(l) = &labels {
        for (n, name) in ORGANS.iter().enumerate() {
            let label = n as u8 + 1;
            let ks: Vec<usize> = l
                .data()
                .iter()
                .enumerate()
                .filter(|(_, &v)| v == label)
                .map(|(o, _)| o / (ct.grid().dims[0] * ct.grid().dims[1]))
                .collect();
            if !ks.is_empty() {
                slices.push((name.to_string(), ks[ks.len() / 2]));
            }
        }
    }
    if slices.is_empty() {
        slices.push(("middle slice".into(), nz / 2));
    }
    let mut h = String::from(
        "<p>Axial slices of the reference CT (patient right on the image left); contours: ",
    );
    for (n, name) in ORGANS.iter().enumerate() {
        let [r_, g, b] = ORGAN_RGB[n];
        let _ = write!(
            h,
            "<span style=\"color:rgb({r_},{g},{b})\">■ {name}</span> "
        );
    }
    let _ = write!(
        h,
        "; dose above 10 % of {} Gy in heat colours.</p><div class=\"grid\">",
        num(dose_max.map(f64::from), 1)
    );
    for (name, k) in slices {
        let png = slice_png(&ct, labels.as_ref(), dose.as_ref().zip(dose_max), k);
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        let _ = write!(h, "<figure><img alt=\"slice {k}\" src=\"data:image/png;base64,{b64}\"><figcaption>slice {k}: through the {name}</figcaption></figure>");
    }
    h.push_str("</div>");
    h
}
