#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library from PyPI (the only registry we may use) into .ort/lib,
# for the `ort` crate's load-dynamic mode. `ORT_FLAVOUR=gpu` takes onnxruntime-gpu (CUDA 13)
# instead of the CPU build. Idempotent. Prints the library path; mrtdose finds it there by default,
# or wherever ORT_DYLIB_PATH points.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
version=1.31.1
package=onnxruntime
if [ "${ORT_FLAVOUR:-cpu}" = gpu ]; then package=onnxruntime-gpu; fi
lib=.ort/lib/libonnxruntime.so
stamp=.ort/lib/.package
if [ -f "$lib" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$package==$version" ]; then
  echo "$root/$lib"
  exit 0
fi
python="${PYTHON:-python3}"
rm -rf .ort/wheel && mkdir -p .ort/wheel .ort/lib
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --dest .ort/wheel "$package==$version" >&2
wheel="$(ls .ort/wheel/*.whl)"
"$python" - "$wheel" <<'PY'
import sys, zipfile, os, shutil
wheel = sys.argv[1]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime") and ".so" in base:
            target = os.path.join(".ort/lib", base)
            with z.open(name) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
PY
real="$(ls .ort/lib/libonnxruntime.so.* | head -n1)"
ln -sf "$(basename "$real")" "$lib"
echo "$package==$version" > "$stamp"
rm -rf .ort/wheel
echo "$root/$lib"
