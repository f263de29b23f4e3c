#!/usr/bin/env bash
# On a CUDA machine that carried tools/gpu_wheels/part1 (docs/gpu.md): install the wheels, then run
# the GPU tier (tests/test_gpu.py) and the GPU benchmark (python -m benchmarks.gpu, float32 and bfloat16
# autocast), each under its own time limit so that one hang cannot take the other's time.
# Logs, the tier's JUnit XML and the machine's description go to OUT_DIR. Options after the time
# limits go to benchmarks/gpu.py (default: --amp none bfloat16).
#   tools/gpu_check.sh OUT_DIR [TIER_SECONDS] [BENCHMARK_SECONDS] [benchmarks/gpu.py options]
set -uo pipefail

out="${1:?usage: tools/gpu_check.sh OUT_DIR [TIER_SECONDS] [BENCHMARK_SECONDS]}"
tier_seconds="${2:-300}"
benchmark_seconds="${3:-240}"
shift $(($# < 3 ? $# : 3))
benchmark_options=(--amp none bfloat16)
[ $# -gt 0 ] && benchmark_options=("$@")
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
mkdir -p "${out}"
export PYTHONUNBUFFERED=1 PYTHONIOENCODING=UTF-8 LC_ALL=C.UTF-8
# Without a network, nltk's download at import (g2p_en, through ESPnet) is refused at once by a
# closed local port instead of waiting on connections that are never answered.
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "bf16", torch.cuda.is_bf16_supported())'
    nproc
} > "${out}/machine.txt" 2>&1
tools/gpu_install.sh 2>&1 | tee "${out}/install.log" || exit 1
# shellcheck source=/dev/null
. tools/gpu_site/env.sh

timeout "${tier_seconds}" python3 -m pytest -q -p no:cacheprovider -rs --durations 15 -o faulthandler_timeout=120 \
    --junitxml "${out}/tier.xml" tests/test_gpu.py 2>&1 | tee "${out}/tier.log"
timeout "${benchmark_seconds}" python3 -m benchmarks.gpu "${benchmark_options[@]}" --record "${out}" 2>&1 \
    | tee "${out}/benchmark.log"
