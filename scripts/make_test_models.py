"""Builds small ONNX models with known behaviour for mrt-segment's tests (not for patients).

hu-bands: each voxel goes to the class whose HU centre is nearest: logits_c = -((x - mu_c) / 0.1)^2
on the normalised input x = (clip(HU, -1000, 1000) - 0) / 1000, classes background (-1000 HU),
"liver" (60 HU), "kidney_left" (150 HU), "kidney_right" (250 HU), "spleen" (350 HU). Elementwise, so
the expected labels of any CT follow from its HU values alone.

Usage: make_test_models.py OUT_DIR  (writes OUT_DIR/hu-bands/{model.onnx, model-card.json})
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CENTRES_HU = [-1000.0, 60.0, 150.0, 250.0, 350.0]
NAMES = ["background", "liver", "kidney_left", "kidney_right", "spleen"]


def hu_bands(out_dir):
    mu = np.array(CENTRES_HU, dtype=np.float32).reshape(1, 5, 1, 1, 1) / 1000.0
    inp = helper.make_tensor_value_info("ct", TensorProto.FLOAT, ["N", 1, "D", "H", "W"])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5, "D", "H", "W"])
    nodes = [
        helper.make_node("Sub", ["ct", "mu"], ["d"]),
        helper.make_node("Div", ["d", "width"], ["z"]),
        helper.make_node("Mul", ["z", "z"], ["z2"]),
        helper.make_node("Neg", ["z2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "hu_bands", [inp], [out],
        initializer=[numpy_helper.from_array(mu, "mu"),
                     numpy_helper.from_array(np.array(0.1, dtype=np.float32), "width")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="mrtdose-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.onnx")
    onnx.save(model, path)
    sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
    card = {
        "schema": "mrtdose.model-card.v1",
        "name": "hu-bands-test",
        "version": "0.0.1",
        "onnx": "model.onnx",
        "sha256": sha,
        "opset": 17,
        "labels": {str(i): n for i, n in enumerate(NAMES)},
        "input": {"name": "ct", "layout": "NCDHW", "orientation": "LPS", "spacing_mm": [3.0, 3.0, 3.0]},
        "output": {"name": "logits", "layout": "NCDHW", "kind": "logits"},
        "intensity": {"clip_hu": [-1000.0, 1000.0], "subtract": 0.0, "divide": 1000.0},
        "patch_size": [32, 32, 32],
        "overlap": 0.5,
        "size_multiple": 8,
        "purpose": "tests only: nearest HU centre per voxel",
    }
    with open(os.path.join(out_dir, "model-card.json"), "w") as f:
        json.dump(card, f, indent=2)


if __name__ == "__main__":
    hu_bands(os.path.join(sys.argv[1], "hu-bands"))
