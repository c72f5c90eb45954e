"""Build the training cache: phantoms and SynthSeg-style images on the model grid (LPS, [z,y,x], 3 mm).

Writes OUT/<name>.npz with `img` (int16 HU) and `lab` (uint8 model labels), and for a phantom with a tissue map
(make_tissue_maps.sh: DIR/<case>/tissues.nii.gz) `tis` (uint8 generator tissue index, nearest-neighbour on the
model grid), which train.py's --tissue-hu-sd augmentation shifts tissue by tissue.
Usage: build_cache.py --phantoms DIR --anatomy DIR --out DIR --synth-per-template N --seed S
"""
import argparse
import glob
import os
import sys
import time

import numpy as np
import nibabel as nib

sys.path.insert(0, os.path.dirname(__file__))
from common import to_lps_zyx, resample, resample_labels, phantom_labels_to_model, grid_shape  # noqa: E402
from synth import Template, synth_sample  # noqa: E402

# s0009 is held out entirely (real-CT evaluation); never used for training.
TEMPLATES = [
    ("totalseg_s0001_labels.nii.gz", "totalseg"),
    ("totalseg_s0004_labels.nii.gz", "totalseg"),
    ("totalseg_s0006_labels.nii.gz", "totalseg"),
    ("totalseg_s0327_labels.nii.gz", "totalseg"),
    ("totalseg_s0328_labels.nii.gz", "totalseg"),
    ("amos_0013_labels.nii.gz", "amos"),
]


def load_ct_grid(ct_path, lab_path=None):
    img = nib.load(ct_path)
    ct, sp, _ = to_lps_zyx(img, np.asarray(img.dataobj).astype(np.float32))
    shape = grid_shape(ct.shape, sp)
    ct3 = resample(ct, sp, out_shape=shape, order=1, antialias=True)
    lab3 = None
    if lab_path:
        li = nib.load(lab_path)
        lab, sp2, _ = to_lps_zyx(li, np.asarray(li.dataobj).astype(np.uint8))
        lab3 = resample_labels(phantom_labels_to_model(lab), sp2, out_shape=shape)
    return ct3, lab3, sp


# Tissue::ALL index (crates/mrt-phantom/src/tissue.rs) -> phantom truth label, for the tissue-map check.
TISSUE_LABEL = {12: 1, 13: 5, 14: 4, 15: 2, 16: 2, 17: 2, 18: 3, 19: 3, 20: 3}


def load_tissues(path, lab_path, shape):
    """The tissue map on the model grid (nearest neighbour), after checking on the native grid that the organ
    labels it implies are the phantom's truth labels (a map drawn with other options than the phantom differs)."""
    ti = nib.load(path)
    tis, sp, _ = to_lps_zyx(ti, np.asarray(ti.dataobj).astype(np.uint8))
    li = nib.load(lab_path)
    lab, _, _ = to_lps_zyx(li, np.asarray(li.dataobj).astype(np.uint8))
    if tis.shape != lab.shape:
        raise SystemExit(f"{path}: grid {tis.shape} is not that of {lab_path} {lab.shape}; remake the map")
    implied = np.zeros(256, np.uint8)
    for t, lbl in TISSUE_LABEL.items():
        implied[t] = lbl
    wrong = int((implied[tis] != lab).sum())
    if wrong:
        raise SystemExit(f"{path}: {wrong} voxels whose tissue disagrees with {lab_path}; remake the map")
    return resample(tis, sp, order=0, out_shape=shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--phantoms", required=True)
    ap.add_argument("--anatomy", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--synth-per-template", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--require-tissues", action="store_true",
                    help="skip (leave for a later call) phantoms without a tissue map yet (make_tissue_maps.sh)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()
    for d in sorted(glob.glob(os.path.join(a.phantoms, "*_*"))):
        name = "phantom_" + os.path.basename(d)
        if not name.rsplit("_", 1)[1].isdigit():
            continue  # make_phantoms.sh's <case>.tmp while it writes one
        seed = int(name.rsplit("_", 1)[1])
        assert seed >= 100000, "evaluation seeds (< 100000) must never be used for training"
        out = os.path.join(a.out, name + ".npz")
        tis_path, lab_path = os.path.join(d, "tissues.nii.gz"), os.path.join(d, "labels.nii.gz")
        if os.path.exists(out) or not os.path.exists(lab_path):
            continue
        if a.require_tissues and not os.path.exists(tis_path):
            continue
        ct, lab, sp = load_ct_grid(os.path.join(d, "ct.nii.gz"), lab_path)
        extra = {}
        if os.path.exists(tis_path):
            extra["tis"] = load_tissues(tis_path, lab_path, ct.shape)
        np.savez(out, img=np.round(ct).astype(np.int16), lab=lab, **extra)
        print(f"{name} {ct.shape} from spacing {np.round(sp, 2).tolist()} ({time.time() - t0:.0f}s)", flush=True)
    for ti, (fname, kind) in enumerate(TEMPLATES):
        names = [os.path.join(a.out, f"synth_{fname.split('_labels')[0]}_{i:03d}.npz") for i in range(a.synth_per_template)]
        if all(os.path.exists(n) for n in names):
            continue
        t = Template(os.path.join(a.anatomy, fname), kind)
        for i, out in enumerate(names):
            if os.path.exists(out):
                continue
            rng = np.random.default_rng([a.seed, ti, i])
            img, lab = synth_sample(t, rng)
            np.savez(out, img=np.round(np.clip(img, -1024, 3000)).astype(np.int16), lab=lab)
            print(f"{os.path.basename(out)} {img.shape} ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
