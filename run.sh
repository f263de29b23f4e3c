#!/usr/bin/env bash
# The demo: installs what is missing (tools/install.sh), then runs the mini_cs recipe
# (egs2/mini_cs/asr1/run.sh) with the given options, e.g. ./run.sh --stage 3 --stop_stage 3.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"${root}/tools/install.sh"
cd "${root}/egs2/mini_cs/asr1"
exec ./run.sh "$@"
