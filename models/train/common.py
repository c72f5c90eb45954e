"""Shared constants and geometry helpers for the mrtdose CT organ model.

Model grid convention (the model-card contract, see models/README.md):
  array index order [D, H, W]
  W increases toward patient Left       (+x in DICOM LPS)
  H increases toward patient Posterior  (+y in DICOM LPS)
  D increases toward patient Superior   (+z in DICOM LPS)
  isotropic spacing SPACING_MM.
In nibabel terms: reorient the image to axis codes ('L','P','S') and transpose the array to (z, y, x).
"""
import numpy as np
import nibabel as nib
from nibabel.orientations import io_orientation, axcodes2ornt, ornt_transform, apply_orientation
from scipy import ndimage

SPACING_MM = 3.0
CLIP_HU = (-250.0, 350.0)
SUBTRACT = 50.0
DIVIDE = 150.0
PATCH = (80, 80, 80)
SIZE_MULTIPLE = 16
LABELS = {0: "background", 1: "liver", 2: "kidney_left", 3: "kidney_right", 4: "spleen"}
ORGANS = ["liver", "kidney_left", "kidney_right", "spleen"]
NUM_CLASSES = 5
# The card's intensity_refinement block (train/refine.py; chosen on the calibration phantoms, models/README.md)
INTENSITY_REFINEMENT = {"beta": 1.0, "band_voxels": 2, "confidence": 0.95, "context_voxels": 5, "bin_hu": 10.0,
                        "min_voxels": 50}


def normalise(hu):
    return ((np.clip(hu, CLIP_HU[0], CLIP_HU[1]) - SUBTRACT) / DIVIDE).astype(np.float32)


def to_lps_zyx(img, data=None):
    """Return (array [z,y,x] in LPS axis directions, spacing (sz,sy,sx), lps affine info).

    The array is only permuted/flipped (no resampling); obliquity is ignored (closest axes)."""
    if data is None:
        data = np.asanyarray(img.dataobj)
    ornt = io_orientation(img.affine)
    tr = ornt_transform(ornt, axcodes2ornt(("L", "P", "S")))
    arr = apply_orientation(data, tr)
    zooms = np.array(img.header.get_zooms()[:3], dtype=float)
    # spacing along new axes
    sp = np.empty(3)
    for old_ax in range(3):
        new_ax = int(tr[old_ax, 0])
        sp[new_ax] = zooms[old_ax]
    arr = np.ascontiguousarray(arr.transpose(2, 1, 0))
    return arr, (sp[2], sp[1], sp[0]), tr


def from_lps_zyx(arr_zyx, img):
    """Inverse of to_lps_zyx: bring a [z,y,x] LPS array back to the image's native voxel order."""
    ornt = io_orientation(img.affine)
    tr = ornt_transform(axcodes2ornt(("L", "P", "S")), ornt)
    return apply_orientation(arr_zyx.transpose(2, 1, 0), tr)


def grid_shape(shape, spacing, target=SPACING_MM):
    return tuple(max(1, int(round(n * s / target))) for n, s in zip(shape, spacing))


def resample(arr, spacing, target=SPACING_MM, order=1, out_shape=None, antialias=False):
    """Resample so that the physical extent is kept (voxel edges aligned, grid_mode)."""
    if out_shape is None:
        out_shape = grid_shape(arr.shape, spacing, target)
    zoom = [o / n for o, n in zip(out_shape, arr.shape)]
    if all(abs(z - 1) < 1e-6 for z in zoom):
        return arr.copy()
    a = arr
    if antialias and order > 0:
        sig = [max(0.0, (1 / z - 1) / 2.0) if z < 1 else 0 for z in zoom]
        if any(s > 0 for s in sig):
            a = ndimage.gaussian_filter(a.astype(np.float32), sig)
    return ndimage.zoom(a, zoom, order=order, grid_mode=True, mode="nearest")


def resample_labels(lab, spacing, target=SPACING_MM, out_shape=None, n=NUM_CLASSES):
    """Label resampling by linear interpolation of one-hot channels (less jagged than nearest)."""
    if out_shape is None:
        out_shape = grid_shape(lab.shape, spacing, target)
    if tuple(out_shape) == tuple(lab.shape):
        return lab.copy()
    channels = (resample((lab == c).astype(np.float32), spacing, target, order=1, out_shape=out_shape) for c in range(n))
    return argmax_channels(channels, out_shape)


def argmax_channels(channels, shape):
    """Label of the largest channel per voxel; `channels` is an iterable of arrays of `shape`, consumed one at a
    time (so a generator keeps one resampled channel in memory). Ties go to the lower label (strict `>`)."""
    best = None
    out = np.zeros(shape, np.uint8)
    for c, p in enumerate(channels):
        if best is None:
            best = p
        else:
            m = p > best
            out[m] = c
            best = np.maximum(best, p)
    return out


def phantom_labels_to_model(lab):
    """Phantom truth labels: 1 liver, 2 kidney_left, 3 kidney_right, 4 spleen, 5 liver_tumour -> background."""
    out = lab.astype(np.uint8).copy()
    out[out > 4] = 0
    return out


TOTALSEG_TO_MODEL = {44: 1, 42: 2, 43: 3, 84: 4}
AMOS_TO_MODEL = {6: 1, 3: 2, 2: 3, 1: 4}


def pad_to_multiple(x, m=SIZE_MULTIPLE, value=0.0):
    """Pad last three dims (end side) to a multiple of m; returns padded array and original shape."""
    shp = x.shape[-3:]
    pads = [(0, (-s) % m) for s in shp]
    pads = [(0, 0)] * (x.ndim - 3) + pads
    return np.pad(x, pads, constant_values=value), shp


def gaussian_importance(patch, sigma_scale=0.125):
    z = [np.arange(p) - (p - 1) / 2 for p in patch]
    g = np.ones(patch, np.float32)
    for ax, (zz, p) in enumerate(zip(z, patch)):
        sh = [1, 1, 1]
        sh[ax] = p
        g = g * np.exp(-0.5 * (zz / (p * sigma_scale)) ** 2).reshape(sh)
    g = g / g.max()
    return np.maximum(g, 1e-3).astype(np.float32)


def window_starts(n, p, overlap):
    if n <= p:
        return [0]
    step = max(1, int(round(p * (1 - overlap))))
    starts = list(range(0, n - p + 1, step))
    if starts[-1] != n - p:
        starts.append(n - p)
    return starts


def sliding_window(predict, vol, patch=PATCH, overlap=0.5, num_classes=NUM_CLASSES):
    """vol: normalised [D,H,W] float32 whose dims are multiples of SIZE_MULTIPLE (pad with the
    normalised value of air first). predict(x[1,1,d,h,w]) -> logits [1,C,d,h,w].
    Returns softmax probabilities [C,D,H,W] averaged with Gaussian weights."""
    D, H, W = vol.shape
    p = [min(a, b) for a, b in zip(patch, vol.shape)]
    g = gaussian_importance(p)
    acc = np.zeros((num_classes, D, H, W), np.float32)
    wsum = np.zeros((D, H, W), np.float32)
    for z in window_starts(D, p[0], overlap):
        for y in window_starts(H, p[1], overlap):
            for x in window_starts(W, p[2], overlap):
                sl = (slice(z, z + p[0]), slice(y, y + p[1]), slice(x, x + p[2]))
                logits = predict(vol[sl][None, None])[0]
                e = np.exp(logits - logits.max(0, keepdims=True))
                prob = e / e.sum(0, keepdims=True)
                acc[(slice(None),) + sl] += prob * g
                wsum[sl] += g
    return acc / wsum[None]


def dice(a, b):
    s = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / s) if s > 0 else 1.0
