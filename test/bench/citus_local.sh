#!/usr/bin/env bash
# The local part of ingest on Citus, alone (not part of CI; docs/citus.md):
# a one-node Citus cluster whose coordinator holds every shard
# (shouldhaveshards), so that each call claims its ids in local ledger
# shards and writes local stream shards, with no other node, no connection
# and no two-phase commit.  The deterministic Segment-style events of
# test/bench/citus.sh (~5% re-sent) in batches of BATCH, one session, one
# call per transaction, REPEAT times, each time into a new stream.  Prints
# that session's backend CPU (user + system, from /proc) per 1,000 events
# of each run and their median: little else runs in it, so it moves less
# with a shared machine's load than the three-node benchmark.
#
# Environment: EVENTS (50000) BATCH (1000) REPEAT (3) SHARDS (8)
#              PORT (57140) PGBIN (pg_config's bindir) KEEP (0)
#              PERF (empty; a file name: perf record -g of the session's
#              backend in the last run, written there)
#              DISTRIBUTE (1; 0: the stream is not distributed: one
#              server's ingest on the same server and events, the
#              baseline of a call whose shards are all local)
#              INSTR (0; 1: instructions instead, valgrind --tool=callgrind
#              "Ir" of a single-user backend (postgres --single) that
#              ingests the batches into a new stream, minus an empty run's
#              (one call of one event); CGOUT=file keeps the run's
#              callgrind output for callgrind_annotate)
# Needs eventkit and Citus installed into that PostgreSQL (and valgrind
# for INSTR=1).  Run as root or as a user who can initdb.
set -euo pipefail

EVENTS=${EVENTS:-50000}
BATCH=${BATCH:-1000}
REPEAT=${REPEAT:-3}
SHARDS=${SHARDS:-8}
PORT=${PORT:-57140}
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
KEEP=${KEEP:-0}
PERF=${PERF:-}
DISTRIBUTE=${DISTRIBUTE:-1}
export LC_ALL=C.UTF-8 PGTZ=UTC
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
export PGOPTIONS='-c client_min_messages=warning'

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi
[ -f "$("$PGBIN/pg_config" --pkglibdir)/citus.so" ] || { log "ERROR: Citus is not installed"; exit 1; }

W=$(mktemp -d /tmp/eventkit-citus-local.XXXXXX)
chmod 755 "$W"
[ "$(id -u)" = 0 ] && chown postgres: "$W"
cleanup() {
	[ -f "$W/d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$W/d" -m fast -w stop >/dev/null 2>&1 || true
	if [ "$KEEP" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
q() { as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$W" -p "$PORT" -d postgres "$@"; }

as_pg "$PGBIN/initdb" -D "$W/d" -A trust -U postgres >/dev/null
cat >>"$W/d/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$W'
shared_preload_libraries = 'citus,eventkit'
max_prepared_transactions = 100
shared_buffers = 256MB
eventkit.scheduler_enabled = off
citus.node_conninfo = 'sslmode=disable'
citus.local_hostname = '$W'
CONF
as_pg "$PGBIN/pg_ctl" -D "$W/d" -l "$W/log" -w start >/dev/null
q -c "CREATE EXTENSION citus" -c "SELECT citus_set_coordinator_host('$W', $PORT)" \
	-c "SELECT citus_set_node_property('$W', $PORT, 'shouldhaveshards', true)" \
	-c "CREATE EXTENSION eventkit" >/dev/null
# the batches of test/bench/citus_cluster.sh
q -c "
CREATE TABLE batches AS
SELECT k, jsonb_build_object('sentAt', '2026-01-01T00:00:00Z', 'batch', jsonb_agg(jsonb_build_object(
		'type', 'track', 'messageId', 'm-' || id, 'userId', 'u' || (id % 997),
		'anonymousId', 'a' || (id % 1009), 'event', 'Order Completed',
		'properties', jsonb_build_object('id', id, 'revenue', id % 97, 'sku', 'sku-' || (id % 113)),
		'context', jsonb_build_object('library', jsonb_build_object('name', 'analytics.js')),
		'timestamp', now() - (id % 48) * interval '1 hour') ORDER BY id)) AS payload
  FROM generate_series(0, $EVENTS / $BATCH - 1) k,
	   LATERAL (SELECT g AS id FROM generate_series(k * $BATCH, k * $BATCH + $BATCH * 95 / 100 - 1) g
				UNION ALL SELECT g FROM generate_series((k - 1) * $BATCH, (k - 1) * $BATCH + $BATCH / 20 - 1) g
				 WHERE k > 0) ids
 GROUP BY k" >/dev/null
NB=$(q -c "SELECT sum(jsonb_array_length(payload->'batch')) FROM batches")
NSTORED=$(q -c "SELECT count(DISTINCT e->>'messageId') FROM batches, jsonb_array_elements(payload->'batch') e")
# the session's script: its backend's /proc stat before and after the calls
{
	echo "SELECT pg_backend_pid() AS pid \\gset"
	echo "\\setenv EK_PID :pid"
	echo "\\! cat /proc/\$EK_PID/stat > $W/stat0; echo \$EK_PID > $W/pid"
	q -c "SELECT 'SELECT 1 FROM eventkit.ingest(''ev'', ' || quote_literal(payload::text) || '::jsonb);' FROM batches ORDER BY k"
	echo "\\! cat /proc/\$EK_PID/stat > $W/stat1"
} >"$W/run.sql"
chmod 644 "$W/run.sql"

# a new stream for a run: its name
new_stream() {
	# (drop_stream of a distributed stream fails on a coordinator that
	# holds its shards: "cannot execute a distributed query from a query on
	# a shard", from the sql_drop trigger)
	local s=ev$1
	q -c "SELECT eventkit.create_stream('$s', key_partitions => 0)" >/dev/null
	[ "$DISTRIBUTE" = 1 ] && q -c "SELECT eventkit.distribute_stream('$s', $SHARDS)" >/dev/null 2>&1
	sed "s/eventkit.ingest('ev', /eventkit.ingest('$s', /" "$W/run.sql" >"$W/run_$s.sql"
	chmod 644 "$W/run_$s.sql"
	q -c "SELECT count(*) FROM generate_series(0, 49) h, LATERAL eventkit.ingest('$s',
			jsonb_build_object('type', 'track', 'messageId', 'warm-' || h, 'userId', 'warm',
			'event', 'Warm', 'timestamp', now() - h * interval '1 hour')) r" >/dev/null
	q -c "CHECKPOINT"
}

if [ "${INSTR:-0}" = 1 ]; then
	new_stream i
	# the statements alone, one a line, for the single-user backend
	grep '^SELECT 1 FROM eventkit.ingest' "$W/run_evi.sql" >"$W/instr.sql"
	echo "SELECT 1 FROM eventkit.ingest('evi', '{\"type\":\"track\",\"messageId\":\"warm-0\",\"userId\":\"warm\",\"event\":\"Warm\"}'::jsonb);" >"$W/empty.sql"
	chmod 644 "$W/instr.sql" "$W/empty.sql"
	as_pg "$PGBIN/pg_ctl" -D "$W/d" -m fast -w stop >/dev/null
	for r in empty instr; do
		as_pg valgrind --tool=callgrind --callgrind-out-file="$W/cg.$r" "$PGBIN/postgres" --single \
			-D "$W/d" postgres <"$W/$r.sql" >"$W/out.$r" 2>&1 || { tail "$W/out.$r" >&2; exit 1; }
		! grep -q ERROR "$W/out.$r" || { grep ERROR "$W/out.$r" | head -3 >&2; exit 1; }
	done
	as_pg "$PGBIN/pg_ctl" -D "$W/d" -l "$W/log" -w start >/dev/null
	stored=$(q -c "SELECT count(*) FROM evi WHERE event <> 'Warm'")
	[ "$stored" = "$NSTORED" ] || { log "ERROR: stored $stored events, not $NSTORED"; exit 1; }
	ir() { grep -E '^(summary|totals):' "$W/cg.$1" | head -1 | awk '{print $2}'; }
	[ -n "${CGOUT:-}" ] && cp "$W/cg.instr" "$CGOUT"
	where="$SHARDS shards, all on this node"
	[ "$DISTRIBUTE" = 1 ] || where="the stream not distributed"
	echo "events: $NB in batches of $BATCH (~5% re-sent), $where; one single-user backend"
	echo "instructions (callgrind Ir): $(ir instr), the empty run's $(ir empty); per 1000 events $(echo "($(ir instr) - $(ir empty)) * 1000 / $NB" | bc)"
	exit 0
fi

TCK=$(getconf CLK_TCK)
cpus=""
for r in $(seq 1 "$REPEAT"); do
	s=ev$r
	new_stream $r
	rm -f "$W/pid" "$W/stat0" "$W/stat1"
	if [ -n "$PERF" ] && [ "$r" = "$REPEAT" ]; then
		q -f "$W/run_$s.sql" >/dev/null &
		cl=$!
		while [ ! -s "$W/pid" ]; do sleep 0.01; done
		perf record -g -o "$PERF" -p "$(cat "$W/pid")" >/dev/null 2>&1 &
		wait $cl
		wait
	else
		q -f "$W/run_$s.sql" >/dev/null
	fi
	t0=$(awk '{print $14 + $15}' "$W/stat0")
	t1=$(awk '{print $14 + $15}' "$W/stat1")
	cpu=$(echo "($t1 - $t0) / $TCK * 1000 * 1000 / $NB" | bc -l)
	cpus="$cpus $cpu"
	stored=$(q -c "SELECT count(*) FROM $s WHERE event <> 'Warm'")
	[ "$stored" = "$NSTORED" ] || { log "ERROR: run $r stored $stored events, not $NSTORED"; exit 1; }
	log "run $r: $NB events ($stored stored), backend CPU $(printf '%.1f' "$cpu") ms per 1000 events"
done
stats() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f", m, a[1], a[NR]}'; }
read -r m mn mx <<<"$(echo "$cpus" | stats)"
where="$SHARDS shards, all on this node"
[ "$DISTRIBUTE" = 1 ] || where="the stream not distributed"
echo "events per run: $NB in batches of $BATCH (~5% re-sent), $REPEAT runs, $where"
echo "backend CPU per 1000 events: median $m ms (min $mn, max $mx)"
[ -n "$PERF" ] && echo "profile of the last run: $PERF"
echo "load: $(uptime)"
