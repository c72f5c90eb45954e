#!/usr/bin/env python3
"""Reads a NIfTI file with nibabel and prints shape, affines and codes as JSON; writes the
scaled voxel values to OUT as little-endian float64 in NIfTI (Fortran) order, i fastest.

Usage: nibabel_check.py FILE OUT
"""
import json
import sys

import nibabel as nib
import numpy as np


def main():
    path, out = sys.argv[1], sys.argv[2]
    img = nib.load(path)
    data = np.asarray(img.get_fdata(dtype=np.float64))
    data.reshape(-1, order="F").astype("<f8").tofile(out)
    qform, qcode = img.get_qform(coded=True)
    sform, scode = img.get_sform(coded=True)
    print(json.dumps({
        "shape": list(data.shape),
        "affine": img.affine.tolist(),
        "qform": None if qform is None else qform.tolist(),
        "sform": None if sform is None else sform.tolist(),
        "qform_code": int(qcode),
        "sform_code": int(scode),
        "zooms": [float(z) for z in img.header.get_zooms()],
        "dtype": str(img.get_data_dtype()),
    }))


if __name__ == "__main__":
    main()
