#!/usr/bin/env python3
"""Reads what mrt-io wrote, with pydicom, and prints what it finds as JSON (tests compare it with
the volume that was written). Values go to OUT (little-endian float64, i fastest, then j, then k).

Usage: pydicom_check.py PATH OUT
  PATH: a directory of single-frame slices (CT) or one multi-frame NM file.
"""
import json
import os
import sys

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut


def f(v):
    return [float(x) for x in v]


def main():
    path, out = sys.argv[1], sys.argv[2]
    if os.path.isdir(path):
        dss = [pydicom.dcmread(os.path.join(path, n)) for n in sorted(os.listdir(path))]
        iop = np.array(f(dss[0].ImageOrientationPatient))
        normal = np.cross(iop[:3], iop[3:])
        dss.sort(key=lambda d: float(np.dot(f(d.ImagePositionPatient), normal)))
        values = np.stack([apply_modality_lut(d.pixel_array, d).astype(np.float64) for d in dss])
        first = dss[0]
        info = {
            "kind": "slices",
            "modality": first.Modality,
            "slices": len(dss),
            "positions": [f(d.ImagePositionPatient) for d in dss],
            "orientation": f(first.ImageOrientationPatient),
            "pixel_spacing": f(first.PixelSpacing),
            "slice_thickness": float(first.SliceThickness),
            "series_uids": sorted({str(d.SeriesInstanceUID) for d in dss}),
            "sop_uids_unique": len({str(d.SOPInstanceUID) for d in dss}) == len(dss),
        }
    else:
        ds = pydicom.dcmread(path)
        det = ds.DetectorInformationSequence[0]
        values = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
        rw = ds.RealWorldValueMappingSequence[0]
        info = {
            "kind": "multiframe",
            "modality": ds.Modality,
            "sop_class_uid": str(ds.SOPClassUID),
            "image_type": list(ds.ImageType),
            "frames": int(ds.NumberOfFrames),
            "position": f(det.ImagePositionPatient),
            "orientation": f(det.ImageOrientationPatient),
            "pixel_spacing": f(ds.PixelSpacing),
            "spacing_between_slices": float(ds.SpacingBetweenSlices),
            "units": str(ds.Units),
            "real_world_slope": float(rw.RealWorldValueSlope),
            "real_world_units": str(rw.MeasurementUnitsCodeSequence[0].CodeValue),
        }
        if "RadiopharmaceuticalInformationSequence" in ds:
            rp = ds.RadiopharmaceuticalInformationSequence[0]
            info["radiopharmaceutical"] = {
                "start_datetime": str(rp.RadiopharmaceuticalStartDateTime),
                "total_dose_bq": float(rp.RadionuclideTotalDose),
                "half_life_s": float(rp.RadionuclideHalfLife),
                "radionuclide": str(rp.RadionuclideCodeSequence[0].CodeMeaning),
            }
    info["shape"] = list(values.shape)
    values.astype("<f8").reshape(-1).tofile(out)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
