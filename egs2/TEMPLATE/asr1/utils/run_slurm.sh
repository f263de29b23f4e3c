#!/usr/bin/env bash
# Run a command through Slurm, with the interface of utils/run_local.sh:
#   utils/run_slurm.sh [options] [JOB=1:N] LOGFILE COMMAND [ARGS...]
# With JOB=1:N: one job array (sbatch --array) whose task k runs the command with "JOB" in the
# arguments replaced by k. Waits for all tasks (sbatch --wait). Each task's output, and Slurm's
# own messages about it (time limit, memory), goes to LOGFILE with "JOB" replaced by its index,
# ending with its exit code. Exits non-zero if any task failed, naming each failed task and its
# log, and printing the command that reruns one alone (JOB=k:k). Interrupted, it cancels the job.
#
# Resources: the --class section of --config (YAML, keys partition, gpus, cpus_per_task, mem,
# time, extra), overridden by the environment (RUN_SLURM_PARTITION, RUN_SLURM_GPUS,
# RUN_SLURM_CPUS_PER_TASK, RUN_SLURM_MEM, RUN_SLURM_TIME, RUN_SLURM_EXTRA), overridden by
# options. Before submitting, it checks that the Slurm controller answers (scontrol ping).
# Inside a task, OMP_NUM_THREADS and srun's CPUs per task follow the allocated CPUs.
set -uo pipefail

config=""          # resources per class (default: conf/slurm.yaml, else the template's conf/slurm.yaml)
class=""           # section of --config: train or decode
gpu=""             # GPUs per node (--gres=gpu:N)
num_nodes=1        # nodes, one task each (--nodes N --ntasks-per-node 1): run the command under srun
partition=""       # empty: from the environment, else --config, else the cluster's default
cpus_per_task=""
mem=""             # memory per node, e.g. 8G
time=""            # time limit, e.g. 04:00:00 or 2-00:00:00
extra=""           # more sbatch options, e.g. "--account=myproj --qos=normal"
help_message="Usage: $0 [--class train|decode] [--config conf/slurm.yaml] [--gpu N] [--num_nodes N]
       [--partition P] [--cpus_per_task N] [--mem 8G] [--time 04:00:00] [--extra 'sbatch options']
       [JOB=1:N] LOGFILE COMMAND [ARGS...]
(see the comments at the top of $0)"

log() { echo "$0: $*" >&2; }
die() { log "$*"; exit 1; }

all_args=("$@")
# shellcheck source=parse_options.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"
options=("${all_args[@]:0:$(( ${#all_args[@]} - $# ))}")

first=1; last=1; array=false
if [[ "${1:-}" =~ ^JOB=([0-9]+):([0-9]+)$ ]]; then
    first="${BASH_REMATCH[1]}"; last="${BASH_REMATCH[2]}"; array=true; shift
fi
[ $# -ge 2 ] || die "usage: $0 [options] [JOB=1:N] LOGFILE COMMAND [ARGS...] (see --help)"
[ "${first}" -le "${last}" ] || die "empty job range JOB=${first}:${last}"
logfile="$1"; shift
[ -n "${class}" ] || die "which resources? give --class (a section of the Slurm config, e.g. train or decode)"

template_config="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/../conf/slurm.yaml"
if [ -z "${config}" ]; then
    config=conf/slurm.yaml
    [ -f "${config}" ] || config="${template_config}"
fi
[ -f "${config}" ] || die "no Slurm config ${config} (copy ${template_config} into the recipe's conf/)"

read_section() {  # config, class: "key value" lines of that section
    python3 - "$1" "$2" <<'EOF'
import sys

from espnet_cs.config_yaml import ConfigError, load_yaml_mapping

path, section = sys.argv[1:]
keys = {"partition", "gpus", "cpus_per_task", "mem", "time", "extra"}
try:
    conf = load_yaml_mapping(path)
except ConfigError as e:
    sys.exit(str(e))
if section not in conf:
    sys.exit(f"{path} has no section '{section}' (sections: {', '.join(conf)})")
unknown = sorted(set(conf[section] or {}) - keys)
if unknown:
    sys.exit(f"{path}: unknown keys in section '{section}': {unknown} (known: {sorted(keys)})")
for key, value in (conf[section] or {}).items():
    print(key, "" if value is None else value)
EOF
}
section="$(read_section "${config}" "${class}")" || die "cannot read the resources of '${class}' from ${config}"
declare -A resource=()
while read -r key value; do
    [ -n "${key}" ] && resource["${key}"]="${value}"
done <<< "${section}"
gpus="${gpu}"
for key in partition gpus cpus_per_task mem time extra; do
    env_name="RUN_SLURM_${key^^}"
    if [ -n "${!key}" ]; then
        resource["${key}"]="${!key}"
    elif [ -n "${!env_name:-}" ]; then
        resource["${key}"]="${!env_name}"
    fi
done

if ! command -v sbatch > /dev/null || ! command -v scontrol > /dev/null; then
    die "Slurm's commands sbatch and scontrol are not installed (a cluster on this machine: tools/install_slurm.sh)"
fi
if ! ping="$(scontrol ping 2>&1)" || ! grep -q " is UP" <<< "${ping}"; then
    controller="$(sed -n 's/.* at \([^ ]*\) is .*/\1/p' <<< "${ping}" | head -n 1)"
    die "the Slurm controller ${controller:-(unknown)} does not answer: is slurmctld running there and reachable? ($(head -n 1 <<< "${ping}"); configuration: ${SLURM_CONF:-/etc/slurm/slurm.conf})"
fi

name="$(basename "${logfile}")"; name="${name%.log}"; name="${name//.JOB/}"
sbatch_args=(--wait --parsable --job-name "${name}" --chdir "${PWD}" --open-mode truncate
             --nodes "${num_nodes}" --ntasks-per-node 1)
escaped="${logfile//%/%%}"
if ${array}; then
    sbatch_args+=(--array "${first}-${last}" --output "${escaped//JOB/%a}")
else
    sbatch_args+=(--output "${escaped}")
fi
[ -n "${resource[partition]:-}" ] && sbatch_args+=(--partition "${resource[partition]}")
[ -n "${resource[cpus_per_task]:-}" ] && sbatch_args+=(--cpus-per-task "${resource[cpus_per_task]}")
[ -n "${resource[mem]:-}" ] && sbatch_args+=(--mem "${resource[mem]}")
[ -n "${resource[time]:-}" ] && sbatch_args+=(--time "${resource[time]}")
[[ "${resource[gpus]:-0}" =~ ^[0-9]+$ ]] \
    || die "gpus must be a number, got '${resource[gpus]}' (GPUs of a type: extra: --gres=gpu:<type>:<n>)"
[ "${resource[gpus]:-0}" -gt 0 ] && sbatch_args+=(--gres "gpu:${resource[gpus]}")
# shellcheck disable=SC2206
[ -n "${resource[extra]:-}" ] && sbatch_args+=(${resource[extra]})

task_log() { if ${array}; then echo "${logfile//JOB/$1}"; else echo "${logfile}"; fi; }
for job in $(seq "${first}" "${last}"); do  # Slurm does not create log dirs; old logs would look finished
    mkdir -p "$(dirname "$(task_log "${job}")")"
    rm -f "$(task_log "${job}")"
done
script="$(dirname "$(task_log "${first}")")/q/${name}.sh"
mkdir -p "$(dirname "${script}")"
{
    echo "#!/usr/bin/env bash"
    echo "# Written by $0: one task of $(printf '%q ' "${logfile}" "$@")"
    printf 'args=('; printf '%q ' "$@"; printf ')\n'
    if ${array}; then
        # shellcheck disable=SC2016
        echo 'args=("${args[@]//JOB/${SLURM_ARRAY_TASK_ID}}"); id="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"'
    else
        # shellcheck disable=SC2016
        echo 'id="${SLURM_JOB_ID}"'
    fi
    cat <<'EOF'
if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then
    export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK}" SRUN_CPUS_PER_TASK="${SLURM_CPUS_PER_TASK}"
fi
printf '# %s\n# started at %s on %s, Slurm job %s\n' "${args[*]}" "$(date)" "$(hostname)" "${id}"
start=$(date +%s)
"${args[@]}"
status=$?
printf '# ended at %s, %d s, exit code %d\n' "$(date)" "$(( $(date +%s) - start ))" "${status}"
exit "${status}"
EOF
} > "${script}"

ids="$(mktemp)"; errors="$(mktemp)"
trap 'rm -f "${ids}" "${errors}"' EXIT
# shellcheck disable=SC2317  # cancel runs from the trap below
cancel() {
    local job_id
    job_id="$(cut -d';' -f1 "${ids}")"
    [ -n "${job_id}" ] && scancel "${job_id}" && log "interrupted: cancelled Slurm job ${job_id}"
    exit 130
}
sbatch "${sbatch_args[@]}" "${script}" > "${ids}" 2> "${errors}" &
sbatch_pid=$!
trap cancel INT TERM
wait "${sbatch_pid}"
job_id="$(cut -d';' -f1 "${ids}")"
[ -n "${job_id}" ] || die "sbatch did not submit the job: $(cat "${errors}")"

failed=()
for job in $(seq "${first}" "${last}"); do
    job_log="$(task_log "${job}")"
    tail -n 1 "${job_log}" 2> /dev/null | grep -q ', exit code 0$' && continue
    failed+=("${job}")
    if ${array}; then
        log "job ${job} (Slurm job ${job_id}_${job}) failed, see ${job_log}:"
    else
        log "Slurm job ${job_id} failed, see ${job_log}:"
    fi
    if [ -f "${job_log}" ]; then
        tail -n 20 "${job_log}" | sed 's/^/    /' >&2
    else
        echo "    (no log: the task did not start; sbatch: $(cat "${errors}"))" >&2
    fi
done
[ ${#failed[@]} -eq 0 ] && exit 0
if ${array}; then
    log "${#failed[@]} of $(( last - first + 1 )) job(s) failed (${failed[*]}); to rerun one alone, in ${PWD} with path.sh sourced:"
    printf ' %q' "$0" "${options[@]}" "JOB=${failed[0]}:${failed[0]}" "${logfile}" "$@" >&2
    echo >&2
fi
exit 1
