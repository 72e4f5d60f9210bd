#!/usr/bin/env bash
# The session-rocket benchmark, in one command: bash bench/run.sh [bench.py options]
# Needs the local MariaDB at 127.0.0.1:3306 (root, empty password, database
# `test`); recreates the `bench_*` tables. Raw results go to target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  (apt-get install -y wrk || (apt-get update && apt-get install -y wrk)) >/dev/null
fi
for tool in mysql python3 cargo; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
mysql -uroot -h127.0.0.1 -P3306 test -e 'SELECT 1' >/dev/null \
  || { echo "bench: cannot reach MariaDB at 127.0.0.1:3306 as root (database test)" >&2; exit 1; }

cargo build --release -p session-bench
# The peers (tower-sessions on MySQL, rocket_flex_session on SQLite) are
# outside the workspace: their dependencies never reach the library's build.
cargo build --release --manifest-path bench/peers/tower/Cargo.toml
cargo build --release --manifest-path bench/peers/flex/Cargo.toml
exec python3 bench/bench.py "$@"
