#!/usr/bin/env bash
# On a bare CUDA machine (Python with torch/torchaudio, no network): install the wheel parts of
# tools/gpu_wheels.py that this call carried (tools/gpu_wheels/partN), each into its own folder
# under --site, and write <site>/env.sh, which puts them and this checkout on PYTHONPATH.
# Parts installed by an earlier call on the same machine stay (the site folder is ignored by git,
# so it is kept while the machine is). Exits 3, naming them, while parts of the manifest are missing.
#   tools/gpu_install.sh [--site tools/gpu_site] && . tools/gpu_site/env.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wheels="${root}/tools/gpu_wheels"
site="${root}/tools/gpu_site"
python="${PYTHON:-python3}"
if [ "${1:-}" = "--site" ]; then site="$2"; fi

log() { echo "[tools/gpu_install.sh] $*" >&2; }

mkdir -p "${site}"
for part in "${wheels}"/part*/; do
    [ -d "${part}" ] || continue
    name="$(basename "${part}")"
    [ -f "${site}/${name}/.done" ] && continue
    log "installing ${name}: $(find "${part}" -name '*.whl' | wc -l) wheels"
    rm -rf "${site:?}/${name}"
    "${python}" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
        --target "${site}/${name}" "${part}"*.whl
    cp "${part}manifest.txt" "${site}/manifest.txt"
    touch "${site}/${name}/.done"
done
if [ ! -f "${site}/manifest.txt" ]; then
    log "Error: no wheel part here: run tools/gpu_wheels.py where pip works and carry tools/gpu_wheels/part1"
    exit 2
fi
missing=()
for name in $(cut -d' ' -f1 "${site}/manifest.txt" | sort -u); do
    [ -f "${site}/${name}/.done" ] || missing+=("tools/gpu_wheels/${name}")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "still missing: ${missing[*]}: carry them in the next call (this machine keeps ${site})"
    exit 3
fi
path="${root}"
for part in "${site}"/part*/; do path+=":${part%/}"; done
echo "export PYTHONPATH=${path}\${PYTHONPATH:+:\${PYTHONPATH}}" > "${site}/env.sh"
log "every part installed: . ${site}/env.sh"
