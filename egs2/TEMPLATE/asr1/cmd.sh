# Job launchers for ${train_cmd} and ${decode_cmd}, Kaldi style:
#   ${decode_cmd} [JOB=1:N] LOGFILE COMMAND ARGS...
# local: utils/run_local.sh (parallel jobs on this machine).
cmd_backend="${cmd_backend:-local}"
case "${cmd_backend}" in
    local)
        export train_cmd="utils/run_local.sh"
        export decode_cmd="utils/run_local.sh" ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local)" >&2
        return 1 ;;
esac
