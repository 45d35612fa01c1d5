#!/usr/bin/env bash
# Bring up (and tear down) a real single-node SLURM cluster on this host, from
# Debian's packages, for CI and for trying `snakemake --profile slurm` locally.
#
#   local-slurm.sh install   apt-get install slurm + munge (+ slurmdbd, MariaDB)
#   local-slurm.sh start     write the configs, start the daemons, wait until a job runs
#   local-slurm.sh stop      stop every daemon started by `start` (by its pid file)
#   local-slurm.sh status    show what runs and what SLURM reports
#
# Needs root (the daemons run as root, munged as the munge user) and no systemd.
# Environment:
#   UCD_SLURM_ACCOUNTING  slurmdbd (default): slurmdbd + a private MariaDB so that
#                         `sacct` works as on a production cluster; none: no
#                         accounting (then run snakemake with --slurm-status-command squeue)
#   UCD_SLURM_DIR         state, logs and pid files (default /var/tmp/ucd-slurm)
#   UCD_SLURM_ACCOUNT     SLURM account created for the current user (default ucd)
#   UCD_SLURM_DB_PORT     loopback port of the private MariaDB (default 13306)
# Writes /etc/slurm/slurm.conf (and slurmdbd.conf), the default paths every SLURM
# client reads; refuses to overwrite such files that it did not write itself.
set -euo pipefail

ACCOUNTING=${UCD_SLURM_ACCOUNTING:-slurmdbd}
DIR=${UCD_SLURM_DIR:-/var/tmp/ucd-slurm}
ACCOUNT=${UCD_SLURM_ACCOUNT:-ucd}
DB_PORT=${UCD_SLURM_DB_PORT:-13306}
CLUSTER=ucd
EXTRA_PARTITION=ucdtest
CONF_DIR=/etc/slurm
MARKER="# written by ucd workflow/scripts/local-slurm.sh"
HOST=$(hostname -s)
# daemons in stop order; each has a pid file $DIR/run/NAME.pid
DAEMONS=(slurmd slurmctld slurmdbd mariadbd munged)

log() { printf '[local-slurm] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (it starts system daemons)"; }

check_accounting() {
    case $ACCOUNTING in
        slurmdbd | none) ;;
        *) die "UCD_SLURM_ACCOUNTING must be 'slurmdbd' or 'none', got '$ACCOUNTING'" ;;
    esac
}

# start wipes DIR: make sure it is ours
check_dir() {
    [[ $DIR == /?*/?* ]] ||
        die "UCD_SLURM_DIR must be an absolute path at least two levels deep, got '$DIR'"
    if [[ -d $DIR && -n $(ls -A "$DIR") && ! -e $DIR/.ucd-local-slurm ]]; then
        die "UCD_SLURM_DIR $DIR is not empty and was not made by this script"
    fi
}

packages() {
    local pkgs=(munge slurmctld slurmd slurm-client)
    # the MariaDB server and client programs only, without the packaged system service
    [[ $ACCOUNTING == slurmdbd ]] && pkgs+=(slurmdbd mariadb-server-core mariadb-client-core)
    echo "${pkgs[@]}"
}

cmd_install() {
    need_root
    # A policy-rc.d that exits 101 keeps the packages' scripts from starting services.
    local policy=/usr/sbin/policy-rc.d saved=""
    if [[ -e $policy ]]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    local rc=0
    # shellcheck disable=SC2046
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $(packages) >/dev/null; } || rc=$?
    if [[ -n $saved ]]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
    [[ $rc -eq 0 ]] || die "apt-get install $(packages) failed (exit $rc)"
    log "installed: $(packages)"
}

# --- processes -------------------------------------------------------------

# alive PID: /proc/PID exists and is not a zombie (kill -0 succeeds on zombies)
alive() {
    local pid=$1 state
    [[ -r /proc/$pid/stat ]] || return 1
    state=$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z && $state != X ]]
}

pid_of() {
    local f=$DIR/run/$1.pid
    [[ -s $f ]] && tr -dc '0-9' <"$f"
}

stop_daemon() {
    local name=$1 pid i
    pid=$(pid_of "$name") || return 0
    [[ -n $pid ]] || return 0
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then
            log "$name ($pid) ignored SIGTERM for 10 s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    fi
    rm -f "$DIR/run/$name.pid"
    log "stopped $name"
}

cmd_stop() {
    need_root
    local d
    for d in "${DAEMONS[@]}"; do stop_daemon "$d"; done
}

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.5 s
wait_for() {
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs * 2; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    log "timed out after ${secs} s waiting for $what; last lines of the logs:"
    tail -n 20 "$DIR"/log/*.log >&2 2>/dev/null || true
    die "$what did not come up"
}

# --- configuration -----------------------------------------------------------

guard_conf() {
    local f=$1
    if [[ -e $f ]] && ! grep -qF "$MARKER" "$f"; then
        die "$f exists and was not written by this script; move it away first"
    fi
}

write_slurm_conf() {
    local node accounting_lines
    # slurmd -C prints this host's hardware as a NodeName line (CPUs, cores, memory).
    node=$(slurmd -C | head -n 1)
    [[ $node == NodeName=* ]] || die "'slurmd -C' gave no NodeName line: $node"
    if [[ $ACCOUNTING == slurmdbd ]]; then
        accounting_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
    else
        accounting_lines="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
    fi
    mkdir -p "$CONF_DIR"
    cat >"$CONF_DIR/slurm.conf" <<EOF
$MARKER
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default a job that asks for no memory would take the whole node
DefMemPerCPU=1000
SchedulerType=sched/backfill
ReturnToService=2
# squeue keeps finished jobs this long; the executor plugin's squeue mode needs
# at least 3x its first status delay
MinJobAge=300
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
$accounting_lines
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
# a second partition on the same node, so that a per-rule partition can be tested
PartitionName=$EXTRA_PARTITION Nodes=ALL Default=NO MaxTime=INFINITE State=UP
EOF
}

write_slurmdbd_conf() {
    cat >"$CONF_DIR/slurmdbd.conf" <<EOF
$MARKER
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$CONF_DIR/slurmdbd.conf"
}

# --- daemons -----------------------------------------------------------------

start_munge() {
    [[ -s /etc/munge/munge.key ]] || die "/etc/munge/munge.key is missing (reinstall munge)"
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged --force --pid-file="$DIR/run/munged.pid" \
        --log-file="$DIR/log/munged.log"
    wait_for 10 "munged" munge_works
}

mysql_q() { mariadb --protocol=tcp -h 127.0.0.1 -P "$DB_PORT" -u root "$@"; }

start_mariadb() {
    local data=$DIR/mysql
    # mariadb-server-core does not create the user the server runs as (mariadb-server does)
    id -u mysql >/dev/null 2>&1 || useradd --system --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin mysql
    install -d -o mysql -g mysql "$data"
    mariadb-install-db --no-defaults --user=mysql --datadir="$data" \
        --auth-root-authentication-method=normal \
        --skip-test-db >"$DIR/log/mariadb-install.log" 2>&1 ||
        die "mariadb-install-db failed, see $DIR/log/mariadb-install.log"
    # --no-defaults: ignore the system my.cnf, which may point at another server
    runuser -u mysql -- /usr/sbin/mariadbd --no-defaults --datadir="$data" \
        --bind-address=127.0.0.1 --port="$DB_PORT" --socket="$DIR/run/mysqld.sock" \
        --pid-file="$DIR/run/mariadbd.pid" --log-error="$DIR/log/mariadbd.log" \
        --innodb-buffer-pool-size=64M --skip-name-resolve </dev/null >/dev/null 2>&1 &
    disown
    wait_for 60 "MariaDB" mysql_q -e 'SELECT 1'
    mysql_q -e "CREATE DATABASE slurm_acct_db;
        CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
        CREATE USER 'slurm'@'localhost' IDENTIFIED BY 'slurm';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_slurmdbd() {
    /usr/sbin/slurmdbd
    wait_for 60 "slurmdbd" sacctmgr -n list cluster
    local user
    user=$(id -un)
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
    sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description=ucd-ci >/dev/null
    sacctmgr -i add user "$user" account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
    log "slurmdbd up; account '$ACCOUNT' created for user '$user'"
}

munge_works() { munge -n | unmunge; }
ctld_up() { scontrol ping | grep -q "is UP"; }
sacct_has_jobs() { [[ -n $(sacct -X -n -o JobID) ]]; }
# (sinfo prints the node once per partition)
node_idle() { [[ $(sinfo -h -N -n "$HOST" -o %t 2>/dev/null | sort -u) == idle ]]; }

cmd_start() {
    check_accounting
    check_dir
    need_root
    local t0=$SECONDS
    command -v slurmctld >/dev/null || die "slurmctld not found: run '$0 install' first"
    if [[ $ACCOUNTING == slurmdbd ]]; then
        if ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
            die "slurmdbd/mariadbd not found: run '$0 install' first"
        fi
    fi
    guard_conf "$CONF_DIR/slurm.conf"
    guard_conf "$CONF_DIR/slurmdbd.conf"
    cmd_stop
    # a clean slate every time: no jobs, records or database left from a killed run
    rm -rf "$DIR"
    mkdir -p "$DIR"/{run,log,ctld,d}
    touch "$DIR/.ucd-local-slurm"
    # munged (user munge) and mariadbd (user mysql) write pid files and logs here too
    chmod 755 "$DIR"
    chmod 1777 "$DIR/run" "$DIR/log"
    write_slurm_conf
    rm -f "$CONF_DIR/slurmdbd.conf"
    start_munge
    if [[ $ACCOUNTING == slurmdbd ]]; then
        write_slurmdbd_conf
        start_mariadb
        start_slurmdbd
    fi
    /usr/sbin/slurmctld -c
    wait_for 30 "slurmctld" ctld_up
    /usr/sbin/slurmd
    wait_for 60 "node $HOST to become idle" node_idle
    # the node accepting a job step is the real test (sinfo alone is not enough)
    timeout 60 srun -N1 -n1 -t 1 hostname >/dev/null || die "a test 'srun hostname' failed"
    if [[ $ACCOUNTING == slurmdbd ]]; then
        wait_for 30 "sacct to record the test job" sacct_has_jobs
    fi
    log "cluster '$CLUSTER' up on $HOST (accounting: $ACCOUNTING) in $((SECONDS - t0)) s"
}

cmd_status() {
    local d pid
    for d in "${DAEMONS[@]}"; do
        pid=$(pid_of "$d" || true)
        if [[ -n $pid ]] && alive "$pid"; then echo "$d: running (pid $pid)"; else echo "$d: -"; fi
    done
    sinfo 2>&1 || true
}

case ${1:-} in
    install) check_accounting; cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
