#!/usr/bin/env bash
# A throwaway PostgreSQL + PostGIS cluster for the tests.
#   scripts/postgres.sh start DIR   -> installs the Debian packages if absent, starts a cluster
#                                      in DIR on a free local port, prints its URL
#   scripts/postgres.sh stop DIR    -> stops it and removes DIR
set -euo pipefail
cmd=${1:?start or stop}; dir=${2:?directory}
run_as_pg() {  # initdb and postgres refuse to run as root
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ "$cmd" = stop ]; then
    if [ -d "$dir/data" ]; then run_as_pg "$(bin)/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    exit 0
fi
if [ -z "$(bin)" ] || ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then
    echo "installing Debian's postgresql and postgis for the store tests" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql postgis >&2
fi
B=$(bin)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$dir"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
run_as_pg "$B/initdb" -D "$dir/data" -U planner --auth=trust -E UTF8 >/dev/null
run_as_pg "$B/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" -l "$dir/log" -w start >/dev/null
run_as_pg "$B/createdb" -h 127.0.0.1 -p "$port" -U planner planner_test
echo "postgresql://planner@127.0.0.1:$port/planner_test"
