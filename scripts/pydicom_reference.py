#!/usr/bin/env python3
"""Independent reference for mrt-io's DICOM reader: pydicom reads every file in a directory and
writes what it sees, so the Rust tests compare against pydicom rather than against themselves.

Usage: pydicom_reference.py SRC_DIR OUT_DIR

OUT_DIR/expected.json lists, per file:
  readable:  pydicom parsed the file (dcmread without force)
  decoded:   pydicom decoded PixelData (pixel_array)
  error:     pydicom's message when not readable/decodable
  greyscale: SamplesPerPixel == 1 and MONOCHROME1/2 (the images mrtdose reads)
  geometry attributes as pydicom parses them (floats from DS strings),
  values:    a file of little-endian float64: apply_modality_lut(pixel_array) (× DoseGridScaling
             for RTDOSE), frame-major, row-major, exactly as pydicom computes them.
"""
import json
import os
import sys

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut


def floats(ds, keyword):
    if keyword not in ds or ds[keyword].value in (None, ""):
        return None
    v = ds[keyword].value
    if isinstance(v, (list, tuple, pydicom.multival.MultiValue)):
        return [float(x) for x in v]
    return [float(v)]


def detector_item(ds):
    seq = ds.get("DetectorInformationSequence")
    return seq[0] if seq else None


def describe(path):
    entry = {"file": os.path.basename(path)}
    try:
        ds = pydicom.dcmread(path)
    except Exception as e:  # noqa: BLE001 - any failure means "not readable"
        entry.update(readable=False, decoded=False, error=f"{type(e).__name__}: {e}")
        return entry, None
    entry["readable"] = True
    entry["transfer_syntax"] = str(ds.file_meta.get("TransferSyntaxUID", ""))
    entry["modality"] = str(ds.get("Modality", ""))
    entry["sop_class_uid"] = str(ds.get("SOPClassUID", ""))
    if "PixelData" not in ds:
        entry.update(decoded=False, error="no PixelData")
        return entry, None
    try:
        return describe_image(ds, entry)
    except Exception as e:  # noqa: BLE001 - a malformed attribute: pydicom cannot use the image
        entry.update(decoded=False, error=f"{type(e).__name__}: {e}")
        return entry, None


def describe_image(ds, entry):
    spp = int(ds.get("SamplesPerPixel", 1))
    pi = str(ds.get("PhotometricInterpretation", "")).upper()
    entry["greyscale"] = spp == 1 and pi in ("MONOCHROME1", "MONOCHROME2")
    entry["rows"] = int(ds.Rows)
    entry["columns"] = int(ds.Columns)
    entry["frames"] = int(ds.get("NumberOfFrames", 1) or 1)
    det = detector_item(ds)
    ipp = floats(ds, "ImagePositionPatient") or (floats(det, "ImagePositionPatient") if det else None)
    iop = floats(ds, "ImageOrientationPatient") or (floats(det, "ImageOrientationPatient") if det else None)
    entry["image_position"] = ipp
    entry["image_orientation"] = iop
    entry["pixel_spacing"] = floats(ds, "PixelSpacing")
    entry["slice_thickness"] = floats(ds, "SliceThickness")
    entry["spacing_between_slices"] = floats(ds, "SpacingBetweenSlices")
    try:
        arr = ds.pixel_array
    except Exception as e:  # noqa: BLE001
        entry.update(decoded=False, error=f"{type(e).__name__}: {e}")
        return entry, None
    entry["decoded"] = True
    if not entry["greyscale"]:
        return entry, None
    values = apply_modality_lut(arr, ds).astype(np.float64)
    if entry["modality"] == "RTDOSE" and "DoseGridScaling" in ds:
        values = values * float(ds.DoseGridScaling)
    values = values.reshape(-1)
    entry["count"] = int(values.size)
    entry["min"] = float(values.min())
    entry["max"] = float(values.max())
    entry["mean"] = float(values.mean())
    return entry, values


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    entries = []
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if not name.endswith(".dcm") or not os.path.isfile(path):
            continue
        entry, values = describe(path)
        if values is not None:
            vname = name + ".f64"
            values.astype("<f8").tofile(os.path.join(out, vname))
            entry["values"] = vname
        entries.append(entry)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"pydicom": pydicom.__version__, "files": entries}, f, indent=1)
    n_grey = sum(1 for e in entries if e.get("values"))
    print(f"pydicom {pydicom.__version__}: {len(entries)} files, {n_grey} greyscale images decoded")


if __name__ == "__main__":
    main()
