# shellcheck shell=bash
# Environment of the recipes: the pinned virtual environment made by tools/install.sh.
# Sourced by every recipe as ./path.sh (egs2/<recipe>/asr1/path.sh -> egs2/TEMPLATE/asr1/path.sh
# -> this file); readlink -f follows the links, so MAIN_ROOT is the repository root from any dir.
MAIN_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
export MAIN_ROOT
"${MAIN_ROOT}/tools/install.sh"
venv="${ESPNET_CS_VENV:-${MAIN_ROOT}/tools/venv}"
export PATH="${venv}/bin:${PATH}"
export PYTHONIOENCODING=UTF-8
export LC_ALL=C.UTF-8
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
# nltk (imported by espnet) looks for data it cannot download here; keep it quiet.
export NLTK_DATA="${NLTK_DATA:-${MAIN_ROOT}/tools/nltk_data}"
