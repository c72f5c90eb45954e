"""Dice ceiling of a model that predicts on the card's grid (3 mm), measured on phantom truth.

An oracle "model" that knows the truth exactly, but only on the model grid: each organ's one-hot truth is
averaged onto the 3 mm grid (the fraction of each 3 mm voxel the organ fills, i.e. the best probability a
3 mm model can output), then mapped back to the native CT grid exactly as `evaluate.py` maps a real model's
probabilities (trilinear, argmax). Its Dice against the native-grid truth is the most any model on this grid
can reach, whatever its training. On the `small` preset (CT already at 3 mm) the ceiling is 1 by construction;
on the `clinical` preset (0.9 x 0.9 x 2.5 mm) it is what the grid alone costs.

Usage: resolution_ceiling.py --phantoms DIR [--preset clinical] [--spacing-mm 3.0] [--out ceiling.json]
DIR holds <preset>_<seed>/truth/tp1_labels.nii.gz (as make_eval_phantoms.sh writes).
"""
import argparse
import glob
import json
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

sys.path.insert(0, os.path.dirname(__file__))
from common import ORGANS, NUM_CLASSES, argmax_channels, dice, grid_shape, phantom_labels_to_model, resample, to_lps_zyx  # noqa: E402


def fraction_on_grid(mask, shape):
    """Fraction of each coarse voxel covered by `mask` (area-weighted average, edges aligned).
    The fine voxels are split by linear interpolation onto a grid that is an integer multiple of `shape`
    (4 sub-samples per coarse voxel and axis), then block-averaged."""
    sub = 4
    fine_shape = tuple(s * sub for s in shape)
    zoom = [f / n for f, n in zip(fine_shape, mask.shape)]
    up = ndimage.zoom(mask.astype(np.float32), zoom, order=0, grid_mode=True, mode="nearest")
    return up.reshape(shape[0], sub, shape[1], sub, shape[2], sub).mean(axis=(1, 3, 5))


def ceiling(lab_path, spacing_mm):
    li = nib.load(lab_path)
    truth, sp, _ = to_lps_zyx(li, np.asarray(li.dataobj).astype(np.int32))
    truth = phantom_labels_to_model(truth)
    shape = grid_shape(truth.shape, sp, spacing_mm)
    channels = (resample(fraction_on_grid(truth == c, shape), [spacing_mm] * 3, 1.0, order=1, out_shape=truth.shape)
                for c in range(NUM_CLASSES))
    pred = argmax_channels(channels, truth.shape)
    return {o: dice(pred == k, truth == k) for k, o in enumerate(ORGANS, 1) if (truth == k).any()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phantoms", required=True)
    ap.add_argument("--preset", default="clinical")
    ap.add_argument("--spacing-mm", type=float, default=3.0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    rows = {}
    for d in sorted(glob.glob(os.path.join(a.phantoms, f"{a.preset}_*"))):
        lab = os.path.join(d, "truth", "tp1_labels.nii.gz")
        if not os.path.exists(lab):
            continue
        rows[os.path.basename(d)] = r = ceiling(lab, a.spacing_mm)
        print(f"{os.path.basename(d)}: " + " ".join(f"{o} {v:.4f}" for o, v in r.items()), flush=True)
    if not rows:
        raise SystemExit(f"no {a.preset}_* phantoms with truth/tp1_labels.nii.gz in {a.phantoms}")
    summary = {o: {"mean": round(float(np.mean([r[o] for r in rows.values() if o in r])), 4),
                   "min": round(float(np.min([r[o] for r in rows.values() if o in r])), 4)} for o in ORGANS}
    print("ceiling mean / min: " + ", ".join(f"{o} {s['mean']:.4f} / {s['min']:.4f}" for o, s in summary.items()))
    if a.out:
        json.dump({"spacing_mm": a.spacing_mm, "preset": a.preset, "cases": rows, "summary": summary},
                  open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
