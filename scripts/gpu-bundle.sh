#!/usr/bin/env bash
# Builds a benchmark bundle for a machine that has a real GPU but no Rust toolchain and no crate
# registry: the release binary, the GPU correctness test binaries and the per-kernel bench, all
# stripped, with MovieLens 100K, the Vulkan loader packages (when apt-get can fetch them) and
# run.sh, in one tarball.
#
#   scripts/gpu-bundle.sh [OUT.tar.gz]        (default: target/gpu-bundle.tar.gz)
#
# On the GPU machine:
#
#   tar xzf gpu-bundle.tar.gz && gpu-bundle/run.sh OUTDIR          # the full run, under 8 minutes
#   gpu-bundle/run.sh --quick OUTDIR                                # small sizes, lavapipe too
#
# ML-100K comes from $COLLABGPU_DATA/ml-100k, ../shared/data/ml-100k or the download cache.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
out="${1:-$root/target/gpu-bundle.tar.gz}"
limit=$((64 * 1024 * 1024))

# The GPU tests that read nothing from the source tree (shader_portability does, and gpu_info
# runs the binary from its build path; run.sh runs `info` itself).
tests=(gpu_kernels gpu_trajectory gpu_whole_run gpu_ml100k gpu_binding_limit)

find_ml100k() {
  local dir
  for dir in "${COLLABGPU_DATA:-}/ml-100k" "$root/../shared/data/ml-100k" \
    "${XDG_CACHE_HOME:-$HOME/.cache}/collabgpu/ml-100k"; do
    if [ -f "$dir/u.data" ]; then
      echo "$dir"
      return
    fi
  done
  echo "gpu-bundle: MovieLens 100K not found; run \`collabgpu download ml-100k\` or set COLLABGPU_DATA" >&2
  exit 1
}
data="$(find_ml100k)"

# The executables cargo built for the targets named in the arguments, from its JSON messages
# (a test build also makes the binary's and library's own unit-test executables).
executables() {
  python3 -c '
import json, sys
wanted = set(sys.argv[1:])
for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if message.get("executable") and message.get("target", {}).get("name") in wanted:
        print(message["executable"])
' "$@"
}

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
bundle="$stage/gpu-bundle"
mkdir -p "$bundle/bin" "$bundle/tests" "$bundle/data/ml-100k" "$bundle/loaders"

echo "gpu-bundle: building the release binary, ${#tests[@]} GPU test binaries and the kernel bench" >&2
cargo build --release --bin collabgpu
cp target/release/collabgpu "$bundle/bin/"
test_flags=()
for t in "${tests[@]}"; do test_flags+=(--test "$t"); done
cargo test --release --no-run --message-format=json "${test_flags[@]}" | executables "${tests[@]}" |
  while read -r exe; do
    name="$(basename "$exe")"
    cp "$exe" "$bundle/tests/${name%-*}"
  done
cargo bench --no-run --message-format=json --bench kernels | executables kernels |
  while read -r exe; do cp "$exe" "$bundle/bin/kernels"; done
strip "$bundle"/bin/* "$bundle"/tests/*
for t in "${tests[@]}"; do
  [ -x "$bundle/tests/$t" ] || { echo "gpu-bundle: test binary $t was not built" >&2; exit 1; }
done
[ -x "$bundle/bin/kernels" ] || { echo "gpu-bundle: the kernel bench was not built" >&2; exit 1; }

cp "$data/u.data" "$data/u.item" "$bundle/data/ml-100k/"
cp scripts/gpu-run.sh "$bundle/run.sh"
chmod +x "$bundle/run.sh"

# The Vulkan and EGL loaders a bare GPU machine may lack (its driver brings the ICD).
if command -v apt-get >/dev/null; then
  lists="$(mktemp -d)"
  apt_options=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
  mkdir -p "$lists/partial"
  if apt-get "${apt_options[@]}" update >/dev/null 2>&1 &&
    (cd "$bundle/loaders" && apt-get "${apt_options[@]}" download \
      libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1); then
    echo "gpu-bundle: added the loader packages: $(ls "$bundle/loaders" | tr '\n' ' ')" >&2
  else
    echo "gpu-bundle: could not fetch the loader packages; run.sh uses the machine's own" >&2
  fi
  rm -rf "$lists"
fi

git rev-parse HEAD >"$bundle/COMMIT" 2>/dev/null || echo unknown >"$bundle/COMMIT"
mkdir -p "$(dirname "$out")"
tar -C "$stage" -czf "$out" gpu-bundle
size=$(stat -c %s "$out")
echo "gpu-bundle: wrote $out ($((size / 1024 / 1024)) MiB, commit $(cat "$bundle/COMMIT"))" >&2
if [ "$size" -gt "$limit" ]; then
  echo "gpu-bundle: $out is over 64 MiB, the most a device run carries" >&2
  exit 1
fi
