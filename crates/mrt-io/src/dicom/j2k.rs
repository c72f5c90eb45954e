//! JPEG 2000 codestreams checked against the DICOM header before a third-party decoder sees them.
//!
//! dicom-rs' JPEG 2000 adapter writes every decoded sample into a buffer sized from Rows, Columns
//! and SamplesPerPixel, and indexes past it (a panic) when the codestream's own image is larger:
//! one flipped bit in the SIZ marker's height was enough (`tests/bad_input.rs`). The SIZ marker
//! segment (ITU-T T.800 §A.5.1) states the image size and component count, so a mismatch is
//! found here and reported as a decode error naming both, before decoding.

use crate::error::Problem;

/// JPEG 2000 transfer syntaxes: lossless, lossy, and the three High-Throughput ones.
const JPEG2000_SYNTAXES: [&str; 5] = [
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
];

/// Whether `transfer_syntax` is a JPEG 2000 one.
pub fn applies(transfer_syntax: &str) -> bool {
    JPEG2000_SYNTAXES.contains(&transfer_syntax)
}

/// What a codestream's SIZ marker segment says of its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Siz {
    /// Xsiz − XOsiz.
    pub width: u32,
    /// Ysiz − YOsiz.
    pub height: u32,
    /// Csiz.
    pub components: u16,
}

/// The SIZ of the codestream that `fragment` begins, bare (SOC first) or in a JP2 file; `None`
/// for a fragment that begins none (a continuation) or whose SIZ is cut short.
pub fn siz(fragment: &[u8]) -> Option<Siz> {
    const SOC_SIZ: [u8; 4] = [0xFF, 0x4F, 0xFF, 0x51];
    const JP2_SIGNATURE: [u8; 12] = [0, 0, 0, 12, b'j', b'P', b' ', b' ', 13, 10, 0x87, 10];
    let at = if fragment.starts_with(&SOC_SIZ) {
        0
    } else if fragment.starts_with(&JP2_SIGNATURE) {
        fragment.windows(4).position(|w| w == SOC_SIZ)?
    } else {
        return None;
    };
    // SOC, SIZ marker, Lsiz, Rsiz, then Xsiz, Ysiz, XOsiz, YOsiz, 4 tile fields, Csiz.
    let s = fragment.get(at + 4..at + 42)?;
    let u32_at = |o: usize| u32::from_be_bytes([s[o], s[o + 1], s[o + 2], s[o + 3]]);
    let (x, y, xo, yo) = (u32_at(4), u32_at(8), u32_at(12), u32_at(16));
    Some(Siz {
        width: x.checked_sub(xo)?,
        height: y.checked_sub(yo)?,
        components: u16::from_be_bytes([s[36], s[37]]),
    })
}

/// Checks every codestream among `fragments` against the header's `rows`, `columns` and
/// `samples_per_pixel`; the error names the fragment and both sizes.
pub fn check_fragments<'a>(
    fragments: impl IntoIterator<Item = &'a [u8]>,
    transfer_syntax: &str,
    rows: u32,
    columns: u32,
    samples_per_pixel: u16,
) -> Result<(), Problem> {
    for (n, fragment) in fragments.into_iter().enumerate() {
        let Some(s) = siz(fragment) else {
            continue;
        };
        if (s.width, s.height, s.components) != (columns, rows, samples_per_pixel) {
            return Err(Problem::Decode {
                transfer_syntax: transfer_syntax.into(),
                detail: format!(
                    "JPEG 2000 codestream in fragment {} is {}×{} with {} component(s); the \
                     header says Columns {columns}, Rows {rows}, SamplesPerPixel \
                     {samples_per_pixel}",
                    n + 1,
                    s.width,
                    s.height,
                    s.components
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare codestream start: SOC, SIZ for a `w`×`h` image (offsets 0) of `c` components.
    fn codestream(w: u32, h: u32, c: u16) -> Vec<u8> {
        let mut v = vec![0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0];
        for x in [w, h, 0, 0, w, h, 0, 0] {
            v.extend(x.to_be_bytes());
        }
        v.extend(c.to_be_bytes());
        v.extend([15, 1, 1]);
        v
    }

    #[test]
    fn siz_is_read_from_a_bare_codestream_and_a_jp2_file() {
        let bare = codestream(64, 48, 1);
        let want = Siz {
            width: 64,
            height: 48,
            components: 1,
        };
        assert_eq!(siz(&bare), Some(want));
        let mut jp2 = vec![0, 0, 0, 12, b'j', b'P', b' ', b' ', 13, 10, 0x87, 10];
        jp2.extend([0, 0, 0, 20, b'f', b't', b'y', b'p']);
        jp2.extend(&bare);
        assert_eq!(siz(&jp2), Some(want));
        // A continuation fragment and a SIZ cut short.
        assert_eq!(siz(&[1, 2, 3, 4, 5]), None);
        assert_eq!(siz(&bare[..30]), None);
    }

    #[test]
    fn a_codestream_larger_than_the_header_is_refused_with_both_sizes() {
        let good = codestream(64, 64, 1);
        let tall = codestream(64, 320, 1);
        let ts = JPEG2000_SYNTAXES[0];
        assert!(check_fragments([&good[..], &[7u8; 9][..]], ts, 64, 64, 1).is_ok());
        let e = check_fragments([&good[..], &tall[..]], ts, 64, 64, 1).expect_err("taller");
        assert_eq!(e.code(), "decode");
        let text = e.to_string();
        assert!(
            text.contains("fragment 2 is 64×320") && text.contains("Rows 64"),
            "{text}"
        );
        let colour = codestream(64, 64, 3);
        assert!(check_fragments([&colour[..]], ts, 64, 64, 1).is_err());
    }
}
