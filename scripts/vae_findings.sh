#!/usr/bin/env bash
# Study 2's findings with the language VAE, small enough for 2 shared cores (README "Language VAE", findings):
# for syllogism, math-derivation and explanatory data, a VAE with and without rule supervision; then rule
# separability of μ (silhouette, k-NN, k-means NMI; linear probe), per encoder layer attention vs FFN output,
# a PCA scatter of μ coloured by rule, and the encoder's gradient-kernel blocks within vs between rules.
#   scripts/vae_findings.sh [OUT=runs/vae-findings] [STEPS=400]
set -euo pipefail
B=${RULELENS_BIN:-.build/release/rulelens}
OUT=${1:-runs/vae-findings}
STEPS=${2:-400}
mkdir -p "$OUT"
MODEL=(--layers 2 --enc-layers 2 --d-model 64 --heads 4 --latent 16 --free-bits 1 --batch 32 --lr 2e-3 --warmup 30 --steps "$STEPS" --threads 2 --quiet)
for task in syllogism math-derivation explanatory; do
  data="$OUT/data-$task"
  [ -d "$data" ] || "$B" data generate --task "$task" --count 2400 --seed 1 --out "$data" >/dev/null
  ctx=$(python3 -c "import json,sys; print(max(len(json.loads(l)['prompt'])+len(json.loads(l)['target'])+2 for f in ('train','test') for l in open('$data/'+f+'.jsonl')))")
  for mode in unsup sup; do
    run="$OUT/$task-$mode"
    sup=(); [ "$mode" = sup ] && sup=(--supervise rule)
    [ -f "$run/model.safetensors" ] || "$B" vae train --data "$data/train.jsonl" --out "$run" --ctx "$ctx" "${MODEL[@]}" "${sup[@]}"
    "$B" vae eval --checkpoint "$run" --data "$data/test.jsonl" --json --quiet > "$run/eval.json"
    "$B" vae encode --checkpoint "$run" --data "$data/test.jsonl" --out "$run/latents.h5" --force --quiet \
         --hooks 'encoder.blocks.*.hook_attn_out' --hooks 'encoder.blocks.*.hook_mlp_out'
    "$B" probe separability --file "$run/latents.h5" --site latent.hook_mu --site 'encoder.blocks.*.hook_attn_out' \
         --site 'encoder.blocks.*.hook_mlp_out' --label rule --json > "$run/separability.json"
    "$B" probe linear --file "$run/latents.h5" --site latent.hook_mu --label rule --json > "$run/linear.json"
    "$B" probe pca --file "$run/latents.h5" --site latent.hook_mu --label rule --plot "$run/mu_pca.svg" --force --json > "$run/pca.json"
    "$B" probe ntk --checkpoint "$run" --data "$data/test.jsonl" --label rule --max-per-rule 6 --json > "$run/ntk.json"
  done
done
.venv/bin/python scripts/vae_findings_table.py "$OUT"
