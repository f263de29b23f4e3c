#!/usr/bin/env bash
# Run a command locally, Kaldi run.pl style:
#   utils/run_local.sh [--gpu N] [--num_nodes 1] [JOB=1:N] LOGFILE COMMAND [ARGS...]
# With JOB=1:N, N copies run in parallel; "JOB" in LOGFILE and in the arguments becomes the job
# index. Output goes to LOGFILE (its directory is created). Exits non-zero if any job fails,
# naming the failed jobs and their logs, so a failed split can be rerun alone (JOB=k:k).
# --gpu and --num_nodes are those of utils/run_slurm.sh: GPUs are whatever this machine has
# (ESPnet's --ngpu picks them), and more than one node needs Slurm.
set -uo pipefail

while [[ "${1:-}" == --* ]]; do
    [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
    case "$1" in
        --gpu) ;;
        --num_nodes)
            [ "${2:-}" = 1 ] || { echo "$0: --num_nodes ${2:-}: running on several nodes needs Slurm (cmd_backend=slurm)" >&2; exit 1; } ;;
        *) echo "$0: unknown option $1 (--gpu N, --num_nodes 1)" >&2; exit 1 ;;
    esac
    shift 2
done

first=1; last=1; array=false
if [[ "${1:-}" =~ ^JOB=([0-9]+):([0-9]+)$ ]]; then
    first="${BASH_REMATCH[1]}"; last="${BASH_REMATCH[2]}"; array=true; shift
fi
if [ $# -lt 2 ]; then
    echo "usage: $0 [--gpu N] [--num_nodes 1] [JOB=1:N] LOGFILE COMMAND [ARGS...]" >&2
    exit 1
fi
logfile="$1"; shift

# The jobs end with this script's caller: a watcher ends them when the caller (asr.sh) is gone,
# and each job's command gets SIGKILL when its job shell ends (setpriv --pdeathsig, where installed).
caller="${PPID}"
end_with_parent=()
command -v setpriv > /dev/null && end_with_parent=(setpriv --pdeathsig KILL --)
pids=()
for job in $(seq "${first}" "${last}"); do
    if ${array}; then
        log="${logfile//JOB/${job}}"
        args=("${@//JOB/${job}}")
    else
        log="${logfile}"; args=("$@")
    fi
    mkdir -p "$(dirname "${log}")"
    (
        printf '# %s\n# started at %s\n' "${args[*]}" "$(date)"
        start=$(date +%s)
        "${end_with_parent[@]}" "${args[@]}"
        status=$?
        printf '# ended at %s, %d s, exit code %d\n' "$(date)" "$(( $(date +%s) - start ))" "${status}"
        exit "${status}"
    ) > "${log}" 2>&1 &
    pids+=("$!:${job}:${log}")
done
job_pids=("${pids[@]%%:*}")
( while kill -0 "${caller}" 2> /dev/null; do sleep 1; done; kill "${job_pids[@]}" 2> /dev/null ) > /dev/null 2>&1 &
watcher=$!

. "$(dirname "${BASH_SOURCE[0]}")/exit_status.sh"  # how_it_ended

failed=0
for entry in "${pids[@]}"; do
    IFS=: read -r pid job log <<< "${entry}"
    wait "${pid}"
    status=$?
    if [ "${status}" -ne 0 ]; then
        echo "$0: job ${job} $(how_it_ended "${status}"), see ${log}:" >&2
        tail -n 20 "${log}" | sed 's/^/    /' >&2
        failed=$((failed + 1))
    fi
done
kill "${watcher}" 2> /dev/null
[ "${failed}" -eq 0 ] || { echo "$0: ${failed} job(s) failed" >&2; exit 1; }
