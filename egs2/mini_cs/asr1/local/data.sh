#!/usr/bin/env bash
# Stage 1 of mini_cs: synthesise the Mandarin-English code-switching corpus with espeak-ng
# (python -m espnet_cs.bin.synth) into data/{train,valid,test}, audio in downloads/mini_cs/wav.
# Deterministic for a seed, independent of --nj; a rerun resumes an interrupted one.
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"
}

nj=$(nproc)         # parallel synthesis processes
seed=0              # random seed of the sentences
num_train=300       # utterances per split
num_valid=40
num_test=60
mix=0.6,0.2,0.2     # shares of code-switched, Mandarin-only and English-only utterances
data_dir=data
wav_dir=downloads/mini_cs/wav

help_message="Usage: $0 [options]
Options (default):
  --nj (${nj}) --seed (${seed}) --num_train (${num_train}) --num_valid (${num_valid})
  --num_test (${num_test}) --mix (${mix}: cs,zh,en) --data_dir (${data_dir}) --wav_dir (${wav_dir})
Speakers: train spk01-spk08, valid spk09-spk10, test spk11-spk13 (all disjoint)."

log "$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    log "Error: no positional arguments are expected.\n${help_message}"
    exit 2
fi
. ./path.sh

python3 -m espnet_cs.bin.synth \
    --data_dir "${data_dir}" --wav_dir "${wav_dir}" \
    --num_train "${num_train}" --num_valid "${num_valid}" --num_test "${num_test}" \
    --seed "${seed}" --nj "${nj}" --mix ${mix//,/ }

log "Successfully finished. [elapsed=${SECONDS}s]"
