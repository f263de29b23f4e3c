#!/usr/bin/env bash
# The project's multi-method experiment driver: in one recipe, train, average, decode and score
# each of --methods (conf/tuning/<method>.yaml), --adapter_methods and --two_phase_methods
# (stage 4's LID heads first where a method reads them), then measure the guided heads' attention
# (stage 10) and write the recipe's RESULTS.md (stage 11). The default lists are every YAML of
# conf/tuning, grouped by what each says of itself (python -m espnet_cs.methods).
# Run from the repository root; it changes into --recipe (relative to the repository root):
#   local/run_all_methods.sh [--recipe egs2/mini_cs/asr1] --max_epoch 5 --methods "spt_both dpt"
# Prepares the data first (stages 1-3 of the recipe's run.sh) when the recipe has formatted none
# yet; a real corpus needs its paths, so run its ./run.sh --stop_stage 3 --local_data_opts "..." first.
# With --padding_comparison true, spt_both is also trained and decoded on 30-s padded audio
# (exp/spt_both_pad30s) to compare with true-length audio.
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"
}

root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
methods_in() {  # the method YAMLs of a group of espnet_cs.methods.GROUPS
    PYTHONPATH="${root}" "${ESPNET_CS_VENV:-${root}/tools/venv}/bin/python" -m espnet_cs.methods "$1"
}

recipe=egs2/mini_cs/asr1  # the recipe dir, relative to the repository root
max_epoch=5               # training budget of every method (the YAMLs hold the papers': SPT 10, AG 15 per phase)
methods="$(methods_in one_phase)"          # one-phase methods but the adapters, --max_epoch each
adapter_methods="$(methods_in adapter)"    # one-phase adapter methods, --adapter_max_epoch each
# two-phase methods as phase1+phase2; a first phase shared by several is trained once
two_phase_methods="$(methods_in two_phase)"
adapter_max_epoch=3       # of a one-phase adapter method
phase_max_epoch=3         # of each phase of a two-phase method
phase_iters_per_epoch=0   # batches in an epoch of each phase (0: the whole training set)
padding_comparison=true   # also spt_both on 30-s padded audio (exp/spt_both_pad30s)

help_message="Usage: $0 [options]
Options (default):
  --recipe (${recipe}) --max_epoch (${max_epoch}) --padding_comparison (${padding_comparison})
  --methods (\"${methods}\")
  --adapter_methods (\"${adapter_methods}\") --two_phase_methods (\"${two_phase_methods}\")
  --adapter_max_epoch (${adapter_max_epoch}) --phase_max_epoch (${phase_max_epoch})
  --phase_iters_per_epoch (${phase_iters_per_epoch})"

log "$0 $*"
. "${root}/egs2/TEMPLATE/asr1/utils/parse_options.sh"
if [ $# -ne 0 ]; then
    log "Error: no positional arguments are expected.\n${help_message}"
    exit 2
fi
cd "${root}"
if [ ! -x "${recipe}/run.sh" ]; then
    log "Error: --recipe ${recipe}: no run.sh there (recipes: $(echo egs2/*/asr1/run.sh | sed 's|/run.sh||g'))"
    exit 2
fi
cd "${recipe}"
for method in ${methods} ${adapter_methods} ${two_phase_methods//+/ }; do  # all known before any work starts
    if [ ! -f "conf/tuning/${method}.yaml" ]; then
        renamed="$(awk -v old="${method}" '$1 == old { print $2 }' "${root}/conf/renamed.txt" || true)"
        [ -z "${renamed}" ] || log "Error: method ${method} was renamed to ${renamed} (conf/tuning/${renamed}.yaml)"
        [ -n "${renamed}" ] || log "Error: unknown method ${method}: no conf/tuning/${method}.yaml in ${recipe}"
        exit 2
    fi
done

if ! compgen -G "dump/raw/*/.done" >/dev/null; then
    log "${recipe}: no formatted data yet: stages 1-3"
    ./run.sh --stop_stage 3
fi
# stage 4's LID heads: read by the loss of guided methods, and by stage 10's attention analysis
guided=" $(methods_in guided) " lid_heads=false
[ -z "${adapter_methods}${two_phase_methods}" ] || lid_heads=true
for method in ${methods}; do
    case "${guided}" in *" ${method} "*) lid_heads=true ;; esac
done
if ${lid_heads}; then
    log "${recipe}: LID heads (stage 4)"
    ./run.sh --stage 4 --stop_stage 4
fi
for method in ${methods}; do
    log "${recipe}: ${method}, ${max_epoch} epochs"
    ./run.sh --stage 5 --stop_stage 9 --method "${method}" --train_opts "--max_epoch ${max_epoch}"
done
for method in ${adapter_methods}; do
    log "${recipe}: ${method}, ${adapter_max_epoch} epochs"
    ./run.sh --stage 5 --stop_stage 9 --method "${method}" --train_opts "--max_epoch ${adapter_max_epoch}"
done
trained_phase1=" "
phase_opts="--max_epoch ${phase_max_epoch}"
[ "${phase_iters_per_epoch}" -eq 0 ] || phase_opts+=" --num_iters_per_epoch ${phase_iters_per_epoch}"
for pair in ${two_phase_methods}; do
    first="${pair%%+*}" second="${pair#*+}" start=5
    case "${trained_phase1}" in *" ${first} "*) start=6 ;; esac  # its first phase trained already
    log "${recipe}: ${first} then ${second}, ${phase_opts} each"
    ./run.sh --stage "${start}" --stop_stage 9 --method "${first}" --phase2_method "${second}" \
        --train_opts "${phase_opts}"
    trained_phase1+="${first} "
done
if ${padding_comparison}; then
    log "${recipe}: spt_both on 30-s padded audio"
    ./run.sh --stage 5 --stop_stage 9 --method spt_both --exp_tag _pad30s \
        --train_opts "--max_epoch ${max_epoch} --encoder_conf pad_to_30s=true"
fi
./run.sh --stage 10 --stop_stage 11

log "Successfully finished. [elapsed=${SECONDS}s]"
