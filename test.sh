#!/usr/bin/env bash
# The test suite: installs what is missing (tools/install.sh), lints and checks the formatting
# (ruff, configured in pyproject.toml), then runs pytest. Options are passed to pytest,
# e.g. ./test.sh -m "not integration" -x
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"${root}/tools/install.sh"
cd "${root}"
export PYTHONIOENCODING=UTF-8 LC_ALL=C.UTF-8
venv="${ESPNET_CS_VENV:-${root}/tools/venv}"
"${venv}/bin/ruff" check --quiet . || { echo "test.sh: ruff check failed (ruff check --fix fixes some)" >&2; exit 1; }
"${venv}/bin/ruff" format --check --quiet . || { echo "test.sh: not formatted: run ruff format" >&2; exit 1; }
exec "${venv}/bin/python" -m pytest -q -p no:cacheprovider "$@" tests
