# shellcheck shell=bash
# how_it_ended STATUS: a process's exit status in words, with the likely cause of a kill.
# Sourced by asr.sh and utils/run_local.sh.
how_it_ended() {
    if [ "$1" -gt 128 ]; then
        local name
        name="$(kill -l "$(( $1 - 128 ))" 2> /dev/null || echo "$(( $1 - 128 ))")"
        echo -n "was killed by SIG${name}"
        [ "${name}" != KILL ] || echo -n " (most often the out-of-memory killer: see dmesg, or use fewer jobs)"
    else
        echo -n "failed (exit status $1)"
    fi
}
