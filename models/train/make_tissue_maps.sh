#!/usr/bin/env bash
# Tissue class maps of phantoms made by make_phantoms.sh: DIR/<preset>_<seed>/tissues.nii.gz, the generator's
# tissue (Tissue::ALL index: fat, muscle, stomach, bowel, spleen...) of every CT voxel, for the training's
# per-tissue intensity augmentation (train.py --tissue-hu-sd). build_cache.py checks that the organ labels
# the map implies equal labels.nii.gz, so a map made with other options than the phantom is refused.
# Usage: make_tissue_maps.sh PHANTOMS_DIR
# Needs: cargo build --release -p mrt-phantom --example tissue_map (TISSUE_MAP_BIN overrides the path).
set -euo pipefail
DIR=$1
BIN=${TISSUE_MAP_BIN:-target/release/examples/tissue_map}
REV=${ANATOMY_REVISION:-2}
if [ "$REV" != 2 ]; then echo "tissue_map draws the latest anatomy revision (2), not $REV" >&2; exit 2; fi
for d in "$DIR"/*_*/; do
  d=${d%/}; n=$(basename "$d"); preset=${n%_*}; s=${n##*_}
  [ -f "$d/labels.nii.gz" ] || continue
  # a map older than the labels belongs to a phantom since remade
  [ "$d/tissues.nii.gz" -nt "$d/labels.nii.gz" ] && continue
  extra=""
  # the same rule as make_phantoms.sh: every 5th phantom without tumours
  if [ $((s % 5)) -eq 0 ]; then extra="--no-tumours"; fi
  nice -n 10 "$BIN" "$s" "$preset" "$d/tissues.tmp.nii.gz" $extra
  mv "$d/tissues.tmp.nii.gz" "$d/tissues.nii.gz"
done
