#!/usr/bin/env bash
# The regime check of a synthesizer: zero-shot Whisper on a small held-out cs_bench test set.
# Generates --num_per_category code-switched, Mandarin-only and English-only test utterances with
# local/data.sh's acoustic conditions (the other sets get one utterance each), formats them as
# stage 2 does, decodes them greedily with the task tokens zh (<|zh|>) and zh_en (<|zh|><|en|>), each also with
# the repetition guard, and scores every decode. The regime's numbers: Mandarin CER with zh,
# English WER with zh_en, code-switched MER with zh_en and the guard (scores.json under --dir).
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"
}

synthesizer=kokoro       # espeak-ng or kokoro
num_per_category=30      # test utterances of each category (cs, zh, en)
seed=0
nj=1                     # parallel processes of generation and formatting
threads=1                # torch threads of decoding
whisper_model=whisper-base
snr_db=15,35             # acoustic conditions: local/data.sh's options and defaults
rt60=0.2,0.7
reverb_share=0.7
rooms=40
dir=                     # work dir (default exp/regime_<synthesizer>)

help_message="Usage: $0 [options]
Options (default):
  --synthesizer (${synthesizer}) --num_per_category (${num_per_category}) --seed (${seed}) --nj (${nj})
  --threads (${threads}) --whisper_model (${whisper_model}) --snr_db (${snr_db}) --rt60 (${rt60})
  --reverb_share (${reverb_share}) --rooms (${rooms}) --dir (exp/regime_<synthesizer>)"

log "$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    log "Error: no positional arguments are expected.\n${help_message}"
    exit 2
fi
. ./path.sh
dir=${dir:-exp/regime_${synthesizer}}

start=${SECONDS}
python3 -m espnet_cs.bin.synth_bench \
    --data_dir "${dir}/data" --wav_dir "${dir}/wav" --synthesizer "${synthesizer}" \
    --num_train 1 --num_valid 1 --num_test $((3 * num_per_category)) --num_forget 1 --mix 1 1 1 \
    --seed "${seed}" --nj "${nj}" --snr_db "${snr_db}" --rt60 "${rt60}" --reverb_share "${reverb_share}" \
    --rooms "${rooms}"
log "generation: $((SECONDS - start)) s"
python3 -m espnet_cs.bin.format_data --src "${dir}/data/test" --dst "${dir}/dump/test" --nj "${nj}"

for task_tokens in zh zh_en; do
    start=${SECONDS}
    python3 -m espnet_cs.bin.decode --data_dir "${dir}/dump/test" --whisper_model "${whisper_model}" \
        --task_tokens "${task_tokens}" --threads "${threads}" \
        --out_dir "${dir}/${task_tokens}" --guarded_out_dir "${dir}/${task_tokens}_guard"
    log "decoding with ${task_tokens}: $((SECONDS - start)) s"
    for out in "${dir}/${task_tokens}" "${dir}/${task_tokens}_guard"; do
        log "scores of ${out}:"
        python3 -m espnet_cs.bin.score --data_dir "${dir}/dump/test" --hyp "${out}/text" --out_dir "${out}"
    done
done
log "Successfully finished. [elapsed=${SECONDS}s]"
