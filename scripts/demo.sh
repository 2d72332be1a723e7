#!/usr/bin/env bash
# make demo: study 1 in a few minutes. Generate addition with a held-out square (centre 50,50, L=20: the
# side-40 ablation of PAPERS.md, 8,319 train / 1,681 test), train a small GPT-2 on the rest, and look at where
# it fails on the plane: accuracy inside the square falls from the rim to the centre (a "hole").
# (With L=10, the published 9,559 / 441 split, this small model from scratch fills the square in.)
set -euo pipefail
BIN=${RULELENS_BIN:-.build/release/rulelens}
DIR=${DEMO_DIR:-runs/demo}
$BIN --version
if [ -e "$DIR" ]; then echo "replacing the previous demo output in $DIR"; rm -rf "$DIR"; fi

$BIN data generate --task addition --split leave-square-out --center 50,50 --half 20 --seed 0 --out "$DIR/data"
$BIN data show "$DIR/data" --examples 2

# d_model 64 matmuls are too small to gain from a second thread; one thread is faster on a busy machine.
$BIN train --data "$DIR/data" --out "$DIR/model" --layers 2 --heads 4 --d-model 64 --ctx 16 \
  --steps 3000 --batch 64 --lr 3e-3 --warmup 100 --eval-every 1000 --threads 1 --seed 0

echo "== held-out square (never seen in training)"
$BIN eval --checkpoint "$DIR/model" --data "$DIR/data" --part test --out "$DIR/test_predictions.jsonl"
echo "== whole plane (train + test): heatmap in $DIR/all_predictions.plane.svg"
$BIN eval --checkpoint "$DIR/model" --data "$DIR/data" --part all --out "$DIR/all_predictions.jsonl"
