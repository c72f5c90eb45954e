"""Intensity refinement of the network's probabilities near organ boundaries (model card
`intensity_refinement`), as the Rust side does it (crates/mrt-segment/src/refine.rs).

At 3 mm the network places boundaries to within a voxel or two; the CT's own intensities there often say
on which side a voxel lies. Per class c, the CT numbers of the voxels the network is sure of (p_c >
`confidence`, organs one voxel inside their argmax mask, everything within `context_voxels` of an organ)
give a histogram density L_c (bins of `bin_hu` over the card's clip window, +0.5 per bin, Gaussian-smoothed
with sigma one bin, mirrored at the ends, a uniform density where fewer than `min_voxels` are sure). In the
band within `band_voxels` (city-block) of any organ's argmax boundary, p_c becomes p_c * L_c(HU)^beta,
renormalised over the classes; elsewhere the probabilities are unchanged. Run on the padded model grid.
"""
import numpy as np
from scipy import ndimage


def _density(values, lo, n_bins, bin_hu):
    idx = np.clip(((values - lo) // bin_hu).astype(np.int64), 0, n_bins - 1)
    h = np.bincount(idx, minlength=n_bins).astype(np.float64) + 0.5
    h = ndimage.gaussian_filter1d(h, 1.0, mode="reflect", truncate=4.0)
    return h / h.sum() / bin_hu


def refine_with_intensity(prob, x, card):
    """prob: [C, D, H, W] probabilities on the model grid; x: the normalised network input of that grid."""
    s = card["intensity_refinement"]
    beta, band, conf = float(s["beta"]), int(s["band_voxels"]), float(s["confidence"])
    context, bin_hu, min_voxels = int(s["context_voxels"]), float(s["bin_hu"]), int(s["min_voxels"])
    it = card["intensity"]
    lo, hi = it["clip_hu"]
    hu = x.astype(np.float32) * np.float32(it["divide"]) + np.float32(it["subtract"])
    n_bins = int(np.ceil((hi - lo) / bin_hu))
    idx = np.clip(((hu - lo) // bin_hu).astype(np.int64), 0, n_bins - 1)
    lab = prob.argmax(0)
    organ = lab > 0
    zone = np.zeros(organ.shape, bool)
    for k in range(1, prob.shape[0]):
        m = lab == k
        if m.any():
            zone |= ndimage.binary_dilation(m, iterations=band) & ~ndimage.binary_erosion(m, iterations=band)
    if not zone.any():
        return prob
    near = ndimage.binary_dilation(organ, iterations=context)
    out = prob.astype(np.float32).copy()
    for c in range(prob.shape[0]):
        sure = (prob[c] > conf) & near
        if c > 0:
            sure &= ndimage.binary_erosion(lab == c, iterations=1)
        dens = _density(hu[sure], lo, n_bins, bin_hu) if sure.sum() >= min_voxels else np.full(n_bins, 1.0 / (n_bins * bin_hu))
        out[c][zone] = prob[c][zone] * (dens[idx[zone]] ** beta).astype(np.float32)
    out[:, zone] /= out[:, zone].sum(0, keepdims=True)
    return out
