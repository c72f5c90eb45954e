#!/usr/bin/env bash
# Reproduce models/ct-organs/ (model.onnx, model-card.json, training-log.txt) from a fresh clone.
#
#   cargo build --release -p mrtdose     # builds target/release/mrtdose (the phantom generator)
#   models/train.sh
#
# Environment:
#   MRTDOSE_BIN   phantom generator binary (default: target/release/mrtdose)
#   ANATOMY_DIR   real label maps (default: shared/anatomy, falling back to ../shared/anatomy)
#   RUN2_STEPS    steps of the second training run (default 2000; the shipped model's total is in its card)
#   MAX_MINUTES   wall-clock cap for training (default 100)
#   THREADS       torch threads (default 2)
# Runs in about 1.5-2 h on 2 otherwise idle CPU cores: ~3 min venv, ~15 min data, ~40-80 min training, ~5 min evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."          # repository root
ROOT=$PWD
M=$ROOT/models
export MRTDOSE_BIN=${MRTDOSE_BIN:-$ROOT/target/release/mrtdose}
ANATOMY_DIR=${ANATOMY_DIR:-$ROOT/data/anatomy}
[ -d "$ANATOMY_DIR" ] || ANATOMY_DIR=$ROOT/../shared/anatomy
RUN2_STEPS=${RUN2_STEPS:-2000}
MAX_MINUTES=${MAX_MINUTES:-100}
THREADS=${THREADS:-2}
SEED=1234
CACHE=$M/.cache
VENV=$M/.venv-train

[ -x "$MRTDOSE_BIN" ] || { echo "phantom generator not found at $MRTDOSE_BIN (cargo build --release -p mrtdose, or set MRTDOSE_BIN)" >&2; exit 1; }
[ -f "$ANATOMY_DIR/index.json" ] || { echo "anatomy label maps not found at $ANATOMY_DIR (set ANATOMY_DIR)" >&2; exit 1; }

# 1. Python environment (pinned)
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -r "$M/requirements-train.txt"
fi
PY="nice -n 10 $VENV/bin/python"

# 2. Training phantoms (seeds >= 100000 only) and held-out evaluation phantoms (seeds 9000-9019 small, 9000-9002 clinical)
"$M/train/make_phantoms.sh" "$CACHE/phantoms" small 100000 60
"$M/train/make_phantoms.sh" "$CACHE/phantoms" clinical 200000 6
"$M/train/make_eval_phantoms.sh" "$CACHE/eval" small 9000 20
"$M/train/make_eval_phantoms.sh" "$CACHE/eval" clinical 9000 3

# 3. Dataset cache on the model grid: phantoms + SynthSeg-style images from the real label maps (s0009 held out)
$PY "$M/train/build_cache.py" --phantoms "$CACHE/phantoms" --anatomy "$ANATOMY_DIR" --out "$CACHE/data" \
  --synth-per-template 8 --seed $SEED

# 4. Train (fixed seed) in the two runs that made the shipped model, export, evaluate.
#    Run 1: lr 2e-3 cosine over 3000 steps, stopped at step 1000 (learns the liver).
#    Run 2: initialised from run 1, class-weighted CE (kidneys/spleen x3), 80 % organ-centred patches,
#           lr 1e-3 -> 5e-5 cosine over 2000 steps, stopped at RUN2_STEPS or MAX_MINUTES.
mkdir -p "$M/ct-organs" "$CACHE/ckpt" "$CACHE/ckpt2"
LOG=$M/ct-organs/training-log.txt
echo "# run 1" > "$LOG"
$PY "$M/train/train.py" --cache "$CACHE/data" --out "$CACHE/ckpt" --steps 3000 --stop-step 1000 --seed $SEED \
  --synth-prob 0.35 --threads "$THREADS" 2>&1 | tee -a "$LOG"
echo "# run 2" >> "$LOG"
$PY "$M/train/train.py" --cache "$CACHE/data" --out "$CACHE/ckpt2" --steps 2000 --stop-step "$RUN2_STEPS" --seed $SEED \
  --lr 1e-3 --lr-end 5e-5 --synth-prob 0.35 --fg-prob 0.8 --ce-weights 1,1,3,3,3 --init "$CACHE/ckpt/last.pt" \
  --max-minutes "$MAX_MINUTES" --threads "$THREADS" 2>&1 | tee -a "$LOG"
$PY "$M/train/export.py" --ckpt "$CACHE/ckpt2/last.pt" --out-dir "$M/ct-organs" --seed $SEED
$PY "$M/train/evaluate.py" --model-dir "$M/ct-organs" --phantoms "$CACHE/eval" \
  --real-ct "$ANATOMY_DIR/totalseg_s0009_ct.nii.gz" --real-labels "$ANATOMY_DIR/totalseg_s0009_labels.nii.gz" \
  --out "$M/ct-organs/evaluation.json" --update-card --threads "$THREADS" 2>&1 | tee -a "$M/ct-organs/training-log.txt"
