#!/usr/bin/env bash
# Reproduce models/ct-organs/ (model.onnx, model-card.json, training-log.txt, evaluation.json) from a fresh clone.
#
#   cargo build --release -p mrtdose     # builds target/release/mrtdose (the phantom generator)
#   models/train.sh
#
# The shipped model is the result of seven runs, replayed here: run 1 and run 2 (3000 steps from scratch),
# run 3 (fine-tuning of the run-2 model, spleen/kidney-emphasised, best checkpoint by validation Dice),
# run 4 (fine-tuning of the run-3 model with 20 more phantoms, left kidney weighted up, best checkpoint; shipped
# as version 1.1.0), run 6 (fine-tuning of the run-4 model on more varied data: 24 more phantoms, half again
# as many synthetic images; version 1.2.0) and run 7 (fine-tuning of the run-6 model on the same data under
# bfloat16 autocast, ~2.5x the steps per second; version 1.3.0) and run 8 (fine-tuning of the run-7 model aimed at
# the left-kidney/spleen confusion); version 1.4.0 was the run-7 and run-8 models averaged (export_ensemble.py).
# Run 9 fine-tunes the run-8 model with clinical-preset phantoms in half of the phantom draws; version 1.5.0 is
# the run-7 and run-9 models averaged (chosen on calibration phantoms, train/compare_members.py).
# Version 1.6.0 is the same ONNX with the card's intensity_refinement (train/refine.py), which every card that
# export.py writes carries. Version 1.7.0 is the same ONNX whose card adds fused_overlap 0.4: the pipeline infers
# CTs it fuses across time points with 8 windows per small CT instead of 18 (models/README.md). Version 1.8.0 is the same ONNX whose card adds grid_shifts_voxels [[0.5, 0.5, 0.5]]: a single CT is inferred
# on the model grid and on that grid moved by half a voxel, averaged; its held-out figures come from the labels
# `mrtdose segment` writes (the numpy path does not implement the shifts).
# Version 1.9.0 is run 10 (the run-9 member on anatomy-revision-2 phantoms) and version 1.10.0, the shipped model,
# run 11 (run 10's model with per-tissue intensity shifts of the organs' surroundings); both below.
# Run 5 was tried and not kept (models/README.md).
#
# Environment:
#   MRTDOSE_BIN     phantom generator binary (default: target/release/mrtdose)
#   ANATOMY_DIR     real label maps (default: data/anatomy, falling back to ../shared/anatomy)
#   RUN2_STEPS      steps of the second training run (default 2000)
#   MAX_MINUTES     wall-clock cap of run 2 (default 100)
#   RUN3_MINUTES    wall-clock budget of run 3 (default 90): its cosine lr schedule is scaled to end 4 minutes
#                   before it, so the number of steps depends on the machine's speed (the card records it)
#   RUN3_INIT_ONNX  start run 3 from this existing model.onnx instead of running runs 1 and 2; the model-card.json
#                   beside it gives the steps/time already trained. The run-2 model shipped before run 3:
#                     mkdir -p /tmp/run2; for f in model.onnx model-card.json; do
#                       git show dfd1cd2:models/ct-organs/$f > /tmp/run2/$f; done
#                     RUN3_INIT_ONNX=/tmp/run2/model.onnx models/train.sh
#   RUN4_MINUTES    wall-clock budget of run 4 (default 48; lr schedule ends 4 minutes before)
#   RUN4_INIT_ONNX  start run 4 from this existing model.onnx instead of running runs 1-3 (the run-3 model:
#                     mkdir -p /tmp/run3; for f in model.onnx model-card.json; do
#                       git show 0943cb2:models/ct-organs/$f > /tmp/run3/$f; done
#                     RUN4_INIT_ONNX=/tmp/run3/model.onnx models/train.sh     # ~1 h 40 min in all
#   RUN6_MINUTES    wall-clock budget of run 6 (default 64; lr schedule ends 4 minutes before)
#   RUN6_INIT_ONNX  start run 6 from this existing model.onnx instead of running runs 1-4 (the run-4 model,
#                   version 1.1.0:
#                     mkdir -p /tmp/run4; for f in model.onnx model-card.json; do
#                       git show 5fb4546:models/ct-organs/$f > /tmp/run4/$f; done
#                     RUN6_INIT_ONNX=/tmp/run4/model.onnx models/train.sh     # ~1 h 45 min in all
#   RUN7_MINUTES    wall-clock budget of run 7 (default 90; lr schedule ends 4 minutes before)
#   RUN7_INIT_ONNX  start run 7 from this existing model.onnx instead of running runs 1-6 (the run-6 model,
#                   version 1.2.0:
#                     mkdir -p /tmp/run6; for f in model.onnx model-card.json; do
#                       git show 351d684:models/ct-organs/$f > /tmp/run6/$f; done
#                     RUN7_INIT_ONNX=/tmp/run6/model.onnx models/train.sh     # ~2 h 20 min in all
#   RUN8_MINUTES    wall-clock budget of run 8 (default 80; lr schedule ends 4 minutes before)
#   RUN8_INIT_ONNX  start run 8 from this existing model.onnx instead of running runs 1-7 (the run-7 model,
#                   version 1.3.0, which is also the ensemble's first member:
#                     mkdir -p /tmp/run7; for f in model.onnx model-card.json; do
#                       git show 6cfc117:models/ct-organs/$f > /tmp/run7/$f; done
#                     RUN8_INIT_ONNX=/tmp/run7/model.onnx models/train.sh     # ~2 h 15 min in all
#   RUN9_MINUTES    wall-clock budget of run 9 (default 70; lr schedule ends 4 minutes before)
#   RUN9_INIT_ONNX  start run 9 from this existing model.onnx instead of running runs 1-8 (the run-8 model, the
#                   second member of version 1.4.0, taken out of it by train/extract_member.py); RUN7_ONNX is
#                   then the run-7 model, the ensemble's other member (both as for RUN8_INIT_ONNX above):
#                     mkdir -p /tmp/v140 /tmp/run7; for f in model.onnx model-card.json; do
#                       git show c76837c:models/ct-organs/$f > /tmp/v140/$f
#                       git show 6cfc117:models/ct-organs/$f > /tmp/run7/$f; done
#                     models/.venv-train/bin/python models/train/extract_member.py --ensemble /tmp/v140 --index 1 \
#                       --out-dir /tmp/run8      # after the venv exists (step 1 below)
#                     RUN9_INIT_ONNX=/tmp/run8/model.onnx RUN7_ONNX=/tmp/run7/model.onnx models/train.sh  # ~2 h in all
#   THREADS         torch threads (default 2)
# Wall time on 2 CPU cores (as measured for the shipped model; runs 1-3 shared the cores with other work):
# ~3 min venv, ~40 min data (phantoms ~14 min, then the dataset cache ~25 min, mostly the synthetic images),
# run 1 ~27 min, run 2 ~65 min, run 3 90 min, run 4 48 min, run 6 64 min (their budgets),
# ~5 min export + evaluation: about 6 h in all; with RUN6_INIT_ONNX about 1 h 45 min (venv, phantoms ~8 min, cache ~17 min,
# run 6, evaluation) on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."          # repository root
ROOT=$PWD
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$ROOT/.ort/lib/libonnxruntime.so}  # for mrtdose segment (scripts/setup-ort.sh)
M=$ROOT/models
export MRTDOSE_BIN=${MRTDOSE_BIN:-$ROOT/target/release/mrtdose}
ANATOMY_DIR=${ANATOMY_DIR:-$ROOT/data/anatomy}
[ -d "$ANATOMY_DIR" ] || ANATOMY_DIR=$ROOT/../shared/anatomy
RUN2_STEPS=${RUN2_STEPS:-2000}
MAX_MINUTES=${MAX_MINUTES:-100}
RUN3_MINUTES=${RUN3_MINUTES:-90}
RUN3_INIT_ONNX=${RUN3_INIT_ONNX:-}
RUN4_MINUTES=${RUN4_MINUTES:-48}
RUN4_INIT_ONNX=${RUN4_INIT_ONNX:-}
RUN6_MINUTES=${RUN6_MINUTES:-64}
RUN6_INIT_ONNX=${RUN6_INIT_ONNX:-}
RUN7_MINUTES=${RUN7_MINUTES:-90}
RUN7_INIT_ONNX=${RUN7_INIT_ONNX:-}
RUN8_MINUTES=${RUN8_MINUTES:-80}
RUN8_INIT_ONNX=${RUN8_INIT_ONNX:-}
RUN9_MINUTES=${RUN9_MINUTES:-70}
RUN9_INIT_ONNX=${RUN9_INIT_ONNX:-}
RUN10_MINUTES=${RUN10_MINUTES:-40}
RUN10_INIT_ONNX=${RUN10_INIT_ONNX:-}
RUN11_MINUTES=${RUN11_MINUTES:-58}
RUN11_INIT_ONNX=${RUN11_INIT_ONNX:-}
RUN7_ONNX=${RUN7_ONNX:-}
RUN6_GIVEN=$RUN6_INIT_ONNX        # the run-6 log header only when the replay starts at run 6
THREADS=${THREADS:-2}
SEED=1234
CACHE=$M/.cache
VENV=$M/.venv-train

[ -x "$MRTDOSE_BIN" ] || { echo "phantom generator not found at $MRTDOSE_BIN (cargo build --release -p mrtdose, or set MRTDOSE_BIN)" >&2; exit 1; }
[ -f "$ANATOMY_DIR/index.json" ] || { echo "anatomy label maps not found at $ANATOMY_DIR (set ANATOMY_DIR)" >&2; exit 1; }
[ -f "$ORT_DYLIB_PATH" ] || { echo "ONNX Runtime library not found at $ORT_DYLIB_PATH (bash scripts/setup-ort.sh, or set ORT_DYLIB_PATH): the evaluation runs mrtdose segment" >&2; exit 1; }

# 1. Python environment (pinned)
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -r "$M/requirements-train.txt"
fi
PY="nice -n 19 $VENV/bin/python"

mkdir -p "$M/ct-organs" "$CACHE/ckpt" "$CACHE/ckpt2" "$CACHE/ckpt3" "$CACHE/ckpt4" "$CACHE/ckpt6"
LOG=$M/ct-organs/training-log.txt
# Runs 3 onwards: fine-tuning of an exported model, best checkpoint by validation Dice; the cosine lr schedule
# follows the wall clock and ends 4 minutes before the budget.
# fine_tune OUT_DIR INIT_ONNX STEPS LR LR_END MINUTES ORGAN_SAMPLE_WEIGHTS [SEED [SYNTH_PROB [EXTRA train.py FLAGS...]]]
fine_tune() {
  $PY "$M/train/train.py" --cache "${CACHE_DATA:-$CACHE/data}" --out "$1" --init-onnx "$2" --steps "$3" --seed "${8:-$SEED}" \
    --lr "$4" --lr-end "$5" --lr-minutes "$(($6 - 4))" --max-minutes "$6" \
    --synth-prob "${9:-0.35}" --fg-prob 0.85 --organ-sample-weights "$7" --ce-weights 1,1,3,3,4 --dice-present \
    --val-every 250 --val-small 5 --val-overlap 0.25 --val-at-start --threads "$THREADS" "${@:10}" 2>&1 | tee -a "$LOG"
}

# 2. Training phantoms (seeds >= 100000 only) and held-out evaluation phantoms (seeds 9000-9019 small, 9000-9002 clinical)
if [ -z "$RUN10_INIT_ONNX$RUN11_INIT_ONNX" ]; then   # runs 1-9, on anatomy revision 1 (the generator before stop 34)
export ANATOMY_REVISION=1
"$M/train/make_phantoms.sh" "$CACHE/phantoms" small 100000 60
"$M/train/make_phantoms.sh" "$CACHE/phantoms" clinical 200000 6
"$M/train/make_eval_phantoms.sh" "$CACHE/eval" small 9000 20
"$M/train/make_eval_phantoms.sh" "$CACHE/eval" clinical 9000 20
# Calibration phantoms (neither training nor test data): choosing an ensemble's members (run 9 onwards)
"$M/train/make_eval_phantoms.sh" "$CACHE/calib" small 9100 20
"$M/train/make_eval_phantoms.sh" "$CACHE/calib_clinical" clinical 9100 10

# 3. Dataset cache on the model grid: phantoms + SynthSeg-style images from the real label maps (s0009 held out)
$PY "$M/train/build_cache.py" --phantoms "$CACHE/phantoms" --anatomy "$ANATOMY_DIR" --out "$CACHE/data" \
  --synth-per-template 8 --seed $SEED

# 4. Train (fixed seed) in the three runs that made the shipped model, export, evaluate.
#    Run 1: lr 2e-3 cosine over 3000 steps, stopped at step 1000 (learns the liver).
#    Run 2: initialised from run 1, class-weighted CE (kidneys/spleen x3), 80 % organ-centred patches,
#           lr 1e-3 -> 5e-5 cosine over 2000 steps, stopped at RUN2_STEPS or MAX_MINUTES.
#    Run 3: initialised from the exported run-2 model (--init-onnx, checked against onnxruntime), CE weights
#           1,1,3,3,4, Dice over the organs present in the patch, 85 % organ-centred patches choosing
#           liver:kidney_left:kidney_right:spleen 1:2:1.5:3, lr 5e-4 -> 2e-5 cosine over the RUN3_MINUTES budget,
#           validation every 250 steps on 6 kept-out phantoms; the best checkpoint (mean Dice of the 4 organs)
#           is exported.
if [ -z "$RUN9_INIT_ONNX" ]; then
  if [ -z "$RUN6_INIT_ONNX" ] && [ -z "$RUN7_INIT_ONNX" ]; then
    if [ -z "$RUN4_INIT_ONNX" ]; then
      if [ -z "$RUN3_INIT_ONNX" ]; then
        echo "# run 1" > "$LOG"
        $PY "$M/train/train.py" --cache "$CACHE/data" --out "$CACHE/ckpt" --steps 3000 --stop-step 1000 --seed $SEED \
          --synth-prob 0.35 --threads "$THREADS" 2>&1 | tee -a "$LOG"
        echo "# run 2" >> "$LOG"
        $PY "$M/train/train.py" --cache "$CACHE/data" --out "$CACHE/ckpt2" --steps 2000 --stop-step "$RUN2_STEPS" --seed $SEED \
          --lr 1e-3 --lr-end 5e-5 --synth-prob 0.35 --fg-prob 0.8 --ce-weights 1,1,3,3,3 --init "$CACHE/ckpt/last.pt" \
          --max-minutes "$MAX_MINUTES" --threads "$THREADS" 2>&1 | tee -a "$LOG"
        $PY "$M/train/export.py" --ckpt "$CACHE/ckpt2/last.pt" --out-dir "$CACHE/run2" --seed $SEED
        RUN3_INIT_ONNX=$CACHE/run2/model.onnx
      else
        echo "# run 3 onwards, from $RUN3_INIT_ONNX" > "$LOG"
      fi
      echo "# run 3" >> "$LOG"
      fine_tune "$CACHE/ckpt3" "$RUN3_INIT_ONNX" 6000 5e-4 2e-5 "$RUN3_MINUTES" 1,2,1.5,3
      $PY "$M/train/export.py" --ckpt "$CACHE/ckpt3/best.pt" --out-dir "$CACHE/run3" --seed $SEED
      RUN4_INIT_ONNX=$CACHE/run3/model.onnx
    else
      echo "# run 4 onwards, from $RUN4_INIT_ONNX" > "$LOG"
    fi
    #    Run 4: the run-3 model fine-tuned with 20 more training phantoms (small 100060-100079), left kidney chosen
    #           3x as often for organ-centred patches, lr 3e-4 -> 1e-5 cosine over the RUN4_MINUTES budget.
    "$M/train/make_phantoms.sh" "$CACHE/phantoms" small 100060 20
    $PY "$M/train/build_cache.py" --phantoms "$CACHE/phantoms" --anatomy "$ANATOMY_DIR" --out "$CACHE/data" \
      --synth-per-template 8 --seed $SEED
    echo "# run 4" >> "$LOG"
    fine_tune "$CACHE/ckpt4" "$RUN4_INIT_ONNX" 20000 3e-4 1e-5 "$RUN4_MINUTES" 1,3,1.5,3
    $PY "$M/train/export.py" --ckpt "$CACHE/ckpt4/best.pt" --out-dir "$CACHE/run4" --seed $SEED --version 1.1.0
    RUN6_INIT_ONNX=$CACHE/run4/model.onnx
  fi
  #    Run 6: the run-4 model (version 1.1.0) fine-tuned on more varied data: 20 more small phantoms (100080-100099),
  #           8 more clinical ones (200006-200013) and 12 instead of 8 synthetic images per real label map, sampled
  #           with probability 0.45; seed 1236, lr 2e-4 -> 1e-5 cosine over the RUN6_MINUTES budget (run 5, a second
  #           cycle on run 4's data alone, was not kept; see models/README.md).
  #    The data of runs 6 and 7 (made whichever run the replay starts at).
  "$M/train/make_phantoms.sh" "$CACHE/phantoms" small 100060 40     # run 4's 20 (present unless runs 1-4 were skipped) + 20 new
  "$M/train/make_phantoms.sh" "$CACHE/phantoms" clinical 200006 8
  $PY "$M/train/build_cache.py" --phantoms "$CACHE/phantoms" --anatomy "$ANATOMY_DIR" --out "$CACHE/data" \
    --synth-per-template 12 --seed $SEED
  if [ -z "$RUN7_INIT_ONNX" ] && [ -z "$RUN8_INIT_ONNX" ]; then
    if [ -n "$RUN6_GIVEN" ]; then
      echo "# run 6, from $RUN6_INIT_ONNX (the log of runs 1-4 is in git history: git show 5fb4546:models/ct-organs/training-log.txt)" > "$LOG"
    fi
    echo "# run 6" >> "$LOG"
    fine_tune "$CACHE/ckpt6" "$RUN6_INIT_ONNX" 20000 2e-4 1e-5 "$RUN6_MINUTES" 1,3,1.5,3 1236 0.45
    $PY "$M/train/export.py" --ckpt "$CACHE/ckpt6/best.pt" --out-dir "$CACHE/run6" --seed 1236 --version 1.2.0 \
      --history "run 1 + run 2 (3000 steps from scratch), runs 3, 4 and 6 (fine-tuning; run 5 not kept); see models/train.sh"
    RUN7_INIT_ONNX=$CACHE/run6/model.onnx
  elif [ -z "$RUN8_INIT_ONNX" ]; then
    echo "# run 7, from $RUN7_INIT_ONNX (the log of run 6 is in git history: git show 351d684:models/ct-organs/training-log.txt)" > "$LOG"
  fi
  #    Run 7: the run-6 model (version 1.2.0) fine-tuned on run 6's data under CPU bfloat16 autocast with
  #           channels-last tensors (train.py --bf16: ~2.5x the steps per second of float32 on this AVX512-BF16
  #           CPU); seed 1237, synth probability 0.45, lr 2e-4 -> 1e-5 cosine over the RUN7_MINUTES budget,
  #           validation every 500 steps.
  if [ -z "$RUN8_INIT_ONNX" ]; then
    echo "# run 7" >> "$LOG"
    fine_tune "$CACHE/ckpt7" "$RUN7_INIT_ONNX" 40000 2e-4 1e-5 "$RUN7_MINUTES" 1,3,1.5,3 1237 0.45 --bf16 --val-every 500
    $PY "$M/train/export.py" --ckpt "$CACHE/ckpt7/best.pt" --out-dir "$CACHE/run7" --seed 1237 \
      --version 1.3.0 \
      --history "run 1 + run 2 (3000 steps from scratch), runs 3, 4, 6 and 7 (fine-tuning; run 5 not kept); see models/train.sh"
    RUN8_INIT_ONNX=$CACHE/run7/model.onnx
  else
    echo "# run 8, from $RUN8_INIT_ONNX (the log of run 7 is in git history: git show 6cfc117:models/ct-organs/training-log.txt)" > "$LOG"
  fi
  #    Run 8: the run-7 model (version 1.3.0) fine-tuned on the same data aimed at its commonest error (spleen called
  #           left kidney where the two meet): 30 % of patches centred on the left-kidney/spleen contact
  #           (train.py --contact-prob) and a confusion term in the loss (--confusion-weight 1); seed 1238,
  #           lr 1e-4 -> 5e-6 cosine over the RUN8_MINUTES budget (default 80), bfloat16, validation every 500
  #           steps. Shipped as version 1.4.0: the run-7 and run-8 models as one ONNX whose output is the log of
  #           their mean softmax (export_ensemble.py), which beat either alone on the calibration phantoms. Here
  #           run 8 is exported alone, as run 9's start.
  echo "# run 8" >> "$LOG"
  fine_tune "$CACHE/ckpt8" "$RUN8_INIT_ONNX" 40000 1e-4 5e-6 "$RUN8_MINUTES" 1,3,1.5,3 1238 0.45 --bf16 --val-every 500 \
    --contact-prob 0.3 --confusion-weight 1.0
  $PY "$M/train/export.py" --ckpt "$CACHE/ckpt8/best.pt" --out-dir "$CACHE/run8" --seed 1238 --version 1.4.0-run8 \
    --history "run 8 alone (version 1.4.0 was it and the run-7 model averaged); see models/train.sh"
  RUN9_INIT_ONNX=$CACHE/run8/model.onnx
  RUN7_ONNX=$RUN8_INIT_ONNX
else
  [ -n "$RUN7_ONNX" ] || { echo "RUN9_INIT_ONNX needs RUN7_ONNX (the run-7 model, the ensemble's other member)" >&2; exit 1; }
  echo "# run 9, from $RUN9_INIT_ONNX (the log of run 8 is in git history: git show c76837c:models/ct-organs/training-log.txt)" > "$LOG"
fi
#    Run 9: the run-8 model fine-tuned with 60 more clinical-preset phantoms (200014-200073; 74 in all, 200014-200016
#           kept out as validation cases beside 200001) and clinical phantoms drawn for half of the phantom patches
#           (train.py --clinical-prob 0.5; they had been 14 of 114 phantoms, drawn uniformly); otherwise as run 8
#           (contact patches, confusion term), seed 1239, lr 1e-4 -> 5e-6 cosine over the RUN9_MINUTES budget.
#           Why: on the same anatomies (same seeds) the clinical preset's Dice was 0.04-0.10 below the small
#           preset's. Shipped as version 1.5.0: the run-7 and run-9 models averaged, the best of the single
#           models, pairs and the triple of runs 7-9 on the calibration phantoms (train/compare_members.py).
"$M/train/make_phantoms.sh" "$CACHE/phantoms" clinical 200014 60
$PY "$M/train/build_cache.py" --phantoms "$CACHE/phantoms" --anatomy "$ANATOMY_DIR" --out "$CACHE/data" \
  --synth-per-template 12 --seed $SEED
echo "# run 9" >> "$LOG"
fine_tune "$CACHE/ckpt9" "$RUN9_INIT_ONNX" 40000 1e-4 5e-6 "$RUN9_MINUTES" 1,3,1.5,3 1239 0.45 --bf16 --val-every 500 \
  --contact-prob 0.3 --confusion-weight 1.0 --clinical-prob 0.5 \
  --val-extra phantom_clinical_200014,phantom_clinical_200015,phantom_clinical_200016
$PY "$M/train/export.py" --ckpt "$CACHE/ckpt9/best.pt" --out-dir "$CACHE/run9" --seed 1239 --version 1.5.0-run9
echo "# Calibration: runs 7, 8 and 9 and their ensembles (train/compare_members.py)" >> "$LOG"
$PY "$M/train/compare_members.py" --model run7="$(dirname "$RUN7_ONNX")" --model run8="$(dirname "$RUN9_INIT_ONNX")" \
  --model run9="$CACHE/run9" --phantoms "$CACHE/calib" --phantoms "$CACHE/calib_clinical" \
  --out "$M/ct-organs/calibration.json" --threads "$THREADS" 2>&1 | tee -a "$LOG"
$PY "$M/train/export_ensemble.py" --out-dir "$M/ct-organs" --member-onnx "$RUN7_ONNX" \
  --member-ckpt "$CACHE/ckpt9/best.pt" --seed 1239 --version 1.8.0 --fused-overlap 0.4 --grid-shift 0.5 0.5 0.5 \
  --history "mean softmax of two members: the run-7 model (run 1 + run 2, 3000 steps from scratch, then runs 3, 4, 6 and 7, fine-tuning; run 5 not kept) and the run-9 model (run 8's, itself run 7's fine-tuned on the left-kidney/spleen contact, fine-tuned with clinical-preset phantoms in half of the phantom draws); see models/train.sh"
fi   # runs 1-9
#    Run 10 (stop 34): the run-9 model fine-tuned on phantoms of anatomy revision 2 (mrtdose phantom
#           --anatomy-revision 2: perirenal fat around each kidney; kidneys, liver and spleen moved apart instead of
#           overlapping), 60 small (100000-100059, 100055-100059 the validation cases) and 9 clinical ones
#           (200014-200022, 200014-200015 kept out as validation), with one synthetic image per real label map;
#           otherwise as run 9 (contact patches, confusion term, clinical phantoms in half of the draws), seed 1240,
#           synth probability 0.25, lr 1e-4 -> 5e-6 cosine over RUN10_MINUTES (default 40). Shipped alone as
#           version 1.9.0 (one U-Net: the run-7 member was trained on revision-1 anatomy only).
#           RUN10_INIT_ONNX starts it from the run-9 member taken out of version 1.8.0 instead of replaying runs 1-9:
#             mkdir -p /tmp/v180; for f in model.onnx model-card.json; do
#               git show 92c26de:models/ct-organs/$f > /tmp/v180/$f; done
#             models/.venv-train/bin/python models/train/extract_member.py --ensemble /tmp/v180 --index 1 --out-dir /tmp/run9
#             RUN10_INIT_ONNX=/tmp/run9/model.onnx models/train.sh     # ~1 h 20 min in all
#    Run 11 (stop 35): the run-10 model (1.9.0) fine-tuned with the surroundings of the organs moved in CT number:
#           tissue maps of the phantoms (make_tissue_maps.sh) let train.py shift fat, muscle, soft tissue, vessels,
#           stomach and bowel each by its own N(0, 20 HU) offset in half of the phantom patches (--tissue-hu-sd 20),
#           so that a stomach as bright as the spleen beside it (held-out seed 9015) is not called spleen for its CT
#           number. 6 more clinical phantoms (200014-200028), two synthetic images per real label map, float32 (the
#           machine had no AVX512-BF16), lr 6e-5 -> 3e-6 over RUN11_MINUTES (default 58), spleen patches weighted 4,
#           seed 1241. Shipped alone as version 1.10.0. RUN11_INIT_ONNX starts it from 1.9.0 instead of replaying
#           runs 1-10:
#             mkdir -p /tmp/v190; for f in model.onnx model-card.json; do
#               git show 7c9c6cf:models/ct-organs/$f > /tmp/v190/$f; done
#             RUN11_INIT_ONNX=/tmp/v190/model.onnx models/train.sh     # ~1 h 30 min in all
# r2_phantoms N: anatomy-revision-2 training phantoms (60 small, N clinical from 200014; run 10 had 9, run 11 15) and
# the held-out sets; existing ones are kept.
export ANATOMY_REVISION=2
r2_phantoms() {
  "$M/train/make_phantoms.sh" "$CACHE/phantoms-r2" small 100000 60
  "$M/train/make_phantoms.sh" "$CACHE/phantoms-r2" clinical 200014 "$1"
  "$M/train/make_eval_phantoms.sh" "$CACHE/eval-r2" small 9000 20
  "$M/train/make_eval_phantoms.sh" "$CACHE/eval-r2" clinical 9000 20
}
if [ -z "$RUN11_INIT_ONNX" ]; then
  if [ -z "$RUN10_INIT_ONNX" ]; then
    $PY "$M/train/extract_member.py" --ensemble "$M/ct-organs" --index 1 --out-dir "$CACHE/run9-member"
    RUN10_INIT_ONNX=$CACHE/run9-member/model.onnx
  else
    echo "# run 10, from $RUN10_INIT_ONNX (the log of runs 8-9 is in git history: git show 92c26de:models/ct-organs/training-log.txt)" > "$LOG"
  fi
  r2_phantoms 9
  $PY "$M/train/build_cache.py" --phantoms "$CACHE/phantoms-r2" --anatomy "$ANATOMY_DIR" --out "$CACHE/data-r2" \
    --synth-per-template 1 --seed $SEED
  echo "# run 10" >> "$LOG"
  CACHE_DATA=$CACHE/data-r2 fine_tune "$CACHE/ckpt10" "$RUN10_INIT_ONNX" 40000 1e-4 5e-6 "$RUN10_MINUTES" 1,3,1.5,3 1240 0.25 \
    --bf16 --val-every 500 --contact-prob 0.3 --confusion-weight 1.0 --clinical-prob 0.5 \
    --val-extra phantom_clinical_200014,phantom_clinical_200015
  $PY "$M/train/export.py" --ckpt "$CACHE/ckpt10/best.pt" --out-dir "$CACHE/run10" --seed 1240 --version 1.9.0 \
    --fused-overlap 0.4 --grid-shift 0.5 0.5 0.5 \
    --history "the run-9 model (runs 1-9 on anatomy revision 1; see the 1.8.0 history in git) fine-tuned on anatomy-revision-2 phantoms (run 10); see models/train.sh"
  RUN11_INIT_ONNX=$CACHE/run10/model.onnx
else
  echo "# run 11, from $RUN11_INIT_ONNX (the log of run 10 is in git history: git show 7c9c6cf:models/ct-organs/training-log.txt)" > "$LOG"
fi
r2_phantoms 15
(cd "$ROOT" && cargo build --release -p mrt-phantom --example tissue_map)
TISSUE_MAP_BIN=$ROOT/target/release/examples/tissue_map "$M/train/make_tissue_maps.sh" "$CACHE/phantoms-r2"
$PY "$M/train/build_cache.py" --phantoms "$CACHE/phantoms-r2" --anatomy "$ANATOMY_DIR" --out "$CACHE/data-r3" \
  --synth-per-template 2 --seed $SEED --require-tissues
echo "# run 11" >> "$LOG"
CACHE_DATA=$CACHE/data-r3 fine_tune "$CACHE/ckpt11" "$RUN11_INIT_ONNX" 40000 6e-5 3e-6 "$RUN11_MINUTES" 1,3,1.5,4 1241 0.25 \
  --val-every 500 --contact-prob 0.3 --confusion-weight 1.0 --clinical-prob 0.5 \
  --val-extra phantom_clinical_200014,phantom_clinical_200015 --tissue-hu-sd 20 --tissue-hu-prob 0.5
$PY "$M/train/export.py" --ckpt "$CACHE/ckpt11/best.pt" --out-dir "$M/ct-organs" --seed 1241 --version 1.10.0 \
  --fused-overlap 0.4 --grid-shift 0.5 0.5 0.5 \
  --history "the 1.9.0 model (run 10) fine-tuned with per-tissue intensity shifts of the phantoms' surroundings (run 11); see models/train.sh"
echo "# Evaluation of the exported ONNX through mrtdose segment (its grid shifts and clean-up; per-case Dice on the native CT grid by train/evaluate.py)" >> "$LOG"
SEG=$CACHE/seg-$(date +%s)
for d in "$CACHE"/eval-r2/*_*/; do
  n=$(basename "$d"); mkdir -p "$SEG/$n"
  "$MRTDOSE_BIN" segment "$d/tp1/ct.nii.gz" --device cpu --model "$M/ct-organs" --out "$SEG/$n/labels.nii.gz" >/dev/null
done
mkdir -p "$SEG/real_totalseg_s0009"
"$MRTDOSE_BIN" segment "$ANATOMY_DIR/totalseg_s0009_ct.nii.gz" --device cpu --model "$M/ct-organs" \
  --out "$SEG/real_totalseg_s0009/labels.nii.gz" >/dev/null
$PY "$M/train/evaluate.py" --model-dir "$M/ct-organs" --phantoms "$CACHE/eval-r2" --labels-from "$SEG" \
  --real-ct "$ANATOMY_DIR/totalseg_s0009_ct.nii.gz" --real-labels "$ANATOMY_DIR/totalseg_s0009_labels.nii.gz" \
  --out "$M/ct-organs/evaluation.json" --update-card 2>&1 | tee -a "$LOG"
