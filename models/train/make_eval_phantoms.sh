#!/usr/bin/env bash
# Held-out evaluation phantoms (seeds < 100000: evaluation only, never training).
# Usage: make_eval_phantoms.sh OUT_DIR PRESET FIRST_SEED COUNT
set -euo pipefail
OUT=$1; PRESET=$2; FIRST=$3; COUNT=$4
BIN=${MRTDOSE_BIN:-target/release/mrtdose}
mkdir -p "$OUT"
for ((i = 0; i < COUNT; i++)); do
  s=$((FIRST + i))
  d="$OUT/${PRESET}_$s"
  [ -f "$d/truth/tp1_labels.nii.gz" ] && continue
  rm -rf "$d"
  nice -n 10 "$BIN" phantom --out "$d" --seed "$s" --format nifti --timepoints-h 24 --preset "$PRESET" >/dev/null
  rm -f "$d/tp1/spect.nii.gz"
done
