# shellcheck shell=bash
# Environment of the recipes: the pinned virtual environment made by tools/install.sh.
# Sourced by every recipe as ./path.sh (egs2/<recipe>/asr1/path.sh -> egs2/TEMPLATE/asr1/path.sh
# -> this file); readlink -f follows the links, so MAIN_ROOT is the repository root from any dir.
MAIN_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
export MAIN_ROOT
"${MAIN_ROOT}/tools/install.sh"
venv="${ESPNET_CS_VENV:-${MAIN_ROOT}/tools/venv}"
export PATH="${venv}/bin:${PATH}"
# This checkout's espnet_cs comes first: an environment shared by several clones (ESPNET_CS_VENV)
# holds the espnet_cs of the clone it was installed from (an editable install). Checked, naming both.
export PYTHONPATH="${MAIN_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
imported="$(python -c 'import espnet_cs, os; f = espnet_cs.__file__
print(os.path.realpath(f) if f else f"{list(espnet_cs.__path__)} (no __init__.py)")' 2>&1 | tail -n 1)"
if [ "${imported}" != "$(realpath "${MAIN_ROOT}/espnet_cs/__init__.py")" ]; then
    echo "path.sh: python of ${venv} imports espnet_cs from ${imported}, not from this checkout's ${MAIN_ROOT}/espnet_cs" >&2
    unset imported
    return 1
fi
unset imported
export PYTHONIOENCODING=UTF-8
export LC_ALL=C.UTF-8
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
# nltk (imported by espnet) looks for data it cannot download here; keep it quiet.
export NLTK_DATA="${NLTK_DATA:-${MAIN_ROOT}/tools/nltk_data}"
# On CPU, training and decoding run on tcmalloc where it is installed (tools/install.sh installs
# libtcmalloc-minimal4), which keeps fewer heap fragments than glibc's malloc (measured in
# benchmarks/RESULTS.md; why: docs/speed.md). ESPNET_CS_MALLOC=glibc keeps glibc's
# malloc; jemalloc is the other choice (espnet_cs.host_memory.PRELOADABLE_ALLOCATORS).
case "${ESPNET_CS_MALLOC:-tcmalloc}" in
    tcmalloc)  # the settings of espnet_cs.host_memory.ALLOCATOR_SETTINGS: see there
        malloc_library=libtcmalloc_minimal.so.4
        export TCMALLOC_RELEASE_RATE=0 TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=1099511627776 ;;
    jemalloc) malloc_library=libjemalloc.so.2 ;;
    glibc) malloc_library="" ;;
    *) echo "path.sh: ESPNET_CS_MALLOC must be tcmalloc, jemalloc or glibc, not '${ESPNET_CS_MALLOC}'" >&2; return 1 ;;
esac
if [ -n "${malloc_library}" ] && [[ ":${LD_PRELOAD:-}:" != *":${malloc_library}:"* ]] \
    && { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -q "${malloc_library} "; then
    export LD_PRELOAD="${malloc_library}${LD_PRELOAD:+:${LD_PRELOAD}}"
fi
unset malloc_library
