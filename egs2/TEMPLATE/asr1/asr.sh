#!/usr/bin/env bash
# espnet-cs pipeline shared by the recipes in egs2/*/asr1 (run from a recipe dir).
set -euo pipefail

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*" >&2; }
min() { printf '%s\n' "$@" | sort -n | head -n1; }

SECONDS=0

# General
stage=1                 # first stage to run
stop_stage=10           # last stage to run
nj=2                    # parallel jobs for data preparation and formatting
decode_threads=0        # torch threads per decoding job (0: torch's default)
# Data
local_data_opts=""      # options passed to local/data.sh
train_set=train
valid_set=valid
test_sets="test"        # data dirs under data/ to decode and score
# Backbone and decoding
whisper_model=whisper-base  # backbone spec: whisper-base (PyPI), an openai-whisper name, a .pt file or a CTranslate2 dir
zeroshot_prompts="single cs"  # stage 3 decodes with each: single = <|zh|>, cs = <|zh|><|en|>
pad_to_30s=true         # pad audio to Whisper's 30-s window
decode_batch_size=16
# LID heads (stage 4)
head_top_share=0.6      # share of the LID heads selected for guidance (heads_top<share>.json)
head_min_fraction=0.1   # an LID head is one in at least this fraction of the training sentences
# Training
method=""               # conf/tuning/<method>.yaml for stages 5, 7, 8 (empty: no training)
stage2_method=""        # conf/tuning/<method>.yaml of stage 6, initialized from stage 5's model
train_opts=""           # extra options of espnet_cs.bin.train, e.g. "--max_epoch 2"
exp_tag=""              # suffix of the experiment dir exp/<method><exp_tag>
ngpu=0                  # GPUs for training (ESPnet's data parallelism)
nbest_average=3         # stage 7 averages this many best checkpoints by valid loss
results=RESULTS.md      # stage 10 writes the tables here

help_message=$(cat <<EOF
Usage: $0 [options]
Stages:
  1  data preparation (local/data.sh)
  2  data validation and formatting (every file checked; 16-kHz mono wav in dump/raw)
  3  zero-shot decoding of --test_sets with each of --zeroshot_prompts
  4  LID-head selection on --train_set with the frozen backbone -> exp/lid_heads
  5  training of --method (conf/tuning/<method>.yaml) with ESPnet's trainer
  6  training of --stage2_method, initialized from stage 5's averaged model
  7  averaging of the --nbest_average best checkpoints by valid loss (of stage 6 if any)
  8  decoding of --test_sets with the averaged model
  9  scoring of every decode dir
  10 report (${results})
  11 model packing                (not built yet)
Options (default):
  --stage (${stage}) --stop_stage (${stop_stage}) --nj (${nj}) --decode_threads (${decode_threads})
  --local_data_opts ("${local_data_opts}") --train_set (${train_set}) --valid_set (${valid_set})
  --test_sets ("${test_sets}") --whisper_model (${whisper_model})
  --zeroshot_prompts ("${zeroshot_prompts}") --pad_to_30s (${pad_to_30s})
  --decode_batch_size (${decode_batch_size}) --head_top_share (${head_top_share})
  --head_min_fraction (${head_min_fraction}) --method ("${method}") --stage2_method ("${stage2_method}")
  --train_opts ("${train_opts}")
  --exp_tag ("${exp_tag}") --ngpu (${ngpu}) --nbest_average (${nbest_average}) --results (${results})
Methods: $(ls conf/tuning 2>/dev/null | sed -n 's/\.yaml$//p' | tr '\n' ' ')
EOF
)

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

[ $# -eq 0 ] || { log "unexpected arguments: $*"; exit 1; }

built_stages=" 1 2 3 4 5 6 7 8 9 10 "
run_stage() {  # true if stage $1 is in range and built; a requested unbuilt stage is an error
    local n=$1
    [ "${stage}" -le "${n}" ] && [ "${stop_stage}" -ge "${n}" ] || return 1
    [[ "${built_stages}" == *" ${n} "* ]] && return 0
    if [ "${stage}" -eq "${stop_stage}" ]; then
        log "stage ${n} is not built yet"
        exit 1
    fi
    log "stage ${n}: not built yet, skipped"
    return 1
}

data_sets="${train_set} ${valid_set} ${test_sets}"
asr_exp="exp/${method}${exp_tag}"
stage1_exp="${asr_exp}"
[ -z "${stage2_method}" ] || asr_exp="exp/${method}+${stage2_method}${exp_tag}"  # the final model's dir
needs_method() {  # stage, method, option naming it
    if [ -z "$2" ]; then
        log "stage $1 needs ${3:---method} (one of: $(ls conf/tuning | sed -n 's/\.yaml$//p' | tr '\n' ' '))"
        exit 1
    fi
    if [ ! -f "conf/tuning/$2.yaml" ]; then
        log "unknown method '$2': no conf/tuning/$2.yaml (methods: $(ls conf/tuning | sed -n 's/\.yaml$//p' | tr '\n' ' '))"
        exit 1
    fi
}
train() {  # method, output dir, extra options...
    local config="conf/tuning/$1.yaml" dir="$2"
    shift 2
    mkdir -p "${dir}"
    # --resume true: an interrupted run continues from its last checkpoint.
    # shellcheck disable=SC2086
    ${train_cmd} "${dir}/train.log" \
        python -m espnet_cs.bin.train --config "${config}" \
            --whisper_model "${whisper_model}" --ngpu "${ngpu}" --output_dir "${dir}" --resume true \
            --train_data_path_and_name_and_type "dump/raw/${train_set}/wav.scp,speech,sound" \
            --train_data_path_and_name_and_type "dump/raw/${train_set}/text,text,text" \
            --train_shape_file "dump/raw/${train_set}/speech_shape" \
            --valid_data_path_and_name_and_type "dump/raw/${valid_set}/wav.scp,speech,sound" \
            --valid_data_path_and_name_and_type "dump/raw/${valid_set}/text,text,text" \
            --valid_shape_file "dump/raw/${valid_set}/speech_shape" \
            "$@" ${train_opts}
}

if run_stage 1; then
    log "stage 1: data preparation: local/data.sh ${local_data_opts}"
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts}
fi

if run_stage 2; then
    log "stage 2: data validation and formatting -> dump/raw"
    for dset in ${data_sets}; do
        python -m espnet_cs.bin.format_data --src "data/${dset}" --dst "dump/raw/${dset}" --nj "${nj}"
    done
fi

if run_stage 3; then
    for prompt in ${zeroshot_prompts}; do
        for dset in ${test_sets}; do
            dir="exp/zeroshot_${prompt}/decode_${dset}"
            guarded="exp/zeroshot_${prompt}_guard/decode_${dset}"
            if [ -s "${dir}/text" ] && [ -s "${guarded}/text" ]; then
                log "stage 3: ${dir} done already, skipped"
                continue
            fi
            log "stage 3: zero-shot decoding of ${dset} with the ${prompt} prompt -> ${dir}"
            ${decode_cmd} "${dir}/logdir/decode.log" \
                python -m espnet_cs.bin.decode --data_dir "dump/raw/${dset}" --out_dir "${dir}" \
                    --guarded_out_dir "${guarded}" --whisper_model "${whisper_model}" \
                    --prompt "${prompt}" --pad_to_30s "${pad_to_30s}" \
                    --batch_size "${decode_batch_size}" --threads "${decode_threads}"
        done
    done
fi

if run_stage 4; then
    dir=exp/lid_heads
    log "stage 4: LID-head selection on ${train_set} -> ${dir}"
    ${train_cmd} "${dir}/select_heads.log" \
        python -m espnet_cs.bin.select_heads --data_dir "dump/raw/${train_set}" --out_dir "${dir}" \
            --whisper_model "${whisper_model}" --top_share "${head_top_share}" --min_fraction "${head_min_fraction}"
    grep "LID heads" "${dir}/select_heads.log" | tail -n 1 | sed 's/.*INFO //'
fi

if run_stage 5 && [ -n "${method}" -o "${stage}" -eq 5 ]; then
    needs_method 5 "${method}"
    log "stage 5: training ${method} -> ${stage1_exp} (log: ${stage1_exp}/train.log)"
    train "${method}" "${stage1_exp}"
fi

if run_stage 6 && [ -n "${stage2_method}" -o "${stage}" -eq 6 ]; then
    needs_method 6 "${stage2_method}" --stage2_method
    init="${stage1_exp}/valid.loss.ave.pth"
    [ -f "${init}" ] || { log "stage 6 starts from ${init}, which does not exist: run stage 5 first"; exit 1; }
    log "stage 6: training ${stage2_method} from ${init} -> ${asr_exp} (log: ${asr_exp}/train.log)"
    train "${stage2_method}" "${asr_exp}" --init_param "${init}"
fi

if run_stage 7 && [ -n "${method}" -o "${stage}" -eq 7 ]; then
    needs_method 7 "${method}"
    log "stage 7: averaging the ${nbest_average} best checkpoints of ${asr_exp} by valid loss"
    python -m espnet_cs.bin.average --exp_dir "${asr_exp}" --nbest "${nbest_average}"
fi

if run_stage 8 && [ -n "${method}" -o "${stage}" -eq 8 ]; then
    needs_method 8 "${method}"
    for dset in ${test_sets}; do
        dir="${asr_exp}/decode_${dset}"
        log "stage 8: decoding ${dset} with ${asr_exp}/valid.loss.ave.pth -> ${dir}"
        ${decode_cmd} "${dir}/logdir/decode.log" \
            python -m espnet_cs.bin.decode --data_dir "dump/raw/${dset}" --out_dir "${dir}" \
                --guarded_out_dir "${asr_exp}_guard/decode_${dset}" \
                --asr_train_config "${asr_exp}/config.yaml" --asr_model_file "${asr_exp}/valid.loss.ave.pth" \
                --batch_size "${decode_batch_size}" --threads "${decode_threads}"
    done
fi

if run_stage 9; then
    log "stage 9: scoring"
    for dir in exp/*/decode_*; do
        [ -s "${dir}/text" ] || continue
        dset="${dir##*/decode_}"
        python -m espnet_cs.bin.score --data_dir "dump/raw/${dset}" --hyp "${dir}/text" --out_dir "${dir}"
    done
fi

if run_stage 10; then
    heads=exp/lid_heads/heads_top$(python -c "print(round(100 * ${head_top_share}))").json
    systems=()
    for name_dir in adapter=exp/adapter guided=exp/adapter_stage1+adapter_ag_stage2; do
        [ -f "${name_dir#*=}/valid.loss.ave.pth" ] && systems+=(--system "${name_dir}")
    done
    if [ -f "${heads}" ] && [ ${#systems[@]} -gt 0 ]; then
        log "stage 10: attention of the guided heads -> exp/attention"
        for dset in ${test_sets}; do
            python -m espnet_cs.bin.attention_report --data_dir "dump/raw/${dset}" --heads_file "${heads}" \
                --whisper_model "${whisper_model}" --system backbone "${systems[@]}" --out_dir "exp/attention/${dset}"
        done
    fi
    log "stage 10: report -> ${results}"
    python -m espnet_cs.bin.report --exp_dir exp --out "${results}" --notes local/RESULTS.notes.md
    cat "${results}"
fi

run_stage 11 || true

log "finished in ${SECONDS} s"
