#!/usr/bin/env bash
# ASRU 2019 Mandarin-English code-switching challenge (Datatang): 200 h of code-switched read
# speech for training (+ optionally 500 h of Mandarin), the challenge dev and test sets. See README.md.
#
#   ./run.sh --asru_dir /db/asru2019 --whisper_model /db/whisper/small.pt \
#            [--aishell_dir /db/aishell] [--librispeech_dir /db/librispeech] \
#            [--local_data_opts "--include_500h true"]
#
# --asru_dir, --aishell_dir and --librispeech_dir go to local/data.sh (stage 1);
# --aishell_dir / --librispeech_dir also add aishell_test / librispeech_test_clean to --test_sets,
# so stages 3 and 8 decode them and stage 10 reports forgetting. Paths must not contain spaces.
# Every other option goes to ./asr.sh (stages and options: ./asr.sh --help).
set -euo pipefail

asru_dir=""
aishell_dir=""
librispeech_dir=""
test_sets="dev test"
local_data_opts=""
asr_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --*=*)
            set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        --asru_dir|--aishell_dir|--librispeech_dir|--test_sets|--local_data_opts)
            [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
            printf -v "${1#--}" '%s' "$2"
            shift 2 ;;
        *)
            asr_args+=("$1")
            shift ;;
    esac
done
for name in asru_dir aishell_dir librispeech_dir; do
    [ -z "${!name}" ] || local_data_opts+=" --${name} ${!name}"
done
[ -z "${aishell_dir}" ] || test_sets+=" aishell_test"
[ -z "${librispeech_dir}" ] || test_sets+=" librispeech_test_clean"

./asr.sh \
    --train_set train \
    --valid_set valid \
    --test_sets "${test_sets}" \
    --whisper_model small \
    --method spt4asr \
    --local_data_opts "${local_data_opts}" \
    "${asr_args[@]}"
