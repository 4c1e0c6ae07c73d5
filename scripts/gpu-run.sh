#!/usr/bin/env bash
# The benchmark bundle's run.sh (scripts/gpu-bundle.sh packs it): on a machine with a GPU and
# nothing else, measure the GPU backend beside the CPU backend on all cores.
#
#   run.sh [--quick] OUTDIR
#
# Writes six files to OUTDIR, the summary last: info.json (every adapter), tests.log (the GPU
# correctness tests), bench-ml100k.jsonl (the default recipe on ML-100K), bench-ml25m.jsonl (the
# ML-25M shape: sgd at K = 64, the ml-25m recipe on both backends, adamw at K = 128),
# kernels.log (each kernel alone) and summary.txt. --quick uses small sizes (the ML-1M shape,
# fewer samples) so that a software adapter (lavapipe) finishes in a few minutes; the full run
# takes under 8 minutes on a datacenter GPU.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
out="${1:?usage: run.sh [--quick] OUTDIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
bin="$here/bin/collabgpu"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# Loaders the bundle brought, unpacked into / only when the machine has no Vulkan loader.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' && ls "$here"/loaders/*.deb >/dev/null 2>&1; then
  for f in "$here"/loaders/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ]; then
  export VK_DRIVER_FILES="$nvidia_icd"
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export COLLABGPU_DATA="$here/data" COLLABGPU_REQUIRE_GPU=1 COLLABGPU_REQUIRE_DATA=1
export RUST_BACKTRACE=0
cores="$(nproc)"
started=$SECONDS
status=()

# step NAME TIMEOUT COMMAND...: runs one step, appends its output to the step's file, records
# its status for the summary.
step() {
  local name="$1" limit="$2" file="$3"
  shift 3
  local t0=$SECONDS
  echo "== $name" >&2
  timeout "$limit" "$@" >>"$out/$file" 2>>"$work/stderr.log"
  local rc=$?
  status+=("$(printf '%-34s rc %-3s %4ss' "$name" "$rc" $((SECONDS - t0)))")
}

step "info" 60 info.json "$bin" info --json

for t in "$here"/tests/*; do
  step "test $(basename "$t")" 240 tests.log "$t" --test-threads=1
done

if [ $quick = 1 ]; then
  large="synthetic:ml-1m"
  epochs_100k=2
else
  large="synthetic:ml-25m"
  epochs_100k=5
fi
step "bench ml-100k (adamw, K 50, B 64)" 240 bench-ml100k.jsonl \
  "$bin" bench --preset ml-100k --data "$here/data/ml-100k" --epochs $epochs_100k \
  --backends cpu,gpu --threads "$cores" --json
# Plain sparse sgd, the ML-25M-shape figure of the bundle runs before the ml-25m recipe existed.
sgd=(--data "$large" --optimizer sgd --schedule constant --factors 64 --bs 65536 --lr 200
  --wd 0 --epochs 1 --json)
step "train $large sgd K 64 B 65536 (cpu)" 300 bench-ml25m.jsonl \
  "$bin" train "${sgd[@]}" --threads "$cores"
step "train $large sgd K 64 B 65536 (gpu)" 300 bench-ml25m.jsonl \
  "$bin" train "${sgd[@]}" --backend gpu
# The ml-25m recipe (rowwise-adagrad, --l2, block order, at most 5 epochs) on both backends from
# one split, with the GPU's counted figures; its validation MSEs must agree within 0.005.
step "bench $large (recipe ml-25m)" 600 bench-ml25m.jsonl \
  "$bin" bench --preset ml-25m --data "$large" --backends cpu,gpu --threads "$cores" --json
step "bench $large (adamw, K 128, B 65536)" 300 bench-ml25m.jsonl \
  "$bin" bench --preset ml-100k --data "$large" --factors 128 --bs 65536 --lr 0.05 --epochs 1 \
  --backends cpu,gpu --threads "$cores" --json

if [ $quick = 1 ]; then export COLLABGPU_BENCH_QUICK=1; fi
step "kernels" 300 kernels.log "$here/bin/kernels" --bench --warm-up-time 1 --measurement-time 2

# The summary: every step's status, then each bench row (backend, ratings/s, valid loss).
{
  echo "collabgpu GPU bundle, commit $(cat "$here/COMMIT" 2>/dev/null), $(date -u +%FT%TZ)"
  echo "machine: $cores cores, $(uname -m); quick=$quick; total ${SECONDS}s (from ${started}s)"
  grep -m1 '"name"' "$out/info.json" 2>/dev/null | sed 's/^ */first adapter: /'
  echo
  printf '%s\n' "${status[@]}"
  echo
  grep -h '^test result' "$out/tests.log" 2>/dev/null
  echo
  printf '%-10s %-30s %14s %10s %10s %6s %6s %7s %7s\n' backend data ratings/s epoch_s \
    valid_mse disp waits B/rat GB/s
  for f in "$out"/bench-*.jsonl; do
    [ -f "$f" ] || continue
    python3 - "$f" <<'PY' 2>/dev/null || sed 's/^/  /' "$f"
import json, sys
for line in open(sys.argv[1]):
    try:
        row = json.loads(line)
    except ValueError:
        continue
    if row.get("type") not in (None, "summary"):
        continue
    rate = row.get("ratings_per_second") or 0
    seconds = row.get("epoch_seconds") or row.get("train_seconds") or 0
    loss = row.get("valid_loss")
    def cell(key, digits):
        value = row.get(key)
        return "-" if value is None else f"{value:.{digits}f}"
    # bench names the backend cpu or gpu; train's summary "cpu (N threads)" or the adapter.
    backend = str(row.get("backend"))
    if backend not in ("cpu", "gpu"):
        backend = "cpu" if backend.startswith("cpu") else "gpu"
    print(f"{backend:<10} {str(row.get('data'))[-30:]:<30} {rate:>14.0f} "
          f"{seconds:>10.4f} {loss if loss is None else round(loss, 6)!s:>10} "
          f"{cell('dispatches_per_step', 1):>6} {cell('host_waits_per_epoch', 1):>6} "
          f"{cell('bytes_per_rating', 0):>7} {cell('kernel_gb_per_second', 1):>7}")
PY
  done
  echo
  echo "stderr of the steps (last 30 lines, criterion's progress left out):"
  grep -v '^Benchmarking' "$work/stderr.log" | tail -n 30
} >"$out/summary.txt"
cat "$out/summary.txt"
