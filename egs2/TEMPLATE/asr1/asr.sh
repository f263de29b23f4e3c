#!/usr/bin/env bash
# espnet-cs pipeline shared by the recipes in egs2/*/asr1 (run from a recipe dir).
set -euo pipefail

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*" >&2; }
method_names() {  # the methods of conf/tuning/<method>.yaml
    local f names=()
    for f in conf/tuning/*.yaml; do [ -e "${f}" ] && names+=("$(basename "${f}" .yaml)"); done
    echo "${names[*]}"
}

SECONDS=0

# General
stage=1                 # first stage to run
stop_stage=12           # last stage to run
nj=2                    # parallel jobs: data preparation and formatting, decoding and head-selection splits
cmd_backend="${cmd_backend:-local}"  # job launcher (cmd.sh): local (this machine) or slurm (conf/slurm.yaml)
gpu_inference=false     # stages 3, 4, 8 and 10 run the model on a GPU (one per job; --device cuda)
decode_threads=0        # torch threads per decoding job (0: OMP_NUM_THREADS shared by the local jobs; under Slurm: cpus_per_task)
# Data
local_data_opts=""      # options passed to local/data.sh
train_set=train
valid_set=valid
test_sets="test"        # data dirs under data/ to decode and score
# Backbone and decoding
whisper_model=whisper-base  # backbone spec: whisper-base (PyPI), an openai-whisper name, a .pt file or a CTranslate2 dir
zeroshot_task_tokens="zh zh_en"  # stage 3 decodes with each of these task tokens: zh = <|zh|>, zh_en = <|zh|><|en|>
pad_to_30s=true         # pad audio to Whisper's 30-s window
decode_batch_size=16
beam_size=1             # stages 3 and 8: beams per utterance (1: greedy), openai-whisper's beam search
decode_opts=""          # stages 3 and 8: more options of espnet_cs.bin.decode, e.g. "--temperature_fallback true"
decode_variant=""       # stages 3 and 8: a name for these decoding options, e.g. beam5: they decode into
                        # exp/<system>_<variant> (and <system>_<variant>_guard), beside the decode without one
# LID heads (stage 4 ranks them all; which of them a model guides is in its YAML's model_conf.guidance)
head_min_fraction=0.1   # an LID head is one at least at this fraction of the training set's word tokens
head_batch_size=8       # utterances per teacher-forced pass of head selection
# Training
method=""               # conf/tuning/<method>.yaml for stages 5, 7, 8 (empty: no training)
phase2_method=""        # conf/tuning/<method>.yaml of the second training phase (stage 6), initialized from stage 5's model
train_opts=""           # extra options of espnet_cs.bin.train, e.g. "--max_epoch 2"
exp_tag=""              # suffix of the experiment dir exp/<method><exp_tag> (two-phase: of the final model's dir)
phase1_exp_tag=""       # two-phase: suffix of phase 1's dir exp/<method><phase1_exp_tag> (phase-2 sweeps share one)
ngpu=0                  # GPUs per node for training (more than one: ESPnet's distributed data parallel)
num_nodes=1             # nodes for training (more than one: cmd_backend=slurm)
nbest_average=3         # stage 7 averages this many best checkpoints by valid loss
results=RESULTS.md      # stage 11 writes the tables here (their rates to <name>.json beside it), after the notes
                        # local/<name>.notes.md if it exists
results_archive=""      # stage 11: copy every scored system of exp/ into this tracked dir and report from it,
                        # so the report keeps the runs of earlier clones (espnet_cs.results_archive; empty: exp/)
results_compare_archive=""  # stage 11: another benchmark regime's results archive; each verdict of the findings
                            # gets that regime's verdict of the same claim and whether they agree (empty: none)
results_compare_label=""    # what --results_compare_archive is (empty: its path)
results_guarded=tables  # stage 11: where the report has the guarded <system>_guard rows: tables (the results
                        # tables and the sections made from them), all (also beside the decode variants), none
# Attention of the LID heads (stage 10): the backbone and trained models, on one selection of stage 4's heads
attention_systems=""    # exp/<name> dirs to measure (empty: every exp/* with valid.loss.ave.pth whose config.yaml
                        # has task_tokens: zh_en)
attention_sets=""       # data sets under dump/raw to measure on (empty: --test_sets)
attention_plot=""       # of the measured systems (and backbone), those drawn in attention.png (empty: every one)
attention_selection=top # which of the LID heads of exp/lid_heads/lid_heads.json: top, all or random
attention_fraction=0.6  # fraction of that selection (top: of the LID heads; random: of all heads)

help_message=$(cat <<EOF
Usage: $0 [options]
Stages:
  1  data preparation (local/data.sh)
  2  data validation and formatting (every file checked; 16-kHz mono wav in dump/raw)
  3  zero-shot decoding of --test_sets with each of --zeroshot_task_tokens (--nj jobs, merged)
     -> exp/zeroshot_<task tokens>[_<decode variant>]/decode_<set>
  4  LID heads of the frozen backbone on --train_set, ranked -> exp/lid_heads/lid_heads.json and heads.png
     (--nj jobs, merged); each guided method's YAML selects its heads from that file
     (model_conf.guidance: selection, fraction), so this stage has no selection option
  5  training of --method (conf/tuning/<method>.yaml) with ESPnet's trainer
  6  training of --phase2_method, initialized from stage 5's averaged model
  7  averaging of the --nbest_average best checkpoints by valid loss (of stage 6 if any)
  8  decoding of --test_sets with the averaged model (--nj jobs, merged) -> exp/<system>[_<decode variant>]/decode_<set>
  9  scoring of every decode dir (each one it can; those it cannot are listed at the end)
  10 attention analysis, if stage 4 ran: the attention of one selection of its LID heads
     (--attention_selection, --attention_fraction) for the backbone and --attention_systems (empty: every
     exp/<name> with valid.loss.ave.pth whose config.yaml has task_tokens: zh_en)
     on --attention_sets (empty: --test_sets) -> exp/attention/<set>, the figure drawing
     --attention_plot of them (empty: every one)
  11 report -> ${results} and its rates in ${results%.*}.json, with the notes local/<name>.notes.md (with
     --results_archive: made from that dir after exp/'s scored systems are copied into it; with
     --results_compare_archive, the findings set each verdict beside that regime's)
  12 packing of the averaged model -> exp/<method>/packed.zip (espnet_cs.api.Speech2Text loads it)
Options (default):
  --stage (${stage}) --stop_stage (${stop_stage}) --nj (${nj}) --cmd_backend (${cmd_backend}: local|slurm)
  --decode_threads (${decode_threads}) --gpu_inference (${gpu_inference})
  --local_data_opts ("${local_data_opts}") --train_set (${train_set}) --valid_set (${valid_set})
  --test_sets ("${test_sets}") --whisper_model (${whisper_model})
  --zeroshot_task_tokens ("${zeroshot_task_tokens}") --pad_to_30s (${pad_to_30s})
  --decode_batch_size (${decode_batch_size}) --beam_size (${beam_size}) --decode_opts ("${decode_opts}")
  --decode_variant ("${decode_variant}")
  --head_min_fraction (${head_min_fraction}) --head_batch_size (${head_batch_size})
  --method ("${method}") --phase2_method ("${phase2_method}") --train_opts ("${train_opts}")
  --exp_tag ("${exp_tag}") --phase1_exp_tag ("${phase1_exp_tag}") --ngpu (${ngpu}) --num_nodes (${num_nodes}) --nbest_average (${nbest_average})
  --results (${results}) --results_archive ("${results_archive}")
  --results_compare_archive ("${results_compare_archive}") --results_compare_label ("${results_compare_label}")
  --results_guarded (${results_guarded}: tables|all|none)
  --attention_systems ("${attention_systems}") --attention_sets ("${attention_sets}")
  --attention_plot ("${attention_plot}")
  --attention_selection (${attention_selection}) --attention_fraction (${attention_fraction})
GPUs: --ngpu for training (5, 6); --gpu_inference true runs stages 3, 4, 8 and 10 on one GPU per job.
Jobs: cmd.sh launches \${train_cmd} and \${decode_cmd} with utils/run_local.sh or, with
  --cmd_backend slurm, utils/run_slurm.sh (resources: conf/slurm.yaml). Stages 3, 4 and 8 split
  the data into --nj jobs of whole batches and merge their outputs (equal to one job's, given the same
  threads per job); a rerun skips the jobs that finished. Several GPUs and nodes: docs/cluster.md.
Reruns: stages 2, 3, 4 and 8 (and their split jobs) skip an output only if it was made from the same
  inputs (data files and audio; stage 2's per-utterance digests; model file, backbone and options),
  and the log says why they skipped or redid; stages 7, 9, 11 and 12 always redo (cheap). A repeated
  or resumed training keeps the earlier train.log as train.<n>.log.
Methods: $(method_names)
EOF
)

# options renamed in this release: refused for one release, naming the new option (utils/parse_options.sh)
. utils/parse_options.sh  # before path.sh: --help installs nothing
[ $# -eq 0 ] || { log "unexpected arguments: $*"; exit 1; }

. utils/exit_status.sh  # how_it_ended

run_stage() {  # true if stage $1 is within --stage .. --stop_stage
    [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]
}

data_sets="${train_set} ${valid_set} ${test_sets}"
asr_exp="exp/${method}${exp_tag}"
phase1_exp="${asr_exp}"
if [ -n "${phase2_method}" ]; then
    phase1_exp="exp/${method}${phase1_exp_tag}"
    asr_exp="exp/${method}+${phase2_method}${exp_tag}"  # the final model's dir
fi
variant_suffix="${decode_variant:+_${decode_variant}}"  # of the systems stages 3 and 8 decode into
needs_method() {  # stage, method, option naming it
    if [ -z "$2" ]; then
        log "stage $1 needs ${3:---method} (one of: $(method_names))"
        exit 1
    fi
}
# Checked before any stage runs: the methods exist, and each data set is one name.
renamed_names="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../../conf/renamed.txt"  # old new
for option in method phase2_method; do
    name="${!option}"
    if [ -n "${name}" ] && [ ! -f "conf/tuning/${name}.yaml" ]; then
        renamed="$(awk -v old="${name}" '$1 == old { print $2 }' "${renamed_names}" || true)"
        if [ -n "${renamed}" ]; then
            log "--${option} ${name}: the method was renamed to ${renamed} (conf/tuning/${renamed}.yaml)"
        else
            log "--${option} ${name}: unknown method, no conf/tuning/${name}.yaml (methods: $(method_names))"
        fi
        exit 1
    fi
done
for task_tokens in ${zeroshot_task_tokens}; do
    case "${task_tokens}" in
        zh|zh_en) ;;
        single) log "--zeroshot_task_tokens: 'single' was renamed to 'zh'"; exit 1 ;;
        cs) log "--zeroshot_task_tokens: 'cs' was renamed to 'zh_en'"; exit 1 ;;
        *) log "--zeroshot_task_tokens: unknown task tokens '${task_tokens}' (zh, zh_en)"; exit 1 ;;
    esac
done
# A decode variant is one word, not a guarded system's suffix, and its systems' names are no other system's.
if [ -n "${decode_variant}" ]; then
    if [[ ! "${decode_variant}" =~ ^[A-Za-z0-9][A-Za-z0-9_.+-]*$ ]]; then
        log "--decode_variant '${decode_variant}': not one word of letters, digits, _ . + - (e.g. beam5)"
        exit 1
    elif [[ "${decode_variant}" == guard || "${decode_variant}" == *_guard ]]; then
        log "--decode_variant ${decode_variant}: <system>_guard names the guarded hypotheses; choose another name"
        exit 1
    fi
    for name in zeroshot_zh zeroshot_zh_en $(method_names); do
        for base in zeroshot_zh zeroshot_zh_en ${method:+"${asr_exp#exp/}"}; do
            if [ "${base}_${decode_variant}" = "${name}" ]; then
                log "--decode_variant ${decode_variant}: exp/${base}_${decode_variant} is the dir of the system ${name}; choose another name"
                exit 1
            fi
        done
    done
fi
case "${results_guarded}" in
    tables|all|none) ;;
    *) log "--results_guarded ${results_guarded}: one of tables, all, none"; exit 1 ;;
esac
set_name='^[A-Za-z0-9_.+-]+$'  # a data set is one name under data/ and dump/raw: no space, slash or shell character
for option in train_set valid_set; do
    if [[ "${!option}" =~ [[:space:]] || -z "${!option}" ]]; then
        log "--${option} '${!option}': a data set is one name under data/, without spaces"
        exit 1
    elif [[ ! "${!option}" =~ ${set_name} ]]; then
        log "--${option} '${!option}': not a data set name (letters, digits, _ . + -)"
        exit 1
    fi
done
for option in test_sets attention_sets; do
    for dset in ${!option}; do
        if [[ ! "${dset}" =~ ${set_name} ]]; then
            log "--${option}: '${dset}' is not a data set name (letters, digits, _ . + -; sets are separated by spaces)"
            exit 1
        fi
    done
done
check_sets_exist() {  # dir (data or dump/raw), options: each set those options name is a dir under it
    local root="$1" option dset hint
    shift
    for option in "$@"; do
        for dset in ${!option}; do
            [ -d "${root}/${dset}" ] && continue
            hint=""
            if [[ "${!option}" =~ [[:space:]] ]] && [ -d "${root}/${!option}" ]; then
                hint=": ${root}/${!option} exists, but a set name cannot hold a space (the list is separated by spaces); rename it"
            fi
            log "--${option}: no data dir ${root}/${dset}${hint}"
            exit 1
        done
    done
}

. ./path.sh
. ./cmd.sh
if ${gpu_inference}; then device=cuda inference_gpu=(--gpu 1); else device=cpu inference_gpu=(); fi
train() {  # method, output dir, extra options...
    local config="conf/tuning/$1.yaml" dir="$2" launch=() dist=(--multiprocessing_distributed true)
    shift 2
    mkdir -p "${dir}"
    if [ -f "${dir}/train.log" ]; then  # an earlier attempt (ESPnet resumes it): keep its log
        local n=1
        while [ -e "${dir}/train.${n}.log" ]; do n=$((n + 1)); done
        mv "${dir}/train.log" "${dir}/train.${n}.log"
        log "kept the earlier ${dir}/train.log as ${dir}/train.${n}.log"
    fi
    # One process per GPU (ESPnet's multiprocessing distributed mode; none with --ngpu 0 or 1).
    # Under Slurm, srun starts one task per node and ESPnet reads its rank from Slurm; the ranks
    # meet through a file in the experiment dir (a file system all nodes share).
    if [ "${cmd_backend}" = slurm ]; then
        launch=(srun --export=ALL)
        dist+=(--dist_launcher slurm --dist_init_method "file://${PWD}/${dir}/.dist_init.$(date +%s%N)")
        [ "${ngpu}" -gt 0 ] || dist+=(--dist_backend gloo)
    elif [ "${num_nodes}" -gt 1 ]; then
        log "--num_nodes ${num_nodes}: training on several nodes needs --cmd_backend slurm"
        exit 1
    fi
    # --resume true: an interrupted run continues from its last checkpoint.
    # shellcheck disable=SC2086
    ${train_cmd} --gpu "${ngpu}" --num_nodes "${num_nodes}" "${dir}/train.log" \
        "${launch[@]}" python -m espnet_cs.bin.train --config "${config}" \
            --whisper_model "${whisper_model}" --ngpu "${ngpu}" "${dist[@]}" --output_dir "${dir}" --resume true \
            --train_data_path_and_name_and_type "dump/raw/${train_set}/wav.scp,speech,sound" \
            --train_data_path_and_name_and_type "dump/raw/${train_set}/text,text,text" \
            --train_shape_file "dump/raw/${train_set}/speech_shape" \
            --valid_data_path_and_name_and_type "dump/raw/${valid_set}/wav.scp,speech,sound" \
            --valid_data_path_and_name_and_type "dump/raw/${valid_set}/text,text,text" \
            --valid_shape_file "dump/raw/${valid_set}/speech_shape" \
            "$@" ${train_opts} \
        || { log "training into ${dir} failed (above); rerunning the stage, its cause fixed, resumes from its last finished epoch"; exit 1; }
    rm -f "${dir}"/.dist_init.*
}
job_threads() {  # jobs: threads for each of that many local jobs (a Slurm task uses its cpus_per_task)
    local threads=$(( ${OMP_NUM_THREADS:-$(nproc)} / $1 ))
    echo $(( threads > 0 ? threads : 1 ))
}
split_jobs() {  # data dir, split dir, batch size: split into at most --nj jobs of whole batches; prints their number
    python -m espnet_cs.bin.split_data --data_dir "$1" --out_dir "$2" --nj "${nj}" --batch_size "$3"
}
decode() {  # data dir, decode dir, dir of the guarded hypotheses, options of espnet_cs.bin.decode...
    local data="$1" dir="$2" guarded="$3" n job outputs=() guarded_outputs=()
    local logdir="$2/logdir"
    shift 3
    n=$(split_jobs "${data}" "${logdir}/split${nj}" "${decode_batch_size}")
    # shellcheck disable=SC2086
    OMP_NUM_THREADS="$(job_threads "${n}")" ${decode_cmd} "${inference_gpu[@]}" JOB=1:"${n}" "${logdir}/decode.JOB.log" \
        python -m espnet_cs.bin.decode --data_dir "${logdir}/split${nj}/JOB" --out_dir "${logdir}/output.JOB" \
            --guarded_out_dir "${logdir}/guarded.JOB" --batch_size "${decode_batch_size}" \
            --threads "${decode_threads}" --device "${device}" --beam_size "${beam_size}" \
            ${decode_variant:+--decode_variant "${decode_variant}"} "$@" ${decode_opts} \
        || { log "decoding ${data} failed; rerunning the stage redoes only the failed jobs"; exit 1; }
    for job in $(seq "${n}"); do
        outputs+=("${logdir}/output.${job}"); guarded_outputs+=("${logdir}/guarded.${job}")
    done
    python -m espnet_cs.bin.merge_decodes --data_dir "${data}" --out_dir "${dir}" "${outputs[@]}"
    python -m espnet_cs.bin.merge_decodes --data_dir "${data}" --out_dir "${guarded}" --derived_from "${dir}" \
        "${guarded_outputs[@]}"
}
measured_by_default() {  # exp dir: true if stage 10 measures it without --attention_systems
    # a trained model whose task tokens hold both LID tokens (ESPnet writes task_tokens: zh_en in its config.yaml)
    [ -f "$1/valid.loss.ave.pth" ] && grep -qx "task_tokens: zh_en" "$1/config.yaml" 2>/dev/null
}

if run_stage 1; then
    log "stage 1: data preparation: local/data.sh ${local_data_opts}"
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts}
fi

if run_stage 2; then
    log "stage 2: data validation and formatting -> dump/raw"
    check_sets_exist data train_set valid_set test_sets
    failed=()
    for dset in ${data_sets}; do  # every set is checked, so one run lists all problems
        status=0
        python -m espnet_cs.bin.format_data --src "data/${dset}" --dst "dump/raw/${dset}" --nj "${nj}" || status=$?
        if [ "${status}" -eq 1 ]; then  # problems, listed in problems.txt
            failed+=("${dset} (dump/raw/${dset}/problems.txt)")
        elif [ "${status}" -ne 0 ]; then  # killed, or a worker killed: incomplete, not wrong
            ended="$(how_it_ended "${status}")"
            [ "${status}" -ne 2 ] || ended="was interrupted: a worker process was killed (above)"
            log "stage 2: formatting data/${dset} into dump/raw/${dset} ${ended}:" \
                "rerunning stage 2 resumes (the sets formatted so far are kept)"
            exit 1
        fi
    done
    if [ ${#failed[@]} -gt 0 ]; then
        log "stage 2: problems in ${#failed[@]} data set(s): ${failed[*]}"
        exit 1
    fi
    if [ -x local/check_data.sh ]; then  # corpus-specific checks, e.g. SEAME's published dev-set sizes
        log "stage 2: local/check_data.sh"
        local/check_data.sh
    fi
fi

if run_stage 3; then
    check_sets_exist dump/raw test_sets
    for task_tokens in ${zeroshot_task_tokens}; do
        for dset in ${test_sets}; do
            dir="exp/zeroshot_${task_tokens}${variant_suffix}/decode_${dset}"
            guarded="exp/zeroshot_${task_tokens}${variant_suffix}_guard/decode_${dset}"
            # each job skips if its output was made from the same audio, backbone and options
            log "stage 3: zero-shot decoding of ${dset} with the ${task_tokens} task tokens -> ${dir} (logs: ${dir}/logdir)"
            decode "dump/raw/${dset}" "${dir}" "${guarded}" \
                --whisper_model "${whisper_model}" --task_tokens "${task_tokens}" --pad_to_30s "${pad_to_30s}"
        done
    done
fi

if run_stage 4; then
    dir=exp/lid_heads
    logdir="${dir}/logdir"
    log "stage 4: LID heads on ${train_set} -> ${dir}/lid_heads.json (logs: ${logdir})"
    n=$(split_jobs "dump/raw/${train_set}" "${logdir}/split${nj}" "${head_batch_size}")
    OMP_NUM_THREADS="$(job_threads "${n}")" ${decode_cmd} "${inference_gpu[@]}" JOB=1:"${n}" "${logdir}/stats.JOB.log" \
        python -m espnet_cs.bin.select_heads --data_dir "${logdir}/split${nj}/JOB" --stats_out "${logdir}/stats.JOB.npz" \
            --whisper_model "${whisper_model}" --batch_size "${head_batch_size}" --device "${device}" \
        || { log "head statistics failed; rerunning the stage redoes only the failed jobs"; exit 1; }
    stats=()
    for job in $(seq "${n}"); do stats+=("${logdir}/stats.${job}.npz"); done
    python -m espnet_cs.bin.select_heads --merge "${stats[@]}" --out_dir "${dir}" --min_fraction "${head_min_fraction}"
fi

if run_stage 5 && { [ -n "${method}" ] || [ "${stage}" -eq 5 ]; }; then
    needs_method 5 "${method}"
    log "stage 5: training ${method} -> ${phase1_exp} (log: ${phase1_exp}/train.log)"
    train "${method}" "${phase1_exp}"
fi

if run_stage 6 && { [ -n "${phase2_method}" ] || [ "${stage}" -eq 6 ]; }; then
    needs_method 6 "${phase2_method}" --phase2_method
    init="${phase1_exp}/valid.loss.ave.pth"
    [ -f "${init}" ] || { log "stage 6 starts from ${init}, which does not exist: run stage 5 first"; exit 1; }
    log "stage 6: training ${phase2_method} from ${init} -> ${asr_exp} (log: ${asr_exp}/train.log)"
    train "${phase2_method}" "${asr_exp}" --init_param "${init}"
fi

if run_stage 7 && { [ -n "${method}" ] || [ "${stage}" -eq 7 ]; }; then
    needs_method 7 "${method}"
    log "stage 7: averaging the ${nbest_average} best checkpoints of ${asr_exp} by valid loss (always redone)"
    python -m espnet_cs.bin.average --exp_dir "${asr_exp}" --nbest "${nbest_average}"
fi

if run_stage 8 && { [ -n "${method}" ] || [ "${stage}" -eq 8 ]; }; then
    needs_method 8 "${method}"
    if [ ! -f "${asr_exp}/valid.loss.ave.pth" ]; then
        log "stage 8 decodes with ${asr_exp}/valid.loss.ave.pth, which does not exist: train and average first (stages 5-7)"
        exit 1
    fi
    check_sets_exist dump/raw test_sets
    for dset in ${test_sets}; do
        dir="${asr_exp}${variant_suffix}/decode_${dset}"
        log "stage 8: decoding ${dset} with ${asr_exp}/valid.loss.ave.pth -> ${dir} (logs: ${dir}/logdir)"
        decode "dump/raw/${dset}" "${dir}" "${asr_exp}${variant_suffix}_guard/decode_${dset}" \
            --asr_train_config "${asr_exp}/config.yaml" --asr_model_file "${asr_exp}/valid.loss.ave.pth"
    done
fi

if run_stage 9; then
    log "stage 9: scoring every decode dir against dump/raw/<set> as it is now (always redone)"
    unscored=()
    for dir in exp/*/decode_*; do
        [ -d "${dir}" ] || continue
        dset="${dir##*/decode_}"
        if [ ! -s "${dir}/text" ]; then
            unscored+=("${dir}: no hypotheses (decoding did not finish)")
            continue
        fi
        log "stage 9: ${dir}"
        errors=$(mktemp)
        if ! python -m espnet_cs.bin.score --data_dir "dump/raw/${dset}" --hyp "${dir}/text" --out_dir "${dir}" \
            2>"${errors}"; then
            unscored+=("${dir}: $(tail -n 1 "${errors}")")
        fi
        cat "${errors}" >&2
        rm -f "${errors}"
    done
    if [ ${#unscored[@]} -gt 0 ]; then
        log "stage 9: could not score ${#unscored[@]} decode dir(s):"
        printf '  %s\n' "${unscored[@]}" >&2
        exit 1
    fi
fi

if run_stage 10; then
    heads=exp/lid_heads/lid_heads.json
    if [ -z "${attention_systems}" ]; then
        for dir in exp/*/; do
            dir="${dir%/}"
            if measured_by_default "${dir}"; then attention_systems+=" ${dir#exp/}"; fi
        done
        attention_systems="${attention_systems# }"
    fi
    systems=()
    for name in ${attention_systems}; do
        if [ ! -f "exp/${name}/valid.loss.ave.pth" ]; then
            log "stage 10: --attention_systems names ${name}, but exp/${name}/valid.loss.ave.pth does not exist"
            exit 1
        fi
        systems+=(--system "${name}=exp/${name}")
    done
    plots=()
    for name in ${attention_plot}; do plots+=(--plot "${name}"); done
    if [ -f "${heads}" ] && [ ${#systems[@]} -gt 0 ]; then
        log "stage 10: attention of the ${attention_selection} ${attention_fraction} LID heads of ${heads}:" \
            "backbone ${attention_systems} -> exp/attention"
        for dset in ${attention_sets:-${test_sets}}; do
            if [ ! -f "dump/raw/${dset}/text" ]; then
                log "stage 10: no dump/raw/${dset}/text to measure attention on: stage 2 formats --train_set, --valid_set and --test_sets"
                exit 1
            fi
            python -m espnet_cs.bin.attention_report --data_dir "dump/raw/${dset}" --lid_heads "${heads}" \
                --selection "${attention_selection}" --fraction "${attention_fraction}" \
                --whisper_model "${whisper_model}" --system backbone "${systems[@]}" --out_dir "exp/attention/${dset}" \
                --device "${device}" \
                "${plots[@]}"
        done
    fi
fi

if run_stage 11; then
    log "stage 11: report -> ${results}${results_archive:+ (from ${results_archive})}"
    compare=()
    if [ -n "${results_compare_archive}" ]; then
        compare=(--compare_archive "${results_compare_archive}" ${results_compare_label:+--compare_label "${results_compare_label}"})
    fi
    python -m espnet_cs.bin.report --exp_dir exp ${results_archive:+--archive "${results_archive}"} "${compare[@]}" \
        --guarded "${results_guarded}" --out "${results}" --notes "local/$(basename "${results%.*}").notes.md"
    cat "${results}"
fi

if run_stage 12 && { [ -n "${method}" ] || [ "${stage}" -eq 12 ]; }; then
    needs_method 12 "${method}"
    log "stage 12: packing ${asr_exp}/valid.loss.ave.pth -> ${asr_exp}/packed.zip (always redone)"
    python -m espnet_cs.bin.pack --exp_dir "${asr_exp}" --model_file valid.loss.ave.pth --out "${asr_exp}/packed.zip"
fi

log "finished in ${SECONDS} s"
