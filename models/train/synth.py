"""SynthSeg-style synthetic CT from real abdominal label maps (domain randomisation).

Each template label map (TotalSegmentator / AMOS, CC BY 4.0) is randomly deformed, every structure
gets a random CT-like intensity (CT-prior regime with contrast phases, or fully random regime),
texture, bias field, partial-volume blur, simulated acquisition resolution, correlated noise, streaks
and field-of-view truncation. Output: HU volume and label volume on the model grid (LPS, [z,y,x],
SPACING_MM). Only liver / kidney_left / kidney_right / spleen are kept as labels.
Left/right is never flipped (a flip would require swapping the kidney labels).
"""
import json
import numpy as np
import nibabel as nib
from scipy import ndimage

from common import SPACING_MM, to_lps_zyx, TOTALSEG_TO_MODEL, AMOS_TO_MODEL

WORK_MM = SPACING_MM / 2.0  # intermediate grid (1.5 mm); output is 2x2x2 block average

# tissue classes
AIR, FAT, MUSCLE, BONE, LUNG, GUT, FLUID, VESSEL_A, VESSEL_V, HEART, SOFT, LIVER, SPLEEN, KIDNEY, CYST, CARTILAGE, PANCREAS = range(17)


def totalseg_class(name):
    n = name
    if n == "liver":
        return LIVER
    if n == "spleen":
        return SPLEEN
    if n in ("kidney_left", "kidney_right"):
        return KIDNEY
    if n.startswith("kidney_cyst"):
        return CYST
    if n.startswith(("vertebrae", "rib_", "hip_", "femur", "sacrum", "sternum", "clavicula", "scapula", "humerus", "skull")):
        return BONE
    if n == "costal_cartilages":
        return CARTILAGE
    if n.startswith("lung") or n == "trachea":
        return LUNG
    if n in ("colon", "small_bowel", "duodenum", "stomach", "esophagus"):
        return GUT
    if n in ("gallbladder", "urinary_bladder"):
        return FLUID
    if n in ("aorta", "brachiocephalic_trunk", "subclavian_artery_left", "subclavian_artery_right",
             "common_carotid_artery_left", "common_carotid_artery_right", "iliac_artery_left", "iliac_artery_right"):
        return VESSEL_A
    if "vena" in n or "vein" in n:
        return VESSEL_V
    if n in ("heart", "atrial_appendage_left"):
        return HEART
    if n.startswith(("autochthon", "gluteus", "iliopsoas")):
        return MUSCLE
    if n == "pancreas":
        return PANCREAS
    return SOFT


AMOS_CLASSES = {1: SPLEEN, 2: KIDNEY, 3: KIDNEY, 4: FLUID, 5: GUT, 6: LIVER, 7: GUT, 8: VESSEL_A, 9: VESSEL_V,
                10: PANCREAS, 11: SOFT, 12: SOFT, 13: GUT, 14: FLUID, 15: SOFT}

# (low, high) HU per class for phases: non-contrast, portal venous, arterial/nephrographic
PRIORS = {
    FAT: [(-130, -80)] * 3,
    MUSCLE: [(35, 60), (50, 80), (45, 75)],
    BONE: [(200, 700)] * 3,
    LUNG: [(-920, -780)] * 3,
    GUT: [(-40, 60), (20, 110), (20, 120)],
    FLUID: [(-5, 25)] * 3,
    VESSEL_A: [(35, 55), (140, 210), (250, 420)],
    VESSEL_V: [(35, 55), (130, 200), (70, 150)],
    HEART: [(35, 55), (110, 170), (150, 350)],
    SOFT: [(25, 60), (60, 120), (60, 130)],
    LIVER: [(40, 75), (90, 140), (65, 100)],
    SPLEEN: [(35, 55), (100, 140), (80, 180)],
    KIDNEY: [(25, 45), (120, 200), (140, 230)],
    CYST: [(0, 20)] * 3,
    CARTILAGE: [(70, 150)] * 3,
    PANCREAS: [(30, 50), (80, 120), (90, 140)],
}


class Template:
    def __init__(self, path, kind):
        img = nib.load(path)
        lab, sp, _ = to_lps_zyx(img, np.asarray(img.dataobj).astype(np.int16))
        # resample to the 1.5 mm working grid (nearest)
        zoom = [s / WORK_MM for s in sp]
        if any(abs(z - 1) > 1e-3 for z in zoom):
            lab = ndimage.zoom(lab, zoom, order=0, grid_mode=True, mode="nearest")
        self.lab = lab.astype(np.int16)
        self.name = path.split("/")[-1]
        self.sparse = kind != "totalseg"
        nmax = int(self.lab.max()) + 1
        self.cls = np.full(max(nmax, 256), SOFT, np.int16)
        self.cls[0] = FAT  # unlabelled inside body; replaced by body model
        self.out = np.zeros(max(nmax, 256), np.uint8)
        if kind == "totalseg":
            names = json.load(open(path.rsplit("/", 1)[0] + "/totalseg_labels.json"))
            for k, v in names.items():
                self.cls[int(k)] = totalseg_class(v)
            for k, v in TOTALSEG_TO_MODEL.items():
                self.out[k] = v
        else:
            for k, v in AMOS_CLASSES.items():
                self.cls[k] = v
            for k, v in AMOS_TO_MODEL.items():
                self.out[k] = v
        # laterality check: liver (patient right) must sit at lower x (LPS W index) than spleen
        o = self.out[self.lab]
        cx = {c: np.nonzero(o == c)[2].mean() for c in (1, 2, 3, 4) if (o == c).any()}
        assert cx[1] < cx[4] and cx[3] < cx[2], f"laterality check failed for {path}: {cx}"


def smooth_noise(shape, rng, sigma):
    n = rng.standard_normal(shape).astype(np.float32)
    if sigma > 0:
        n = ndimage.gaussian_filter(n, sigma)
    s = n.std()
    return n / (s + 1e-6)


def coarse_field(shape, rng, grid, std):
    """Smooth random field: random values on a coarse grid, cubic upsampling."""
    g = rng.standard_normal(grid).astype(np.float32) * std
    return ndimage.zoom(g, [s / c for s, c in zip(shape, grid)], order=3, mode="nearest", grid_mode=True)[
        : shape[0], : shape[1], : shape[2]]


def deform(t: Template, rng, max_shape_mm=(420, 420, 420)):
    """Random affine + smooth non-linear deformation of the label map (nearest), on the 1.5 mm grid."""
    src = t.lab
    shp = np.array(src.shape)
    # output size: the template extent, capped
    out_shape = np.minimum(shp, (np.array(max_shape_mm) / WORK_MM).astype(int))
    out_shape = (out_shape // 2) * 2
    c_out = (out_shape - 1) / 2.0
    c_src = (shp - 1) / 2.0 + rng.uniform(-0.1, 0.1, 3) * (shp - out_shape)
    # rotation (z axis: axial plane rotation larger), scaling
    az, ay, ax = np.deg2rad(rng.uniform(-12, 12)), np.deg2rad(rng.uniform(-6, 6)), np.deg2rad(rng.uniform(-6, 6))
    Rz = np.array([[1, 0, 0], [0, np.cos(az), -np.sin(az)], [0, np.sin(az), np.cos(az)]])  # rotates (y,x)
    Ry = np.array([[np.cos(ay), 0, -np.sin(ay)], [0, 1, 0], [np.sin(ay), 0, np.cos(ay)]])
    Rx = np.array([[np.cos(ax), -np.sin(ax), 0], [np.sin(ax), np.cos(ax), 0], [0, 0, 1]])
    body = rng.uniform(0.85, 1.2)
    scale = body * rng.uniform(0.9, 1.1, 3)
    A = (Rz @ Ry @ Rx) / scale[None, :]  # output -> source
    zz, yy, xx = [np.arange(n, dtype=np.float32) - c for n, c in zip(out_shape, c_out)]
    coords = np.empty((3,) + tuple(out_shape), np.float32)
    for i in range(3):
        coords[i] = (A[i, 0] * zz[:, None, None] + A[i, 1] * yy[None, :, None] + A[i, 2] * xx[None, None, :]) + c_src[i]
    nl = rng.uniform(0, 3.0)  # voxels of 1.5 mm
    if nl > 0:
        grid = tuple(max(3, int(n / 16)) for n in out_shape)
        for i in range(3):
            coords[i] += coarse_field(tuple(out_shape), rng, grid, nl)
    lab = ndimage.map_coordinates(src, coords, order=0, mode="constant", cval=0, prefilter=False)
    return lab


def body_model(lab, rng, sparse=False):
    """Body outline from the labels (dilated, hole-filled per axial slice) + fat and muscle wall.
    For sparse label maps (few organs, no bones/muscles, e.g. AMOS) an elliptic cylinder around the
    labelled organs is added. Returns integer map: 0 outside body, 1 unlabelled inside body,
    2 subcutaneous fat, 3 muscle wall."""
    lo = lab[::2, ::2, ::2] > 0
    r = int(rng.integers(2, 7))
    m = ndimage.binary_dilation(lo, iterations=r)
    if sparse:
        ys, xs = np.nonzero(lo.any(0))
        cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
        ry = (ys.max() - ys.min()) / 2 + rng.uniform(5, 15) / (2 * WORK_MM) * 2
        rx = (xs.max() - xs.min()) / 2 + rng.uniform(10, 25) / (2 * WORK_MM) * 2
        yy, xx = np.mgrid[0: lo.shape[1], 0: lo.shape[2]]
        ell = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        zs = np.nonzero(lo.any((1, 2)))[0]
        m[zs.min(): zs.max() + 1] |= ell[None]
    for z in range(m.shape[0]):
        m[z] = ndimage.binary_fill_holes(ndimage.binary_closing(m[z], iterations=3))
    dist = ndimage.distance_transform_edt(m, sampling=(1e6, 1, 1)) * (2 * WORK_MM)  # in-plane distance, mm
    fat_t = rng.uniform(3, 35)
    mus_t = rng.uniform(4, 15)
    out = np.zeros(lo.shape, np.uint8)
    out[m] = 1
    out[m & (dist <= fat_t + mus_t)] = 3
    out[m & (dist <= fat_t)] = 2
    out = np.repeat(np.repeat(np.repeat(out, 2, 0), 2, 1), 2, 2)[: lab.shape[0], : lab.shape[1], : lab.shape[2]]
    return out


def synth_sample(t: Template, rng):
    lab = deform(t, rng)
    shape = lab.shape
    body = body_model(lab, rng, t.sparse)
    cls = t.cls[lab]
    cls[(lab == 0) & (body == 0)] = AIR
    cls[(lab == 0) & (body == 2)] = FAT
    cls[(lab == 0) & (body == 3)] = MUSCLE
    inner = (lab == 0) & (body == 1)

    regime = "prior" if rng.random() < 0.65 else "random"
    phase = int(rng.choice(3, p=[0.5, 0.35, 0.15]))
    img = np.zeros(shape, np.float32)
    labels_present = np.unique(lab)
    # per-label intensity (each label independent, even within a class)
    lut = np.zeros(int(lab.max()) + 1, np.float32)
    sd_lut = np.zeros_like(lut)
    for k in labels_present:
        if k == 0:
            continue
        c = t.cls[k]
        if regime == "prior":
            lo_, hi_ = PRIORS[c][phase]
            mu = rng.uniform(lo_, hi_)
            if c == LIVER and rng.random() < 0.12:
                mu = rng.uniform(0, 45)  # steatosis
            sd = rng.uniform(0, 12)
        else:
            if c in (LUNG,):
                mu = rng.uniform(-950, -600)
            else:
                mu = rng.uniform(-200, 400)
            sd = rng.uniform(0, 25)
        lut[k] = mu
        sd_lut[k] = sd
    img[:] = lut[lab]
    # background tissues
    air_hu = rng.uniform(-1024, -950)
    img[cls == AIR] = air_hu
    fat_hu = rng.uniform(-130, -80) if regime == "prior" else rng.uniform(-200, 50)
    mus_hu = rng.uniform(35, 70) if regime == "prior" else rng.uniform(-100, 300)
    img[(lab == 0) & (body == 2)] = fat_hu
    img[(lab == 0) & (body == 3)] = mus_hu
    # inner unlabelled: mixture of fat and soft tissue (mesentery, bowel, vessels not in the map)
    mix = smooth_noise(shape, rng, rng.uniform(1.5, 4))
    soft_hu = rng.uniform(10, 60) if regime == "prior" else rng.uniform(-150, 300)
    thr = rng.uniform(-0.8, 0.8)
    mixw = 1 / (1 + np.exp(-(mix - thr) * rng.uniform(2, 8)))
    inner_img = fat_hu + (soft_hu - fat_hu) * mixw
    img[inner] = inner_img[inner]
    # gut gas / oral contrast blobs
    gut = np.isin(cls, [GUT])
    if gut.any() and rng.random() < 0.6:
        blobs = smooth_noise(shape, rng, rng.uniform(2, 5)) > rng.uniform(0.8, 1.8)
        img[gut & blobs] = rng.uniform(-1000, -600)
    if gut.any() and rng.random() < 0.15:
        blobs = smooth_noise(shape, rng, rng.uniform(2, 5)) > rng.uniform(0.5, 1.5)
        img[gut & blobs] = rng.uniform(150, 600)
    # kidney cortex/medulla in contrast phases
    kid = t.cls[lab] == KIDNEY
    if regime == "prior" and phase > 0 and rng.random() < 0.6 and kid.any():
        d = ndimage.distance_transform_edt(kid) * WORK_MM
        med = kid & (d > rng.uniform(4, 9))
        img[med] -= rng.uniform(30, 120)
    # within-label texture: per-label sd times a smooth texture field
    tex = smooth_noise(shape, rng, rng.uniform(0.7, 2.5))
    img += sd_lut[lab] * tex
    # cysts / hypodense spots in organs (labels kept: organ)
    # (partial-volume of real structures is created by the 2x block average below)
    # bias field (additive, smooth), in body only
    bias = coarse_field(shape, rng, (4, 4, 4), rng.uniform(0, 12))
    img[cls != AIR] += bias[cls != AIR]
    # acquisition: slice thickness 0.7..5 mm, in-plane 0.6..1.5 (occasionally up to 3)
    thick = rng.uniform(0.7, 5.0)
    inplane = rng.uniform(0.6, 1.5) if rng.random() < 0.85 else rng.uniform(1.5, 3.0)
    sig = [max(0.0, np.sqrt(max(thick ** 2 - WORK_MM ** 2, 0)) / 2.355 / WORK_MM)] + \
          [max(0.0, np.sqrt(max(inplane ** 2 - WORK_MM ** 2, 0)) / 2.355 / WORK_MM)] * 2
    sig = [s + 0.35 for s in sig]  # reconstruction kernel
    img = ndimage.gaussian_filter(img, sig)
    # to model grid: 2x block average (image) and majority (labels)
    s2 = tuple((n // 2) * 2 for n in shape)
    img = img[: s2[0], : s2[1], : s2[2]].reshape(s2[0] // 2, 2, s2[1] // 2, 2, s2[2] // 2, 2).mean((1, 3, 5))
    out = t.out[lab[: s2[0], : s2[1], : s2[2]]]
    oh = np.stack([(out == c) for c in range(5)]).reshape(5, s2[0] // 2, 2, s2[1] // 2, 2, s2[2] // 2, 2).sum((2, 4, 6))
    out = oh.argmax(0).astype(np.uint8)
    bodym = (cls[: s2[0]:2, : s2[1]:2, : s2[2]:2] != AIR)
    # streaks (photon starvation / beam hardening), axial plane, in body
    if rng.random() < 0.2:
        H, W = img.shape[1:]
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        st = np.zeros((H, W), np.float32)
        for _ in range(int(rng.integers(1, 6))):
            a = rng.uniform(0, np.pi)
            cy, cx = rng.uniform(0.3, 0.7) * H, rng.uniform(0.3, 0.7) * W
            dist = np.abs((yy - cy) * np.cos(a) - (xx - cx) * np.sin(a))
            st += rng.uniform(-150, 150) * np.exp(-0.5 * (dist / rng.uniform(0.5, 1.5)) ** 2)
        img += st[None] * bodym
    # correlated noise on the model grid, sd log-uniform 3..60 HU
    sd = float(np.exp(rng.uniform(np.log(3), np.log(60))))
    img += smooth_noise(img.shape, rng, rng.uniform(0, 1.0)) * sd
    # FOV truncation
    if rng.random() < 0.2:
        H, W = img.shape[1:]
        yy, xx = np.mgrid[0:H, 0:W]
        rad = rng.uniform(0.35, 0.55) * max(H, W)
        outside = (yy - H / 2) ** 2 + (xx - W / 2) ** 2 > rad ** 2
        img[:, outside] = air_hu
        out[:, outside] = 0
    if rng.random() < 0.3:
        D = img.shape[0]
        n = int(rng.integers(min(40, D), D + 1))
        z0 = int(rng.integers(0, D - n + 1))
        img, out = img[z0: z0 + n], out[z0: z0 + n]
    return img.astype(np.float32), out
