"""Intensity refinement of the network's probabilities near organ boundaries (model card
`intensity_refinement`), as the Rust side does it (crates/mrt-segment/src/refine.rs).

At 3 mm the network places boundaries to within a voxel or two; the CT's own intensities there often say
on which side a voxel lies. Per class c, the CT numbers of the voxels the network is sure of (p_c >
`confidence`, organs one voxel inside their argmax mask, everything within `context_voxels` of an organ)
give a histogram density L_c (bins of `bin_hu` over the card's clip window, +0.5 per bin, Gaussian-smoothed
with sigma one bin, mirrored at the ends, a uniform density where fewer than `min_voxels` are sure). In the
band within `band_voxels` (city-block) of any organ's argmax boundary, p_c becomes p_c * L_c(HU)^beta,
renormalised over the classes; elsewhere the probabilities are unchanged. Run on the padded model grid.

If the block has `organ_contact` (crates/mrt-segment/src/organ_contact.rs), a second stage follows: where two
organ masks lie within its `band_voxels` of each other, the organ classes (never background) are re-weighted
against each other by a histogram likelihood of the CT number averaged over the organ voxels around each voxel
(Gaussian weights of `smoothing_sigma_voxels`; with `own_organ_average`, over the voxel's own organ only), the
organs' total probability kept. With `min_separation` (the gate) a voxel's own organ a is weighed only against the
organs b within the band of it whose sure voxels' averaged CT numbers separate from a's:
|mu_a - mu_b| / sqrt((var_a + var_b) / 2) >= min_separation.
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
    if s.get("organ_contact"):
        out = refine_organ_contacts(out, hu, s["organ_contact"], lo, hi)
    return out


def _blur(a, sigma):
    """Gaussian of sigma voxels truncated at 4 sigma (at least one tap), edge values repeating, as mrt_core::filter."""
    r = max(1, int(np.ceil(4.0 * sigma)))
    t = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    t /= t.sum()
    for ax in range(3):
        a = ndimage.convolve1d(a, t, axis=ax, mode="nearest")
    return a


def refine_organ_contacts(prob, hu, s, lo, hi):
    """The second stage on refined probabilities `prob` [C, D, H, W] and the CT numbers `hu` of that grid."""
    sigma, band, beta = float(s["smoothing_sigma_voxels"]), int(s["band_voxels"]), float(s["beta"])
    conf, erosion, bin_hu, min_voxels = float(s["confidence"]), int(s["erosion_voxels"]), float(s["bin_hu"]), int(s["min_voxels"])
    lab = prob.argmax(0)
    present = [c for c in range(1, prob.shape[0]) if (lab == c).any()]
    if len(present) < 2:
        return prob
    near = {c: ndimage.distance_transform_cdt(lab != c, metric="taxicab") <= band for c in present}
    zone = (lab > 0) & (sum(m.astype(np.int32) for m in near.values()) >= 2)
    if not zone.any():
        return prob
    own = bool(s.get("own_organ_average", False))
    if sigma > 0 and own:
        hs = hu.astype(np.float32).copy()
        for c in present:
            m = lab == c
            num, w = _blur(hu.astype(np.float64) * m, sigma), _blur(m.astype(np.float64), sigma)
            hs[m] = (num[m] / np.maximum(w[m], 1e-6)).astype(np.float32)
    elif sigma > 0:
        organ = (lab > 0).astype(np.float64)
        num, w = _blur(hu.astype(np.float64) * organ, sigma), _blur(organ, sigma)
        hs = np.where(w > 1e-6, num / np.maximum(w, 1e-6), hu).astype(np.float32)
    else:
        hs = hu
    n_bins = int(np.ceil((hi - lo) / bin_hu))
    idx = np.clip(((hs - lo) // bin_hu).astype(np.int64), 0, n_bins - 1)
    out = prob.copy()
    C = prob.shape[0]
    dens, stats = {}, {}
    for c in range(1, C):
        inside = ndimage.binary_erosion(lab == c, iterations=erosion) if erosion > 0 else lab == c
        sure = (prob[c] > conf) & inside
        if sure.sum() >= max(min_voxels, 1):
            dens[c] = _density(hs[sure], lo, n_bins, bin_hu)
            v = hs[sure].astype(np.float64)
            stats[c] = (float(v.mean()), float(v.var()))
        else:
            dens[c] = np.full(n_bins, 1.0 / (n_bins * bin_hu))
    gate = s.get("min_separation")
    if gate is None:
        # every organ weighed against every other
        groups = {a: list(range(1, C)) for a in present}
    else:
        def separated(a, b):
            if a not in stats or b not in stats:
                return False
            (ma, va), (mb, vb) = stats[a], stats[b]
            return abs(ma - mb) >= float(gate) * np.sqrt(max((va + vb) / 2.0, 1e-12))
        groups = {a: [a] + [b for b in present if b != a and separated(a, b)] for a in present}
    for a in present:
        if len(groups[a]) < 2:
            continue
        z = zone & (lab == a)
        if gate is not None:
            # the voxel's own organ and the separated organs whose masks lie within the band of it
            z &= np.any([near[b] for b in groups[a][1:]], axis=0)
        if not z.any():
            continue
        part = np.array([np.ones(int(z.sum()), bool) if (c == a or gate is None) else near[c][z] for c in groups[a]])
        before = prob[groups[a]][:, z]
        weighed = before * np.array([dens[c][idx[z]] ** beta for c in groups[a]], np.float32)
        weighed = np.where(part, weighed, before)
        mass, total = (before * part).sum(0), (weighed * part).sum(0)
        scale = np.where(total > 0, mass / np.maximum(total, 1e-30), 1.0)
        weighed = np.where(part, weighed * scale, before)
        for row, c in enumerate(groups[a]):
            out[c][z] = weighed[row]
    return out
