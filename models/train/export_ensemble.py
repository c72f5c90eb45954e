"""Export several trained U-Nets as one ONNX model whose output is the log of their mean softmax.

The model-card contract is unchanged: `output.kind` stays `logits`, because softmax(log p) = p when p sums
to 1 over the channels, so the Rust side (and evaluate.py) apply their softmax and get the members' mean
probability. Members are exported ONNX models (`--member-onnx`, weights copied by train.init_from_onnx and
checked against onnxruntime) or training checkpoints (`--member-ckpt`).

Usage: export_ensemble.py --out-dir DIR --version V --seed S --history TEXT
                          [--member-onnx A/model.onnx ...] [--member-ckpt B/best.pt ...]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from export import data_description, export_onnx, write_card  # noqa: E402
from train import check_against_onnx, init_from_onnx  # noqa: E402
from unet import UNet3D  # noqa: E402

# Floor on the mean probability before the log: keeps the output finite; far below any probability that
# could change an argmax between organs.
PROB_FLOOR = 1e-12


class MeanSoftmax(torch.nn.Module):
    """log(mean over members of softmax(member(x))) over the channel axis."""

    def __init__(self, members):
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x):
        p = torch.stack([torch.softmax(m(x), 1) for m in self.members]).mean(0)
        return torch.log(p.clamp_min(PROB_FLOOR))


def member_from_onnx(path):
    model = UNet3D()
    how = init_from_onnx(model, path)
    err = check_against_onnx(model, path)
    print(f"member {path}: {how}; max |torch - onnxruntime| = {err:.2e}", flush=True)
    if not err < 1e-3:
        raise SystemExit(f"{path}: weights do not reproduce the ONNX model (max abs diff {err:.2e})")
    card_path = os.path.join(os.path.dirname(os.path.abspath(path)), "model-card.json")
    card = json.load(open(card_path)) if os.path.exists(card_path) else {}
    tr = card.get("training", {})
    return model, {"source": path, "steps": int(tr.get("steps", 0)), "duration_s": int(tr.get("duration_s", 0)),
                   "version": card.get("version")}


def member_from_ckpt(path):
    ck = torch.load(path, weights_only=False, map_location="cpu")
    model = UNet3D()
    model.load_state_dict(ck["model"])
    print(f"member {path}: step {ck['step']} of its run", flush=True)
    return model, {"source": path, "steps": int(ck["step"]) + int(ck.get("prior_steps", 0)),
                   "duration_s": int(round(ck["elapsed_s"])), "data": ck.get("data")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--member-onnx", action="append", default=[])
    ap.add_argument("--member-ckpt", action="append", default=[])
    ap.add_argument("--command", default="models/train.sh")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--version", required=True)
    ap.add_argument("--fused-overlap", type=float, default=None,
                    help="the card's fused_overlap: the sliding window's overlap for CTs the pipeline fuses across "
                         "time points (0.4: two 80-voxel windows per axis up to 128 voxels, not three)")
    ap.add_argument("--grid-shift", type=float, nargs=3, action="append", default=[], metavar=("X", "Y", "Z"),
                    help="a test-time grid shift for the card's grid_shifts_voxels, in model voxels (repeatable)")
    ap.add_argument("--history", required=True, help="free text for the card's training.history")
    a = ap.parse_args()
    torch.set_num_threads(2)
    members = [member_from_onnx(p) for p in a.member_onnx] + [member_from_ckpt(p) for p in a.member_ckpt]
    if len(members) < 2:
        raise SystemExit("an ensemble needs at least two members")
    models = [m for m, _ in members]
    ensemble = MeanSoftmax(models).eval()
    for m in models:
        m.eval()
    os.makedirs(a.out_dir, exist_ok=True)
    export_onnx(ensemble, os.path.join(a.out_dir, "model.onnx"))
    # the exported output, softmaxed, is the members' mean probability
    x = torch.randn(1, 1, 32, 48, 64)
    with torch.no_grad():
        want = torch.stack([torch.softmax(m(x), 1) for m in models]).mean(0)
        got = torch.softmax(ensemble(x), 1)
    err = float((got - want).abs().max())
    print(f"softmax(output) vs mean member probability: max abs diff {err:.2e}")
    assert err < 1e-5
    data = next((i["data"] for _, i in members if i.get("data")), None)
    n_params = sum(p.numel() for p in ensemble.parameters())
    write_card(a.out_dir, a.version, {
        "command": a.command,
        "seed": a.seed,
        "data": data_description(data) if data else "see the members' cards",
        # members fine-tuned from one another share their training: the card gives the longest member's
        # training, each member's own under "members" (history says how they descend)
        "steps": int(max(i["steps"] for _, i in members)),
        "duration_s": max(i["duration_s"] for _, i in members),
        "history": a.history,
        "members": [{k: v for k, v in i.items() if k != "data"} for _, i in members],
        "architecture": f"mean softmax of {len(models)} 3D U-Nets (each 5 levels, 8-16-32-64-128 ch, InstanceNorm, "
                        f"LeakyReLU); output log(mean probability) as logits; {n_params} parameters in all",
    }, fused_overlap=a.fused_overlap, grid_shifts=[list(s) for s in a.grid_shift])


if __name__ == "__main__":
    main()
