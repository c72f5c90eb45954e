"""Take one member out of an ensemble exported by export_ensemble.py, as a model directory of its own.

The member's weights are copied from the ensemble ONNX (train.init_from_onnx on the whole ensemble, checked
against onnxruntime), exported alone (export.export_onnx) and given a card whose training block is that
member's entry in the ensemble card. Used to fine-tune one member further (train.py --init-onnx) and to
compare members and their combinations (compare_members.py).

Usage: extract_member.py --ensemble models/ct-organs --index K --out-dir DIR
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from export import export_onnx, write_card  # noqa: E402
from export_ensemble import MeanSoftmax  # noqa: E402
from train import check_against_onnx, init_from_onnx  # noqa: E402
from unet import UNet3D  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ensemble", required=True, help="model directory of the ensemble (card + ONNX)")
    ap.add_argument("--index", type=int, required=True, help="which member (0-based, in the card's order)")
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    torch.set_num_threads(2)
    card = json.load(open(os.path.join(a.ensemble, "model-card.json")))
    members = card["training"].get("members")
    if not members or not 0 <= a.index < len(members):
        raise SystemExit(f"{a.ensemble}: the card lists {len(members or [])} members; no member {a.index}")
    onnx_path = os.path.join(a.ensemble, card["onnx"])
    ensemble = MeanSoftmax([UNet3D() for _ in members])
    how = init_from_onnx(ensemble, onnx_path)
    err = check_against_onnx(ensemble, onnx_path)
    print(f"{onnx_path}: {how}; ensemble max |torch - onnxruntime| = {err:.2e}", flush=True)
    if not err < 1e-3:
        raise SystemExit(f"{onnx_path}: weights do not reproduce the ensemble (max abs diff {err:.2e})")
    member = ensemble.members[a.index].eval()
    os.makedirs(a.out_dir, exist_ok=True)
    export_onnx(member, os.path.join(a.out_dir, "model.onnx"))
    info = members[a.index]
    write_card(a.out_dir, info.get("version") or f"{card['version']}-member{a.index}", {
        "command": card["training"]["command"],
        "seed": card["training"]["seed"],
        "data": card["training"]["data"],
        "steps": int(info["steps"]),
        "duration_s": int(info["duration_s"]),
        "history": f"member {a.index} of ensemble {card['name']} {card['version']} (source: {info['source']})",
        "architecture": "3D U-Net, 5 levels (8-16-32-64-128 ch), InstanceNorm, LeakyReLU, "
                        f"{sum(p.numel() for p in member.parameters())} parameters",
    })


if __name__ == "__main__":
    main()
