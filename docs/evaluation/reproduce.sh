#!/usr/bin/env bash
# The exact commands behind docs/evaluation/{london,orl}: preparation, training (each run at most
# 55 minutes of wall time on the 2-core CPU; `max_time` in the configs) and evaluation.
# Run from the repository root after `make install`, with ../shared/datasets beside it.
set -euo pipefail
K=.venv/bin/kssgan
export OMP_NUM_THREADS=1   # the runs were made side by side on 2 cores; one thread each

# -- data: aligned crops, SFace embeddings, k = 3 groups (London: within each gender) ----------
$K prepare --config data_modules/london.yaml
$K prepare --config data_modules/orl.yaml

# -- the release recipe (the default of every experiment) -------------------------------------
$K fit --config experiments/london.yaml        # -> outputs/london/checkpoints/final.ckpt, summary.json
$K fit --config experiments/orl.yaml           # -> outputs/orl/checkpoints/final.ckpt

# -- London comparison rows: the paper, the StarGAN ablation, each new option alone ------------
# (15 minutes each; configs written by docs/evaluation/variant_config.py, committed as used)
for n in kss-gan-paper stargan-l1 release-targets consistency resize-residual surrogate-own; do
  $K fit --config docs/evaluation/london/configs/$n.yaml
done

# -- evaluation: SFace + dlib, plain and after the attacker's JPEG 75 / half-size round trip ----
$K evaluate --dataset london --k 3 --no-samples --out outputs/eval/london \
  --ckpt outputs/london/checkpoints/final.ckpt \
  --method kss-gan-paper=outputs/london-kss-gan-paper/checkpoints/final.ckpt \
  --ablation-ckpt outputs/london-stargan-l1/checkpoints/final.ckpt \
  --method release-targets=outputs/london-release-targets/checkpoints/final.ckpt \
  --method consistency=outputs/london-consistency/checkpoints/final.ckpt \
  --method resize-residual=outputs/london-resize-residual/checkpoints/final.ckpt \
  --method surrogate-own=outputs/london-surrogate-own/checkpoints/final.ckpt
$K evaluate --dataset orl --k 3 --no-samples --out outputs/eval/orl \
  --ckpt outputs/orl/checkpoints/final.ckpt

# numbers and plots only (no face images) are committed:
for d in london orl; do
  cp outputs/eval/$d/{metrics.json,report.md,reid_vs_k.png,sharpness_vs_k.png,cmc.png} docs/evaluation/$d/
done
