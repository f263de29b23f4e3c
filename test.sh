#!/usr/bin/env bash
# The test suite: installs what is missing (tools/install.sh), then runs pytest.
# Options are passed to pytest, e.g. ./test.sh -m "not integration" -x
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"${root}/tools/install.sh"
cd "${root}"
export PYTHONIOENCODING=UTF-8 LC_ALL=C.UTF-8
exec "${ESPNET_CS_VENV:-${root}/tools/venv}/bin/python" -m pytest -q -p no:cacheprovider "$@" tests
