#!/usr/bin/env bash
# The c / lambda sweep of attention guidance, chosen on the validation set: phase 2 of the
# two-phase method (adapter_ag_phase2, from one shared adapter_phase1) trained for each pair of
# --targets (c) and --weights (lambda), each decoded and scored on --valid_set. The systems are
# exp/adapter_phase1+adapter_ag_phase2_c<c>_w<lambda>; stage 11 reports their valid MERs (table
# "<valid_set>"), from which the pair of the lowest MER is taken for the test-set runs, with the
# own-language attention share of the guided heads for each swept system.
# Runs stages 1-5 first where missing (data, LID heads, phase 1).
#   local/sweep_guidance.sh --targets "0.3 0.5 0.7" --weights "0.1 1"
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"
}

targets="0.3 0.5 0.7"   # c: LID-column attention wanted on each word token's own language
weights="0.1 1"         # lambda: loss = cross-entropy + lambda * guidance
phase_max_epoch=1       # epochs of each phase
phase_iters_per_epoch=75  # batches in an epoch of each phase (the benchmark's budget: 75 + 75)
valid_set=valid

help_message="Usage: $0 [options]
Options (default):
  --targets (\"${targets}\") --weights (\"${weights}\") --phase_max_epoch (${phase_max_epoch})
  --phase_iters_per_epoch (${phase_iters_per_epoch})
  --valid_set (${valid_set})"

log "$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    log "Error: no positional arguments are expected.\n${help_message}"
    exit 2
fi

compgen -G "dump/raw/*/.done" >/dev/null || ./run.sh --stop_stage 2
[ -s exp/lid_heads/lid_heads.json ] || ./run.sh --stage 4 --stop_stage 4
[ -s exp/adapter_phase1/valid.loss.ave.pth ] || \
    ./run.sh --stage 5 --stop_stage 7 --method adapter_phase1 \
        --train_opts "--max_epoch ${phase_max_epoch} --num_iters_per_epoch ${phase_iters_per_epoch}"
systems=""
for c in ${targets}; do
    for w in ${weights}; do
        log "guidance c=${c} lambda=${w}"
        systems+=" adapter_phase1+adapter_ag_phase2_c${c}_w${w}"
        ./run.sh --stage 6 --stop_stage 9 --method adapter_phase1 --phase2_method adapter_ag_phase2 \
            --exp_tag "_c${c}_w${w}" --test_sets "${valid_set}" \
            --train_opts "--max_epoch ${phase_max_epoch} --num_iters_per_epoch ${phase_iters_per_epoch} --model_conf guidance.target=${c} --model_conf guidance.weight=${w}"
    done
done
# the report, and the attention of the guided heads for the swept systems (and phase 1) on --valid_set
./run.sh --stage 10 --stop_stage 11 --test_sets "${valid_set}" --attention_systems "adapter_phase1${systems}"
log "Successfully finished. [elapsed=${SECONDS}s]"
