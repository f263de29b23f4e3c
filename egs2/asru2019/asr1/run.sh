#!/usr/bin/env bash
# ASRU 2019 Mandarin-English code-switching challenge (Datatang): 200 h of code-switched read
# speech for training (+ optionally 500 h of Mandarin), the challenge dev and test sets. See README.md.
#
#   ./run.sh --local_data_opts "--asru_dir /db/asru2019 --include_500h true --aishell_dir /db/aishell" \
#            --test_sets "dev test aishell_test" --whisper_model /db/whisper/small.pt
#
# The corpus paths go to local/data.sh (stage 1) in --local_data_opts (its options: local/data.sh
# --help; paths must not contain spaces). A forgetting set it prepares (--aishell_dir: aishell_test,
# --librispeech_dir: librispeech_test_clean) is decoded and reported when --test_sets names it.
# The method's YAML (conf/tuning/<method>.yaml) holds the paper's schedule (SPT: 10 epochs; AG:
# 15 epochs per phase; batch 8), which this recipe keeps; --train_opts "--max_epoch 3" overrides
# it, as does every option given. Stages and options: ./asr.sh --help
set -euo pipefail

./asr.sh \
    --train_set train \
    --valid_set valid \
    --test_sets "dev test" \
    --whisper_model small \
    --method spt4asr \
    "$@"
