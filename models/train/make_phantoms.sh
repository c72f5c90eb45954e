#!/usr/bin/env bash
# Generate training/validation phantoms with the project's own generator.
# Usage: make_phantoms.sh OUT_DIR PRESET FIRST_SEED COUNT
# Seeds must be >= 100000 (seeds below are reserved for evaluation).
set -euo pipefail
OUT=$1; PRESET=$2; FIRST=$3; COUNT=$4
BIN=${MRTDOSE_BIN:-target/release/mrtdose}
# Anatomy revision of the generator (mrtdose phantom --anatomy-revision): 2, the default, gives the kidneys
# their perirenal fat; 1 reproduces the phantoms segmentation model 1.8.0 was trained and scored on.
# Each phantom directory records its revision; one made with another revision is made again.
REV=${ANATOMY_REVISION:-2}
if [ "$FIRST" -lt 100000 ]; then echo "refusing: training seeds must be >= 100000" >&2; exit 2; fi
mkdir -p "$OUT"
for ((i = 0; i < COUNT; i++)); do
  s=$((FIRST + i))
  d="$OUT/${PRESET}_$s"
  [ -f "$d/labels.nii.gz" ] && [ "$(cat "$d/anatomy_revision" 2>/dev/null)" = "$REV" ] && continue
  extra=""
  # every 5th phantom without tumours
  if [ $((s % 5)) -eq 0 ]; then extra="--no-tumours"; fi
  rm -rf "$d.tmp"
  nice -n 10 "$BIN" phantom --out "$d.tmp" --seed "$s" --format nifti --timepoints-h 24 --preset "$PRESET" --anatomy-revision "$REV" $extra >/dev/null
  mkdir -p "$d"
  mv "$d.tmp/tp1/ct.nii.gz" "$d/ct.nii.gz"
  mv "$d.tmp/truth/tp1_labels.nii.gz" "$d/labels.nii.gz"
  rm -rf "$d.tmp"
  echo "$REV" > "$d/anatomy_revision"
done
