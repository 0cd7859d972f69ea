#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the README's job-array example
# (tests/tests/it/sweep.rs, `slurm_job_array_merges_to_the_one_machine_front`, run when
# QC_SLURM_TEST=1). Finds a running cluster, or installs Debian's `slurm-wlm` and `munge` when
# missing (as root or with sudo), writes a minimal /etc/slurm/slurm.conf for this host (its CPU
# count, one partition), and starts munged, slurmctld and slurmd. Exits non-zero when it cannot.
set -euo pipefail

say() { echo "slurm-up: $*" >&2; }
sudo=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo"
    else
        sudo="none"
    fi
fi
as_root() {
    if [ "$sudo" = none ]; then
        say "needs root (or password-less sudo) to run: $*"
        exit 1
    fi
    $sudo "$@"
}

# A cluster that answers and has an idle (or mixed) node: use it.
ready() { sinfo -h -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; }
if command -v sinfo >/dev/null 2>&1 && ready; then
    say "a Slurm cluster is already up: $(sinfo -h -o '%N %c CPUs %t' | head -1)"
    exit 0
fi

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    say "installing slurm-wlm and munge"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null ||
        { as_root apt-get update -q >/dev/null &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null; }
fi

host=$(hostname -s)
cpus=$(nproc)
conf=/etc/slurm/slurm.conf
marker="# written by qc's .ci/slurm-up.sh"
if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
    say "$conf exists and is not ours; using it as it is"
else
    as_root mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    as_root tee "$conf" >/dev/null <<EOF
$marker
ClusterName=qc
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=qc Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
fi

# munge: a key (the package makes one), then the daemon as the munge user.
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [ ! -f /etc/munge/munge.key ]; then
        as_root mungekey --create 2>/dev/null ||
            as_root dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        as_root chown munge:munge /etc/munge/munge.key
        as_root chmod 400 /etc/munge/munge.key
    fi
    as_root mkdir -p /run/munge
    as_root chown munge:munge /run/munge
    say "starting munged"
    as_root runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

# A daemon that is not running (its pid file names no live process) is started.
alive() { [ -f "$1" ] && as_root kill -0 "$(cat "$1")" 2>/dev/null; }
alive /run/slurmctld.pid || { say "starting slurmctld"; as_root /usr/sbin/slurmctld; }
alive /run/slurmd.pid || { say "starting slurmd"; as_root /usr/sbin/slurmd; }

for _ in $(seq 100); do
    if ready; then
        say "up: $(sinfo -h -o '%N %c CPUs %t' | head -1)"
        exit 0
    fi
    # A node left down by an earlier run comes back.
    if sinfo -h -o '%t' 2>/dev/null | grep -Eq '^(down|drain)'; then
        as_root scontrol update NodeName="$host" State=RESUME 2>/dev/null || true
    fi
    sleep 0.2
done
say "the cluster did not come up; see /var/log/slurm/slurmctld.log and slurmd.log"
sinfo >&2 || true
exit 1
