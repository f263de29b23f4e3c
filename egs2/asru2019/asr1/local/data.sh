#!/usr/bin/env bash
# Stage 1 of asru2019: data/{train,valid,dev,test} from the ASRU 2019 challenge data
# (python -m espnet_cs.bin.prep_corpus asru2019; layout, splits and text normalization:
# espnet_cs/corpora/asru2019.py), and, when given, the forgetting sets data/aishell_test and
# data/librispeech_test_clean.
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"
}

asru_dir=""         # holds ZH+EN-200h, ZH-500h, ASRU-DEV and ASRU-TEST
include_500h=false  # also train on the 500-h Mandarin set
aishell_dir=""      # holds data_aishell/ (AISHELL-1, wav archives extracted)
librispeech_dir=""  # holds LibriSpeech/test-clean
valid_share=0.05    # share of the training utterances held out as valid
min_seconds=0.1     # shorter training utterances are dropped
seed=0              # seed of the valid selection

help_message="Usage: $0 --asru_dir DIR [options]
Options (default):
  --include_500h (${include_500h}) --aishell_dir (${aishell_dir}) --librispeech_dir (${librispeech_dir})
  --valid_share (${valid_share}) --min_seconds (${min_seconds}) --seed (${seed})"

log "$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    log "Error: no positional arguments are expected.\n${help_message}"
    exit 2
fi
if [ -z "${asru_dir}" ]; then
    log "Error: --asru_dir (holding ZH+EN-200h, ZH-500h, ASRU-DEV, ASRU-TEST) is required, e.g." \
        "./run.sh --local_data_opts \"--asru_dir /db/asru2019\""
    exit 2
fi
. ./path.sh

extra=()
! ${include_500h} || extra+=(--include_500h)
python3 -m espnet_cs.bin.prep_corpus asru2019 --asru_dir "${asru_dir}" --data_dir data \
    --valid_share "${valid_share}" --min_seconds "${min_seconds}" --seed "${seed}" "${extra[@]}"
[ -z "${aishell_dir}" ] || python3 -m espnet_cs.bin.prep_corpus aishell_test --aishell_dir "${aishell_dir}" --data_dir data
[ -z "${librispeech_dir}" ] || python3 -m espnet_cs.bin.prep_corpus librispeech_test_clean \
    --librispeech_dir "${librispeech_dir}" --data_dir data

log "Successfully finished. [elapsed=${SECONDS}s]"
