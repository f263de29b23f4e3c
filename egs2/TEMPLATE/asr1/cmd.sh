# shellcheck shell=bash
# Job launchers for ${train_cmd} and ${decode_cmd}, Kaldi style:
#   ${decode_cmd} [JOB=1:N] LOGFILE COMMAND ARGS...
# chosen by cmd_backend (asr.sh's --cmd_backend, or the environment):
# local: utils/run_local.sh (parallel jobs on this machine).
# slurm: utils/run_slurm.sh (sbatch job arrays; resources of the train and decode sections of
#        conf/slurm.yaml).
cmd_backend="${cmd_backend:-local}"
case "${cmd_backend}" in
    local)
        export train_cmd="utils/run_local.sh"
        export decode_cmd="utils/run_local.sh" ;;
    slurm)
        export train_cmd="utils/run_slurm.sh --class train"
        export decode_cmd="utils/run_slurm.sh --class decode" ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2
        return 1 ;;
esac
