#!/usr/bin/env python3
"""How much of each organ's surface shows no edge on the CT, against the organ's Dice.

For every held-out phantom case in an evaluation JSON (`evaluate.py --out`, or the bundled
models/ct-organs/evaluation.json) and each of kidney_left, kidney_right and spleen: the truth mask's
outer shell (one voxel, 6-connected dilation minus the mask), and the fraction of the shell where
the CT smoothed over ~2 mm differs from the organ's own median (inside, two voxels deep) by less than
`--edge-hu` (20 HU): boundary the CT does not show. Also the fraction of the shell that is another
organ in the truth (a contact whose position the phantom generator's priority decides). Prints per
case, then the organs' mean Dice grouped by the no-edge fraction and Spearman correlations.

Usage: edge_analysis.py --phantoms DIR --evaluation models/ct-organs/evaluation.json [--out rows.json]
"""
import argparse
import json

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi
from scipy.stats import spearmanr

ORGANS = {2: "kidney_left", 3: "kidney_right", 4: "spleen"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phantoms", required=True, help="held-out phantoms (make_eval_phantoms.sh)")
    ap.add_argument("--evaluation", required=True)
    ap.add_argument("--edge-hu", type=float, default=20.0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    cases = json.load(open(a.evaluation))["cases"]
    rows = []
    for case in sorted(c for c in cases if not c.startswith("real")):
        truth = np.asarray(nib.load(f"{a.phantoms}/{case}/truth/tp1_labels.nii.gz").dataobj)
        img = nib.load(f"{a.phantoms}/{case}/tp1/ct.nii.gz")
        ct = np.asarray(img.dataobj, dtype=np.float32)
        smooth = ndi.gaussian_filter(ct, [2.0 / z for z in img.header.get_zooms()[:3]])
        for label, organ in ORGANS.items():
            mask = truth == label
            if not mask.any():
                continue
            core = ndi.binary_erosion(mask, iterations=2)
            inside = np.median(smooth[core if core.any() else mask])
            shell = ndi.binary_dilation(mask) & ~mask
            other_organ = float(np.isin(truth[shell], [1, 2, 3, 4, 5]).mean())
            no_edge = float((np.abs(smooth[shell] - inside) < a.edge_hu).mean())
            d = cases[case]["dice"][organ]
            rows.append({"case": case, "organ": organ, "dice": d, "organ_contact": round(other_organ, 3),
                         "no_edge": round(no_edge, 3), "inside_hu": round(float(inside), 1)})
            print(f"{case:14s} {organ:13s} Dice {d:.3f}  organ contact {other_organ:.2f}  "
                  f"no edge {no_edge:.2f}  inside {inside:.0f} HU", flush=True)
    for organ in ORGANS.values():
        r = [x for x in rows if x["organ"] == organ]
        groups = [("<= 0.2", lambda f: f <= 0.2), ("0.2-0.3", lambda f: 0.2 < f <= 0.3), ("> 0.3", lambda f: f > 0.3)]
        parts = []
        for name, keep in groups:
            ds = [x["dice"] for x in r if keep(x["no_edge"])]
            parts.append(f"no edge {name}: {np.mean(ds):.3f} (n {len(ds)})" if ds else f"no edge {name}: -")
        rho_edge = spearmanr([x["dice"] for x in r], [x["no_edge"] for x in r])[0]
        rho_contact = spearmanr([x["dice"] for x in r], [x["organ_contact"] for x in r])[0]
        print(f"{organ}: " + "; ".join(parts) + f"; Spearman Dice vs no edge {rho_edge:.2f}, vs organ contact {rho_contact:.2f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
