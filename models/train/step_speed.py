"""Seconds per training step of the U-Net in float32 and under bfloat16 autocast (channels-last), side by side
in one process: what `train.py --bf16` buys on this CPU. Random data; same patch, batch 1, loss and optimiser as
train.py. The two modes alternate, so load from other processes falls on both alike.

Usage: step_speed.py [--steps 10] [--threads 2]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import NUM_CLASSES, PATCH  # noqa: E402
from train import forward, loss_fn  # noqa: E402
from unet import UNet3D  # noqa: E402


def make(bf16):
    torch.manual_seed(0)
    m = UNet3D()
    if bf16:
        m = m.to(memory_format=torch.channels_last_3d)
    return m, torch.optim.Adam(m.parameters(), lr=1e-4)


def step(m, opt, x, y, bf16):
    t = time.perf_counter()
    loss, _, _ = loss_fn(forward(m, x, bf16), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x = torch.randn(1, 1, *PATCH)
    y = torch.randint(0, NUM_CLASSES, (1, *PATCH))
    runs = {False: make(False), True: make(True)}
    times = {False: [], True: []}
    for i in range(a.steps + 2):
        for bf16, (m, opt) in runs.items():
            dt = step(m, opt, x, y, bf16)
            if i >= 2:  # the first steps include one-off allocation and kernel selection
                times[bf16].append(dt)
    f32, b16 = np.median(times[False]), np.median(times[True])
    print(f"patch {PATCH}, batch 1, {a.threads} threads, median of {a.steps} steps: float32 {f32:.3f} s/step, "
          f"bfloat16 autocast + channels-last {b16:.3f} s/step, ratio {f32 / b16:.2f}")


if __name__ == "__main__":
    main()
