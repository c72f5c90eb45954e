//! Pixel data decoding (all transfer syntaxes dicom-rs was built with) and the modality rescale.
//!
//! Values follow the DICOM pixel module, as pydicom does: stored samples are read in their
//! container (8, 16 or 32 bits), bits above BitsStored are cleared (unsigned) or filled with the
//! sign bit (signed), then `value = stored × RescaleSlope + RescaleIntercept`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{PixelDecoder, PixelRepresentation};

use super::header::DicomHeader;
use super::{j2k, jpeg12, rle};
use crate::error::{error_chain, panic_message, Problem};

/// Stored (un-rescaled) sample values of every frame, frame-major, then row, then column.
#[derive(Debug, Clone)]
pub struct StoredFrames {
    /// Rows per frame.
    pub rows: usize,
    /// Columns per frame.
    pub columns: usize,
    /// Frames.
    pub frames: usize,
    /// `frames × rows × columns` values, column fastest.
    pub values: Vec<f64>,
}

/// Decodes the stored sample values of a monochrome image.
pub fn decode_stored(
    obj: &DefaultDicomObject,
    header: &DicomHeader,
) -> Result<StoredFrames, Problem> {
    check_supported(header)?;
    if obj.get(tags::PIXEL_DATA).is_none() {
        if obj.get(tags::FLOAT_PIXEL_DATA).is_some()
            || obj.get(tags::DOUBLE_FLOAT_PIXEL_DATA).is_some()
        {
            return Err(Problem::Unsupported("float pixel data".into()));
        }
        return Err(Problem::MissingAttribute("PixelData"));
    }
    let ts = header.transfer_syntax.clone();
    if ts == rle::RLE_LOSSLESS {
        return decode_rle(obj, header);
    }
    let bits_stored = super::attrs::Attrs::new(obj).int(tags::BITS_STORED, "BitsStored")?;
    if jpeg12::applies(&ts, bits_stored) {
        let rows = header.rows.ok_or(Problem::MissingAttribute("Rows"))? as usize;
        let columns = header.columns.ok_or(Problem::MissingAttribute("Columns"))? as usize;
        let frames = header.number_of_frames as usize;
        let values = jpeg12::decode(obj, &ts, rows, columns, frames)?;
        return Ok(StoredFrames {
            rows,
            columns,
            frames,
            values,
        });
    }
    if j2k::applies(&ts) {
        if let Some(dicom_core::value::Value::PixelSequence(seq)) =
            obj.get(tags::PIXEL_DATA).map(|e| e.value())
        {
            let rows = header.rows.ok_or(Problem::MissingAttribute("Rows"))?;
            let columns = header.columns.ok_or(Problem::MissingAttribute("Columns"))?;
            j2k::check_fragments(
                seq.fragments().iter().map(|f| f.as_slice()),
                &ts,
                rows,
                columns,
                header.samples_per_pixel,
            )?;
        }
    }
    // Codecs are third-party code fed with untrusted bytes: a panic there becomes an error for
    // this file instead of taking the whole study down.
    let decoded = catch_unwind(AssertUnwindSafe(|| obj.decode_pixel_data()))
        .map_err(|payload| Problem::DecoderPanicked {
            transfer_syntax: ts.clone(),
            detail: panic_message(payload.as_ref()),
        })?
        .map_err(|e| Problem::Decode {
            transfer_syntax: ts.clone(),
            detail: error_chain(&e),
        })?;

    let rows = decoded.rows() as usize;
    let columns = decoded.columns() as usize;
    let frames = decoded.number_of_frames() as usize;
    let bits_allocated = decoded.bits_allocated();
    let bits_stored = decoded.bits_stored();
    let signed = decoded.pixel_representation() == PixelRepresentation::Signed;
    let count = rows * columns * frames;
    let data = decoded.data();
    let bytes_per_sample = match bits_allocated {
        1 | 8 => 1,
        16 => 2,
        32 => 4,
        other => return Err(Problem::Unsupported(format!("BitsAllocated {other}"))),
    };
    if bits_stored == 0 || bits_stored > 8 * bytes_per_sample as u16 && bits_allocated != 1 {
        return Err(Problem::InvalidAttribute {
            attribute: "BitsStored",
            detail: format!("{bits_stored} with BitsAllocated {bits_allocated}"),
        });
    }
    let needed = count * bytes_per_sample;
    if data.len() < needed {
        return Err(Problem::Decode {
            transfer_syntax: ts,
            detail: format!(
                "pixel data too short: {} bytes for {frames} frame(s) of {rows}×{columns} ({needed} needed)",
                data.len()
            ),
        });
    }
    // Explicit VR big endian: dicom-rs turns OW words into native 16-bit words, which is right
    // for 16-bit samples only. 32-bit samples then have their halves swapped; 8-bit samples in OW
    // have each byte pair swapped.
    let swapped;
    let data = if header.transfer_syntax == EXPLICIT_VR_BIG_ENDIAN && pixel_vr_is_ow(obj) {
        swapped = match bytes_per_sample {
            4 => data[..needed]
                .chunks_exact(4)
                .flat_map(|c| [c[2], c[3], c[0], c[1]])
                .collect::<Vec<u8>>(),
            1 if bits_allocated == 8 => {
                let mut v = data.to_vec();
                v.chunks_exact_mut(2).for_each(|c| c.swap(0, 1));
                v
            }
            _ => data.to_vec(),
        };
        &swapped[..]
    } else {
        data
    };
    let values = if bits_allocated == 1 {
        // dicom-rs expands single-bit samples to 0/255.
        data[..count].iter().map(|&b| f64::from(b / 255)).collect()
    } else {
        let container_bits = 8 * bytes_per_sample as u32;
        let shift = container_bits - u32::from(bits_stored);
        samples(&data[..needed], bytes_per_sample, shift, signed)
    };
    Ok(StoredFrames {
        rows,
        columns,
        frames,
        values,
    })
}

const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

fn pixel_vr_is_ow(obj: &DefaultDicomObject) -> bool {
    obj.get(tags::PIXEL_DATA)
        .is_some_and(|e| e.vr() == dicom_core::VR::OW)
}

/// Reads little-endian samples, clearing (unsigned) or sign-filling (signed) the unused high bits.
fn samples(data: &[u8], bytes: usize, shift: u32, signed: bool) -> Vec<f64> {
    match (bytes, signed) {
        (1, false) => data
            .iter()
            .map(|&b| f64::from((b << shift) >> shift))
            .collect(),
        (1, true) => data
            .iter()
            .map(|&b| f64::from(((b as i8) << shift) >> shift))
            .collect(),
        (2, false) => data
            .chunks_exact(2)
            .map(|c| f64::from((u16::from_le_bytes([c[0], c[1]]) << shift) >> shift))
            .collect(),
        (2, true) => data
            .chunks_exact(2)
            .map(|c| f64::from((i16::from_le_bytes([c[0], c[1]]) << shift) >> shift))
            .collect(),
        (4, false) => data
            .chunks_exact(4)
            .map(|c| f64::from((u32::from_le_bytes([c[0], c[1], c[2], c[3]]) << shift) >> shift))
            .collect(),
        _ => data
            .chunks_exact(4)
            .map(|c| f64::from((i32::from_le_bytes([c[0], c[1], c[2], c[3]]) << shift) >> shift))
            .collect(),
    }
}

/// Rejects images whose samples are not one grey value per pixel.
fn check_supported(header: &DicomHeader) -> Result<(), Problem> {
    if header.samples_per_pixel != 1 {
        return Err(Problem::Unsupported(format!(
            "{} samples per pixel (colour image); only greyscale volumes are read",
            header.samples_per_pixel
        )));
    }
    match header.photometric_interpretation.as_deref() {
        Some("MONOCHROME1") | Some("MONOCHROME2") | None => {}
        Some(other) => {
            return Err(Problem::Unsupported(format!(
                "PhotometricInterpretation {other}; only MONOCHROME1/2 are read"
            )))
        }
    }
    if header.has_modality_lut_sequence {
        return Err(Problem::Unsupported("Modality LUT Sequence".into()));
    }
    Ok(())
}

/// `(slope, intercept)` of the modality rescale, identity when absent.
pub fn rescale(header: &DicomHeader) -> (f64, f64) {
    match (header.rescale_slope, header.rescale_intercept) {
        (Some(s), Some(i)) => (s, i),
        (Some(s), None) => (s, 0.0),
        (None, Some(i)) => (1.0, i),
        (None, None) => (1.0, 0.0),
    }
}

/// Physical values: stored × slope + intercept, then DoseGridScaling for RT Dose.
pub fn physical_values(stored: &[f64], header: &DicomHeader) -> Vec<f64> {
    let (slope, intercept) = rescale(header);
    let dose_scale = header.dose_grid_scaling.unwrap_or(1.0);
    stored
        .iter()
        .map(|&v| (v * slope + intercept) * dose_scale)
        .collect()
}

/// RLE Lossless through [`rle`], for every BitsAllocated (dicom-rs stops at 16).
fn decode_rle(obj: &DefaultDicomObject, header: &DicomHeader) -> Result<StoredFrames, Problem> {
    let a = super::attrs::Attrs::new(obj);
    let bits_allocated = a
        .int(tags::BITS_ALLOCATED, "BitsAllocated")?
        .ok_or(Problem::MissingAttribute("BitsAllocated"))?;
    let bits_stored = a
        .int(tags::BITS_STORED, "BitsStored")?
        .unwrap_or(bits_allocated);
    let signed = a
        .int(tags::PIXEL_REPRESENTATION, "PixelRepresentation")?
        .unwrap_or(0)
        == 1;
    let bytes_per_sample = match bits_allocated {
        8 => 1,
        16 => 2,
        32 => 4,
        other => {
            return Err(Problem::Unsupported(format!(
                "RLE with BitsAllocated {other}"
            )))
        }
    };
    if !(1..=bits_allocated).contains(&bits_stored) {
        return Err(Problem::InvalidAttribute {
            attribute: "BitsStored",
            detail: format!("{bits_stored} with BitsAllocated {bits_allocated}"),
        });
    }
    let rows = header.rows.ok_or(Problem::MissingAttribute("Rows"))? as usize;
    let columns = header.columns.ok_or(Problem::MissingAttribute("Columns"))? as usize;
    let frames = header.number_of_frames as usize;
    let Some(dicom_core::value::Value::PixelSequence(seq)) =
        obj.get(tags::PIXEL_DATA).map(|e| e.value())
    else {
        return Err(Problem::Decode {
            transfer_syntax: rle::RLE_LOSSLESS.into(),
            detail: "RLE pixel data is not encapsulated".into(),
        });
    };
    let fragments = seq.fragments();
    if fragments.len() != frames {
        return Err(Problem::Decode {
            transfer_syntax: rle::RLE_LOSSLESS.into(),
            detail: format!("{} RLE fragments for {frames} frames", fragments.len()),
        });
    }
    let pixels = rows * columns;
    let mut bytes = Vec::with_capacity(pixels * frames * bytes_per_sample);
    for fragment in fragments.iter() {
        rle::decode_frame(fragment, pixels, bytes_per_sample, &mut bytes)?;
    }
    let shift = 8 * bytes_per_sample as u32 - bits_stored as u32;
    Ok(StoredFrames {
        rows,
        columns,
        frames,
        values: samples(&bytes, bytes_per_sample, shift, signed),
    })
}
