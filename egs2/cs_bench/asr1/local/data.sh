#!/usr/bin/env bash
# Stage 1 of cs_bench: generate the benchmark (python -m espnet_cs.bin.synth_bench) into
# data/{train,valid,test,forget_en,forget_zh}, audio in downloads/cs_bench/wav. Conversational
# code-switching text, Kokoro-82M voices (blends of its styles with a random speed; with
# --synthesizer espeak-ng, espeak-ng voices with random speed, pitch and vocal-tract scale), simulated
# rooms (pyroomacoustics), noise (coloured or babble) and speed perturbation, drawn per utterance
# and written to utt2condition. Deterministic for a seed, independent of --nj; a rerun resumes.
# The defaults make version 2 of cs_bench; version 1 (RESULTS_v1.md): --synthesizer espeak-ng --snr_db 5,25.
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"
}

nj=$(nproc)         # parallel processes
seed=0              # random seed of texts, speakers, rooms and conditions
num_train=1200      # utterances of train, valid and test
num_valid=100
num_test=600
num_forget=150      # utterances of each forgetting set (forget_en, forget_zh)
mix=0.6,0.2,0.2     # shares of code-switched, Mandarin-only and English-only utterances
snr_db=15,35        # SNR range (dB) of the noisy utterances
rt60=0.2,0.7        # RT60 range (s) of the rooms
reverb_share=0.7    # share of utterances in a room
rooms=40            # simulated rooms of each set
synthesizer=kokoro  # text-to-speech engine: kokoro or espeak-ng
data_dir=data
wav_dir=downloads/cs_bench/wav

help_message="Usage: $0 [options]
Options (default):
  --nj (${nj}) --seed (${seed}) --num_train (${num_train}) --num_valid (${num_valid})
  --num_test (${num_test}) --num_forget (${num_forget}) --mix (${mix}: cs,zh,en)
  --snr_db (${snr_db}) --rt60 (${rt60}) --reverb_share (${reverb_share}) --rooms (${rooms})
  --synthesizer (${synthesizer}: kokoro or espeak-ng)
  --data_dir (${data_dir}) --wav_dir (${wav_dir})
Every set has its own voices, speakers and rooms; test frames are unseen in training."

log "$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    log "Error: no positional arguments are expected.\n${help_message}"
    exit 2
fi
. ./path.sh

python3 -m espnet_cs.bin.synth_bench \
    --data_dir "${data_dir}" --wav_dir "${wav_dir}" \
    --num_train "${num_train}" --num_valid "${num_valid}" --num_test "${num_test}" \
    --num_forget "${num_forget}" --seed "${seed}" --nj "${nj}" --mix ${mix//,/ } \
    --snr_db "${snr_db}" --rt60 "${rt60}" --reverb_share "${reverb_share}" \
    --rooms "${rooms}" --synthesizer "${synthesizer}"

log "Successfully finished. [elapsed=${SECONDS}s]"
