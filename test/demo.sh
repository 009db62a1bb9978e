#!/usr/bin/env bash
# Installs what eventkit needs, builds and installs it, and runs a demo in a
# throwaway PostgreSQL 15 cluster (removed afterwards).  Run as root on
# Debian bookworm.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export LC_ALL=C.UTF-8 LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root" >&2; exit 2; }

pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-15-hll postgresql-15-tdigest make gcc libc6-dev
      librdkafka-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bin=/usr/lib/postgresql/15/bin

work=$(mktemp -d /tmp/eventkit-demo.XXXXXX)
trap 'runuser -u postgres -- $bin/pg_ctl -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir "$work/src-build"
tar -C "$here" --exclude=.git --exclude='tmp_check*' -cf - . | tar -C "$work/src-build" -xf -
chown -R postgres "$work"

echo "== build and install eventkit"
runuser -u postgres -- make -s -C "$work/src-build" PG_CONFIG=$bin/pg_config clean >/dev/null
runuser -u postgres -- make -s -C "$work/src-build" PG_CONFIG=$bin/pg_config
make -s -C "$work/src-build" PG_CONFIG=$bin/pg_config install >/dev/null

echo "== start a throwaway cluster"
runuser -u postgres -- $bin/initdb -D "$work/data" -A trust -U postgres >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
shared_preload_libraries = 'eventkit'
listen_addresses = ''
unix_socket_directories = '$work'
CONF
runuser -u postgres -- $bin/pg_ctl -D "$work/data" -l "$work/server.log" -w start >/dev/null
runuser -u postgres -- $bin/psql -h "$work" -d postgres -X -v ON_ERROR_STOP=1 -P pager=off -f "$work/src-build/test/demo.sql"
