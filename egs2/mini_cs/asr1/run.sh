#!/usr/bin/env bash
# mini_cs: synthetic Mandarin-English code-switching speech (espeak-ng), the embedded demo.
# `./run.sh` prepares the corpus, checks it, decodes the test set zero-shot with Whisper-base
# (both prompts), scores and writes RESULTS.md. See ./asr.sh --help for stages and options.
set -euo pipefail

./asr.sh \
    --train_set train \
    --valid_set valid \
    --test_sets "test" \
    --whisper_model whisper-base \
    "$@"
