#!/usr/bin/env python3
"""Acquisition stress test of a model card on a real CT: the same patient as another scanner,
protocol or calibration would have imaged it, segmented through `mrtdose segment` (the product
path: canonicalisation, grid shifts, refinement, clean-up) and scored against the real labels.

Each variant is derived from the CT with numpy alone (fixed seed), written as NIfTI, segmented,
and scored on its own grid against the truth brought onto that grid by a majority vote over the
CT voxels each new voxel averages (so the truth is not blurred by the coarser grid; a tie goes to
the lower label value, background first, which makes a coarse grid's organs a little small and its
Dice a little pessimistic). Variants:
  original             the CT as given
  flipped_storage      x and y storage order reversed, affine adjusted: the same voxels in world
                       space (a reader or model that ignores orientation fails here)
  thick_slices         three slices averaged into one (1.5 -> 4.5 mm along z), as a thick-slice
                       reconstruction of a SPECT/CT's low-dose CT
  coarse_in_plane      2 x 2 voxels averaged in plane (1.5 -> 3 mm)
  noise_white_25hu     white Gaussian noise, sigma 25 HU
  noise_correlated_40hu  Gaussian noise smoothed over ~1.5 voxels (a CT noise texture), sigma 40 HU
  low_dose_thick       thick_slices plus correlated noise sigma 40 HU
  hu_offset_plus30 / hu_offset_minus30   a calibration offset of +/-30 HU
  hu_scale_1.05        HU x 1.05 (water stays 0): a kernel/energy calibration difference

Usage: robustness.py --ct CT --labels LABELS [--map totalseg] --bin target/release/mrtdose
                     [--model DIR] --work DIR --out results.json
ORT_DYLIB_PATH must point at the ONNX Runtime library (scripts/setup-ort.sh).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ORGANS, TOTALSEG_TO_MODEL, dice  # noqa: E402

SEED = 20261207


def majority(labels, factors):
    """Labels on a grid coarsened by integer `factors` (x, y, z): per block, the most frequent
    label (ties to the lower value); trailing voxels that do not fill a block are dropped."""
    fx, fy, fz = factors
    nx, ny, nz = (s // f for s, f in zip(labels.shape, factors))
    blocks = labels[: nx * fx, : ny * fy, : nz * fz].reshape(nx, fx, ny, fy, nz, fz)
    blocks = blocks.transpose(0, 2, 4, 1, 3, 5).reshape(nx, ny, nz, fx * fy * fz)
    values = np.arange(int(labels.max()) + 1)
    counts = (blocks[..., None] == values).sum(axis=3)
    return counts.argmax(axis=-1).astype(np.uint8)


def average(ct, factors):
    fx, fy, fz = factors
    nx, ny, nz = (s // f for s, f in zip(ct.shape, factors))
    blocks = ct[: nx * fx, : ny * fy, : nz * fz].reshape(nx, fx, ny, fy, nz, fz)
    return blocks.mean(axis=(1, 3, 5))


def coarse_affine(affine, factors):
    """Affine of a grid whose voxel (0,0,0) averages voxels 0..f-1 of the original along each axis."""
    a = affine.copy()
    a[:3, :3] = affine[:3, :3] * np.array(factors, float)[None, :]
    a[:3, 3] = affine[:3, :3] @ ((np.array(factors, float) - 1) / 2) + affine[:3, 3]
    return a


def correlated_noise(rng, shape, sigma_hu, smooth_voxels=1.5):
    n = gaussian_filter(rng.standard_normal(shape), smooth_voxels)
    return n * (sigma_hu / n.std())


def variants(ct, truth, affine, rng):
    """(name, ct in HU, truth on the same grid, affine) for every variant, in a fixed order."""
    yield "original", ct, truth, affine
    flip = affine.copy()
    # Reversing x and y storage: voxel i now sits where voxel n-1-i was.
    for axis in (0, 1):
        n = ct.shape[axis]
        flip[:3, 3] = flip[:3, 3] + flip[:3, axis] * (n - 1)
        flip[:3, axis] = -flip[:3, axis]
    yield "flipped_storage", ct[::-1, ::-1, :], truth[::-1, ::-1, :], flip
    thick = (1, 1, 3)
    yield "thick_slices", average(ct, thick), majority(truth, thick), coarse_affine(affine, thick)
    plane = (2, 2, 1)
    yield "coarse_in_plane", average(ct, plane), majority(truth, plane), coarse_affine(affine, plane)
    yield "noise_white_25hu", ct + rng.normal(0.0, 25.0, ct.shape), truth, affine
    yield "noise_correlated_40hu", ct + correlated_noise(rng, ct.shape, 40.0), truth, affine
    thick_ct = average(ct, thick)
    yield ("low_dose_thick", thick_ct + correlated_noise(rng, thick_ct.shape, 40.0),
           majority(truth, thick), coarse_affine(affine, thick))
    yield "hu_offset_plus30", ct + 30.0, truth, affine
    yield "hu_offset_minus30", ct - 30.0, truth, affine
    yield "hu_scale_1.05", ct * 1.05, truth, affine


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ct", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--map", default="totalseg", choices=["totalseg"], help="label values of --labels")
    ap.add_argument("--bin", default="target/release/mrtdose")
    ap.add_argument("--model", default=None, help="model directory (default: the binary's bundled model)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if not os.environ.get("ORT_DYLIB_PATH"):
        sys.exit("ORT_DYLIB_PATH is not set (bash scripts/setup-ort.sh; export ORT_DYLIB_PATH=.ort/lib/libonnxruntime.so)")
    img = nib.load(a.ct)
    ct = np.asarray(img.dataobj, dtype=np.float64)
    raw = np.asarray(nib.load(a.labels).dataobj)
    truth = np.zeros(raw.shape, np.uint8)
    for value, label in TOTALSEG_TO_MODEL.items():
        truth[raw == value] = label
    rng = np.random.default_rng(SEED)
    os.makedirs(a.work, exist_ok=True)
    results = {"ct": os.path.basename(a.ct), "seed": SEED, "model": a.model or "bundled", "variants": {}}
    for name, hu, lab, affine in variants(ct, truth, img.affine, rng):
        ct_path = os.path.join(a.work, f"{name}_ct.nii.gz")
        out_path = os.path.join(a.work, f"{name}_labels.nii.gz")
        nib.save(nib.Nifti1Image(np.round(hu).astype(np.int16), affine), ct_path)
        cmd = [a.bin, "segment", ct_path, "--device", "cpu", "--out", out_path]
        if a.model:
            cmd += ["--model", a.model]
        t0 = time.time()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        seconds = time.time() - t0
        pred = np.asarray(nib.load(out_path).dataobj)
        if pred.shape != lab.shape:
            sys.exit(f"{name}: labels {pred.shape} but truth {lab.shape}")
        scores = {organ: round(dice(pred == k, lab == k), 4) for k, organ in enumerate(ORGANS, start=1)}
        results["variants"][name] = {"dice": scores, "shape": list(hu.shape),
                                     "spacing_mm": [round(float(s), 3) for s in np.linalg.norm(affine[:3, :3], axis=0)],
                                     "seconds": round(seconds, 1)}
        print(f"{name:24s} " + " ".join(f"{o} {v:.4f}" for o, v in scores.items()) + f"  ({seconds:.1f} s)", flush=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
