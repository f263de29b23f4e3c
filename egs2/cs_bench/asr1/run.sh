#!/usr/bin/env bash
# cs_bench, version 2: the embedded benchmark. Conversational Mandarin-English code-switching text
# (particles, fillers, repetitions, restarts, intra- and inter-sentential switches), spoken by many
# Kokoro-82M voices, simulated rooms, noise at 15-35 dB SNR and speed perturbation; a 600-utterance
# test set from frames and voices unseen in training, and monolingual English and Mandarin forgetting
# sets of another domain. Version 1 (espeak-ng speech, SNR 5-25 dB) is kept in RESULTS_v1.md and
# results_v1/ (README.md, "Versions").
# `./run.sh` generates it (stage 1), decodes every test set zero-shot with Whisper-base, trains
# SPT4ASR on the benchmark's budget (1 epoch of the 1200 training utterances: 150 steps of 8),
# decodes, scores and writes RESULTS.md from results/ (the results archive: stage 11 copies each
# scored system of exp/ there, so the report keeps the runs of earlier clones; commit it with
# RESULTS.md), its findings beside version 1's verdicts. Every method on the same budget (a
# two-phase method: 75 steps per phase), from the repository root:
#   local/run_all_methods.sh --recipe egs2/cs_bench/asr1 --max_epoch 1 --adapter_max_epoch 1 \
#       --phase_max_epoch 1 --phase_iters_per_epoch 75 --padding_comparison false
# Corpus options: local/data.sh --help (through --local_data_opts). Stages: ./asr.sh --help
set -euo pipefail

./asr.sh \
    --train_set train \
    --valid_set valid \
    --test_sets "test forget_en forget_zh" \
    --whisper_model whisper-base \
    --method spt4asr \
    --train_opts "--max_epoch 1" \
    --results_archive results \
    --results_compare_archive results_v1 \
    --results_compare_label "version 1 (espeak-ng)" \
    --attention_plot "backbone adapter adapter_phase1+adapter_ag_phase2" \
    "$@"
