#!/usr/bin/env bash
# Stage 1 of seame: data/{train,valid,devman,devsge} from the unpacked SEAME corpus and the
# SEAME-dev-set lists (python -m espnet_cs.bin.prep_corpus seame; layout, splits and text
# normalization: espnet_cs/corpora/seame.py), and, when given, the forgetting sets
# data/aishell_test and data/librispeech_test_clean.
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"
}

seame_dir=""        # holds data/{conversation,interview}/{audio,transcript} of LDC2015S04
dev_lists=""        # checkout of https://github.com/zengzp0912/SEAME-dev-set
aishell_dir=""      # holds data_aishell/ (AISHELL-1, wav archives extracted)
librispeech_dir=""  # holds LibriSpeech/test-clean
valid_share=0.05    # share of the training utterances held out as valid
min_seconds=0.1     # shorter training utterances are dropped
seed=0              # seed of the valid selection

help_message="Usage: $0 --seame_dir DIR --dev_lists DIR [options]
Options (default):
  --aishell_dir (${aishell_dir}) --librispeech_dir (${librispeech_dir})
  --valid_share (${valid_share}) --min_seconds (${min_seconds}) --seed (${seed})"

log "$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    log "Error: no positional arguments are expected.\n${help_message}"
    exit 2
fi
if [ -z "${seame_dir}" ] || [ -z "${dev_lists}" ]; then
    log "Error: --seame_dir (the unpacked LDC2015S04, holding data/) and --dev_lists (a checkout of" \
        "https://github.com/zengzp0912/SEAME-dev-set) are required, e.g." \
        "./run.sh --local_data_opts \"--seame_dir /db/LDC2015S04 --dev_lists /db/SEAME-dev-set\""
    exit 2
fi
. ./path.sh

python3 -m espnet_cs.bin.prep_corpus seame --seame_dir "${seame_dir}" --dev_lists "${dev_lists}" \
    --data_dir data --valid_share "${valid_share}" --min_seconds "${min_seconds}" --seed "${seed}"
mkdir -p data/local
ln -sfn "$(cd "${dev_lists}" && pwd)" data/local/seame_dev_set  # the lists local/check_data.sh checks against
[ -z "${aishell_dir}" ] || python3 -m espnet_cs.bin.prep_corpus aishell_test --aishell_dir "${aishell_dir}" --data_dir data
[ -z "${librispeech_dir}" ] || python3 -m espnet_cs.bin.prep_corpus librispeech_test_clean \
    --librispeech_dir "${librispeech_dir}" --data_dir data

log "Successfully finished. [elapsed=${SECONDS}s]"
