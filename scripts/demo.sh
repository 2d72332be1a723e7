#!/usr/bin/env bash
# make demo: study 1 in a few minutes. Generate addition with a held-out square (centre 50,50, L=20: the
# side-40 ablation of PAPERS.md, 8,319 train / 1,681 test), train a small GPT-2 on the rest, and look at where
# it fails on the plane: accuracy inside the square falls from the rim to the centre (a "hole").
# (With L=10, the published 9,559 / 441 split, this small model from scratch fills the square in.)
set -euo pipefail
BIN=${RULELENS_BIN:-.build/release/rulelens}
OUT=${DEMO_DIR:-runs/demo}
STEPS=${DEMO_STEPS:-3000}

$BIN --version
rm -rf "$OUT"            # the demo's own output from an earlier run

$BIN data generate --task addition --split leave-square-out --center 50,50 --half 20 --seed 0 --out "$OUT/data"
$BIN data show "$OUT/data" --examples 2

# d_model 64 matmuls are too small to gain from a second thread; one thread is faster on a busy machine.
$BIN train --data "$OUT/data" --out "$OUT/model" --layers 2 --heads 4 --d-model 64 --ctx 16 \
  --steps "$STEPS" --batch 64 --lr 3e-3 --warmup 100 --eval-every 1000 --save-every 1000 --threads 1 --seed 0

echo "== the held-out square (never seen in training), greedy decoding, exact match"
$BIN eval --checkpoint "$OUT/model" --data "$OUT/data" --part test --out "$OUT/test_predictions.jsonl"
echo "== the whole plane (train + test); heatmap: $OUT/all_predictions.plane.svg"
$BIN eval --checkpoint "$OUT/model" --data "$OUT/data" --part all --out "$OUT/all_predictions.jsonl"
echo "checkpoint: $OUT/model (loads with transformers.GPT2LMHeadModel.from_pretrained)"
