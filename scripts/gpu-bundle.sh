#!/usr/bin/env bash
# Prepares the one GPU call: builds the release binary with `--features cuda` here (no GPU
# needed, scripts/build-cuda.sh), strips it and compresses it into gpu-bundle/mspinn.xz (ignored
# by git; the device tool carries it with `carry: ["gpu-bundle"]`), and checks that the tree that
# travels — tracked and untracked-unignored files plus the bundle — stays under the tool's 64 MiB.
# Measured 2026-12-06: the cuda binary is 183 MB, 63 MB stripped (candle's PTX is most of it: too
# close to the limit with the tree beside it), 9 MB compressed.
#
#   scripts/gpu-bundle.sh            # then, on the GPU machine, in one call:
#   scripts/gpu-check.sh             # finds gpu-bundle/mspinn.xz and unpacks it
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=$((64 << 20))

scripts/build-cuda.sh
bin="${CARGO_TARGET_DIR:-$HOME/.cache/mspinn/target-cuda}/release/mspinn"
rm -rf gpu-bundle
mkdir -p gpu-bundle
# Debug information and symbols are most of the release binary (the profile keeps them for
# profiling); the GPU run needs neither.
strip --strip-all -o gpu-bundle/mspinn.tmp "$bin"
xz -T0 -6 -c gpu-bundle/mspinn.tmp >gpu-bundle/mspinn.xz
rm gpu-bundle/mspinn.tmp

tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null |
    awk '{ s += $1 } END { print s + 0 }')
bundle=$(stat -c %s gpu-bundle/mspinn.xz)
total=$((tree + bundle))
printf 'gpu-bundle: binary %d MiB, tree %d MiB, %d MiB of %d MiB\n' \
    $((bundle >> 20)) $((tree >> 20)) $((total >> 20)) $((LIMIT >> 20))
if ((total > LIMIT)); then
    echo "gpu-bundle: the carried tree is over the limit; remove large untracked files" >&2
    exit 1
fi
echo "gpu-bundle: run on the GPU machine: scripts/gpu-check.sh (carry gpu-bundle)"
