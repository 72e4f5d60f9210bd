#!/usr/bin/env bash
# The MySQL store's write SQL on a 3-node Galera cluster: the store's field
# upsert (INSERT ... SELECT ... ON DUPLICATE KEY UPDATE) runs in a loop on
# node 2 while node 3 destroys the session; afterwards no node may hold the
# session or any of its fields (no resurrection across nodes).
#
#   bash tests/cluster/galera.sh up && bash bench/galera/race.sh; bash tests/cluster/galera.sh down
#
# Manual (CI runs the cluster test in session-rocket/tests/galera.rs instead;
# this script only checks the raw SQL). Results are recorded in BENCHMARKS.md.
set -u
here=$(cd "$(dirname "$0")" && pwd)
q() { mariadb --no-defaults -uroot -h127.0.0.1 -P$1 test -N -B -e "$2" 2>&1; }
sed -e 's/`sessions/`g_sessions/g; s/`session_fields/`g_session_fields/g' $here/../../session-core/src/store/mysql/schema.sql > /tmp/g_schema.sql
q 3311 "DROP TABLE IF EXISTS g_session_index; DROP TABLE IF EXISTS g_session_fields; DROP TABLE IF EXISTS g_sessions;"
mariadb --no-defaults -uroot -h127.0.0.1 -P3311 test < /tmp/g_schema.sql
errors=0; gone=0; saved=0
for round in $(seq 1 12); do
  tok="round$round"
  q 3311 "INSERT INTO g_sessions (token_hash, created_at, expires_at, idle_timeout) VALUES (UNHEX(SHA2('$tok',256)), 1, 9999999999, 86400)" >/dev/null
  sleep 0.3
  (
    for i in $(seq 1 120); do
      out=$(q 3312 "INSERT INTO g_session_fields (session_pk, name, value) SELECT s.pk, v.name, v.value FROM g_sessions s CROSS JOIN (SELECT 'cart' AS name, 'v$i' AS value UNION ALL SELECT 'user', '42') v WHERE s.token_hash = UNHEX(SHA2('$tok',256)) AND s.expires_at > 2 AND s.created_at > 0 ON DUPLICATE KEY UPDATE value = v.value; SELECT ROW_COUNT();")
      echo "$out"
    done
  ) > /tmp/g_writer_$round.log &
  sleep 0.6
  q 3313 "DELETE FROM g_sessions WHERE token_hash = UNHEX(SHA2('$tok',256))" > /tmp/g_delete_$round.log
  wait
  errors=$((errors + $(grep -c 'ERROR' /tmp/g_writer_$round.log)))
  gone=$((gone + $(grep -cx '0' /tmp/g_writer_$round.log)))
  saved=$((saved + $(grep -Ecx '[1-9][0-9]*' /tmp/g_writer_$round.log)))
done
sleep 1
for p in 3311 3312 3313; do
  echo "node $p: sessions=$(q $p 'SET SESSION wsrep_sync_wait=1; SELECT COUNT(*) FROM g_sessions') fields=$(q $p 'SET SESSION wsrep_sync_wait=1; SELECT COUNT(*) FROM g_session_fields')"
done
echo "writer statements: saved=$saved gone(0 rows)=$gone errors=$errors"
grep -h ERROR /tmp/g_writer_*.log | sort | uniq -c | head
