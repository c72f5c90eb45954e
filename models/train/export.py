"""Export a checkpoint to ONNX (opset 17, dynamic N/D/H/W) and write model-card.json.

Usage: export.py --ckpt CKPT --out-dir models/ct-organs [--version V] [--seed S] [--history TEXT]
(export_ensemble.py exports several members as one model, through the same functions)
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import CLIP_HU, DIVIDE, INTENSITY_REFINEMENT, LABELS, PATCH, SIZE_MULTIPLE, SPACING_MM, SUBTRACT  # noqa: E402
from build_cache import TEMPLATES  # noqa: E402
from unet import UNet3D  # noqa: E402


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def export_onnx(model, onnx_path):
    """Export `model` (eval mode) to ONNX opset 17 with dynamic N/D/H/W, check it, and verify onnxruntime against
    torch on a random input of another multiple-of-16 shape, batch 2. Returns max |ort - torch|."""
    x = torch.zeros(1, 1, 32, 48, 64)
    torch.onnx.export(
        model, x, onnx_path, opset_version=17, input_names=["ct"], output_names=["logits"],
        dynamic_axes={"ct": {0: "N", 2: "D", 3: "H", 4: "W"}, "logits": {0: "N", 2: "D", 3: "H", 4: "W"}},
        do_constant_folding=True, dynamo=False,
    )
    import onnx
    import onnxruntime as ort
    m = onnx.load(onnx_path)
    onnx.checker.check_model(m)
    xt = torch.randn(2, 1, 48, 64, 80)
    with torch.no_grad():
        ref = model(xt).numpy()
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    out = sess.run(["logits"], {"ct": xt.numpy()})[0]
    err = float(np.abs(out - ref).max())
    print(f"onnx verify: shape {out.shape}, max |ort - torch| = {err:.2e}")
    assert out.shape == (2, 5, 48, 64, 80) and err < 1e-3
    return err


def data_description(data):
    return (f"{data['phantoms']} mrtdose phantoms (small and clinical presets, seeds >= 100000, "
            f"liver_tumour -> background) + {data['synthetic']} SynthSeg-style synthetic CTs from "
            "real label maps (domain-randomised intensities, contrast phases, noise, resolution, "
            "bias field, streaks, FOV truncation); 3 mm LPS grid")


def write_card(out_dir, version, training, fused_overlap=None, grid_shifts=None):
    """model-card.json for out_dir/model.onnx; `training` is the card's training block without the fields every
    model shares (templates, held-out data, framework); `fused_overlap` (optional) the sliding window's overlap for
    CTs whose probabilities the pipeline fuses across time points; `grid_shifts` (optional) the card's
    grid_shifts_voxels. Keeps an existing card's validation block."""
    onnx_path = os.path.join(out_dir, "model.onnx")
    card_path = os.path.join(out_dir, "model-card.json")
    old = json.load(open(card_path)) if os.path.exists(card_path) else {}
    card = {
        "schema": "mrtdose.model-card.v1",
        "name": "mrtdose-ct-organs",
        "version": version,
        "onnx": "model.onnx",
        "sha256": sha256(onnx_path),
        "opset": 17,
        "labels": {str(k): v for k, v in LABELS.items()},
        "input": {"name": "ct", "layout": "NCDHW", "orientation": "LPS", "spacing_mm": [SPACING_MM] * 3},
        "output": {"name": "logits", "layout": "NCDHW", "kind": "logits"},
        "intensity": {"clip_hu": list(CLIP_HU), "subtract": SUBTRACT, "divide": DIVIDE},
        "patch_size": list(PATCH),
        "overlap": 0.5,
        **({"fused_overlap": fused_overlap} if fused_overlap is not None else {}),
        "size_multiple": SIZE_MULTIPLE,
        **({"grid_shifts_voxels": grid_shifts} if grid_shifts else {}),
        "intensity_refinement": dict(INTENSITY_REFINEMENT),
        "training": {
            "command": training.pop("command"),
            "seed": training.pop("seed"),
            "data": training.pop("data"),
            "anatomy_templates": [t for t, _ in TEMPLATES],
            "held_out": ["totalseg_s0009_labels.nii.gz", "totalseg_s0009_ct.nii.gz"],
            "steps": training.pop("steps"),
            "duration_s": training.pop("duration_s"),
            "framework": f"torch {'.'.join(torch.__version__.split('+')[0].split('.')[:2])}",
            **training,
        },
        "validation": old.get("validation", {"dice": {}, "cases": "not yet evaluated"}),
    }
    with open(card_path, "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    print(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes, sha256 {card['sha256']}) and {card_path}")


def checkpoint_summary(ck):
    """A best.pt checkpoint: which step of its run was kept, and its validation score (else {})."""
    if "val_mean" not in ck:
        return {}
    return {"run_step": int(ck["step"]), "mean_validation_dice": round(float(ck["val_mean"]), 4),
            "validation": {o: round(float(m), 4) for o, (m, _) in ck["val"].items()}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--command", default="models/train.sh")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--version", default="1.0.0", help="the card's model version (semantic)")
    ap.add_argument("--history", default=None, help="free text for the card's training.history (the runs that made it)")
    ap.add_argument("--fused-overlap", type=float, default=None,
                    help="the card's fused_overlap (as export_ensemble.py)")
    ap.add_argument("--grid-shift", type=float, nargs=3, action="append", default=[], metavar=("X", "Y", "Z"),
                    help="a test-time grid shift for the card's grid_shifts_voxels, in model voxels (repeatable)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    ck = torch.load(a.ckpt, weights_only=False, map_location="cpu")
    model = UNet3D()
    model.load_state_dict(ck["model"])
    model.eval()
    os.makedirs(a.out_dir, exist_ok=True)
    export_onnx(model, os.path.join(a.out_dir, "model.onnx"))
    checkpoint = checkpoint_summary(ck)
    write_card(a.out_dir, a.version, {
        "command": a.command,
        "seed": a.seed,
        "data": data_description(ck["data"]),
        "steps": int(ck["step"]) + int(ck.get("prior_steps", 0)),
        "duration_s": int(round(ck["elapsed_s"])),
        **({"history": a.history} if a.history else {}),
        **({"checkpoint": checkpoint} if checkpoint else {}),
        "architecture": "3D U-Net, 5 levels (8-16-32-64-128 ch), InstanceNorm, LeakyReLU, "
                        f"{sum(p.numel() for p in model.parameters())} parameters",
    }, fused_overlap=a.fused_overlap, grid_shifts=[list(s) for s in a.grid_shift])


if __name__ == "__main__":
    main()
