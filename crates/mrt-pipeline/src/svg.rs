//! Minimal SVG line charts for the HTML report (axes, ticks, legend, lines and points), written
//! by hand so the report needs no font files or plotting runtime.

use std::fmt::Write;

/// One series.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// CSS colour.
    pub colour: &'static str,
    /// Points drawn as a line.
    pub line: Vec<(f64, f64)>,
    /// Points drawn as dots.
    pub dots: Vec<(f64, f64)>,
}

/// Round tick step for a span.
fn tick_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm < 1.5 {
        1.0
    } else if norm < 3.5 {
        2.0
    } else if norm < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A chart with both axes starting at zero.
pub fn chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h) = (520.0, 300.0);
    let (left, right, top, bottom) = (64.0, 140.0, 28.0, 44.0);
    let all = series.iter().flat_map(|s| s.line.iter().chain(&s.dots));
    let (xmax, ymax) = all
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .fold((0.0f64, 0.0f64), |(a, b), (x, y)| (a.max(*x), b.max(*y)));
    let (xmax, ymax) = (
        if xmax > 0.0 { xmax } else { 1.0 },
        if ymax > 0.0 { ymax * 1.05 } else { 1.0 },
    );
    let (xs, ys) = (tick_step(xmax), tick_step(ymax));
    let (xmax, ymax) = ((xmax / xs).ceil() * xs, (ymax / ys).ceil() * ys);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let px = |x: f64| left + x / xmax * pw;
    let py = |y: f64| top + ph - y / ymax * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="16" font-size="13" font-weight="bold">{}</text>"#,
        left,
        escape(title)
    );
    let mut x = 0.0;
    while x <= xmax + 1e-9 {
        let _ = write!(
            s,
            r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#ddd"/><text x="{0}" y="{3}" text-anchor="middle">{4}</text>"##,
            px(x),
            top,
            top + ph,
            top + ph + 14.0,
            fmt_tick(x)
        );
        x += xs;
    }
    let mut y = 0.0;
    while y <= ymax + 1e-9 {
        let _ = write!(
            s,
            r##"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#ddd"/><text x="{3}" y="{4}" text-anchor="end">{5}</text>"##,
            left,
            py(y),
            left + pw,
            left - 4.0,
            py(y) + 4.0,
            fmt_tick(y)
        );
        y += ys;
    }
    let _ = write!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        h - 8.0,
        escape(x_label)
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"#,
        top + ph / 2.0,
        top + ph / 2.0,
        escape(y_label)
    );
    for (n, se) in series.iter().enumerate() {
        if se.line.len() > 1 {
            let pts: Vec<String> = se
                .line
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y.min(ymax))))
                .collect();
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.8" points="{}"/>"#,
                se.colour,
                pts.join(" ")
            );
        }
        for &(x, y) in se
            .dots
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
        {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"/>"#,
                px(x),
                py(y),
                se.colour
            );
        }
        let ly = top + 12.0 + 16.0 * n as f64;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="3" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            left + pw + 10.0,
            ly - 4.0,
            se.colour,
            left + pw + 26.0,
            ly,
            escape(&se.name)
        );
    }
    s.push_str("</svg>");
    s
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 || (v.fract()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_well_formed_svg_with_every_series() {
        let s = chart(
            "t",
            "h",
            "MBq",
            &[Series {
                name: "liver <1>".into(),
                colour: "red",
                line: vec![(0.0, 1.0), (10.0, 2.0)],
                dots: vec![(5.0, 1.5)],
            }],
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("liver &lt;1&gt;") && s.contains("<polyline") && s.contains("<circle"));
        assert_eq!(tick_step(168.0), 20.0);
        assert_eq!(tick_step(1000.0), 200.0);
    }
}
