#!/usr/bin/env bash
# A new session's first refresh_rollup, taken apart (issue 19; not part of CI).
#
# On a data directory as test/bench/rollup_compare.sh leaves it (KEEP=1, or
# PRESNAP=dir with INSTR=1: a +1% delta not yet folded, rollup 'r' in
# database bench), ROUNDS times for each PGBIN given (by turns):
#   - a fresh copy of DATA, a server started on it;
#   - a warm-up session: pg_prewarm of what the refresh reads, then BEGIN;
#     SELECT eventkit.refresh_rollup('r'); ROLLBACK (so that the pages the
#     refresh writes have had their full-page images since the checkpoint,
#     as in the bench, where the previous refresh wrote them);
#   - the measured session: SELECT count(*) FROM r; SET jit = on (as the
#     bench's); then /proc/self/schedstat and /proc/self/stat read before
#     and after SELECT eventkit.refresh_rollup('r') (psql \timing around it).
# Prints per session: the refresh's wall time (psql), the backend's CPU and
# run-queue wait (schedstat), its minor faults (stat), and the wall time
# between the two reads.  Needs pg_prewarm (contrib).
#
#   DATA=/tmp/.../data ROUNDS=5 PORT=57830 test/bench/first_refresh.sh <bindir> [<bindir> ...]
#
# Run it as root (the servers run as postgres); copies DATA each time (about
# 1.2 GB at 1M events).
set -euo pipefail

DATA=${DATA:?DATA: a data directory left by rollup_compare.sh}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-57830}
[ $# -ge 1 ] || { echo "usage: DATA=dir $0 bindir [bindir ...]" >&2; exit 2; }
export LC_ALL=C.UTF-8
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
as_pg() { runuser -u postgres -- "$@"; }

W=$(mktemp -d /tmp/eventkit-first-refresh.XXXXXX)
chown postgres: "$W"
cleanup() {
	[ -n "${B:-}" ] && [ -f "$W/data/postmaster.pid" ] && as_pg "$B/pg_ctl" -D "$W/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$W"
}
trap cleanup EXIT

STATS="SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1) || ' ' ||
              split_part(pg_read_file('/proc/self/schedstat'), ' ', 2) || ' ' ||
              split_part(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ', 8) || ' ' ||
              (extract(epoch FROM clock_timestamp()) * 1e6)::bigint"
echo "load before: $(uptime)"
for round in $(seq 1 "$ROUNDS"); do
	for B in "$@"; do
		rm -rf "$W/data"
		as_pg cp -a "$DATA" "$W/data"
		sed -i "s/^port = .*/port = $PORT/; s|^unix_socket_directories = .*|unix_socket_directories = '$W'|" "$W/data/postgresql.conf"
		as_pg "$B/pg_ctl" -D "$W/data" -l "$W/server.log" -w start >/dev/null
		P=("$B/psql" -X -q -At -h "$W" -p "$PORT" -U postgres -d bench)
		as_pg "${P[@]}" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" >/dev/null
		as_pg "${P[@]}" -c "SELECT pg_prewarm(c.oid) FROM pg_class c
		  WHERE c.relname IN ('r', 'r_delta', 'ingest_batches', 'ingest_batches_pkey', 'rollups')
		     OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN ('r'::regclass, 'r_delta'::regclass))" >/dev/null
		as_pg "${P[@]}" -c "BEGIN" -c "SELECT eventkit.refresh_rollup('r')" -c "ROLLBACK" >/dev/null
		out=$(as_pg "$B/psql" -X -At -h "$W" -p "$PORT" -U postgres -d bench -c "SELECT count(*) FROM r" \
			-c "SET jit = on" -c "$STATS" -c '\timing on' -c "SELECT eventkit.refresh_rollup('r')" \
			-c '\timing off' -c "$STATS")
		as_pg "$B/pg_ctl" -D "$W/data" -m fast -w stop >/dev/null
		echo "$out" | awk -v b="$B" -v r="$round" '
			NR == 1 || /^SET/ { next }
			/^[0-9]+ [0-9]+ [0-9]+ [0-9]+$/ { n++; c[n] = $1; q[n] = $2; f[n] = $3; t[n] = $4; next }
			/^Time:/ { w = $2; next }
			/^[0-9]+$/ { ev = $1 }
			END { printf "round %d %s: events %s, wall %s ms, CPU %.2f ms, run queue %.2f ms, faults %d, between the reads %.2f ms\n",
				r, b, ev, w, (c[2] - c[1]) / 1e6, (q[2] - q[1]) / 1e6, f[2] - f[1], (t[2] - t[1]) / 1e3 }'
	done
done
echo "load after: $(uptime)"
