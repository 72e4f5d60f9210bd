#!/usr/bin/env bash
# A throwaway 3-node MariaDB Galera cluster on loopback, for the manual
# cluster checks in this folder (race.sh). Needs Debian's mariadb-server,
# galera-4 and rsync; never touches the server on 3306.
#
#   bash bench/galera/cluster.sh up       # nodes on 127.0.0.1:3311, 3312, 3313 (root, no password, db `test`)
#   bash bench/galera/cluster.sh status
#   bash bench/galera/cluster.sh down
#
# Node N: SQL 331N, group 457N, IST 458N, SST 459N; files under $BASE/nN.
set -euo pipefail

BASE=${GALERA_BASE:-/tmp/session-galera}
PROVIDER=/usr/lib/galera/libgalera_smm.so
RUN_USER=${GALERA_USER:-mysql}   # not root: rsync SST drops root to `nobody`
TIMEOUT=120

die() { echo "cluster.sh: $*" >&2; exit 1; }
q() { local n=$1; shift; mariadb --no-defaults -uroot -h127.0.0.1 -P$((3310 + n)) --connect-timeout=2 "$@"; }
state() { q "$1" -N -B -e "SHOW STATUS LIKE '$2'" 2>/dev/null | awk '{print $2}'; }

config() {
  local n=$1 d=$BASE/n$1
  cat > "$d/my.cnf" <<CNF
[mysqld]
user = $RUN_USER
datadir = $d/data
socket = $BASE/n$n.sock
port = $((3310 + n))
bind-address = 127.0.0.1
pid-file = $d/mariadbd.pid
log-error = $d/error.log
skip-name-resolve
performance_schema = OFF
innodb_buffer_pool_size = 64M
innodb_flush_log_at_trx_commit = 2
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = $PROVIDER
wsrep_cluster_name = session_galera
wsrep_cluster_address = gcomm://127.0.0.1:4571,127.0.0.1:4572,127.0.0.1:4573
wsrep_node_address = 127.0.0.1
wsrep_provider_options = "base_host=127.0.0.1;base_port=$((4570 + n));gmcast.listen_addr=tcp://127.0.0.1:$((4570 + n));ist.recv_addr=127.0.0.1:$((4580 + n));gcache.size=32M"
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:$((4590 + n))
CNF
}

start() {
  local n=$1; shift
  setsid nohup mariadbd --defaults-file="$BASE/n$n/my.cnf" "$@" >>"$BASE/n$n/stdout.log" 2>&1 </dev/null &
  echo $! > "$BASE/n$n.pid"
  local t0=$SECONDS
  until [ "$(state "$n" wsrep_local_state_comment)" = Synced ]; do
    kill -0 "$(cat "$BASE/n$n.pid")" 2>/dev/null || { tail -20 "$BASE/n$n/error.log" >&2; die "node $n died"; }
    [ $((SECONDS - t0)) -lt $TIMEOUT ] || die "node $n not Synced after ${TIMEOUT}s ($BASE/n$n/error.log)"
    sleep 0.5
  done
}

up() {
  [ -r "$PROVIDER" ] || die "no Galera provider: apt-get install galera-4"
  command -v rsync >/dev/null || die "rsync is needed for SST: apt-get install rsync"
  [ ! -e "$BASE" ] || die "$BASE exists: run 'down' first"
  mkdir -p "$BASE/n1"
  mariadb-install-db --no-defaults --datadir="$BASE/n1/data" --user="$RUN_USER" \
    --auth-root-authentication-method=normal --skip-test-db >"$BASE/n1/install.log" 2>&1 \
    || die "mariadb-install-db failed ($BASE/n1/install.log)"
  for n in 2 3; do mkdir -p "$BASE/n$n"; cp -a "$BASE/n1/data" "$BASE/n$n/data"; done
  for n in 1 2 3; do config "$n"; done
  chown -R "$RUN_USER": "$BASE"
  start 1 --wsrep-new-cluster
  mariadb --no-defaults -uroot -S "$BASE/n1.sock" -e \
    "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
     GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
     CREATE DATABASE IF NOT EXISTS test;"
  start 2
  start 3
  [ "$(state 1 wsrep_cluster_size)" = 3 ] || die "cluster size is not 3"
  echo "galera up: 127.0.0.1 ports 3311 3312 3313"
}

down() {
  for n in 3 2 1; do
    [ -s "$BASE/n$n.pid" ] || continue
    local pid; pid=$(cat "$BASE/n$n.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$BASE"
}

status() {
  for n in 1 2 3; do
    echo "n$n: size=$(state "$n" wsrep_cluster_size) state=$(state "$n" wsrep_local_state_comment)"
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status" ;;
esac
