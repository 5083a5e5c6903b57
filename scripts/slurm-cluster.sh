#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tltpipe's Slurm tests: munged, slurmctld and slurmd.
#
#   sudo scripts/slurm-cluster.sh          # install (Debian: slurm-wlm, munge), configure, start; idempotent
#   scripts/slurm-cluster.sh --stop
#
# What it takes on a CI machine or a container (written down so nobody rediscovers it):
# - The node is named after `hostname -s`; slurmd refuses to start when NodeName matches no local name.
# - No cgroup plugins: containers rarely let slurmd create cgroups, so processes are tracked with
#   proctrack/linuxproc and tasks are not confined (task/none). Memory limits are then not enforced by
#   cgroups; JobAcctGatherType=jobacct_gather/linux still samples memory, and OverMemoryKill lets Slurm
#   kill a job over its --mem, which ends it OUT_OF_MEMORY.
# - No slurmdbd: sacct has no database here. Finished jobs stay visible to `scontrol show job` for
#   MinJobAge seconds (set to an hour), which is what tltpipe reads after a crash; tltpipe's job wrapper
#   also writes each job's exit code into the run directory.
# - munge needs a key readable only by its user; the Debian package creates it on install.
# - State lives in /var/spool/slurmctld and /var/spool/slurmd, logs in /var/log/slurm.
set -euo pipefail

CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm

if [[ "${1:-}" == "--stop" ]]; then
    pkill -x slurmd || true
    pkill -x slurmctld || true
    pkill -x munged || true
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

node=$(hostname -s)
cpus=$(nproc)
memory_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd /run/munge
cat > "$CONF_DIR/slurm.conf" <<EOF
ClusterName=tltpipe
SlurmctldHost=$node
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmUser=root
KillWait=5
InactiveLimit=0
MpiDefault=none
NodeName=$node CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF

chown munge:munge /run/munge 2>/dev/null || true
if [[ ! -f /etc/munge/munge.key ]]; then
    mungekey --create 2>/dev/null || create-munge-key
fi
pgrep -x munged >/dev/null || runuser -u munge -- munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
        sinfo
        exit 0
    fi
    scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
    sleep 1
done
echo "slurm-cluster: the node did not come up; see $LOG_DIR" >&2
sinfo >&2 || true
tail -20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
exit 1
