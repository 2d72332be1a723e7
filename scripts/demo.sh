#!/usr/bin/env bash
# make demo: the main job on a built-in default — train a small GPT-2 on two-digit addition and report
# its accuracy on held-out sums.
set -euo pipefail
BIN=${RULELENS_BIN:-.build/release/rulelens}
OUT=${DEMO_DIR:-runs/demo}
STEPS=${DEMO_STEPS:-1500}

$BIN --version
rm -rf "$OUT"            # the demo's own output from an earlier run
mkdir -p "$OUT/data"

# Built-in data set: every a+b with a, b in 0..99 (10,000 sums), a seeded random 90/10 train/test split.
python3 - "$OUT/data" <<'PY'
import json, random, sys
rows = [{"prompt": f"{a}+{b}=", "target": str(a + b), "a": a, "b": b, "rule": "add"} for a in range(100) for b in range(100)]
random.Random(0).shuffle(rows)
for name, part in (("train", rows[:9000]), ("test", rows[9000:])):
    with open(f"{sys.argv[1]}/{name}.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in part)
PY
echo "data: $(wc -l < "$OUT/data/train.jsonl") train / $(wc -l < "$OUT/data/test.jsonl") test examples of a+b (a, b in 0..99)"

$BIN train --data "$OUT/data/train.jsonl" --eval-data "$OUT/data/test.jsonl" --out "$OUT/model" \
  --layers 2 --heads 4 --d-model 128 --ctx 12 --batch 64 --steps "$STEPS" --lr 3e-3 --warmup 100 \
  --eval-every 500 --save-every 500 --seed 0
echo "held-out accuracy (greedy decoding, exact match):"
$BIN eval --checkpoint "$OUT/model" --data "$OUT/data/test.jsonl" --out "$OUT/test_predictions.jsonl"
echo "checkpoint: $OUT/model (loads with transformers.GPT2LMHeadModel.from_pretrained)"
