#!/usr/bin/env bash
# Train, average, decode and score every method of conf/tuning on mini_cs, then write RESULTS.md.
# Prepares the data first if needed (stages 1-3). The budget is an option:
#   local/run_all_methods.sh --max_epoch 5 --methods "spt_both dpt"
# With --padding_comparison true, spt_both is also trained and decoded on 30-s padded audio
# (exp/spt_both_pad30s) to compare with true-length audio.
set -euo pipefail

max_epoch=5
methods="spt4asr spt_enc spt_dec spt_both dpt respt lpt lora fft fft_spt"
padding_comparison=true
help_message="Usage: $0 [--max_epoch ${max_epoch}] [--methods \"${methods}\"] [--padding_comparison ${padding_comparison}]"
. utils/parse_options.sh

[ -f dump/raw/test/.done ] || ./run.sh --stop_stage 3
for method in ${methods}; do
    ./run.sh --stage 5 --stop_stage 9 --method "${method}" --train_opts "--max_epoch ${max_epoch}"
done
if ${padding_comparison}; then
    ./run.sh --stage 5 --stop_stage 9 --method spt_both --exp_tag _pad30s \
        --train_opts "--max_epoch ${max_epoch} --encoder_conf pad_to_30s=true"
fi
./run.sh --stage 10 --stop_stage 10
