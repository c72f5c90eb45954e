#!/usr/bin/env bash
# Prepares everything the tests read from outside the repository, using only package registries:
#  - .venv: Python with pydicom, nibabel and the pylibjpeg codec plugins (the independent references)
#  - testdata/pydicom: the real DICOM test files shipped inside the pydicom wheel
#  - testdata/pydicom-reference: what pydicom reads from each of them (expected.json + values)
#  - testdata/models: small ONNX models with known behaviour for mrt-segment's tests
#  - .ort/lib: the ONNX Runtime library from PyPI (scripts/setup-ort.sh)
# Idempotent; safe to re-run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
src="$(.venv/bin/python -c 'import pydicom, os; print(os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files"))')"
mkdir -p testdata/pydicom
cp -f "$src"/*.dcm testdata/pydicom/
.venv/bin/python scripts/pydicom_reference.py testdata/pydicom testdata/pydicom-reference
.venv/bin/python scripts/make_test_models.py testdata/models
bash scripts/setup-ort.sh >/dev/null
