#!/usr/bin/env bash
# mini_cs: synthetic Mandarin-English code-switching speech (espeak-ng), the embedded demo.
# `./run.sh` prepares the corpus, checks it, decodes the test set zero-shot with Whisper-base
# (both prompts), trains SPT4ASR on a small budget (3 epochs; the paper's 10 are in
# conf/tuning/spt4asr.yaml), decodes and scores it, and writes RESULTS.md.
# Every method: local/run_all_methods.sh at the repository root. Stages and options: ./asr.sh --help
# The attention figure of stage 10 draws what the paper's Figure 3 does: the backbone, adapters
# without guidance and the two-phase guided model (those of them trained).
set -euo pipefail

./asr.sh \
    --train_set train \
    --valid_set valid \
    --test_sets "test" \
    --whisper_model whisper-base \
    --method spt4asr \
    --train_opts "--max_epoch 3" \
    --attention_plot "backbone adapter adapter_phase1+adapter_ag_phase2" \
    "$@"
