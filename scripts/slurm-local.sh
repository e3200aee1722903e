#!/bin/bash
# A one-node Slurm cluster on this machine (Debian's munge + slurmctld + slurmd, no systemd, no
# cgroups), for the end-to-end test of `mspinn sweep slurm` (tests/sweep_slurm.rs) and for trying
# sweeps on a workstation. Run as root (or with passwordless sudo). Measured on Debian 12 with
# Slurm 22.05 and munge 0.5.15: ~15 s from nothing to an idle node; a second `start` takes 0.2 s
# and restarts nothing.
# Usage: scripts/slurm-local.sh [start|stop]
set -euo pipefail
if [ "$(id -u)" != 0 ]; then exec sudo -n "$0" "$@"; fi
H=$(hostname -s)
CONF=/etc/slurm/slurm.conf

running() { # $1=pidfile $2=comm
  [ -s "$1" ] && p=$(cat "$1") && kill -0 "$p" 2>/dev/null &&
    [ "$(cat /proc/$p/comm 2>/dev/null)" = "$2" ]
}
stop_pid() { # $1=pidfile $2=comm
  if running "$1" "$2"; then
    p=$(cat "$1"); kill "$p"
    for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
  fi
  rm -f "$1"
}

if [ "${1:-start}" = stop ]; then
  stop_pid /run/slurmd.pid slurmd
  stop_pid /run/slurmctld.pid slurmctld
  stop_pid /run/munge/munged.pid munged
  exit 0
fi

# 1. packages (postinst tries to start services; policy-rc.d/no init just prints a warning)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
   ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    slurmctld slurmd slurm-client munge
fi

# 2. munge (Debian's postinst normally creates the key already)
if [ ! -s /etc/munge/munge.key ]; then
  runuser -u munge -- mungekey --create
fi
chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
running /run/munge/munged.pid munged || runuser -u munge -- /usr/sbin/munged
munge -n | unmunge >/dev/null

# 3. config (rewritten each run; same content on the same machine)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/{print int($2/1024*0.9)}' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
NEW=$(cat <<EOF
ClusterName=local
SlurmctldHost=$H
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
EnforcePartLimits=ALL
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$H CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOF
)
CHANGED=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEW" ]; then
  printf '%s\n' "$NEW" > "$CONF"; CHANGED=1
fi

# 4. daemons (daemonize themselves and write their pid files)
if running /run/slurmctld.pid slurmctld; then
  if [ $CHANGED = 1 ]; then scontrol reconfigure; fi
else
  slurmctld
fi
running /run/slurmd.pid slurmd || slurmd

# 5. wait for the node to be idle
for i in $(seq 60); do
  st=$(sinfo -h -n "$H" -o %T 2>/dev/null || true)
  case "$st" in
    idle|mixed|allocated) break ;;
    drain*|down*) scontrol update nodename="$H" state=resume 2>/dev/null || true ;;
  esac
  sleep 1
done
sinfo
scontrol show node "$H" | grep -E 'NodeName|State|CfgTRES'
case "$st" in idle|mixed|allocated) ;; *) echo "node not ready: $st" >&2; exit 1 ;; esac
