"""Train the CT organ U-Net on cached phantoms + SynthSeg-style images (CPU).

Usage: train.py --cache DIR --out CKPT_DIR --steps N [--resume CKPT | --init CKPT | --init-onnx MODEL.onnx]
                [--max-minutes M] [--lr-minutes M] ...   (see --help; models/train.sh has the shipped runs)
Writes CKPT_DIR/last.pt (every 100 steps and at the end) and CKPT_DIR/best.pt (best mean validation Dice
over the 4 organs). Logs to stdout (tee it into ct-organs/training-log.txt).
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


def load_cache(d, extra_val=(), tissues=None):
    """(training items, validation items) of the cache: VAL_NAMES and `extra_val` are validation. `tissues`, a
    dict, receives the tissue map of each training item whose file has one (name -> `tis`)."""
    train, val = [], []
    for f in sorted(glob.glob(os.path.join(d, "*.npz"))):
        name = os.path.basename(f)[:-4]
        z = np.load(f)
        item = (name, z["img"], z["lab"])
        is_val = name in VAL_NAMES or name in extra_val
        (val if is_val else train).append(item)
        if tissues is not None and not is_val and "tis" in z.files:
            tissues[name] = z["tis"]
    return train, val


# Tissue::ALL indices (crates/mrt-phantom/src/tissue.rs) of the tissues around the organs that
# --tissue-hu-sd shifts: fat, muscle, soft tissue, aorta, vena cava, stomach, bowel. The organs have their own
# shifts (augment); air, gas, lung and bone keep theirs.
SHIFTED_TISSUES = (1, 2, 3, 7, 8, 9, 10)
TISSUE_COUNT = 21


def offset_field(off, tis):
    """HU field of the per-tissue offsets `off` (indexed by Tissue::ALL) over the tissue map `tis`, smoothed over
    ~1 voxel (the phantom CT's own blur) so that no new step edge appears where two tissues meet."""
    return ndimage.gaussian_filter(off[tis], 0.6)


def tissue_shift(tis, rng, sd_hu):
    """HU field that moves each of SHIFTED_TISSUES by its own N(0, sd_hu) offset, smoothed over ~1 voxel (the
    phantom CT's own blur) so that no new step edge appears where two tissues meet. A stomach or muscle as bright
    as the spleen beside it, which the generator's 6 HU spread rarely draws, teaches the network to find an organ
    by its shape and place rather than by its CT number alone."""
    off = np.zeros(TISSUE_COUNT, np.float32)
    off[list(SHIFTED_TISSUES)] = rng.normal(0.0, sd_hu, len(SHIFTED_TISSUES))
    return offset_field(off, tis)


# Tissue::ALL indices of the neighbours --tissue-match-prob makes as bright as an organ beside them: muscle, soft
# tissue, stomach, bowel (the tissues a real abdomen puts against the liver and spleen without a fat plane).
MATCHED_TISSUES = (2, 3, 9, 10)
MATCHED_ORGANS = (1, 4)  # labels of the organs whose CT number a neighbour takes: liver, spleen
MATCH_SD_HU = 6.0  # spread of the matched neighbour around the organ's median (the generator's own organ spread)


def tissue_match(x, y, tis, rng):
    """HU field that moves one neighbour tissue in the patch (MATCHED_TISSUES, chosen at random among those
    present) onto the median CT number of an organ in the patch (liver or spleen) plus N(0, MATCH_SD_HU), smoothed
    like tissue_shift; None where the patch holds no such pair. An unenhanced stomach touching the spleen at the
    same CT number (held-out clinical seed 9015) can only be told apart by shape, which this makes the network
    learn instead of leaning on a contrast the generator happens to draw."""
    organs = [c for c in MATCHED_ORGANS if (y == c).sum() >= 50]
    present = [t for t in MATCHED_TISSUES if (tis == t).sum() >= 50]
    if not organs or not present:
        return None
    organ = organs[int(rng.integers(0, len(organs)))]
    t = present[int(rng.integers(0, len(present)))]
    off = np.zeros(TISSUE_COUNT, np.float32)
    off[t] = np.median(x[y == organ]) - np.median(x[tis == t]) + rng.normal(0.0, MATCH_SD_HU)
    return offset_field(off, tis)


KIDNEY_LEFT, SPLEEN = 2, 4
CONTACT_REACH_VOXELS = 4  # 12 mm on the 3 mm grid


def contact_voxels(lab, reach=CONTACT_REACH_VOXELS):
    """Flat indices of the voxels where the left kidney and the spleen meet: left-kidney voxels within `reach`
    voxels of the spleen and spleen voxels within `reach` of the left kidney (empty when they lie further
    apart). Model 1.3.0's commonest error is spleen called left kidney across this contact."""
    kl, sp = lab == KIDNEY_LEFT, lab == SPLEEN
    if not kl.any() or not sp.any():
        return np.zeros(0, np.int64)
    near_sp = ndimage.distance_transform_edt(~sp) <= reach
    near_kl = ndimage.distance_transform_edt(~kl) <= reach
    return np.flatnonzero((kl & near_sp) | (sp & near_kl))


def cached_contact(cache, key, lab):
    """contact_voxels(lab), computed once per training volume (two distance transforms of the whole volume)."""
    if key not in cache:
        cache[key] = contact_voxels(lab)
    return cache[key]


def random_patch(img, lab, rng, fg_prob=0.6, organ_w=None, contact_prob=0.0, contact=None, tis=None):
    """Random PATCH crop (air-padded when the volume is smaller), foreground-oversampled.
    organ_w: relative probabilities of centring on liver, kidney_left, kidney_right, spleen (among the
    organs present); None = uniform. contact_prob: probability of centring on the left-kidney/spleen contact
    instead (where the volume has one); contact(lab) returns its flat indices in the padded volume.
    Returns (image, labels, tissues), tissues the same crop of `tis` (None without one)."""
    pad = [(max(0, (p - s + 1) // 2 + 1), max(0, (p - s + 1) // 2 + 1)) for p, s in zip(PATCH, img.shape)]
    if any(a for a, _ in pad):
        img = np.pad(img, pad, constant_values=AIR_HU)
        lab = np.pad(lab, pad, constant_values=0)
        if tis is not None:
            tis = np.pad(tis, pad, constant_values=0)
    idx = contact(lab) if contact is not None and contact_prob > 0 and rng.random() < contact_prob else None
    if idx is not None and len(idx):
        ctr = np.unravel_index(int(rng.choice(idx)), lab.shape)
        ctr = [int(v + rng.integers(-p // 8, p // 8 + 1)) for v, p in zip(ctr, PATCH)]
    elif rng.random() < fg_prob:
        present = [c for c in range(1, NUM_CLASSES) if (lab == c).any()]
        if present and organ_w is not None:
            w = np.array([organ_w[c - 1] for c in present], float)
            c = int(rng.choice(present, p=w / w.sum())) if w.sum() > 0 else int(rng.choice(present))
        else:
            c = int(rng.choice(present)) if present else 0
        idx = np.flatnonzero(lab == c)
        ctr = np.unravel_index(int(rng.choice(idx)), lab.shape)
        ctr = [int(v + rng.integers(-p // 4, p // 4 + 1)) for v, p in zip(ctr, PATCH)]
    else:
        ctr = [int(rng.integers(0, s)) for s in img.shape]
    st = [int(np.clip(c - p // 2, 0, s - p)) for c, p, s in zip(ctr, PATCH, img.shape)]
    sl = tuple(slice(a, a + p) for a, p in zip(st, PATCH))
    return img[sl].astype(np.float32), lab[sl].copy(), None if tis is None else tis[sl]


def phantom_pool(ph, rng, clinical_prob=None):
    """The phantoms one draw chooses among: all of them (clinical_prob None), or the clinical-preset ones with
    probability clinical_prob and the others otherwise (all of them where one kind is missing)."""
    if clinical_prob is None:
        return ph
    clinical = [t for t in ph if t[0].startswith("phantom_clinical_")]
    other = [t for t in ph if not t[0].startswith("phantom_clinical_")]
    if not clinical or not other:
        return ph
    return clinical if rng.random() < clinical_prob else other


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


def confusion_loss(p, target):
    """Mean probability of left kidney on true spleen voxels plus mean probability of spleen on true left-kidney
    voxels (each term only when that organ is in the patch): the swap CE spreads over all voxels, counted per
    organ so that a few hundred confused voxels weigh as much as the organ they belong to."""
    terms = []
    for true_c, wrong_c in ((SPLEEN, KIDNEY_LEFT), (KIDNEY_LEFT, SPLEEN)):
        m = target == true_c
        if bool(m.any()):
            terms.append(p[:, wrong_c][m].mean())
    return sum(terms) if terms else p.sum() * 0


def loss_fn(logits, target, ce_weight=None, dice_present=False, confusion_weight=0.0):
    """CE + soft Dice over the organ classes (+ confusion_weight x confusion_loss). dice_present: average the
    Dice term over the organs present in the patch only (an absent organ's soft Dice is ~0 whatever the
    prediction, a constant that dilutes the present organs' gradient; false positives of absent organs are
    still penalised by the CE term)."""
    ce = F.cross_entropy(logits, target, weight=ce_weight)
    p = torch.softmax(logits, 1)
    oh = F.one_hot(target, NUM_CLASSES).permute(0, 4, 1, 2, 3).float()
    dims = (0, 2, 3, 4)
    inter = (p * oh).sum(dims)
    den = p.sum(dims) + oh.sum(dims)
    dsc = (2 * inter + 1e-5) / (den + 1e-5)
    if dice_present:
        present = oh.sum(dims)[1:] > 0
        dl = 1 - dsc[1:][present].mean() if bool(present.any()) else dsc.sum() * 0
    else:
        dl = 1 - dsc[1:].mean()
    if confusion_weight > 0:
        dl = dl + confusion_weight * confusion_loss(p, target)
    return ce + dl, ce.item(), dl.item()


def forward(model, x, bf16=False):
    """Training forward pass; bf16: under CPU bfloat16 autocast with channels-last input (the model must have been
    moved to channels-last too), logits returned as float32 for the loss."""
    if not bf16:
        return model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x.to(memory_format=torch.channels_last_3d))
    return logits.float()


def init_from_onnx(model, path):
    """Copy the initializers of an exported model.onnx into `model`: by name where the exporter kept the
    parameter names, otherwise by order of first use in the graph (= the order the forward pass uses the
    parameters) with equal shapes. Returns a description of the matching."""
    import onnx
    from onnx import numpy_helper
    g = onnx.load(path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    sd = model.state_dict()
    new, by_name = {}, 0
    for k, v in sd.items():
        if k in inits and tuple(inits[k].shape) == tuple(v.shape):
            new[k] = torch.from_numpy(inits[k].copy())
            by_name += 1
    if len(new) < len(sd):
        # parameters in forward-use order (module call order, then weight, bias)
        order, seen = [], set()
        names = {m: n for n, m in model.named_modules()}
        hooks = [m.register_forward_pre_hook(lambda mod, inp: order.append(names[mod]))
                 for m in model.modules() if not list(m.children())]
        with torch.no_grad():
            model(torch.zeros(1, 1, 32, 32, 32))
        for h in hooks:
            h.remove()
        fwd = []
        for mn in order:
            for pn in ("weight", "bias"):
                k = f"{mn}.{pn}" if mn else pn
                if k in sd and k not in seen:
                    seen.add(k)
                    fwd.append(k)
        used, oinit = set(), []
        for node in g.node:
            for i in node.input:
                if i in inits and i not in used:
                    used.add(i)
                    oinit.append(i)
        rest_t = [k for k in fwd if k not in new]
        rest_o = [i for i in oinit if i not in new]
        if len(rest_t) != len(rest_o):
            raise ValueError(f"{path}: {len(rest_o)} unmatched initializers for {len(rest_t)} parameters")
        for k, i in zip(rest_t, rest_o):
            if tuple(inits[i].shape) != tuple(sd[k].shape):
                raise ValueError(f"{path}: shape mismatch {k} {tuple(sd[k].shape)} vs {i} {inits[i].shape}")
            new[k] = torch.from_numpy(inits[i].copy())
    missing = [k for k in sd if k not in new]
    if missing:
        raise ValueError(f"{path}: no initializer for {missing}")
    model.load_state_dict(new)
    return f"{by_name} by name, {len(sd) - by_name} by order/shape, of {len(sd)} tensors"


def check_against_onnx(model, path, seed=0):
    """Max |torch - onnxruntime| on a random normalised patch."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((1, 1, 48, 64, 64)).astype(np.float32))
    model.eval()
    with torch.no_grad():
        ref = model(x).numpy()
    model.train()
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    return float(np.abs(out - ref).max())


def validate(model, val, overlap=0.5):
    model.eval()
    res = {o: [] for o in ORGANS}
    with torch.no_grad():
        for name, img, lab in val:
            x, shp = pad_to_multiple(normalise(img.astype(np.float32)), value=float(normalise(np.float32(AIR_HU))))
            prob = sliding_window(lambda a: model(torch.from_numpy(a)).numpy(), x, overlap=overlap)
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
    ap.add_argument("--init-onnx", default=None,
                    help="initialise weights from an exported model.onnx (fresh optimiser, step 0); checked against onnxruntime")
    ap.add_argument("--prior-steps", type=int, default=None,
                    help="steps the --init-onnx model was already trained (for the model card; default: "
                         "training.steps of the model-card.json beside the ONNX, else 0)")
    ap.add_argument("--prior-seconds", type=float, default=None,
                    help="training seconds of the --init-onnx model (default: the card's training.duration_s, else 0)")
    ap.add_argument("--organ-sample-weights", default=None,
                    help="comma-separated relative weights liver,kidney_left,kidney_right,spleen for organ-centred patches")
    ap.add_argument("--dice-present", action="store_true", help="Dice term over the organs present in the patch only")
    ap.add_argument("--lr-minutes", type=float, default=None,
                    help="cosine progress = max(step/--steps, minutes/--lr-minutes): anneals within a wall-clock budget")
    ap.add_argument("--val-overlap", type=float, default=0.5, help="sliding-window overlap during validation")
    ap.add_argument("--val-at-start", action="store_true", help="validate before the first step (baseline for best.pt)")
    ap.add_argument("--val-small", type=int, default=2, help="small validation phantoms used (of 5), plus the clinical one")
    ap.add_argument("--contact-prob", type=float, default=0.0,
                    help="probability of centring a patch on the left-kidney/spleen contact (where there is one)")
    ap.add_argument("--confusion-weight", type=float, default=0.0,
                    help="weight of the left-kidney/spleen confusion term added to the loss (see confusion_loss)")
    ap.add_argument("--clinical-prob", type=float, default=None,
                    help="probability that a phantom draw takes a clinical-preset phantom (default: every phantom "
                         "equally likely, whatever its preset)")
    ap.add_argument("--val-extra", default="",
                    help="comma-separated cache names kept out of training as further validation cases")
    ap.add_argument("--tissue-hu-sd", type=float, default=0.0,
                    help="SD (HU) of a per-tissue offset added to fat, muscle, soft tissue, vessels, stomach and bowel "
                         "of phantoms whose cache file has a tissue map (build_cache.py), see tissue_shift")
    ap.add_argument("--tissue-hu-prob", type=float, default=0.5, help="fraction of phantom patches --tissue-hu-sd shifts")
    ap.add_argument("--tissue-match-prob", type=float, default=0.0,
                    help="fraction of phantom patches (with a tissue map) in which one neighbour tissue takes the CT "
                         "number of the liver or spleen beside it, see tissue_match; applied after --tissue-hu-sd")
    ap.add_argument("--bf16", action="store_true",
                    help="train under CPU bfloat16 autocast with channels-last 3D tensors (weights, optimiser and loss stay "
                         "float32; validation and export run in float32): ~2.5x the steps per second on AVX512-BF16 CPUs")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    extra_val = set(filter(None, a.val_extra.split(",")))
    tissues = {}
    train, val = load_cache(a.cache, extra_val, tissues)
    ph = [t for t in train if t[0].startswith("phantom_")]
    sy = [t for t in train if t[0].startswith("synth_")]
    print(f"train: {len(ph)} phantoms ({len(tissues)} with tissue maps), {len(sy)} synthetic; val: {len(val)} phantoms "
          f"({', '.join(v[0] for v in val)})", flush=True)
    model = UNet3D()
    if a.bf16:
        model = model.to(memory_format=torch.channels_last_3d)
    print(f"UNet3D params: {count_params(model)}; patch {PATCH}; clip {CLIP_HU}", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=1e-5)
    step, elapsed0, prior_steps = 0, 0.0, 0
    ce_w = torch.tensor([float(v) for v in a.ce_weights.split(",")]) if a.ce_weights else None
    organ_w = [float(v) for v in a.organ_sample_weights.split(",")] if a.organ_sample_weights else None
    if a.init:
        ck = torch.load(a.init, weights_only=False)
        model.load_state_dict(ck["model"])
        elapsed0 = ck.get("elapsed_s", 0.0)
        prior_steps = ck["step"] + ck.get("prior_steps", 0)
        print(f"initialised from {a.init} (trained {ck['step']} steps, {elapsed0:.0f}s)", flush=True)
    if a.init_onnx:
        how = init_from_onnx(model, a.init_onnx)
        err = check_against_onnx(model, a.init_onnx)
        print(f"initialised from {a.init_onnx} ({how}); check: max |torch - onnxruntime| = {err:.2e} on a random "
              f"[1,1,48,64,64] patch", flush=True)
        if not err < 1e-3:
            raise SystemExit("--init-onnx check failed (max abs diff >= 1e-3)")
        card_path = os.path.join(os.path.dirname(os.path.abspath(a.init_onnx)), "model-card.json")
        tr = json.load(open(card_path)).get("training", {}) if os.path.exists(card_path) else {}
        prior_steps = a.prior_steps if a.prior_steps is not None else int(tr.get("steps", 0))
        elapsed0 = a.prior_seconds if a.prior_seconds is not None else float(tr.get("duration_s", 0.0))
        print(f"prior training of the initial model: {prior_steps} steps, {elapsed0:.0f}s", flush=True)
    if a.resume:
        ck = torch.load(a.resume, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, elapsed0, prior_steps = ck["step"], ck.get("elapsed_s", 0.0), ck.get("prior_steps", 0)
        print(f"resumed from {a.resume} at step {step} ({elapsed0:.0f}s trained)", flush=True)
    rng = np.random.default_rng([a.seed, step])
    t_start = time.time()
    hist = []

    def save(tag, extra=None):
        ck = {**(extra or {}), "model": model.state_dict(), "opt": opt.state_dict(), "step": step,
              "elapsed_s": elapsed0 + time.time() - t_start, "prior_steps": prior_steps,
              "data": {"phantoms": len(ph), "synthetic": len(sy)}}
        torch.save(ck, os.path.join(a.out, tag))

    val_sel = [x for x in val if "small" in x[0]][: a.val_small] + [x for x in val if "clinical" in x[0]]
    best = [-1.0, None]

    def run_val():
        """Validate; keep best.pt (best mean Dice over the organs)."""
        t0 = time.time()
        v = validate(model, val_sel, a.val_overlap)
        score = float(np.mean([m for m, _ in v.values()]))
        tag = ""
        if score > best[0]:
            best[:] = [score, step]
            save("best.pt", {"val": v, "val_mean": score})
            tag = " new best (best.pt)"
        print(f"val step {step}: " + ", ".join(f"{o} {m:.4f} (min {mn:.4f})" for o, (m, mn) in v.items())
              + f"; mean {score:.4f} [{time.time() - t0:.0f}s]{tag}", flush=True)

    print(f"validation cases: {', '.join(x[0] for x in val_sel)}", flush=True)
    if a.val_at_start:
        run_val()
    model.train()
    t_log = time.time()
    contact_cache = {}  # name -> flat contact indices in the padded volume
    while step < a.steps:
        frac = step / max(1, a.steps)
        if a.lr_minutes:
            # wall-clock cosine: reaches --lr-end after --lr-minutes even when the machine is slower than planned
            frac = min(1.0, max(frac, (time.time() - t_start) / 60 / a.lr_minutes))
        lr = a.lr_end + 0.5 * (a.lr - a.lr_end) * (1 + np.cos(np.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        use_synth = sy and rng.random() < a.synth_prob
        pool = sy if use_synth else phantom_pool(ph, rng, a.clinical_prob)
        name, img, lab = pool[int(rng.integers(0, len(pool)))]
        x, y, t = random_patch(img, lab, rng, a.fg_prob, organ_w, a.contact_prob,
                               lambda padded, key=name: cached_contact(contact_cache, key, padded), tissues.get(name))
        if t is not None and a.tissue_hu_sd > 0 and rng.random() < a.tissue_hu_prob:
            x += tissue_shift(t, rng, a.tissue_hu_sd)
        # no draw when off, so that runs before this option replay the same random stream
        if t is not None and a.tissue_match_prob > 0 and rng.random() < a.tissue_match_prob:
            shift = tissue_match(x, y, t, rng)
            if shift is not None:
                x += shift
        x, y = augment(x, y, rng, not use_synth)
        xt = torch.from_numpy(normalise(x))[None, None]
        yt = torch.from_numpy(y.astype(np.int64))[None]
        logits = forward(model, xt, a.bf16)
        loss, ce, dl = loss_fn(logits, yt, ce_w, a.dice_present, a.confusion_weight)
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
            print(f"step {step} loss {h[0]:.4f} ce {h[1]:.4f} dice_loss(+confusion) {h[2]:.4f} lr {lr:.2e} "
                  f"{dt:.2f}s/step elapsed {elapsed0 + time.time() - t_start:.0f}s", flush=True)
        if step % 100 == 0:
            save("last.pt")
        if step % a.val_every == 0 or step == a.steps:
            run_val()
            # pick up cache files written after start (the cache may still be building)
            n_before = len(ph) + len(sy)
            train, _ = load_cache(a.cache, extra_val, tissues)
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
    if step % a.val_every != 0 and step != a.steps:
        run_val()
    save("last.pt")
    if best[1] is not None:
        print(f"best: step {best[1]}, mean validation Dice {best[0]:.4f} (best.pt)", flush=True)
    print(f"done: step {step}, trained {elapsed0 + time.time() - t_start:.0f}s total", flush=True)


if __name__ == "__main__":
    main()
