#!/usr/bin/env bash
# Install what espnet-cs needs: Debian packages (espeak-ng, sox, flac, tcmalloc) and a pinned Python
# virtual environment (default tools/venv, override with ESPNET_CS_VENV).
# Idempotent: a second run checks a stamp and returns in seconds.
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${ESPNET_CS_VENV:-${tools_dir}/venv}"
python="${PYTHON:-python3}"
# The font: Chinese labels in figures; tcmalloc: malloc of CPU training and decoding (path.sh).
debian_packages=(espeak-ng sox flac fonts-wqy-microhei libtcmalloc-minimal4)
stamp="${venv}/.espnet_cs_installed"
want_stamp="$(cat "${tools_dir}/requirements.txt" "${tools_dir}/install.sh" | sha256sum | cut -d' ' -f1)"

log() { echo "[tools/install.sh] $*" >&2; }

install_debian_packages() {
    local missing=()
    for package in "${debian_packages[@]}"; do
        dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("${package}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    ${sudo} apt-get update -qq
    DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq "${missing[@]}" >/dev/null
}

pip_install() {  # quiet, without the notes about index locations missing on this machine
    "${venv}/bin/python" -m pip --disable-pip-version-check -q install "$@" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

install_python_packages() {
    if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want_stamp}" ]; then
        return 0
    fi
    log "creating the virtual environment ${venv} (several GB, a few minutes)"
    [ -x "${venv}/bin/python" ] || "${python}" -m venv "${venv}"
    # torch/torchaudio 2.9.1: the newest pair whose torchaudio imports on CPU here.
    pip_install torch==2.9.1 torchaudio==2.9.1
    # espnet's declared requirements do not resolve (ci_sdr git dependency, setuptools<74 pin):
    # it is installed without them and requirements.txt lists what it needs at run time.
    pip_install --no-deps espnet==202511 espnet_model_zoo==0.1.7
    pip_install --no-warn-conflicts -r "${tools_dir}/requirements.txt"
    pip_install --no-deps -e "${tools_dir}/.."
    echo "${want_stamp}" > "${stamp}"
    log "done: ${venv}"
}

install_debian_packages
install_python_packages
