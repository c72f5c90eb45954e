//! 12-bit lossy JPEG (DICOM JPEG Extended, process 2/4), which dicom-rs's JPEG decoder
//! (8-bit DCT only) cannot decode. Decoded with `libjpeg-turbo-rs`, a pure-Rust port of
//! libjpeg-turbo. Lossy JPEG decoders may legitimately differ by one unit per sample (IDCT
//! rounding; ISO/IEC 10918-2 accuracy); tests compare with pydicom within that bound.

use std::panic::{catch_unwind, AssertUnwindSafe};

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;

use crate::error::{panic_message, Problem};

/// JPEG Baseline (process 1).
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
/// JPEG Extended (process 2 & 4).
pub const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";

fn decode_err(ts: &str, detail: impl Into<String>) -> Problem {
    Problem::Decode {
        transfer_syntax: ts.into(),
        detail: detail.into(),
    }
}

/// True when this file needs the 12-bit path: a lossy JPEG syntax with more than 8 bits stored.
pub fn applies(transfer_syntax: &str, bits_stored: Option<i64>) -> bool {
    (transfer_syntax == JPEG_EXTENDED || transfer_syntax == JPEG_BASELINE)
        && bits_stored.is_some_and(|b| b > 8)
}

/// One JPEG codestream per frame: one fragment per frame, or all fragments of a single frame.
fn frame_streams(
    obj: &DefaultDicomObject,
    frames: usize,
    ts: &str,
) -> Result<Vec<Vec<u8>>, Problem> {
    let Some(dicom_core::value::Value::PixelSequence(seq)) =
        obj.get(tags::PIXEL_DATA).map(|e| e.value())
    else {
        return Err(decode_err(ts, "JPEG pixel data is not encapsulated"));
    };
    let fragments = seq.fragments();
    if frames == 1 {
        Ok(vec![fragments.iter().flatten().copied().collect()])
    } else if fragments.len() == frames {
        Ok(fragments.iter().map(|f| f.to_vec()).collect())
    } else {
        Err(decode_err(
            ts,
            format!("{} JPEG fragments for {frames} frames", fragments.len()),
        ))
    }
}

/// Checks the marker segments up to the first scan: a sequential DCT frame (SOF0/SOF1) must have
/// scans with Ss = 0, Se = 63, Ah = Al = 0 (ISO/IEC 10918-1 B.2.3). Non-conformant streams are
/// refused, as the reference libjpeg does, rather than decoded leniently into unverifiable values.
fn check_sequential(stream: &[u8], ts: &str) -> Result<(), Problem> {
    if stream.len() < 4 || stream[0] != 0xFF || stream[1] != 0xD8 {
        return Err(decode_err(ts, "JPEG stream does not start with SOI"));
    }
    let mut i = 2;
    let mut sequential = false;
    while i + 4 <= stream.len() {
        if stream[i] != 0xFF {
            return Err(decode_err(ts, format!("JPEG marker expected at byte {i}")));
        }
        let marker = stream[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        let len = usize::from(u16::from_be_bytes([stream[i + 2], stream[i + 3]]));
        let body = stream
            .get(i + 4..i + 2 + len)
            .ok_or_else(|| decode_err(ts, "JPEG marker segment runs past the end"))?;
        match marker {
            0xC0 | 0xC1 => sequential = true,
            0xDA => {
                let ns = usize::from(*body.first().ok_or_else(|| decode_err(ts, "empty SOS"))?);
                let tail = body
                    .get(1 + 2 * ns..1 + 2 * ns + 3)
                    .ok_or_else(|| decode_err(ts, "truncated SOS"))?;
                let (ss, se, ahal) = (tail[0], tail[1], tail[2]);
                if sequential && (ss != 0 || se != 63 || ahal != 0) {
                    return Err(decode_err(
                        ts,
                        format!(
                            "non-conformant sequential JPEG: scan has Ss={ss}, Se={se}, Ah/Al={ahal:#04x} \
                             (must be 0, 63, 0); refused as the reference libjpeg does"
                        ),
                    ));
                }
                return Ok(());
            }
            _ => {}
        }
        i += 2 + len;
    }
    Err(decode_err(ts, "JPEG stream has no scan (SOS)"))
}

/// Decodes every frame to 12-bit samples (as f64), frame-major, row-major.
pub fn decode(
    obj: &DefaultDicomObject,
    ts: &str,
    rows: usize,
    columns: usize,
    frames: usize,
) -> Result<Vec<f64>, Problem> {
    let mut values = Vec::with_capacity(rows * columns * frames);
    for (f, stream) in frame_streams(obj, frames, ts)?.iter().enumerate() {
        check_sequential(stream, ts)?;
        let image = catch_unwind(AssertUnwindSafe(|| {
            libjpeg_turbo_rs::decompress_12bit(stream)
        }))
        .map_err(|p| Problem::DecoderPanicked {
            transfer_syntax: ts.into(),
            detail: panic_message(p.as_ref()),
        })?
        .map_err(|e| decode_err(ts, format!("frame {f}: {e}")))?;
        if image.num_components != 1 || image.width != columns || image.height != rows {
            return Err(decode_err(
                ts,
                format!(
                    "frame {f}: JPEG is {}×{} with {} component(s), header says {columns}×{rows}×1",
                    image.width, image.height, image.num_components
                ),
            ));
        }
        values.extend(image.data.iter().map(|&v| f64::from(v)));
    }
    Ok(values)
}
