#!/usr/bin/env bash
# A throwaway 3-node MariaDB Galera cluster on loopback for the automated
# cluster test: CI brings it up, breaks it (kill/start) and takes it down.
# Needs Debian's mariadb-server, galera-4 and rsync. Never touches the server
# on 3306 or /var/lib/mysql.
#
#   bash tests/cluster/galera.sh up           fresh cluster (a leftover one is taken down first);
#                                             one retry on failure, then the error logs' tails
#   bash tests/cluster/galera.sh down         SIGKILL every node of the cluster, remove the base dir
#   bash tests/cluster/galera.sh status       pid, size, state and status per node
#   bash tests/cluster/galera.sh kill N       SIGKILL node N (a crash), N in 1..3; the
#                                             survivors evict it in ~1-1.5 s (writes stall meanwhile)
#   bash tests/cluster/galera.sh start N      restart a stopped/killed node N, which recovers its
#                                             position and catches up by IST; waits until
#                                             it is Synced and the cluster size is 3
#   bash tests/cluster/galera.sh wait-size K [SECONDS]
#                                             wait until every running node reports
#                                             wsrep_cluster_size=K, Synced and Primary
#
# Node N: SQL 127.0.0.1:331N (root, empty password, database `test`), group
# (gcomm) 457N, IST 458N, SST (rsync) 459N; files under $BASE/nN. The ports are
# fixed, so one cluster per machine.
#   mariadb --no-defaults -uroot -h127.0.0.1 -P3311 test
#
# Environment: GALERA_BASE (default /tmp/session-galera), GALERA_TIMEOUT
# (seconds one node may take to become Synced, default 120), GALERA_USER (OS
# user of the servers, default mysql).
set -euo pipefail

SELF=$(readlink -f "$0")
BASE=${GALERA_BASE:-/tmp/session-galera}
TIMEOUT=${GALERA_TIMEOUT:-120}
PROVIDER=/usr/lib/galera/libgalera_smm.so
# Not root: the rsync SST daemon started by a root server drops to `nobody` for
# its module, which then cannot read the 0700 datadir ("rsync: [Receiver]
# ERROR: cannot stat destination "." (in rsync_sst): Permission denied") and
# the joiner aborts. mariadbd switches to this user itself.
RUN_USER=${GALERA_USER:-mysql}
# `down` only deletes a directory holding this file, which `up` writes.
MARKER=.session-galera-cluster
# Fast crash detection, so a killed node is evicted in ~1-2 s instead of the
# default suspect_timeout of 5 s (and inactive_timeout of 15 s), during which
# every commit on the survivors stalls (measured: 1.1-1.4 s with these values,
# 1.6-2.1 s with the default inactive_check_period of PT0.5S, which is how often
# silence is checked for). Galera checks the ranges and aborts at startup
# otherwise: inactive_check_period <= suspect_timeout/2, keepalive_period < suspect_timeout/3 (else
# "value PT1S is out of range [PT0.1S,PT0.333333S)"), install_timeout in
# [2*keepalive_period, inactive_timeout].
# join_retrans_period is not range-checked against suspect_timeout, but must be
# well below it: while a view is being formed (a node joins or leaves) the
# nodes exchange only join messages, every join_retrans_period (default 1 s).
# With suspect_timeout=1 s and that default, n1 and n2 suspected each other
# while n3 joined ("suspecting node", "install timer expired", views
# NON_PRIM, then "re-bootstrapping prim"): 3 `up`s in 12 took 4-17 s longer.
EVS="evs.inactive_check_period=PT0.2S;evs.keepalive_period=PT0.3S;evs.join_retrans_period=PT0.3S;evs.suspect_timeout=PT1S;evs.inactive_timeout=PT3S;evs.install_timeout=PT3S"

die() { echo "galera.sh: $*" >&2; exit 1; }
note() { echo "galera.sh: $*" >&2; }
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

check_node() { case "${1:-}" in 1|2|3) ;; *) die "node must be 1, 2 or 3 (got '${1:-}')" ;; esac; }

# `down` runs rm -rf on $BASE: insist on a plain absolute path below a directory.
case "$BASE" in
  /*/*) ;;
  *) die "GALERA_BASE must be an absolute path at least two levels deep (got '$BASE')" ;;
esac
BASE=${BASE%/}

# q N ARGS...: the client on node N over TCP, no option files read.
q() { local n=$1; shift; mariadb --no-defaults -uroot -h127.0.0.1 -P$((3310 + n)) --connect-timeout=2 "$@"; }
# wsrep status variables of node N as "name value" lines (empty if it does not answer).
wsrep_status() {
  q "$1" -N -B -e "SHOW STATUS WHERE Variable_name IN
    ('wsrep_cluster_size','wsrep_local_state_comment','wsrep_cluster_status','wsrep_ready')" 2>/dev/null || true
}
field() { awk -v k="$1" '$1 == k { print $2 }'; }

# pid of node N if it is running: the recorded pid, checked to still be our
# mariadbd (a recycled pid, or the 3306 server, must never be signalled).
node_pid() {
  local f=$BASE/n$1.pid pid args
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = mariadbd ] || return 0
  args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
  case "$args" in *"--defaults-file=$BASE/n$1/my.cnf"*) echo "$pid" ;; esac
}
alive() { [ -n "$(node_pid "$1")" ]; }

config() {
  local n=$1 d=$BASE/n$1
  cat >"$d/my.cnf" <<CNF
[mysqld]
user = $RUN_USER
datadir = $d/data
socket = $BASE/n$n.sock
port = $((3310 + n))
bind-address = 127.0.0.1
pid-file = $d/mariadbd.pid
log-error = $d/error.log
skip-name-resolve
# the Debian server on 3306 uses these; the compiled-in default is latin1
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
# three servers on a small CI machine: small buffers, no per-commit fsync
performance_schema = OFF
innodb_buffer_pool_size = 32M
innodb_log_file_size = 16M
innodb_flush_log_at_trx_commit = 2
max_connections = 100
# Galera requirements
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = $PROVIDER
wsrep_cluster_name = session_galera
wsrep_cluster_address = gcomm://127.0.0.1:4571,127.0.0.1:4572,127.0.0.1:4573
wsrep_node_name = n$n
wsrep_node_address = 127.0.0.1
wsrep_node_incoming_address = 127.0.0.1:$((3310 + n))
wsrep_provider_options = "base_host=127.0.0.1;base_port=$((4570 + n));gmcast.listen_addr=tcp://127.0.0.1:$((4570 + n));ist.recv_addr=127.0.0.1:$((4580 + n));gcache.size=32M;$EVS"
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:$((4590 + n))
CNF
}

# launch N [ARGS...]: start node N in its own session, hence its own process
# group, which its SST helpers (wsrep_sst_rsync, rsync) join: `kill` and
# `down` signal the whole group so no helper outlives its server.
launch() {
  local n=$1 pid; shift
  setsid nohup mariadbd --defaults-file="$BASE/n$n/my.cnf" "$@" >>"$BASE/n$n/stdout.log" 2>&1 </dev/null &
  pid=$!
  disown "$pid"   # no "Killed ..." job report from this shell when `kill` ends it
  echo "$pid" >"$BASE/n$n.pid"
  # $! is a forked bash that execs setsid, then nohup, then mariadbd: until
  # the last exec, node_pid does not recognise it and the node would look
  # dead (under CPU load this takes long enough to fail a join).
  for _ in $(seq 1 200); do
    alive "$n" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  alive "$n" || { cat "$BASE/n$n/stdout.log" >&2 || true; die "node $n: mariadbd did not start (log: $BASE/n$n/stdout.log)"; }
}

# wait_node N SIZE: until node N answers Synced, Primary and cluster size SIZE,
# and every other running node is Synced too (a donor is Donor/Desynced for a
# moment after the joiner's SST: the next joiner must not ask it yet).
wait_node() {
  local n=$1 want=$2 t0 s st sz cs m ok
  t0=$(now)
  while :; do
    alive "$n" || { tail -n 30 "$BASE/n$n/error.log" >&2 || true; die "node $n exited while joining (log: $BASE/n$n/error.log)"; }
    s=$(wsrep_status "$n")
    st=$(field wsrep_local_state_comment <<<"$s"); sz=$(field wsrep_cluster_size <<<"$s"); cs=$(field wsrep_cluster_status <<<"$s")
    if [ "$st" = Synced ] && [ "$sz" = "$want" ] && [ "$cs" = Primary ]; then
      ok=1
      for m in 1 2 3; do
        [ "$m" = "$n" ] || ! alive "$m" || [ "$(wsrep_status "$m" | field wsrep_local_state_comment)" = Synced ] || ok=0
      done
      [ "$ok" = 0 ] || return 0
    fi
    awk -v t="$(since "$t0")" -v m="$TIMEOUT" 'BEGIN { exit !(t < m) }' \
      || die "node $n not Synced with cluster size $want after ${TIMEOUT}s (state='$st' size='$sz' status='$cs'; log: $BASE/n$n/error.log)"
    sleep 0.2
  done
}

# Every process of the cluster under $BASE: the recorded nodes' process groups
# (mariadbd and its SST helpers), a mariadbd started with one of our my.cnf
# whose pid file is gone, and an SST helper (wsrep_sst_rsync, rsync) working
# in $BASE that outlived its server.
cluster_pids() {
  local n pid procs groups=""
  for n in 1 2 3; do pid=$(node_pid "$n"); [ -z "$pid" ] || groups="$groups $pid"; done
  # ps first, awk after: awk's own command line names $BASE and would match
  procs=$(ps -eo pid=,pgid=,args=)
  awk -v groups="$groups" -v base="$BASE/" '
    BEGIN { split(groups, g, " "); for (i in g) want[g[i]] = 1 }
    ($2 in want) || index($0, "--defaults-file=" base) || (index($0, base) && /rsync/) { print $1 }' <<<"$procs"
}

# kill_all: SIGKILL every process of the cluster, keep the files.
kill_all() {
  local pids p left
  pids=$(cluster_pids)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -s KILL $pids 2>/dev/null || true
  for _ in $(seq 1 100); do
    left=""
    for p in $pids; do ! kill -0 "$p" 2>/dev/null || left="$left $p"; done
    [ -n "$left" ] || return 0
    sleep 0.1
  done
  die "processes still alive 10 s after SIGKILL:$left"
}

cmd_down() {
  local t0
  t0=$(now)
  # SIGKILL, not a clean shutdown: the data is thrown away, a Galera node's
  # SIGTERM shutdown takes ~2 s per node (longer when the others leave at the
  # same time) and can hang on a node that is mid-SST or non-Primary.
  kill_all
  if [ -e "$BASE" ]; then
    # ours: the marker, or a cluster left by the older bench/galera/cluster.sh
    [ -e "$BASE/$MARKER" ] || grep -qs '^wsrep_cluster_name = session_galera$' "$BASE/n1/my.cnf" \
      || die "$BASE exists but was not made by this script (no $MARKER): not removing it"
    rm -rf "$BASE"
  fi
  echo "galera down in $(since "$t0")s"
}

ports_free() {
  local n p
  for n in 1 2 3; do
    for p in $((3310 + n)) $((4570 + n)) $((4580 + n)) $((4590 + n)); do
      [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] || die "port $p is in use by another program: $(ss -Hltnp "sport = :$p" | head -1)"
    done
  done
}

# One attempt, run as a child process so that `up` can catch its failure:
# set -e does not apply to a function called from an `if` in the same shell.
cmd_up_once() {
  local t0 n
  t0=$(now)
  ports_free
  mkdir -p "$BASE/n1" "$BASE/n2" "$BASE/n3"
  : >"$BASE/$MARKER"
  mariadb-install-db --no-defaults --datadir="$BASE/n1/data" --user="$RUN_USER" \
    --auth-root-authentication-method=normal --skip-test-db >"$BASE/n1/install.log" 2>&1 \
    || { tail -n 20 "$BASE/n1/install.log" >&2; die "mariadb-install-db failed ($BASE/n1/install.log)"; }
  # n2 and n3 start empty: rsync SST copies n1's whole datadir into them.
  mkdir -p "$BASE/n2/data" "$BASE/n3/data"
  for n in 1 2 3; do config "$n"; done
  chown -R "$RUN_USER": "$BASE"
  launch 1 --wsrep-new-cluster
  wait_node 1 1
  echo "n1 bootstrapped ($(since "$t0")s)"
  # install-db made root@127.0.0.1 with no password already; this is a guard.
  # Both statements replicate to the joiners with the SST.
  mariadb --no-defaults -uroot -S "$BASE/n1.sock" -e \
    "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
     GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
     CREATE DATABASE IF NOT EXISTS test;" || die "could not create root@127.0.0.1 and database test on n1"
  # one joiner at a time: n1 is the only donor and serves one SST at a time
  for n in 2 3; do
    launch "$n"; wait_node "$n" "$n"
    echo "n$n joined ($(since "$t0")s)"
  done
  for n in 1 2; do wait_node "$n" 3; done
  echo "galera up in $(since "$t0")s: 127.0.0.1 ports 3311 3312 3313"
}

error_tails() {
  local n
  ls "$BASE"/n?/error.log >/dev/null 2>&1 || { note "no error log was written (under $BASE)"; return 0; }
  for n in 1 2 3; do
    [ -f "$BASE/n$n/error.log" ] || continue
    echo "---- $BASE/n$n/error.log: errors" >&2
    grep -E '\[ERROR\]|WSREP_SST: \[ERROR\]|install timer expired|failed to commit|suspecting node' "$BASE/n$n/error.log" | tail -n 10 >&2 || true
    echo "---- $BASE/n$n/error.log: last 25 lines" >&2
    tail -n 25 "$BASE/n$n/error.log" >&2
  done
}

cmd_up() {
  [ -r "$PROVIDER" ] || die "no Galera provider at $PROVIDER: apt-get install galera-4"
  command -v mariadbd >/dev/null || die "mariadbd not found: apt-get install mariadb-server"
  command -v rsync >/dev/null || die "rsync is needed for SST: apt-get install rsync"
  id "$RUN_USER" >/dev/null 2>&1 || die "OS user '$RUN_USER' is missing (set GALERA_USER)"
  local t0 attempt
  t0=$(now)
  if [ -e "$BASE" ] || [ -n "$(cluster_pids)" ]; then
    note "a previous cluster is left over under $BASE: taking it down"
    cmd_down >/dev/null
  fi
  # a busy port is no flake: fail at once
  ports_free
  # Retry once against flakes, after printing what the failed attempt logged.
  # Two were found and fixed (see launch and join_retrans_period above): a
  # joiner declared dead while it was still exec'ing mariadbd, and a
  # transient partition while the third node joined. Other causes of a node
  # not becoming Synced (slow CI machine, SST hiccup) get the same treatment.
  for attempt in 1 2; do
    if "$BASH" "$SELF" _up_once; then
      [ "$attempt" = 1 ] || note "up succeeded on the second attempt"
      echo "galera up (total ${attempt} attempt(s)) in $(since "$t0")s"
      return 0
    fi
    error_tails
    if [ "$attempt" = 1 ]; then
      note "up failed (attempt 1 of 2, logs above): taking it down and trying once more"
      cmd_down >/dev/null
    fi
  done
  kill_all
  die "up failed twice; the error logs' tails are above (files kept in $BASE, '$0 down' removes them)"
}

cmd_status() {
  local n s pid
  printf '%-4s %-8s %-6s %-5s %-14s %s\n' node pid port size state status
  for n in 1 2 3; do
    pid=$(node_pid "$n")
    if [ -n "$pid" ]; then
      s=$(wsrep_status "$n")
      printf '%-4s %-8s %-6s %-5s %-14s %s\n' "n$n" "$pid" $((3310 + n)) "$(field wsrep_cluster_size <<<"$s")" \
        "$(field wsrep_local_state_comment <<<"$s" | grep . || echo no-answer)" "$(field wsrep_cluster_status <<<"$s")"
    else
      printf '%-4s %-8s %-6s %-5s %-14s %s\n' "n$n" - $((3310 + n)) - down -
    fi
  done
}

cmd_kill() {
  check_node "${1:-}"
  local n=$1 pid
  pid=$(node_pid "$n")
  [ -n "$pid" ] || die "node $n is not running"
  # the whole process group: an SST helper must not outlive its server
  kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  echo "node $n (pid $pid) killed"
}

# wait-size K [SECONDS]: every running node reports size K, Synced, Primary.
cmd_wait_size() {
  local k=${1:-} limit=${2:-$TIMEOUT} t0 n s ok running
  case "$k" in 1|2|3) ;; *) die "wait-size needs a cluster size 1..3 (got '$k')" ;; esac
  case "$limit" in ''|*[!0-9.]*) die "wait-size: SECONDS must be a number (got '$limit')" ;; esac
  t0=$(now)
  while :; do
    ok=1; running=0; s=""
    for n in 1 2 3; do
      alive "$n" || continue
      running=$((running + 1))
      s=$(wsrep_status "$n")
      [ "$(field wsrep_cluster_size <<<"$s")" = "$k" ] && [ "$(field wsrep_local_state_comment <<<"$s")" = Synced ] \
        && [ "$(field wsrep_cluster_status <<<"$s")" = Primary ] || { ok=0; break; }
    done
    [ "$running" -gt 0 ] || die "no node is running"
    if [ "$ok" = 1 ]; then echo "cluster size $k reached in $(since "$t0")s"; return 0; fi
    awk -v t="$(since "$t0")" -v m="$limit" 'BEGIN { exit !(t < m) }' || { cmd_status >&2; die "cluster size $k not reached within ${limit}s"; }
    sleep 0.1
  done
}

cmd_start() {
  check_node "${1:-}"
  local n=$1 m others=0 t0 sz
  [ -f "$BASE/n$n/my.cnf" ] || die "no config for node $n: run '$0 up' first"
  ! alive "$n" || die "node $n is already running (pid $(node_pid "$n"))"
  for m in 1 2 3; do [ "$m" = "$n" ] || ! alive "$m" || others=$((others + 1)); done
  # Restarting the whole cluster would need a bootstrap from the most advanced
  # node: not this script's job (use down + up).
  [ "$others" -gt 0 ] || die "no other node is running: use '$0 down' and '$0 up'"
  t0=$(now)
  # A node that comes back while the group still counts its dead incarnation
  # joins more slowly: wait until the others have evicted it (~1-2 s).
  while :; do
    sz=""
    for m in 1 2 3; do
      [ "$m" = "$n" ] || ! alive "$m" || { sz=$(wsrep_status "$m" | field wsrep_cluster_size); [ -z "$sz" ] || break; }
    done
    [ "$sz" != "$others" ] || break
    awk -v t="$(since "$t0")" -v m="$TIMEOUT" 'BEGIN { exit !(t < m) }' \
      || die "the running nodes still report cluster size '$sz' after ${TIMEOUT}s, expected $others"
    sleep 0.1
  done
  # After a SIGKILL grastate.dat says seqno -1 ("position unknown"), and a
  # node started like that asks for a full SST (rsync: ~4 s, and the donor
  # holds FLUSH TABLES WITH READ LOCK meanwhile, stalling its writes). As
  # galera_recovery does for systemd, read the last committed position from
  # InnoDB with --wsrep-recover and pass it on, so the node catches up by IST.
  local pos="" from log how=unknown
  if grep -q '^seqno: *-1' "$BASE/n$n/data/grastate.dat" 2>/dev/null; then
    mariadbd --defaults-file="$BASE/n$n/my.cnf" --wsrep-recover --log-error="$BASE/n$n/recover.log" \
      >>"$BASE/n$n/stdout.log" 2>&1 </dev/null || true
    pos=$(sed -n 's/.*WSREP: Recovered position: *\([0-9a-f-]*:-\{0,1\}[0-9]*\).*/\1/p' "$BASE/n$n/recover.log" 2>/dev/null | tail -n 1)
    [ -n "$pos" ] || note "node $n: no position recovered (see $BASE/n$n/recover.log): it will rejoin by SST"
  fi
  from=$(($(wc -l <"$BASE/n$n/error.log") + 1))
  launch "$n" ${pos:+--wsrep-start-position="$pos"}
  wait_node "$n" $((others + 1))
  # How it caught up, from this incarnation's part of the log.
  log=$(tail -n +"$from" "$BASE/n$n/error.log")
  # The server logs "SST received" for both; the rsync script tells them
  # apart. A full SST is followed by a short IST, so test for SST first.
  if grep -q 'rsync SST completed on joiner' <<<"$log"; then how=SST
  elif grep -q 'IST received' <<<"$log"; then how=IST
  fi
  echo "node $n rejoined ($how) in $(since "$t0")s: 127.0.0.1:$((3310 + n))"
}

case "${1:-}" in
  up) cmd_up ;;
  _up_once) cmd_up_once ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kill) cmd_kill "${2:-}" ;;
  start) cmd_start "${2:-}" ;;
  wait-size) cmd_wait_size "${2:-}" "${3:-}" ;;
  *) sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
