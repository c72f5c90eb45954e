//! Axial CT slices with organ contours and the dose map blended on top, as PNG (for the report).

use mrt_core::resample::sample_linear;
use mrt_core::Volume;

/// Organ contour colours (RGB) by label value 1..=4.
pub const ORGAN_RGB: [[u8; 3]; 4] = [
    [230, 159, 0],
    [86, 180, 233],
    [0, 158, 115],
    [204, 121, 167],
];

fn heat(t: f32) -> [f32; 3] {
    // Black-body-like ramp: dark red → red → yellow → white.
    let t = t.clamp(0.0, 1.0);
    [
        (3.0 * t).min(1.0),
        (3.0 * t - 1.0).clamp(0.0, 1.0),
        (3.0 * t - 2.0).clamp(0.0, 1.0),
    ]
}

/// PNG of slice `k` of `ct`: grey window −160..240 HU, contours of `labels`, and `dose`
/// (any grid, sampled at the slice's world points) above 10 % of `dose_max` blended in.
pub fn slice_png(
    ct: &Volume<f32>,
    labels: Option<&Volume<u8>>,
    dose: Option<(&Volume<f32>, f32)>,
    k: usize,
) -> Vec<u8> {
    let g = ct.grid();
    let [nx, ny, _] = g.dims;
    let scale = (384 / nx.max(ny)).max(1);
    let (w, h) = (nx * scale, ny * scale);
    let mut rgb = vec![0u8; w * h * 3];
    let dose_map = dose.map(|(d, max)| {
        (
            d,
            d.grid()
                .world_to_index_map()
                .compose(&g.index_to_world_map()),
            max,
        )
    });
    for j in 0..ny {
        for i in 0..nx {
            let hu = *ct.at(i, j, k);
            let grey = ((hu + 160.0) / 400.0).clamp(0.0, 1.0);
            let mut c = [grey; 3];
            if let Some((d, map, max)) = &dose_map {
                if let Some(v) = sample_linear(d, map.apply([i as f64, j as f64, k as f64])) {
                    let t = v / max.max(1e-12);
                    if t > 0.1 {
                        let hc = heat(t);
                        for a in 0..3 {
                            c[a] = 0.45 * c[a] + 0.55 * hc[a];
                        }
                    }
                }
            }
            let mut px = c.map(|v| (v * 255.0) as u8);
            if let Some(l) = labels {
                let here = *l.at(i, j, k);
                let edge = here != 0
                    && [
                        (i.wrapping_sub(1), j),
                        (i + 1, j),
                        (i, j.wrapping_sub(1)),
                        (i, j + 1),
                    ]
                    .iter()
                    .any(|&(a, b)| a >= nx || b >= ny || *l.at(a, b, k) != here);
                if edge && (1..=4).contains(&here) {
                    px = ORGAN_RGB[here as usize - 1];
                }
            }
            for dy in 0..scale {
                for dx in 0..scale {
                    // Rows top to bottom = anterior to posterior (+y in LPS); columns as stored.
                    let o = ((j * scale + dy) * w + i * scale + dx) * 3;
                    rgb[o..o + 3].copy_from_slice(&px);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        if let Ok(mut writer) = enc.write_header() {
            let _ = writer.write_image_data(&rgb);
        }
    }
    out
}
