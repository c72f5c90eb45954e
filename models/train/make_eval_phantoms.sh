#!/usr/bin/env bash
# Held-out evaluation phantoms (seeds < 100000: evaluation only, never training).
# Usage: make_eval_phantoms.sh OUT_DIR PRESET FIRST_SEED COUNT
set -euo pipefail
OUT=$1; PRESET=$2; FIRST=$3; COUNT=$4
BIN=${MRTDOSE_BIN:-target/release/mrtdose}
# Anatomy revision of the generator (mrtdose phantom --anatomy-revision): 2, the default, gives the kidneys
# their perirenal fat; 1 reproduces the phantoms segmentation model 1.8.0 was trained and scored on.
# Each phantom directory records its revision; one made with another revision is made again.
REV=${ANATOMY_REVISION:-2}
mkdir -p "$OUT"
for ((i = 0; i < COUNT; i++)); do
  s=$((FIRST + i))
  d="$OUT/${PRESET}_$s"
  [ -f "$d/truth/tp1_labels.nii.gz" ] && [ "$(cat "$d/anatomy_revision" 2>/dev/null)" = "$REV" ] && continue
  rm -rf "$d"
  nice -n 10 "$BIN" phantom --out "$d" --seed "$s" --format nifti --timepoints-h 24 --preset "$PRESET" --anatomy-revision "$REV" >/dev/null
  rm -f "$d/tp1/spect.nii.gz"
  echo "$REV" > "$d/anatomy_revision"
done
