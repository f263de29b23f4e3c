#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, to run recipes with cmd_backend=slurm (and the
# tests of utils/run_slurm.sh): Debian slurm-wlm and munge, a slurm.conf for this host (no
# cgroups: proctrack/linuxproc, task/none; select/cons_tres with this node's real CPUs and
# memory), the munge key, then munged, slurmctld and slurmd; waits until the node is idle.
# Needs root. Idempotent: what is installed, written or running already is left as it is.
#
# Prints "started <daemon> <pid>" on stdout for each daemon it starts, so that a caller can stop
# exactly those (kill <pid>). Logs: /var/log/slurm/.
set -euo pipefail

conf=/etc/slurm/slurm.conf
wait_seconds=60

log() { echo "[tools/install_slurm.sh] $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs Debian packages, writes ${conf} and starts daemons"

install_packages() {
    local missing=() package
    for package in slurm-wlm munge; do
        dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("${package}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

write_munge_key() {
    local key=/etc/munge/munge.key
    [ -s "${key}" ] && return 0
    log "creating ${key}"
    install -d -o munge -g munge -m 700 /etc/munge
    (umask 277 && head -c 1024 /dev/urandom > "${key}")
    chown munge:munge "${key}"
}

write_slurm_conf() {
    local host node wanted
    host="$(hostname -s)"
    # slurmd -C prints this node's hardware as a NodeName line (CPUs, sockets, cores, RealMemory).
    node="$(slurmd -C | grep '^NodeName=')" || die "slurmd -C could not describe this node"
    wanted="$(cat <<EOF
# Single-node cluster written by tools/install_slurm.sh (no cgroups, no accounting).
ClusterName=espnetcs
SlurmctldHost=${host}
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
ReturnToService=2
# Completed jobs leave the controller after 2 s: sbatch --wait then polls every 2 s instead of
# backing off to 32 s (utils/run_slurm.sh reads each task's exit status from its log).
MinJobAge=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
${node} State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)"
    install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    if [ -f "${conf}" ] && [ "$(cat "${conf}")" = "${wanted}" ]; then
        return 0
    fi
    log "writing ${conf} (node: ${node})"
    printf '%s\n' "${wanted}" > "${conf}"
    if running /run/slurmctld.pid; then
        scontrol reconfigure
    fi
}

running() {  # pid file: true if the process it names is alive
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

start() {  # name, pid file, command...: start a daemon unless it runs; report its pid
    local name="$1" pid_file="$2" _
    shift 2
    running "${pid_file}" && return 0
    log "starting ${name}"
    "$@"
    for _ in $(seq 50); do
        running "${pid_file}" && { echo "started ${name} $(cat "${pid_file}")"; return 0; }
        sleep 0.2
    done
    die "${name} did not start; see /var/log/slurm/ and its messages above"
}

wait_until_idle() {
    local host state _
    host="$(hostname -s)"
    for _ in $(seq "${wait_seconds}"); do
        state="$(sinfo -h -n "${host}" -o %T 2>/dev/null || true)"
        case "${state}" in
            idle*|mixed*|allocated*) log "node ${host} is ${state}"; return 0 ;;
            down*|drain*) scontrol update nodename="${host}" state=resume 2>/dev/null || true ;;
        esac
        sleep 1
    done
    die "node ${host} is not idle after ${wait_seconds} s (state: '${state}'); see /var/log/slurm/"
}

install_packages
write_munge_key
write_slurm_conf
install -d -o munge -g munge -m 755 /run/munge /var/log/munge
chown -R munge:munge /var/log/munge
start munged /run/munge/munged.pid runuser -u munge -- munged
start slurmctld /run/slurmctld.pid slurmctld
start slurmd /run/slurmd.pid slurmd
wait_until_idle
