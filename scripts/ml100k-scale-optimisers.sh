#!/usr/bin/env bash
# The search behind BENCHMARKS.md, "The scale optimisers on ML-100K" (issue 11): every run of
# rowwise-adagrad and sparse-adam tried on the real MovieLens 100K, one at a time, then the chosen
# flags beside the default recipe on seeds 42, 1, 2, 3. One line per run: the flags, the valid MSE
# after each epoch, the final valid and train MSE. About a minute on 2 cores.
#
#   scripts/ml100k-scale-optimisers.sh [DATA_DIR]     (default: ../shared/data/ml-100k)
#
# Uses target/release/collabgpu ($CARGO_TARGET_DIR/release/collabgpu when set): build it first
# with `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release/collabgpu"
data="${1:-../shared/data/ml-100k}"

run() {
  "$bin" train --data "$data" --threads 2 --json "$@" | python3 -c '
import json, sys
epochs, summary = [], None
for line in sys.stdin:
    record = json.loads(line)
    if record["type"] == "epoch":
        epochs.append(record["valid_loss"])
    elif record["type"] == "summary":
        summary = record
print(" ".join(sys.argv[1:]) or "(default recipe)", "|", " ".join("%.4f" % e for e in epochs),
      "| final %.4f train %.4f" % (summary["valid_loss"], summary["train_loss"]))
' "$@"
}

uptime
echo "## rowwise-adagrad, seed 42"
adagrad=(--optimizer rowwise-adagrad --wd 0)
run "${adagrad[@]}"
run "${adagrad[@]}" --epochs 10
for lr in 0.01 0.03 0.1; do
  for l2 in 0.02 0.05 0.1; do
    run "${adagrad[@]}" --schedule constant --lr "$lr" --l2 "$l2" --epochs 10
  done
done
for l2 in 0.05 0.1 0.15; do run "${adagrad[@]}" --schedule constant --lr 0.05 --l2 "$l2" --epochs 10; done
for l2 in 0.05 0.1; do run "${adagrad[@]}" --schedule constant --lr 0.03 --l2 "$l2" --epochs 20; done
for bs in 256 1024; do
  for lr in 0.03 0.1; do
    run "${adagrad[@]}" --schedule constant --lr "$lr" --l2 0.05 --bs "$bs" --epochs 10
  done
done
for lr in 0.05 0.1 0.2; do
  for l2 in 0.05 0.1; do run "${adagrad[@]}" --lr "$lr" --l2 "$l2" --epochs 10; done
done
for l2 in 0.05 0.075 0.1; do run "${adagrad[@]}" --lr 0.1 --l2 "$l2" --epochs 5; done
run "${adagrad[@]}" --lr 0.1 --l2 0.075 --epochs 10
for bs in 256 1024; do run "${adagrad[@]}" --lr 0.1 --l2 0.075 --bs "$bs" --epochs 10; done
for k in 32 100; do run "${adagrad[@]}" --lr 0.1 --l2 0.1 --epochs 10 --factors "$k"; done
run "${adagrad[@]}" --lr 0.1 --l2 0.1 --epochs 10 --order blocks

echo "## sparse-adam, seed 42"
adam=(--optimizer sparse-adam)
run "${adam[@]}"
for lr in 5e-3 1e-2 2e-2; do
  for l2 in 0 0.05 0.1; do run "${adam[@]}" --lr "$lr" --l2 "$l2" --wd 0; done
done
run "${adam[@]}" --lr 1e-2 --l2 0.05
run "${adam[@]}" --lr 1e-2 --l2 0.075 --wd 0
for l2 in 0.05 0.075; do run "${adam[@]}" --lr 1e-2 --l2 "$l2" --wd 0 --epochs 10; done
run "${adam[@]}" --lr 5e-3 --l2 0.05 --wd 0 --epochs 10
for l2 in 0.05 0.1; do run "${adam[@]}" --lr 2e-2 --l2 "$l2" --wd 0 --bs 256; done
run "${adam[@]}" --lr 1e-2 --l2 0.05 --wd 0 --bs 256
for lr in 1e-2 3e-3; do run "${adam[@]}" --lr "$lr" --l2 0.05 --wd 0 --schedule constant; done

echo "## the chosen flags beside the default recipe, per seed"
for seed in 42 1 2 3; do
  run --seed "$seed"
  run --optimizer rowwise-adagrad --lr 0.1 --l2 0.075 --epochs 10 --seed "$seed"
  run --optimizer sparse-adam --lr 1e-2 --l2 0.075 --wd 0 --seed "$seed"
done
uptime
