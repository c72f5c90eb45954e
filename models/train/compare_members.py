"""Dice of single models and of every ensemble of them (mean softmax, as export_ensemble.py builds it), each
network run once per case.

Per case, every model's probabilities on the model grid come from evaluate.Model (the same preprocessing and
sliding window); an ensemble's are their mean, mapped to the native grid and argmaxed as evaluate.py does.
The models must share spacing, patch, overlap and intensity settings (their cards are checked).
Used to choose which members ship, on calibration phantoms that are neither training nor test data.

Usage: compare_members.py --model NAME=DIR [--model NAME=DIR ...] --phantoms DIR [--phantoms DIR ...]
                          [--out results.json] [--threads 2]
"""
import argparse
import glob
import itertools
import json
import os
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import ORGANS, dice, sliding_window  # noqa: E402
from evaluate import Model, load_truth  # noqa: E402

SHARED_CARD_FIELDS = ("input", "intensity", "patch_size", "overlap", "size_multiple", "labels")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True, help="NAME=MODEL_DIR (a single network)")
    ap.add_argument("--phantoms", action="append", required=True, help="dir with <preset>_<seed>/ phantoms")
    ap.add_argument("--out", default=None)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    models = {}
    for spec in a.model:
        name, _, d = spec.partition("=")
        models[name] = Model(d, a.threads, ignore_grid_shifts=True)
    first = next(iter(models.values())).card
    for name, m in models.items():
        for f in SHARED_CARD_FIELDS:
            if m.card[f] != first[f]:
                raise SystemExit(f"model {name}: card field {f!r} differs from the first model's")
    names = list(models)
    combos = [c for r in range(1, len(names) + 1) for c in itertools.combinations(names, r)]
    rows = {"+".join(c): {} for c in combos}
    cases = sorted(d for p in a.phantoms for d in glob.glob(os.path.join(p, "*_*")))
    ref = next(iter(models.values()))
    for d in cases:
        case = os.path.basename(d)
        ct_img = nib.load(os.path.join(d, "tp1", "ct.nii.gz"))
        truth = load_truth(os.path.join(d, "truth", "tp1_labels.nii.gz"))
        x, native_shape, shape = ref.prepare(ct_img)
        probs = {n: sliding_window(lambda v, m=m: m.sess.run(["logits"], {"ct": v})[0], x, m.patch, m.overlap)
                 for n, m in models.items()}
        for c in combos:
            lab = ref.to_native_labels(np.mean([probs[n] for n in c], 0), native_shape, shape)
            rows["+".join(c)][case] = {o: dice(lab == k, truth == k)
                                       for k, o in enumerate(ORGANS, 1) if (truth == k).any()}
        print(case + ": " + "; ".join(f"{c} " + " ".join(f"{v:.3f}" for v in rows[c][case].values())
                                      for c in rows), flush=True)
    summary = {}
    for c, per_case in rows.items():
        groups = {}
        for case, dsc in per_case.items():
            groups.setdefault(case.rsplit("_", 1)[0], []).append(dsc)
        summary[c] = {g: {o: round(float(np.mean([r[o] for r in rs if o in r])), 4) for o in ORGANS}
                      for g, rs in groups.items()}
    print("\nmean Dice (liver kidney_left kidney_right spleen):")
    for c, groups in summary.items():
        print(f"{c:>24}: " + " | ".join(f"{g} " + " ".join(f"{v:.3f}" for v in s.values())
                                        for g, s in groups.items()))
    if a.out:
        json.dump({"summary": summary, "cases": rows}, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
