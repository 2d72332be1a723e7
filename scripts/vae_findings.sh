#!/usr/bin/env bash
# Study 2's findings with the language VAE, small enough for 2 shared cores (README "Language VAE", findings):
# for syllogism, math-derivation and explanatory data, a VAE with and without rule supervision; then rule
# separability of μ (silhouette, k-NN, k-means NMI; linear probe), per encoder layer attention vs FFN output,
# a PCA scatter of μ coloured by rule, and the encoder's gradient-kernel blocks within vs between rules.
#   [TASKS="syllogism math-derivation explanatory"] scripts/vae_findings.sh [OUT=runs/vae-findings]
# A run killed part-way continues from its last save (`vae train --resume`) when the script is started again.
# Steps per task (the same with and without supervision): syllogism and math-derivation 800, explanatory 500 (its
# examples are twice as long). Supervision weight γ = 20: rec is a sum over ~60–120 tokens, so γ = 1 leaves the
# classifier's share of the encoder gradient at ~1% and, in 800 steps, at chance (measured: 0.0375 on 24 rules).
set -euo pipefail
B=${RULELENS_BIN:-.build/release/rulelens}
OUT=${1:-runs/vae-findings}
mkdir -p "$OUT"
MODEL=(--layers 2 --enc-layers 2 --d-model 64 --heads 4 --latent 16 --free-bits 1 --batch 32 --lr 2e-3 --warmup 30 --threads 2 --quiet)
for task in ${TASKS:-syllogism math-derivation explanatory}; do
  data="$OUT/data-$task"
  [ -d "$data" ] || "$B" data generate --task "$task" --count 2400 --seed 1 --out "$data" >/dev/null
  ctx=$(python3 -c "import json,sys; print(max(len(json.loads(l)['prompt'])+len(json.loads(l)['target'])+2 for f in ('train','test') for l in open('$data/'+f+'.jsonl')))")
  steps=800; [ "$task" = explanatory ] && steps=500
  for mode in unsup sup; do
    run="$OUT/$task-$mode"
    sup=(); [ "$mode" = sup ] && sup=(--supervise rule --supervise-weight 20)
    done_steps=$(python3 -c "import json; print(json.load(open('$run/rulelens.json')).get('step', 0))" 2>/dev/null || echo 0)
    if [ ! -f "$run/model.safetensors" ]; then
      "$B" vae train --data "$data/train.jsonl" --out "$run" --ctx "$ctx" --steps "$steps" "${MODEL[@]}" "${sup[@]}"
    elif [ "$done_steps" -lt "$steps" ]; then
      "$B" vae train --data "$data/train.jsonl" --out "$run" --ctx "$ctx" --steps "$steps" "${MODEL[@]}" "${sup[@]}" --resume
    fi
    "$B" vae eval --checkpoint "$run" --data "$data/test.jsonl" --json --quiet > "$run/eval.json"
    "$B" vae encode --checkpoint "$run" --data "$data/test.jsonl" --out "$run/latents.h5" --force --quiet \
         --hooks 'encoder.blocks.*.hook_attn_out' --hooks 'encoder.blocks.*.hook_mlp_out'
    "$B" probe separability --file "$run/latents.h5" --site latent.hook_mu --site 'encoder.blocks.*.hook_attn_out' \
         --site 'encoder.blocks.*.hook_mlp_out' --label rule --json > "$run/separability.json"
    "$B" probe linear --file "$run/latents.h5" --site latent.hook_mu --label rule --json > "$run/linear.json"
    "$B" probe pca --file "$run/latents.h5" --site latent.hook_mu --label rule --out "$run/mu_pca" --force --json > "$run/pca.json"   # mu_pca/plot.svg
    "$B" probe ntk --checkpoint "$run" --data "$data/test.jsonl" --label rule --max-per-rule 6 --json > "$run/ntk.json"
  done
done
.venv/bin/python scripts/vae_findings_table.py "$OUT"
