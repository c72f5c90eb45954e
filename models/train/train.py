"""Train the CT organ U-Net on cached phantoms + SynthSeg-style images (CPU).

Usage: train.py --cache DIR --out CKPT_DIR --steps N [--resume CKPT] [--max-minutes M]
Logs to stdout (tee it into ct-organs/training-log.txt).
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

sys.path.insert(0, os.path.dirname(__file__))
from common import CLIP_HU, NUM_CLASSES, ORGANS, PATCH, normalise, pad_to_multiple, sliding_window, dice  # noqa: E402
from unet import UNet3D, count_params  # noqa: E402

# phantoms kept out of training, used for validation during training
VAL_NAMES = {f"phantom_small_{s}" for s in range(100055, 100060)} | {"phantom_clinical_200001"}
AIR_HU = -1000.0


def load_cache(d):
    train, val = [], []
    for f in sorted(glob.glob(os.path.join(d, "*.npz"))):
        name = os.path.basename(f)[:-4]
        z = np.load(f)
        item = (name, z["img"], z["lab"])
        (val if name in VAL_NAMES else train).append(item)
    return train, val


def random_patch(img, lab, rng, fg_prob=0.6):
    """Random PATCH crop (air-padded when the volume is smaller), foreground-oversampled."""
    pad = [(max(0, (p - s + 1) // 2 + 1), max(0, (p - s + 1) // 2 + 1)) for p, s in zip(PATCH, img.shape)]
    if any(a for a, _ in pad):
        img = np.pad(img, pad, constant_values=AIR_HU)
        lab = np.pad(lab, pad, constant_values=0)
    if rng.random() < fg_prob:
        present = [c for c in range(1, NUM_CLASSES) if (lab == c).any()]
        c = int(rng.choice(present)) if present else 0
        idx = np.flatnonzero(lab == c)
        ctr = np.unravel_index(int(rng.choice(idx)), lab.shape)
        ctr = [int(v + rng.integers(-p // 4, p // 4 + 1)) for v, p in zip(ctr, PATCH)]
    else:
        ctr = [int(rng.integers(0, s)) for s in img.shape]
    st = [int(np.clip(c - p // 2, 0, s - p)) for c, p, s in zip(ctr, PATCH, img.shape)]
    sl = tuple(slice(a, a + p) for a, p in zip(st, PATCH))
    return img[sl].astype(np.float32), lab[sl].copy()


def augment(img, lab, rng, is_phantom):
    """Intensity/geometry augmentation on a HU patch (labels move with the image; never L/R flipped)."""
    if is_phantom and rng.random() < 0.7:
        # per-organ intensity shifts; contrast-phase-like enhancement
        phase = rng.choice(3, p=[0.5, 0.35, 0.15])
        enh = {0: (0, 0, 0, 0), 1: (50, 120, 120, 70), 2: (30, 170, 170, 90)}[int(phase)]
        for k, e in zip((1, 2, 3, 4), enh):
            m = lab == k
            if m.any():
                img[m] += e * rng.uniform(0.6, 1.2) + rng.uniform(-20, 20)
    if rng.random() < 0.25:
        ang = rng.uniform(-12, 12)
        img = ndimage.rotate(img, ang, axes=(1, 2), reshape=False, order=1, mode="constant", cval=AIR_HU)
        lab = ndimage.rotate(lab, ang, axes=(1, 2), reshape=False, order=0, mode="constant", cval=0)
    if rng.random() < 0.2:
        img = ndimage.gaussian_filter(img, [rng.uniform(0.2, 1.2), rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)])
    if rng.random() < 0.6:
        sd = float(np.exp(rng.uniform(np.log(3), np.log(45))))
        n = rng.standard_normal(img.shape).astype(np.float32)
        s = rng.uniform(0, 1.0)
        if s > 0.2:
            n = ndimage.gaussian_filter(n, s)
            n /= n.std() + 1e-6
        img = img + sd * n
    img = img * rng.uniform(0.95, 1.05) + rng.uniform(-20, 20)
    return img, lab


def loss_fn(logits, target, ce_weight=None):
    ce = F.cross_entropy(logits, target, weight=ce_weight)
    p = torch.softmax(logits, 1)
    oh = F.one_hot(target, NUM_CLASSES).permute(0, 4, 1, 2, 3).float()
    dims = (0, 2, 3, 4)
    inter = (p * oh).sum(dims)
    den = p.sum(dims) + oh.sum(dims)
    dsc = (2 * inter + 1e-5) / (den + 1e-5)
    dl = 1 - dsc[1:].mean()
    return ce + dl, ce.item(), dl.item()


def validate(model, val):
    model.eval()
    res = {o: [] for o in ORGANS}
    with torch.no_grad():
        for name, img, lab in val:
            x, shp = pad_to_multiple(normalise(img.astype(np.float32)), value=float(normalise(np.float32(AIR_HU))))
            prob = sliding_window(lambda a: model(torch.from_numpy(a)).numpy(), x)
            pred = prob.argmax(0)[: shp[0], : shp[1], : shp[2]]
            for k, o in enumerate(ORGANS, 1):
                if (lab == k).any():
                    res[o].append(dice(pred == k, lab == k))
    model.train()
    return {o: (float(np.mean(v)), float(np.min(v))) for o, v in res.items() if v}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, required=True, help="total steps (including resumed ones)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-end", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--resume", default=None)
    ap.add_argument("--max-minutes", type=float, default=1e9)
    ap.add_argument("--stop-step", type=int, default=None, help="stop at this step (the lr schedule still spans --steps)")
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument("--synth-prob", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fg-prob", type=float, default=0.6, help="fraction of patches centred on an organ")
    ap.add_argument("--ce-weights", default=None, help="comma-separated class weights for cross-entropy")
    ap.add_argument("--init", default=None, help="initialise weights from a checkpoint (fresh optimiser, step 0)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    train, val = load_cache(a.cache)
    ph = [t for t in train if t[0].startswith("phantom_")]
    sy = [t for t in train if t[0].startswith("synth_")]
    print(f"train: {len(ph)} phantoms, {len(sy)} synthetic; val: {len(val)} phantoms ({', '.join(v[0] for v in val)})", flush=True)
    model = UNet3D()
    print(f"UNet3D params: {count_params(model)}; patch {PATCH}; clip {CLIP_HU}", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=1e-5)
    step, elapsed0, prior_steps = 0, 0.0, 0
    ce_w = torch.tensor([float(v) for v in a.ce_weights.split(",")]) if a.ce_weights else None
    if a.init:
        ck = torch.load(a.init, weights_only=False)
        model.load_state_dict(ck["model"])
        elapsed0 = ck.get("elapsed_s", 0.0)
        prior_steps = ck["step"] + ck.get("prior_steps", 0)
        print(f"initialised from {a.init} (trained {ck['step']} steps, {elapsed0:.0f}s)", flush=True)
    if a.resume:
        ck = torch.load(a.resume, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, elapsed0, prior_steps = ck["step"], ck.get("elapsed_s", 0.0), ck.get("prior_steps", 0)
        print(f"resumed from {a.resume} at step {step} ({elapsed0:.0f}s trained)", flush=True)
    rng = np.random.default_rng([a.seed, step])
    t_start = time.time()
    hist = []

    def save(tag):
        ck = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
              "elapsed_s": elapsed0 + time.time() - t_start, "prior_steps": prior_steps,
              "data": {"phantoms": len(ph), "synthetic": len(sy)}}
        torch.save(ck, os.path.join(a.out, tag))

    model.train()
    t_log = time.time()
    while step < a.steps:
        frac = step / max(1, a.steps)
        lr = a.lr_end + 0.5 * (a.lr - a.lr_end) * (1 + np.cos(np.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        use_synth = sy and rng.random() < a.synth_prob
        name, img, lab = (sy if use_synth else ph)[int(rng.integers(0, len(sy if use_synth else ph)))]
        x, y = random_patch(img, lab, rng, a.fg_prob)
        x, y = augment(x, y, rng, not use_synth)
        xt = torch.from_numpy(normalise(x))[None, None]
        yt = torch.from_numpy(y.astype(np.int64))[None]
        logits = model(xt)
        loss, ce, dl = loss_fn(logits, yt, ce_w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        hist.append((loss.item(), ce, dl))
        if step % 25 == 0:
            h = np.mean(hist, 0)
            hist = []
            dt = (time.time() - t_log) / 25
            t_log = time.time()
            print(f"step {step} loss {h[0]:.4f} ce {h[1]:.4f} dice_loss {h[2]:.4f} lr {lr:.2e} "
                  f"{dt:.2f}s/step elapsed {elapsed0 + time.time() - t_start:.0f}s", flush=True)
        if step % 100 == 0:
            save("last.pt")
        if step % a.val_every == 0 or step == a.steps:
            t0 = time.time()
            v = validate(model, [x for x in val if "small" in x[0]][:2] + [x for x in val if "clinical" in x[0]])
            print(f"val step {step}: " + ", ".join(f"{o} {m:.4f} (min {mn:.4f})" for o, (m, mn) in v.items())
                  + f" [{time.time() - t0:.0f}s]", flush=True)
            # pick up cache files written after start (the cache may still be building)
            n_before = len(ph) + len(sy)
            train, _ = load_cache(a.cache)
            ph = [t for t in train if t[0].startswith("phantom_")]
            sy = [t for t in train if t[0].startswith("synth_")]
            if len(ph) + len(sy) != n_before:
                print(f"cache reloaded: {len(ph)} phantoms, {len(sy)} synthetic", flush=True)
        if a.stop_step is not None and step >= a.stop_step:
            print(f"stopping at step {step}: --stop-step", flush=True)
            break
        if (time.time() - t_start) / 60 > a.max_minutes:
            print(f"stopping at step {step}: --max-minutes {a.max_minutes} reached", flush=True)
            break
    save("last.pt")
    print(f"done: step {step}, trained {elapsed0 + time.time() - t_start:.0f}s total", flush=True)


if __name__ == "__main__":
    main()
