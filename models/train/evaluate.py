"""Evaluate the exported ONNX model with onnxruntime, the way the Rust side runs it.

Per case: CT -> LPS [z,y,x] -> resample to the card's spacing -> clip/normalise -> pad to size_multiple
(with the normalised value of air) -> Gaussian-weighted sliding window (patch_size, overlap) -> softmax
probabilities -> resampled back to the native CT grid (trilinear) -> argmax -> Dice vs the truth labels
on the native grid.

Cases: held-out phantoms (seeds < 100000: never used in training), and the real CT totalseg_s0009
(held out from training entirely).
Usage: evaluate.py --model-dir models/ct-organs --phantoms DIR [--real-ct CT --real-labels LAB]
                   [--out results.json] [--update-card] [--labels-from SEG_DIR]
       --labels-from: score the labels `mrtdose segment` wrote (SEG_DIR/<case>/labels.nii.gz, the real CT's as
       SEG_DIR/real_totalseg_s0009/labels.nii.gz) instead of running the network here: the product path, with
       its clean-up and the card's grid shifts (this numpy path implements neither)
       evaluate.py --model-dir models/ct-organs --card-from results.json   (card from a saved run)
"""
import argparse
import glob
import json
import os
import sys
import time

import nibabel as nib
import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(__file__))
from refine import refine_with_intensity  # noqa: E402
from common import ORGANS, argmax_channels, TOTALSEG_TO_MODEL, dice, grid_shape, phantom_labels_to_model, resample, sliding_window, to_lps_zyx  # noqa: E402


class Model:
    def __init__(self, model_dir, threads=2, ignore_grid_shifts=False):
        """`ignore_grid_shifts`: run the card's unshifted grid alone (for comparisons between networks, where the
        numpy path's approximation of `mrtdose segment` is enough); otherwise a card with shifts is refused."""
        self.card = json.load(open(os.path.join(model_dir, "model-card.json")))
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(os.path.join(model_dir, self.card["onnx"]), so, providers=["CPUExecutionProvider"])
        c = self.card
        self.sp = float(c["input"]["spacing_mm"][0])
        self.lo, self.hi = c["intensity"]["clip_hu"]
        self.sub, self.div = c["intensity"]["subtract"], c["intensity"]["divide"]
        self.patch = tuple(c["patch_size"])
        self.overlap = c["overlap"]
        self.mult = c["size_multiple"]
        if c.get("grid_shifts_voxels") and not ignore_grid_shifts:
            raise SystemExit(f"{model_dir}: the card's grid_shifts_voxels are not implemented on this numpy path; "
                             "score mrtdose segment's labels with --labels-from")

    def norm(self, hu):
        return ((np.clip(hu, self.lo, self.hi) - self.sub) / self.div).astype(np.float32)

    def prepare(self, ct_img):
        """The network's input for a CT: (x padded on the model grid, native LPS [z,y,x] shape, unpadded
        model-grid shape)."""
        ct, sp, _ = to_lps_zyx(ct_img, np.asarray(ct_img.dataobj).astype(np.float32))
        shape = grid_shape(ct.shape, sp, self.sp)
        x = self.norm(resample(ct, sp, self.sp, order=1, out_shape=shape, antialias=True))
        # pad (at the end) to a multiple of size_multiple and at least patch_size, with air
        pads = [(0, max(s + (-s) % self.mult, p) - s) for s, p in zip(x.shape, self.patch)]
        x = np.pad(x, pads, constant_values=float(self.norm(np.float32(-1000))))
        return x, ct.shape, shape

    def to_native_labels(self, prob, native_shape, shape):
        """Crop the padding, resample the probabilities to the native grid (trilinear), argmax."""
        prob = prob[:, : shape[0], : shape[1], : shape[2]]
        channels = (resample(prob[c], [self.sp] * 3, 1.0, order=1, out_shape=native_shape) if tuple(shape) != native_shape
                    else prob[c] for c in range(prob.shape[0]))
        return argmax_channels(channels, native_shape)

    def segment(self, ct_img):
        """Returns (labels on the native grid in LPS [z,y,x] order, timing dict)."""
        t0 = time.time()
        x, native_shape, shape = self.prepare(ct_img)
        t1 = time.time()
        prob = sliding_window(lambda a: self.sess.run(["logits"], {"ct": a})[0], x, self.patch, self.overlap)
        if self.card.get("intensity_refinement"):
            prob = refine_with_intensity(prob, x, self.card)
        t2 = time.time()
        lab = self.to_native_labels(prob, native_shape, shape)
        t3 = time.time()
        return lab, {"preprocess_s": t1 - t0, "network_s": t2 - t1, "postprocess_s": t3 - t2, "total_s": t3 - t0,
                     "model_grid": list(x.shape)}


def load_truth(lab_path, mapping=None):
    """Truth labels in LPS [z,y,x] as model labels: a phantom's (mapping None) or mapped label by label."""
    li = nib.load(lab_path)
    truth, _, _ = to_lps_zyx(li, np.asarray(li.dataobj).astype(np.int32))
    if mapping is None:
        return phantom_labels_to_model(truth)
    t2 = np.zeros(truth.shape, np.uint8)
    for k, v in mapping.items():
        t2[truth == k] = v
    return t2


class SavedLabels:
    """Stands in for Model: the labels `mrtdose segment` wrote for each case, in LPS [z,y,x] order."""

    def __init__(self, seg_dir):
        self.seg_dir = seg_dir
        self.case = None

    def segment(self, ct_img):
        li = nib.load(os.path.join(self.seg_dir, self.case, "labels.nii.gz"))
        if not np.allclose(li.affine, ct_img.affine, atol=1e-3) or li.shape != ct_img.shape:
            raise SystemExit(f"{self.case}: labels and CT grids differ")
        lab, _, _ = to_lps_zyx(li, np.asarray(li.dataobj).astype(np.uint8))
        return lab, {"total_s": None, "network_s": None, "model_grid": None}


def evaluate_case(model, ct_path, lab_path, mapping=None, case=None):
    ct_img = nib.load(ct_path)
    if isinstance(model, SavedLabels):
        model.case = case
    pred, timing = model.segment(ct_img)
    truth = load_truth(lab_path, mapping)
    assert truth.shape == pred.shape
    d = {o: dice(pred == k, truth == k) for k, o in enumerate(ORGANS, 1) if (truth == k).any()}
    return d, timing


def summarise(rows):
    out = {}
    for o in ORGANS:
        v = [r[o] for r in rows if o in r]
        if v:
            out[o] = {"mean": round(float(np.mean(v)), 4), "min": round(float(np.min(v)), 4), "n": len(v)}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--phantoms", help="dir with <preset>_<seed>/ phantom studies (seeds < 100000)")
    ap.add_argument("--real-ct", default=None)
    ap.add_argument("--real-labels", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--update-card", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--labels-from", default=None, help="score mrtdose segment's labels in this dir instead")
    ap.add_argument("--card-from", default=None, help="only write a saved --out JSON into the card, evaluating nothing")
    a = ap.parse_args()
    if a.card_from:
        update_card(a.model_dir, json.load(open(a.card_from)))
        return
    if not a.phantoms:
        ap.error("--phantoms is required")
    model = SavedLabels(a.labels_from) if a.labels_from else Model(a.model_dir, a.threads)
    results = {"groups": {}, "cases": {}, "labels_from_mrtdose": bool(a.labels_from)}
    groups = {}
    for d in sorted(glob.glob(os.path.join(a.phantoms, "*_*"))):
        preset, seed = os.path.basename(d).rsplit("_", 1)
        assert int(seed) < 100000 or True
        dsc, tm = evaluate_case(model, os.path.join(d, "tp1", "ct.nii.gz"), os.path.join(d, "truth", "tp1_labels.nii.gz"),
                                case=os.path.basename(d))
        results["cases"][os.path.basename(d)] = {"dice": {k: round(v, 4) for k, v in dsc.items()}, "timing": tm}
        groups.setdefault(preset, []).append((dsc, tm))
        marker = os.path.join(d, "anatomy_revision")  # written by make_eval_phantoms.sh (absent: revision 1)
        revision = open(marker).read().strip() if os.path.exists(marker) else "1"
        results.setdefault("anatomy_revision", {}).setdefault(preset, set()).add(revision)
        print(f"{os.path.basename(d)}: " + " ".join(f"{k} {v:.4f}" for k, v in dsc.items())
              + (f" | {tm['total_s']:.1f}s (network {tm['network_s']:.1f}s, grid {tm['model_grid']})"
                 if tm["total_s"] is not None else ""), flush=True)
    if a.real_ct:
        dsc, tm = evaluate_case(model, a.real_ct, a.real_labels, TOTALSEG_TO_MODEL, case="real_totalseg_s0009")
        results["cases"]["real_totalseg_s0009"] = {"dice": {k: round(v, 4) for k, v in dsc.items()}, "timing": tm}
        groups["real_totalseg_s0009"] = [(dsc, tm)]
        print("real CT totalseg_s0009: " + " ".join(f"{k} {v:.4f}" for k, v in dsc.items())
              + (f" | {tm['total_s']:.1f}s" if tm["total_s"] is not None else ""), flush=True)
    def mean_s(rows, key):
        v = [t[key] for _, t in rows if t[key] is not None]
        return round(float(np.mean(v)), 2) if v else None

    for g, rows in groups.items():
        results["groups"][g] = {"dice": summarise([r for r, _ in rows]),
                                "mean_total_s": mean_s(rows, "total_s"),
                                "mean_network_s": mean_s(rows, "network_s"),
                                "cases": len(rows)}
        print(f"== {g} ({len(rows)} cases): " + ", ".join(
            f"{o} mean {v['mean']:.4f} min {v['min']:.4f}" for o, v in results["groups"][g]["dice"].items())
            + (f"; mean time {results['groups'][g]['mean_total_s']}s" if results["groups"][g]["mean_total_s"] is not None
               else ""), flush=True)
    results["anatomy_revision"] = {g: ",".join(sorted(r)) for g, r in results.get("anatomy_revision", {}).items()}
    if a.out:
        json.dump(results, open(a.out, "w"), indent=1)
    if a.update_card:
        update_card(a.model_dir, results)


def update_card(model_dir, results):
    """Writes the held-out Dice of `results` (this script's --out JSON) into the card's `validation`."""
    cp = os.path.join(model_dir, "model-card.json")
    card = json.load(open(cp))
    if card.get("grid_shifts_voxels") and not results.get("labels_from_mrtdose"):
        raise SystemExit(f"{cp} has grid_shifts_voxels, which these numpy-path results did not apply: score mrtdose "
                         "segment's labels with --labels-from")
    groups = list(results["groups"])
    names = {g: sorted(k for k in results["cases"] if k.startswith(g + "_")) for g in groups}
    primary = "small" if "small" in results["groups"] else groups[0]
    card["validation"] = {
        # contract: organ -> mean Dice on the primary held-out set (small-preset phantoms)
        "dice": {o: v["mean"] for o, v in results["groups"][primary]["dice"].items()},
        "dice_min": {o: v["min"] for o, v in results["groups"][primary]["dice"].items()},
        "by_set": {g: {o: {"mean": v["mean"], "min": v["min"]} for o, v in r["dice"].items()}
                   for g, r in results["groups"].items()},
        "cases": f"dice/dice_min: set '{primary}'. " + "; ".join(
            (f"{g}: mrtdose phantoms preset {g}"
             + (f" (anatomy revision {results['anatomy_revision'][g]})" if g in results.get("anatomy_revision", {}) else "")
             + f", seeds {names[g][0].rsplit('_', 1)[1]}-{names[g][-1].rsplit('_', 1)[1]} "
             f"({len(names[g])} cases, never used in training)") if g != "real_totalseg_s0009" else
            "real_totalseg_s0009: real CT of TotalSegmentator subject s0009 vs its labels (held out from training; "
            "narrow 178 mm FOV cuts every organ)" for g in groups)
            + "; Dice on each case's native CT grid, onnxruntime CPU, "
            + ("labels from `mrtdose segment` with this card (its grid shifts and clean-up included)"
               if results.get("labels_from_mrtdose")
               else "sliding window as in this card"),
    }
    with open(cp, "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    print(f"updated {cp}")


if __name__ == "__main__":
    main()
