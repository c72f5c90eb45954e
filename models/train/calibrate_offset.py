"""Choose a per-class logit offset that undoes the class weighting of the training loss.

Cross-entropy with class weights w_c is minimised by p(c|x) proportional to w_c * p_true(c|x): a model trained with
kidneys and spleen weighted 3-4x calls a voxel "kidney" on weaker evidence than the truth warrants, so its organs
come out too large. Adding o_c = -alpha * log(w_c) to the logits (alpha = 1 undoes a pure weighted CE; the soft Dice
term of the loss moves the optimum, hence the scan over alpha) corrects the prior.

This script runs the network once per case and scores every alpha from that single pass (the offset is applied to
each window's logits before its softmax, exactly what a bias baked into the ONNX output does). Use it on a
calibration set that is neither training data nor the test set (e.g. phantom seeds 9100-9119), then evaluate the
chosen alpha on the test set with evaluate.py --logit-offset.

Usage: calibrate_offset.py --model-dir models/ct-organs --phantoms DIR --ce-weights 1,1,3,3,4
                            [--alphas 0,0.25,0.5,0.75,1] [--out calib.json]
"""
import argparse
import glob
import json
import os
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import ORGANS, dice, gaussian_importance, phantom_labels_to_model, to_lps_zyx, window_starts  # noqa: E402
from evaluate import Model  # noqa: E402


def multi_offset_probs(model, x, offsets):
    """Gaussian-weighted sliding window; one accumulated probability volume per offset vector."""
    D, H, W = x.shape
    p = [min(a, b) for a, b in zip(model.patch, x.shape)]
    g = gaussian_importance(p)
    acc = [np.zeros((len(offsets[0]), D, H, W), np.float32) for _ in offsets]
    wsum = np.zeros((D, H, W), np.float32)
    for z in window_starts(D, p[0], model.overlap):
        for y in window_starts(H, p[1], model.overlap):
            for xx in window_starts(W, p[2], model.overlap):
                sl = (slice(z, z + p[0]), slice(y, y + p[1]), slice(xx, xx + p[2]))
                logits = model.sess.run(["logits"], {"ct": x[sl][None, None]})[0][0]
                for a, off in zip(acc, offsets):
                    lg = logits + np.asarray(off, np.float32)[:, None, None, None]
                    e = np.exp(lg - lg.max(0, keepdims=True))
                    a[(slice(None),) + sl] += e / e.sum(0, keepdims=True) * g
                wsum[sl] += g
    return [a / wsum[None] for a in acc]


def case_dice(model, ct_path, lab_path, offsets):
    x, native_shape, shape = model.prepare(nib.load(ct_path))
    li = nib.load(lab_path)
    truth = phantom_labels_to_model(to_lps_zyx(li, np.asarray(li.dataobj).astype(np.int32))[0])
    out = []
    for prob in multi_offset_probs(model, x, offsets):
        lab = model.to_native_labels(prob, native_shape, shape)
        out.append({o: dice(lab == k, truth == k) for k, o in enumerate(ORGANS, 1) if (truth == k).any()})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--phantoms", required=True)
    ap.add_argument("--ce-weights", required=True)
    ap.add_argument("--alphas", default="0,0.25,0.5,0.75,1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    w = np.array([float(v) for v in a.ce_weights.split(",")])
    alphas = [float(v) for v in a.alphas.split(",")]
    offsets = [(-al * np.log(w)).tolist() for al in alphas]
    model = Model(a.model_dir, a.threads, ignore_grid_shifts=True)
    rows = {al: [] for al in alphas}
    for d in sorted(glob.glob(os.path.join(a.phantoms, "*_*"))):
        res = case_dice(model, os.path.join(d, "tp1", "ct.nii.gz"), os.path.join(d, "truth", "tp1_labels.nii.gz"), offsets)
        for al, r in zip(alphas, res):
            rows[al].append(r)
        print(os.path.basename(d) + ": " + " | ".join(
            f"a={al:g} " + " ".join(f"{r[o]:.3f}" for o in ORGANS if o in r) for al, r in zip(alphas, res)), flush=True)
    summary = {}
    for al in alphas:
        s = {o: float(np.mean([r[o] for r in rows[al] if o in r])) for o in ORGANS}
        summary[str(al)] = {"offset": (-al * np.log(w)).round(4).tolist(), "mean_dice": s,
                            "mean_of_organs": float(np.mean(list(s.values())))}
        print(f"alpha {al:g}: " + " ".join(f"{o} {v:.4f}" for o, v in s.items())
              + f" | mean {summary[str(al)]['mean_of_organs']:.4f}", flush=True)
    if a.out:
        json.dump({"ce_weights": w.tolist(), "cases": len(rows[alphas[0]]), "alphas": summary}, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
