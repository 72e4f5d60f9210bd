#!/usr/bin/env bash
# A six-node Redis Cluster on loopback (three primaries, one replica each),
# from Debian's redis-server and redis-cli. Never touches the server on 6379.
#
#   bash tests/cluster/redis-cluster.sh up [PORT]     a cluster on PORT..PORT+5 (default 7001);
#                                                     one already up and healthy there is kept
#   bash tests/cluster/redis-cluster.sh fresh [PORT]  a new cluster there (a leftover one is taken down)
#   bash tests/cluster/redis-cluster.sh down [PORT]   SIGKILL its nodes, remove its files
#   bash tests/cluster/redis-cluster.sh kill PORT     SIGKILL the node on PORT (a crash)
#   bash tests/cluster/redis-cluster.sh start PORT    start the node on PORT again (it rejoins
#                                                     with its nodes.conf, as a replica if it
#                                                     was failed over)
#   bash tests/cluster/redis-cluster.sh pause PORT    freeze the node on PORT (SIGSTOP): it neither
#                                                     answers nor replicates
#   bash tests/cluster/redis-cluster.sh resume PORT   let it run again (SIGCONT)
#   bash tests/cluster/redis-cluster.sh status [PORT] cluster_state and each node's role
#
# Nodes keep an append-only file (`appendonly yes`, `appendfsync always`), so
# a killed node restarts with what it acknowledged; `cluster-node-timeout` is
# 2 s, so a replica takes over a killed primary in about 3 s. Files under
# $REDIS_CLUSTER_BASE (default /tmp/session-redis-cluster)/PORT.
#   redis-cli -c -p 7001
set -euo pipefail

BASE=${REDIS_CLUSTER_BASE:-/tmp/session-redis-cluster}
TIMEOUT=${REDIS_CLUSTER_TIMEOUT:-60}

ports() { local p=$1; echo "$p $((p + 1)) $((p + 2)) $((p + 3)) $((p + 4)) $((p + 5))"; }

start_node() {
  local port=$1 dir="$BASE/$1"
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
    --cluster-node-timeout 2000 --appendonly yes --appendfsync always --save '' \
    --maxmemory-policy noeviction
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis node $port did not start; its log:" >&2
  tail -n 20 "$dir/redis.log" >&2 || true
  return 1
}

kill_node() {
  local port=$1 pidfile="$BASE/$1/redis.pid"
  if [ -f "$pidfile" ]; then
    kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
  # A node started by an earlier run without its pidfile.
  pkill -9 -f "redis-server 127.0.0.1:$port" 2>/dev/null || true
  for _ in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 || return 0
    sleep 0.1
  done
}

healthy() {
  local first=$1
  redis-cli -p "$first" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  [ "$(redis-cli -p "$first" cluster nodes 2>/dev/null | grep -c master)" -ge 3 ] || return 1
  for port in $(ports "$first"); do
    redis-cli -p "$port" ping >/dev/null 2>&1 || return 1
  done
}

wait_ok() {
  local first=$1
  for _ in $(seq 1 $((TIMEOUT * 10))); do
    if healthy "$first" && [ "$(redis-cli -p "$first" cluster info | grep '^cluster_known_nodes:' | tr -d '\r' | cut -d: -f2)" = 6 ]; then
      # Every node must agree, or a client may be sent to one that does not.
      local all=1
      for port in $(ports "$first"); do
        redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' || all=0
      done
      [ $all = 1 ] && return 0
    fi
    sleep 0.1
  done
  echo "the redis cluster on $first.. did not become healthy" >&2
  redis-cli -p "$first" cluster nodes >&2 || true
  return 1
}

down() {
  local first=$1
  for port in $(ports "$first"); do kill_node "$port"; done
  for port in $(ports "$first"); do rm -rf "${BASE:?}/$port"; done
}

fresh() {
  local first=$1 nodes=()
  down "$first"
  for port in $(ports "$first"); do
    start_node "$port"
    nodes+=("127.0.0.1:$port")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$BASE/create-$first.log" 2>&1 || {
    cat "$BASE/create-$first.log" >&2
    return 1
  }
  wait_ok "$first"
  # Replicas must have synced before a failover test relies on them.
  for _ in $(seq 1 $((TIMEOUT * 10))); do
    local synced=0
    for port in $(ports "$first"); do
      if redis-cli -p "$port" info replication | grep -q '^role:slave'; then
        redis-cli -p "$port" info replication | grep -q '^master_link_status:up' && synced=$((synced + 1))
      fi
    done
    [ $synced -ge 3 ] && return 0
    sleep 0.1
  done
  echo "the redis cluster's replicas did not sync" >&2
  return 1
}

cmd=${1:-}
case "$cmd" in
  up)
    first=${2:-7001}
    mkdir -p "$BASE"
    if healthy "$first"; then exit 0; fi
    fresh "$first"
    ;;
  fresh) mkdir -p "$BASE"; fresh "${2:-7001}" ;;
  down) down "${2:-7001}" ;;
  kill) kill_node "${2:?port}" ;;
  start) start_node "${2:?port}" ;;
  pause) kill -STOP "$(cat "$BASE/${2:?port}/redis.pid")" ;;
  resume) kill -CONT "$(cat "$BASE/${2:?port}/redis.pid")" ;;
  status)
    first=${2:-7001}
    redis-cli -p "$first" cluster info | grep cluster_state
    redis-cli -p "$first" cluster nodes
    ;;
  *)
    sed -n '2,20p' "$0" >&2
    exit 2
    ;;
esac
