//! RLE Lossless (DICOM PS3.5 Annex G) decoding for any BitsAllocated.
//!
//! dicom-rs decodes RLE only for 8 and 16 bits; RT Dose grids are 32-bit. The format is small:
//! per frame a 64-byte header (segment count and offsets), then one PackBits segment per byte
//! plane, most significant byte first.

use crate::error::Problem;

fn rle_error(detail: impl Into<String>) -> Problem {
    Problem::Decode {
        transfer_syntax: RLE_LOSSLESS.into(),
        detail: detail.into(),
    }
}

/// The RLE Lossless transfer syntax UID.
pub const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// Decodes one frame of `pixels` single-sample values of `bytes_per_sample` bytes into
/// little-endian samples appended to `out`.
pub fn decode_frame(
    fragment: &[u8],
    pixels: usize,
    bytes_per_sample: usize,
    out: &mut Vec<u8>,
) -> Result<(), Problem> {
    if fragment.len() < 64 {
        return Err(rle_error(format!(
            "RLE header truncated ({} bytes)",
            fragment.len()
        )));
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            fragment[4 * i],
            fragment[4 * i + 1],
            fragment[4 * i + 2],
            fragment[4 * i + 3],
        ]) as usize
    };
    let segments = word(0);
    if segments != bytes_per_sample {
        return Err(rle_error(format!(
            "{segments} RLE segments for {bytes_per_sample}-byte samples"
        )));
    }
    let start = out.len();
    out.resize(start + pixels * bytes_per_sample, 0);
    let mut plane = Vec::with_capacity(pixels);
    for s in 0..segments {
        let begin = word(1 + s);
        let end = if s + 1 < segments {
            word(2 + s)
        } else {
            fragment.len()
        };
        if begin < 64 || begin > end || end > fragment.len() {
            return Err(rle_error(format!(
                "RLE segment {s} offsets {begin}..{end} out of range"
            )));
        }
        plane.clear();
        unpack_bits(&fragment[begin..end], pixels, &mut plane)?;
        // Segment 0 holds the most significant byte; little-endian output puts it last.
        let byte_index = bytes_per_sample - 1 - s;
        for (p, &b) in plane.iter().enumerate() {
            out[start + p * bytes_per_sample + byte_index] = b;
        }
    }
    Ok(())
}

/// PackBits: a control byte `n` copies `n + 1` literal bytes (0..=127) or repeats the next byte
/// `1 - n` times (-127..=-1); -128 is a no-op. Decoding stops once `expected` bytes are out.
fn unpack_bits(src: &[u8], expected: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
    let mut i = 0;
    while out.len() < expected && i < src.len() {
        let n = src[i] as i8;
        i += 1;
        if n >= 0 {
            let count = n as usize + 1;
            let lit = src
                .get(i..i + count)
                .ok_or_else(|| rle_error("RLE literal run past end of segment"))?;
            out.extend_from_slice(lit);
            i += count;
        } else if n != -128 {
            let count = 1 - n as isize;
            let b = *src
                .get(i)
                .ok_or_else(|| rle_error("RLE replicate run past end of segment"))?;
            out.extend(std::iter::repeat_n(b, count as usize));
            i += 1;
        }
    }
    if out.len() < expected {
        return Err(rle_error(format!(
            "RLE segment decodes to {} bytes, {expected} expected",
            out.len()
        )));
    }
    out.truncate(expected);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_example_from_the_standard() {
        // Apple's PackBits example (the scheme DICOM RLE uses).
        let packed = [
            0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7,
            0xAA,
        ];
        let want = [
            0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x22,
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
        ];
        let mut out = Vec::new();
        unpack_bits(&packed, want.len(), &mut out).expect("valid");
        assert_eq!(out, want);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut out = Vec::new();
        assert!(unpack_bits(&[0x05, 1, 2], 6, &mut out).is_err());
        assert!(decode_frame(&[0u8; 10], 4, 2, &mut Vec::new()).is_err());
    }
}
