#!/usr/bin/env bash
# A single-node Slurm (22.05, Debian 12) on this machine, for the tests and for trying
# `snakemake --profile profiles/slurm` without a cluster.
#
#   scripts/slurm-local.sh start    install (first time), configure, start munged, slurmctld, slurmd
#   scripts/slurm-local.sh status   daemons, node, partitions, queue; exit 0 only when ready
#   scripts/slurm-local.sh stop     cancel the queue, stop the daemons by the PIDs recorded at start
#   scripts/slurm-local.sh install  only the packages (nothing is started)
#   scripts/slurm-local.sh env      prints `export SLURM_CONF=... PATH=...`: eval it in the
#                                   shell that runs sbatch/squeue/snakemake against this cluster
#
# Self-contained: its slurm.conf, gres.conf, munge key and socket, spool, logs and PIDs all live
# in the state directory ($SEQLAB_SLURM_STATE, default /var/lib/seqlab-slurm), and it listens
# on its own ports ($SEQLAB_SLURM_PORT and the next one, default 6917/6918; a system Slurm uses
# 6817/6818). So it runs beside a system Slurm and its munged and never reads or writes
# /etc/slurm or /etc/munge; clients find it only through SLURM_CONF=$STATE/etc/slurm.conf.
# One exception needs a shim: snakemake-executor-plugin-slurm-jobstep (0.6) removes every
# SLURM_* variable, SLURM_CONF included, from the environment of the `srun` it starts inside
# a job, so `env` also puts $STATE/bin first on PATH, where an `srun` sets SLURM_CONF again.
#
# Needs root (packages, munge). Every step is idempotent: `start` on a running cluster reports
# it and does nothing; `stop` on a stopped one too.
#
# Why it looks the way it does (facts from trials on these machines):
# - no systemd: the daemons run in the foreground (-D / -F) under setsid, and their PIDs are
#   recorded in $STATE/pids; `stop` signals only those PIDs (checked against the executable
#   and start time recorded with them), never a process name;
# - a policy-rc.d keeps the Debian packages from starting services while they install;
# - SlurmctldHost must equal `hostname -s`; the node line is copied from `slurmd -C`;
# - proctrack/linuxproc + task/none: no cgroups needed (containers, no systemd);
# - fake GPUs: gres whose File= is a character device (mknod c 1 3, i.e. /dev/null's numbers);
#   plain files are refused by slurmd. A job with --gpus=1 gets CUDA_VISIBLE_DEVICES=0;
# - no slurmdbd: `sacct` fails, so the snakemake plugin must poll with `squeue`, which only
#   sees a finished job for MinJobAge seconds; MinJobAge=600 is > 3x the plugin's poll
#   interval (profile: 10 s initial, at most 180 s) so no finished job is ever missed;
# - two partitions: `main` (default, PreemptMode=REQUEUE) and `urgent` (higher PriorityTier):
#   a job there preempts jobs in `main`, which Slurm requeues (held ~2 min by BeginTime).
set -euo pipefail

STATE=${SEQLAB_SLURM_STATE:-/var/lib/seqlab-slurm}
CONF_DIR=$STATE/etc                     # gres.conf is read from slurm.conf's directory
CONF=$CONF_DIR/slurm.conf
MUNGE=$STATE/munge                      # key, socket, pid, log and seed of our own munged
PORT=${SEQLAB_SLURM_PORT:-6917}         # slurmctld; slurmd listens on PORT+1
export SLURM_CONF=$CONF                 # for every Slurm command below (sinfo, scontrol, ...)
MARKER="# written by seqlab scripts/slurm-local.sh"
N_GPUS=${SEQLAB_SLURM_GPUS:-3}          # the hand-run study's 3 GPUs, as fake gres devices
# CPUs the node offers (oversubscribing a small machine): a packed job of 4 one-CPU trials
# (experiment key `pack`) asks for 4 CPUs, which a 2-core test machine must still accept.
N_CPUS=${SEQLAB_SLURM_CPUS:-8}
# GraceTime of the preemptible partition. 0: a preempted job gets SIGTERM, KillWait (10 s) to
# checkpoint, and is requeued by Slurm whatever its exit status. With a grace time, a job that
# exits within it (the trainer exits 75 once checkpointed) ends FAILED instead, and it is
# Snakemake's retry that resubmits it - also correct, but not what we want to test here.
GRACE=${SEQLAB_SLURM_GRACE:-0}
PACKAGES=(slurm-wlm slurmctld slurmd slurm-client munge)
DAEMONS=(munged slurmctld slurmd)        # start order; stop goes in reverse

die() { echo "slurm-local: error: $*" >&2; exit 1; }
say() { echo "slurm-local: $*"; }

need_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (installs packages, runs munged and the Slurm daemons)"
}

# ---------------------------------------------------------------- packages
install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian 12"
  say "installing ${missing[*]}"
  # policy-rc.d exit 101 = "action forbidden": the packages' postinst scripts must not try to
  # start daemons (there is no systemd here, and we run them ourselves below).
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  local rc=0
  if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    apt-get update -q || rc=$?
  fi
  ((rc == 0)) && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}" || rc=$?; }
  ((created_policy)) && rm -f "$policy"
  ((rc == 0)) || die "apt-get failed (rc $rc); run 'apt-get update' and retry"
}

# ---------------------------------------------------------------- configuration
write_munge_key() {
  # Our own key and socket directory: munged insists that its user owns them, that the key is
  # 0400 and that everyone may traverse the socket's directory (0755).
  install -d -o munge -g munge -m 755 "$MUNGE"
  if [[ ! -s $MUNGE/munge.key ]]; then
    say "creating $MUNGE/munge.key"
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile="$MUNGE/munge.key"
    else
      dd if=/dev/urandom of="$MUNGE/munge.key" bs=1024 count=1 status=none
    fi
  fi
  chown munge:munge "$MUNGE/munge.key"
  chmod 400 "$MUNGE/munge.key"
}

write_srun_shim() { # see the header: srun inside jobs must still find this cluster
  install -d "$STATE/bin"
  local real="" candidate
  for candidate in $(type -ap srun); do # the real srun, not a shim (of this or another state)
    grep -qF "$MARKER" "$candidate" 2>/dev/null || { real=$candidate && break; }
  done
  [[ -n $real ]] || die "srun not found (slurm-client)"
  printf '#!/bin/sh\n%s\nSLURM_CONF=%s exec %s "$@"\n' "$MARKER" "$CONF" "$real" \
    >"$STATE/bin/srun"
  chmod 755 "$STATE/bin/srun"
}

make_fake_gpus() {
  install -d "$STATE/dev"
  local i
  for ((i = 0; i < N_GPUS; i++)); do
    # slurmd accepts only device files as gres File=; 1,3 are /dev/null's numbers (harmless).
    [[ -c $STATE/dev/gpu$i ]] || { rm -f "$STATE/dev/gpu$i"; mknod "$STATE/dev/gpu$i" c 1 3; }
  done
}

write_config() {
  local host node
  host=$(hostname -s)
  # `slurmd -C` prints this machine's real node line; keep its memory, name the node after
  # the host and give it N_CPUS CPUs (SlurmdParameters=config_overrides lets slurmd accept
  # more than the hardware has).
  node=$(slurmd -C | head -n1) || die "'slurmd -C' failed"
  [[ $node =~ RealMemory=([0-9]+) ]] || die "unexpected 'slurmd -C' output: $node"
  node="NodeName=$host CPUs=$N_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$N_CPUS"
  node+=" ThreadsPerCore=1 RealMemory=${BASH_REMATCH[1]}"
  install -d "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$STATE/log" "$STATE/pids"
  local tmp=$CONF.tmp
  cat >"$tmp" <<EOF
$MARKER -- regenerated on every start; edit the script, not this file.
ClusterName=seqlab
SlurmctldHost=$host
# root runs everything: a one-user test cluster, no permissions to get wrong.
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# our munged, not the system's (auth and cred plugins both read socket= from here)
AuthInfo=socket=$MUNGE/munge.socket
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pidfile
SlurmdPidFile=$STATE/slurmd.pidfile
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# no cgroups in containers / without systemd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
# squeue (the plugin's status command here) must still list a finished job at the next poll
MinJobAge=600
KillWait=10
# preemption: a job in a higher PriorityTier partition requeues jobs of a lower one
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
JobRequeue=1
$node Gres=gpu:$N_GPUS State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=$GRACE
PartitionName=urgent Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
  mv "$tmp" "$CONF"
  {
    echo "$MARKER"
    echo "AutoDetect=off"
    echo "NodeName=$host Name=gpu File=$STATE/dev/gpu[0-$((N_GPUS - 1))]"
  } >"$CONF_DIR/gres.conf"
}

# ---------------------------------------------------------------- processes by PID
# A record is "PID STARTTIME EXE": the start time (field 22 of /proc/PID/stat) guards
# against a recycled PID, the resolved executable (Debian's slurmd is an alternatives link
# to slurmd-wlm) against a record pointing at some other program.
proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

recorded_alive() { # name -> 0 if the recorded process still runs
  local f=$STATE/pids/$1 pid start exe
  [[ -s $f ]] || return 1
  read -r pid start exe <"$f"
  [[ -d /proc/$pid && $(proc_start "$pid") == "$start" ]] || return 1
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$exe" ]]
}

recorded_pid() { awk '{print $1}' "$STATE/pids/$1"; }

launch() { # name, daemon binary, command... : start in its own session, record its PID
  local name=$1 exe
  exe=$(readlink -f "$2") || die "$2 not found"
  shift 2
  local log=$STATE/log/$name.out pidfile=$STATE/pids/$name.launch
  rm -f "$pidfile"
  # The inner shell records its own PID and then execs the daemon, so the PID is the daemon's.
  # setsid detaches it from this shell's session: it survives the caller and ignores its ^C.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
  local i pid=""
  for ((i = 0; i < 50; i++)); do
    [[ -s $pidfile ]] && pid=$(<"$pidfile") \
      && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$exe" ]] && break
    sleep 0.1
  done
  [[ -n $pid && $(readlink "/proc/$pid/exe" 2>/dev/null) == "$exe" ]] \
    || die "$name did not start; see $log"
  echo "$pid $(proc_start "$pid") $exe" >"$STATE/pids/$name"
  rm -f "$pidfile"
}

wait_for() { # seconds, description, command... : poll until the command succeeds
  local secs=$1 what=$2
  shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.5
  done
  echo "slurm-local: $what ok"
}

node_ready() { # the node is up (idle, mixed or allocated), not down/drained/unknown
  sinfo -h -N -o '%T' | grep -Eq '^(idle|mixed|allocated)'
}

# ---------------------------------------------------------------- commands
start() {
  need_root
  install_packages
  # 0755: munged (user munge) must reach $MUNGE inside it
  install -d -m 755 "$STATE" "$STATE/pids" "$STATE/log"
  write_srun_shim
  local all=1 d
  for d in "${DAEMONS[@]}"; do recorded_alive "$d" || all=0; done
  if ((all)); then
    say "already running (state in $STATE)"
    status
    return
  fi
  write_munge_key
  make_fake_gpus
  write_config
  if ! recorded_alive munged; then
    # munged refuses to run as root; setpriv execs (no extra process), keeping the PID ours.
    launch munged /usr/sbin/munged setpriv --reuid=munge --regid=munge --init-groups \
      /usr/sbin/munged -F --socket="$MUNGE/munge.socket" --key-file="$MUNGE/munge.key" \
      --pid-file="$MUNGE/munged.pid" --log-file="$MUNGE/munged.log" \
      --seed-file="$MUNGE/munged.seed"
  fi
  wait_for 15 "munge" munge --socket="$MUNGE/munge.socket" -n \
    || die "munged is not answering; see $STATE/log/munged.out and $MUNGE/munged.log"
  # -i: ignore saved state that no longer matches the config; -D: foreground
  recorded_alive slurmctld || launch slurmctld /usr/sbin/slurmctld /usr/sbin/slurmctld -D -i
  wait_for 30 "slurmctld" scontrol ping || die "slurmctld is not answering; see $STATE/log/"
  recorded_alive slurmd || launch slurmd /usr/sbin/slurmd /usr/sbin/slurmd -D
  if ! wait_for 60 "node $(hostname -s)" node_ready; then
    sinfo -N -l >&2 || true
    die "the node did not come up; see $STATE/log/slurmd.log and slurmctld.log"
  fi
  # A node that was DOWN from an earlier unclean stop comes back with ReturnToService=2,
  # but clear a leftover drain reason explicitly.
  scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
  say "ready: partitions main (default, preemptible) and urgent; $N_GPUS fake GPUs"
  say "clients need: export SLURM_CONF=$CONF PATH=$STATE/bin:\$PATH (eval \"\$($0 env)\")"
}

stop_pid() { # name : TERM, wait, then KILL - only the recorded process
  local name=$1 pid i
  if ! recorded_alive "$name"; then
    rm -f "$STATE/pids/$name"
    return
  fi
  pid=$(recorded_pid "$name")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    recorded_alive "$name" || break
    sleep 0.1
  done
  if recorded_alive "$name"; then
    say "$name ($pid) ignored SIGTERM for 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$STATE/pids/$name"
  say "stopped $name ($pid)"
}

stop() {
  need_root
  [[ -d $STATE/pids ]] || { say "not running (no $STATE/pids)"; return; }
  if recorded_alive slurmctld; then
    # Cancel what is queued or running so that no slurmstepd (started by slurmd, not by us)
    # outlives the cluster; wait a bounded time for the jobs to end.
    local jobs
    jobs=$(timeout 10 squeue -h -o '%i' 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      say "cancelling jobs: $(echo "$jobs" | tr '\n' ' ')"
      # shellcheck disable=SC2086 # one word per job id
      timeout 10 scancel $jobs || true
      wait_for 30 "queue drained" bash -c '[[ -z $(squeue -h -t R,CG -o %i) ]]' \
        || say "warning: some jobs were still ending after 30 s"
    fi
  fi
  local i
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop_pid "${DAEMONS[i]}"; done
}

status() {
  local d rc=0
  for d in "${DAEMONS[@]}"; do
    if recorded_alive "$d"; then
      echo "$d: running (pid $(recorded_pid "$d"))"
    else
      echo "$d: not running"
      rc=1
    fi
  done
  if ((rc == 0)); then
    sinfo -o '%P %a %l %D %T %G' || rc=1
    squeue -o '%i %P %j %T %M %R' || rc=1
    node_ready || rc=1
  fi
  return $rc
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  install) need_root && install_packages ;;
  env) printf 'export SLURM_CONF=%s\nexport PATH=%s:$PATH\n' "$CONF" "$STATE/bin" ;;
  *)
    echo "usage: $0 start|stop|status|install|env   (state: $STATE, config: $CONF)" >&2
    exit 2
    ;;
esac
