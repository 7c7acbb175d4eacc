#!/usr/bin/env bash
# The runs behind vitok-tiny-conv and its AutoencoderKL baseline (docs/quality), end to end:
#
#   benchmarks/reproduce_vitok_tiny_conv.sh train candidate   # stage 1 (4000 steps) then stage 2 (1000)
#   benchmarks/reproduce_vitok_tiny_conv.sh train baseline    # the same for the AutoencoderKL
#   benchmarks/reproduce_vitok_tiny_conv.sh curves            # val / train curves of every checkpoint
#   benchmarks/reproduce_vitok_tiny_conv.sh ship              # export both, compare them in one run
#   benchmarks/reproduce_vitok_tiny_conv.sh ship candidate    # the candidate alone, beside vitok-tiny
#   benchmarks/reproduce_vitok_tiny_conv.sh ship baseline     # the baseline, beside the shipped candidate
#   benchmarks/reproduce_vitok_tiny_conv.sh status            # each stage's last logged step, done or not
#
# `train` resumes: after an interruption (SIGTERM saves a checkpoint) the same command goes on from the
# last complete checkpoint, and a finished stage is skipped. The two trainings can run side by side;
# every checkpoint is kept (run.keep_last=0, 174 MB each for the candidate) for the curves.
# Environment: RUNS (default runs/quality) holds the runs, THREADS (default 1) is OMP_NUM_THREADS of a
# training, HARDWARE what the candidate trained on (its card says it). The trainings read the data their configs name (../shared/data, `vitok data build`);
# DATA (default ../shared/data) is where `curves` and `ship` find the val and train photos and videos.
# `ship` writes src/vitok/pretrained/vitok-tiny-conv (bf16, latent statistics of the training photos,
# card from configs/vitok-tiny-conv/card.json plus the sections benchmarks/card_facts.py measures),
# benchmarks/baselines/autoencoder-kl (bf16 diffusers folder) and $RUNS/compare
# (benchmarks/compare_vitok_tiny.py beside the shipped vitok-tiny); all of it is made in $RUNS/ship
# first and copied into the repository only when every step worked; the runs' config.yaml and
# metrics.jsonl are kept in $KEPT (default docs/quality/training-logs). `ship candidate` does the same for
# the candidate alone (its comparison has no AutoencoderKL row) while the baseline still trains;
# `ship baseline` then adds the baseline: it compares the shipped candidate, vitok-tiny and the
# baseline in one run and rewrites the shipped candidate's card (weights unchanged) from the kept logs,
# so the candidate's run folders are no longer needed.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
RUNS=${RUNS:-runs/quality}
THREADS=${THREADS:-1}
DATA=${DATA:-../shared/data}
BIN=${BIN:-.venv/bin}
CFG=configs/vitok-tiny-conv
SHIPPED=src/vitok/pretrained/vitok-tiny-conv
KEPT=${KEPT:-docs/quality/training-logs}
# what the candidate trained on, for its card's Compute section
HARDWARE=${HARDWARE:-2 CPU cores (AMD EPYC with AVX-512 and AVX512-BF16, no AMX, no GPU), fp32, OMP_NUM_THREADS=2, nothing else running}

train() {
  local name=$1 s1 s2
  case $name in
    candidate) s1=$CFG/stage1.yaml s2=$CFG/stage2.yaml ;;
    baseline) s1=$CFG/baseline_autoencoder_kl.yaml s2=$CFG/baseline_autoencoder_kl_stage2.yaml ;;
    *) echo "unknown run '$name': candidate or baseline" >&2; exit 2 ;;
  esac
  mkdir -p "$RUNS"
  export OMP_NUM_THREADS=$THREADS
  if [ ! -f "$RUNS/$name-stage1/done" ]; then
    "$BIN/vitok" train "$s1" run.out_dir="$RUNS/$name-stage1" run.progress=false run.ckpt_every=125 \
      run.keep_last=0 >> "$RUNS/$name-stage1.log" 2>&1
    touch "$RUNS/$name-stage1/done"
  fi
  if [ ! -f "$RUNS/$name-stage2/done" ]; then
    "$BIN/vitok" train "$s2" model.init_from="$RUNS/$name-stage1/model" run.out_dir="$RUNS/$name-stage2" \
      run.progress=false run.ckpt_every=125 run.keep_last=0 >> "$RUNS/$name-stage2.log" 2>&1
    touch "$RUNS/$name-stage2/done"
  fi
}

curves() {
  local specs=()
  for run in candidate-stage1 baseline-stage1 candidate-stage2 baseline-stage2; do
    [ -d "$RUNS/$run" ] && specs+=("$RUNS/$run")
  done
  "$BIN/python" benchmarks/training_curves.py "${specs[@]}" --images "$DATA/images/val" \
    --train-images "$DATA/images/train" --max-samples 28 --size 128 --out "$RUNS/curves"
}

ship() {
  local mode=${1:-both} names=(candidate baseline) staged="$RUNS/ship"
  case $mode in
    both) ;;
    candidate) names=(candidate) ;;
    baseline) names=(baseline) ;;
    *) echo "unknown ship '$mode': candidate, baseline, or nothing for both" >&2; exit 2 ;;
  esac
  for name in "${names[@]}"; do
    [ -f "$RUNS/$name-stage2/done" ] || { echo "$RUNS/$name-stage2 has not finished: train $name first" >&2; exit 1; }
  done
  if [ "$mode" = baseline ]; then
    [ -f "$SHIPPED/model.safetensors" ] && [ -f "$KEPT/candidate-stage2/metrics.jsonl" ] || {
      echo "ship baseline needs the shipped candidate ($SHIPPED) and its kept logs ($KEPT): ship candidate first" >&2
      exit 1; }
  fi
  # everything is made in $RUNS/ship first; the repository's copies are replaced only once all of it worked
  rm -rf "$staged"
  mkdir -p "$staged"
  local vitok=("$staged/vitok-tiny-conv" vitok-tiny) baseline=(--baseline "$staged/autoencoder-kl") logs=$RUNS
  case $mode in
    candidate) baseline=(--no-baseline) ;;
    baseline) vitok=("$SHIPPED" vitok-tiny) logs=$KEPT ;;
  esac
  [ "$mode" = baseline ] || export_candidate "$CFG/card.json" "$staged/vitok-tiny-conv"
  [ "$mode" = candidate ] || "$BIN/python" - "$RUNS/baseline-stage2/model-ema" "$staged/autoencoder-kl" <<'EOF'
import sys

import torch

from vitok.models.baselines import build_autoencoder_kl

build_autoencoder_kl({}, sys.argv[1]).to(torch.bfloat16).save_pretrained(sys.argv[2])
EOF
  "$BIN/python" benchmarks/compare_vitok_tiny.py --vitok "${vitok[@]}" "${baseline[@]}" \
    --images "$DATA/images/val" --video "$DATA/videos/val" --out "$RUNS/compare"
  # the card's measured sections (compute, training curve, metrics, comparison) from the candidate's
  # training logs and the comparison just made
  "$BIN/python" benchmarks/card_facts.py --card "$CFG/card.json" --stage1 "$logs/candidate-stage1" \
    --stage2 "$logs/candidate-stage2" --compare "$RUNS/compare/results.json" --row vitok-tiny-conv \
    --hardware "$HARDWARE" --out "$RUNS/card.json"
  if [ "$mode" = baseline ]; then  # the shipped weights as they are (bf16 stays bf16), the card rewritten
    "$BIN/vitok" export --model "$SHIPPED" --out "$staged/vitok-tiny-conv" --name vitok-tiny-conv \
      --precision bf16 --card "$RUNS/card.json"
  else  # the export is deterministic, so the second one only rewrites the card
    rm -rf "$staged/vitok-tiny-conv"
    export_candidate "$RUNS/card.json" "$staged/vitok-tiny-conv"
  fi
  rm -rf "$SHIPPED"
  cp -r "$staged/vitok-tiny-conv" "$SHIPPED"
  if [ "$mode" != candidate ]; then
    rm -rf benchmarks/baselines/autoencoder-kl
    mkdir -p benchmarks/baselines
    cp -r "$staged/autoencoder-kl" benchmarks/baselines/autoencoder-kl
  fi
  # the training logs (config.yaml, metrics.jsonl) are kept beside the docs, so that a later
  # `ship baseline` can rebuild the card once the candidate's run folders are gone
  local name stage
  for name in "${names[@]}"; do
    for stage in stage1 stage2; do
      mkdir -p "$KEPT/$name-$stage"
      cp "$RUNS/$name-$stage/metrics.jsonl" "$RUNS/$name-$stage/config.yaml" "$KEPT/$name-$stage/"
    done
  done
}

status() {
  local run last
  for run in candidate-stage1 candidate-stage2 baseline-stage1 baseline-stage2; do
    if [ -f "$RUNS/$run/done" ]; then
      echo "$run: done"
    elif [ -s "$RUNS/$run/metrics.jsonl" ]; then
      last=$(tail -n 1 "$RUNS/$run/metrics.jsonl" | sed -n 's/^{"step": \([0-9]*\).*/\1/p')
      echo "$run: step ${last:-?} logged, not finished"
    else
      echo "$run: not started"
    fi
  done
}

export_candidate() {  # CARD OUT
  "$BIN/vitok" export --model "$RUNS/candidate-stage2/model-ema" --out "$2" \
    --name vitok-tiny-conv "$DATA/images/train" --size 128 --precision bf16 --card "$1"
}

main() {
  case ${1:-} in
    train) train "${2:?train candidate|baseline}" ;;
    curves) curves ;;
    ship) ship "${2:-both}" ;;
    status) status ;;
    *) sed -n '2,/^set /{/^#/p}' "$SELF" >&2; exit 2 ;;
  esac
}

main "$@"; exit  # on one line: bash has read it all before a long run starts, so editing this file is safe
