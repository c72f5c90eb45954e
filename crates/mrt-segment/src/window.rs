//! Sliding-window inference with Gaussian importance weighting, independent of the runtime:
//! the caller supplies `infer(batch) -> logits` for a batch of equal-sized patches.

use crate::error::SegmentError;

/// Patch origins along one axis of length `n` for patch length `p` and `overlap`, as the model
/// card's contract says: every `round(p · (1 − overlap))` voxels from 0, and a last window aligned
/// with the end of the axis.
pub fn positions(n: usize, p: usize, overlap: f64) -> Vec<usize> {
    if n <= p {
        return vec![0];
    }
    let stride = ((p as f64 * (1.0 - overlap)).round() as usize).max(1);
    let last = n - p;
    let mut out: Vec<usize> = (0..=last).step_by(stride).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

/// Gaussian importance map over a patch `[pw, ph, pd]` (σ = size/8, as nnU-Net), W fastest.
pub fn importance(patch: [usize; 3]) -> Vec<f32> {
    let axis = |n: usize| -> Vec<f64> {
        let sigma = n as f64 / 8.0;
        let c = (n as f64 - 1.0) / 2.0;
        (0..n)
            .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * sigma * sigma)).exp())
            .collect()
    };
    let (wx, wy, wz) = (axis(patch[0]), axis(patch[1]), axis(patch[2]));
    let mut out = Vec::with_capacity(patch.iter().product());
    for z in &wz {
        for y in &wy {
            for x in &wx {
                out.push(((x * y * z) as f32).max(1e-3));
            }
        }
    }
    out
}

/// Softmax over `channels` for every voxel of a `[C, N]` block, in place.
pub fn softmax(block: &mut [f32], channels: usize) {
    let n = block.len() / channels;
    for v in 0..n {
        let max = (0..channels)
            .map(|c| block[c * n + v])
            .fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for c in 0..channels {
            let e = (block[c * n + v] - max).exp();
            block[c * n + v] = e;
            sum += e;
        }
        for c in 0..channels {
            block[c * n + v] /= sum;
        }
    }
}

/// The model call: `n` patches in, their outputs out.
pub type Infer<'a> = dyn FnMut(&[f32], usize) -> Result<Vec<f32>, SegmentError> + 'a;

/// How to slide the window.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Volume dimensions `[nx, ny, nz]` (x fastest).
    pub dims: [usize; 3],
    /// Patch `[D, H, W]` as in the model card.
    pub patch_dhw: [usize; 3],
    /// Overlap between neighbouring patches.
    pub overlap: f64,
    /// Output channels.
    pub channels: usize,
    /// Patches per model call.
    pub batch: usize,
    /// True when the model returns logits (softmax applied here).
    pub logits: bool,
}

/// Runs `infer` over `input` patch by patch, `plan.batch` at a time, and returns per-channel
/// probabilities `[C, N]` averaged with Gaussian weights. `infer(data, n)` gets `n` patches
/// `[n, 1, pd, ph, pw]` and returns `[n, C, pd, ph, pw]`.
pub fn sliding_window(
    input: &[f32],
    plan: &Plan,
    infer: &mut Infer<'_>,
) -> Result<Vec<f32>, SegmentError> {
    let Plan {
        dims,
        patch_dhw,
        overlap,
        channels,
        batch,
        logits,
    } = *plan;
    let [nx, ny, nz] = dims;
    // Patch size in x, y, z order, never larger than the volume.
    let p = [
        patch_dhw[2].min(nx),
        patch_dhw[1].min(ny),
        patch_dhw[0].min(nz),
    ];
    let weight = importance(p);
    let plen = p[0] * p[1] * p[2];
    let n = nx * ny * nz;
    let mut acc = vec![0.0f32; channels * n];
    let mut wsum = vec![0.0f32; n];
    let mut origins = Vec::new();
    for &z in &positions(nz, p[2], overlap) {
        for &y in &positions(ny, p[1], overlap) {
            for &x in &positions(nx, p[0], overlap) {
                origins.push([x, y, z]);
            }
        }
    }
    for chunk in origins.chunks(batch.max(1)) {
        let mut data = Vec::with_capacity(chunk.len() * plen);
        for o in chunk {
            for z in 0..p[2] {
                for y in 0..p[1] {
                    let start = o[0] + nx * (o[1] + y + ny * (o[2] + z));
                    data.extend_from_slice(&input[start..start + p[0]]);
                }
            }
        }
        let mut out = infer(&data, chunk.len())?;
        if out.len() != chunk.len() * channels * plen {
            return Err(SegmentError::Runtime(format!(
                "model returned {} values for {} patches of {:?} with {channels} channels",
                out.len(),
                chunk.len(),
                p
            )));
        }
        for (b, o) in chunk.iter().enumerate() {
            let block = &mut out[b * channels * plen..(b + 1) * channels * plen];
            if logits {
                softmax(block, channels);
            }
            let mut v = 0;
            for z in 0..p[2] {
                for y in 0..p[1] {
                    let row = o[0] + nx * (o[1] + y + ny * (o[2] + z));
                    for x in 0..p[0] {
                        let w = weight[v];
                        for c in 0..channels {
                            acc[c * n + row + x] += w * block[c * plen + v];
                        }
                        wsum[row + x] += w;
                        v += 1;
                    }
                }
            }
        }
    }
    for c in 0..channels {
        for (a, w) in acc[c * n..(c + 1) * n].iter_mut().zip(&wsum) {
            *a /= w.max(1e-12);
        }
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_axis_and_end_at_the_border() {
        assert_eq!(positions(64, 96, 0.5), vec![0]);
        let p = positions(200, 96, 0.5);
        assert_eq!((p[0], *p.last().expect("some")), (0, 104));
        assert!(p.windows(2).all(|w| w[1] - w[0] <= 48));
    }

    #[test]
    fn windows_step_from_the_start_as_the_model_card_contract_says() {
        // models/README.md: step round(p · (1 − overlap)) from 0, last window at the end
        // (Python: list(range(0, n - p + 1, step)) + [n - p] when missing).
        assert_eq!(positions(112, 80, 0.5), vec![0, 32]);
        assert_eq!(positions(128, 80, 0.5), vec![0, 40, 48]);
        assert_eq!(positions(128, 80, 0.75), vec![0, 20, 40, 48]);
        assert_eq!(positions(160, 80, 0.5), vec![0, 40, 80]);
    }

    #[test]
    fn an_identity_model_is_reproduced_through_overlapping_windows() {
        // A "model" whose probabilities are a function of the voxel's own input: the stitched
        // result must equal that function everywhere, whatever the window layout.
        let dims = [40, 33, 27];
        let input: Vec<f32> = (0..40 * 33 * 27)
            .map(|i| ((i * 7) % 13) as f32 / 13.0)
            .collect();
        let mut infer = |data: &[f32], n: usize| -> Result<Vec<f32>, SegmentError> {
            let plen = data.len() / n;
            let mut out = Vec::new();
            for b in 0..n {
                let patch = &data[b * plen..(b + 1) * plen];
                out.extend(patch.iter().copied());
                out.extend(patch.iter().map(|v| 1.0 - v));
            }
            Ok(out)
        };
        let plan = Plan {
            dims,
            patch_dhw: [16, 16, 16],
            overlap: 0.5,
            channels: 2,
            batch: 3,
            logits: false,
        };
        let probs = sliding_window(&input, &plan, &mut infer).expect("runs");
        let n = input.len();
        for (v, &x) in input.iter().enumerate() {
            assert!((probs[v] - x).abs() < 1e-5 && (probs[n + v] - (1.0 - x)).abs() < 1e-5);
        }
    }
}
