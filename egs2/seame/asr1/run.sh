#!/usr/bin/env bash
# SEAME (LDC2015S04): conversational Mandarin-English code-switching speech from Singapore and
# Malaysia; train / valid / devman / devsge as in Zeng et al. (Interspeech 2019). See README.md.
#
#   ./run.sh --local_data_opts "--seame_dir /db/LDC2015S04 --dev_lists /db/SEAME-dev-set --aishell_dir /db/aishell" \
#            --test_sets "devman devsge aishell_test" --whisper_model /db/whisper/small.pt
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
    --test_sets "devman devsge" \
    --whisper_model small \
    --method spt4asr \
    "$@"
