#!/usr/bin/env bash
# eventkit HTTP intake benchmark (not part of CI).  See test/bench/README.md.
#
# Creates a throwaway PostgreSQL 15 cluster with the HTTP intake on loopback,
# generates the events deterministically (gen.sql, as run.sh), and measures
# the same batches, by turns in each repetition, on fresh streams:
#   sql    eventkit.ingest(text) of each batch file (pg_read_file), CLIENTS
#          pgbench clients, one batch per transaction
#   http   POST /v1/batch of each batch file by CLIENTS keep-alive clients
#          (http_load.js: node, one request in flight per client)
# Both take received_at = now().  Prints events/s (median, min, max over the
# repetitions), p50/p99 latency per batch, and the ratio http/sql (of the
# medians, and the median of each repetition's ratio).
#
# Environment: EVENTS (200000) BATCH (450: ~500 KB batches) REPEAT (5)
#              CLIENTS (2) WORKERS (2: eventkit.http_workers)
#              PORT (54331) HTTP_PORT (18431) PGBIN (/usr/lib/postgresql/15/bin)
#              KEEP (0: 1 keeps the cluster directory)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
EVENTS=${EVENTS:-200000}
BATCH=${BATCH:-450}
REPEAT=${REPEAT:-5}
CLIENTS=${CLIENTS:-2}
WORKERS=${WORKERS:-2}
PORT=${PORT:-54331}
HTTP_PORT=${HTTP_PORT:-18431}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
KEEP=${KEEP:-0}
export LC_ALL=C.UTF-8
export PGTZ=UTC
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
export PGOPTIONS='-c client_min_messages=warning'

NB=$(( (EVENTS + BATCH - 1) / BATCH ))
FAILED=0

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi
command -v node >/dev/null || die "node is needed (apt-get install nodejs)"
[ -f "$("$PGBIN/pg_config" --pkglibdir)/eventkit.so" ] || die "eventkit is not installed (make && make install)"

W=$(mktemp -d /tmp/eventkit-httpbench.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$W"
chmod 755 "$W"
cat >"$W/sql.pgbench" <<'EOF'
-- one batch per transaction, as the listener does; received_at = now()
INSERT INTO bench_results
SELECT r.accepted, r.duplicates, r.conflicts, r.quarantined, r.rejected
  FROM bench_files b
 CROSS JOIN LATERAL eventkit.ingest('bench_events'::regclass, pg_read_file(b.file, 0, b.bytes)) r
 WHERE b.id = (SELECT nextval('bench_seq'));
EOF
chmod 644 "$W/sql.pgbench"
[ "$(id -u)" = 0 ] && chown postgres: "$W/sql.pgbench"

cleanup() {
	local rc=$?
	if [ -f "$W/data/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$W/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if [ "$KEEP" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$W" -p "$PORT" -U postgres)
q() { as_pg "${PSQL[@]}" -d bench -Atc "$1"; }
qq() { as_pg "${PSQL[@]}" -d bench -c "$1" >/dev/null; }
now_ns() { date +%s%N; }
cpu_ticks() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)
timer_start() { T_CPU0=$(cpu_ticks); T_NS0=$(now_ns); }
timer_stop() {
	local t1 c1
	t1=$(now_ns); c1=$(cpu_ticks)
	ELAPSED=$(( t1 - T_NS0 ))
	CPUUSE=$(awk -v c="$(( c1 - T_CPU0 ))" -v hz="$CLK_TCK" -v ns="$ELAPSED" 'BEGIN { printf "%.2f", c / hz / (ns / 1e9) }')
}

# --- cluster ------------------------------------------------------------------
log "initdb in $W/data"
as_pg "$PGBIN/initdb" -D "$W/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >"$W/initdb.log" 2>&1 \
	|| { cat "$W/initdb.log" >&2; die "initdb failed"; }
cat >>"$W/data/postgresql.conf" <<EOF

# --- eventkit HTTP bench ---
port = $PORT
listen_addresses = ''
unix_socket_directories = '$W'
max_connections = 20
fsync = on
synchronous_commit = on
shared_buffers = 1GB
max_wal_size = 4GB
checkpoint_timeout = 30min
timezone = 'UTC'
log_timezone = 'UTC'
lc_messages = 'C'
shared_preload_libraries = 'eventkit'
eventkit.scheduler_enabled = off
eventkit.http_listen = '127.0.0.1:$HTTP_PORT'
eventkit.http_database = 'bench'
eventkit.http_workers = $WORKERS
# ~1 KB events: a batch of BATCH events may pass Segment's 500 KB a little
eventkit.max_batch_bytes = '1MB'
EOF
as_pg "$PGBIN/pg_ctl" -D "$W/data" -l "$W/server.log" -w -t 120 start >/dev/null \
	|| { tail -20 "$W/server.log" >&2; die "server did not start"; }
as_pg "${PSQL[@]}" -d postgres -c "CREATE DATABASE bench" >/dev/null
PGVER=$(q "SHOW server_version")
log "PostgreSQL $PGVER on port $PORT, HTTP on 127.0.0.1:$HTTP_PORT ($WORKERS listeners); $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- data ---------------------------------------------------------------------
RTS=$(q "SELECT date_trunc('second', now())")
log "generating $EVENTS events in $NB batches of $BATCH"
as_pg mkdir -p "$W/batches"
as_pg "${PSQL[@]}" -d bench -v events="$EVENTS" -v batch="$BATCH" -v rts="$RTS" \
	-v flatfile="$W/flat.tsv" -v batchdir="$W/batches" -f "$HERE/gen.sql" >/dev/null
DISTINCT=$(q "SELECT v FROM bench_meta WHERE k = 'distinct'")
log "batch payload avg $(q "SELECT v FROM bench_meta WHERE k = 'payload_bytes_avg'") bytes," \
	"max $(q "SELECT v FROM bench_meta WHERE k = 'payload_bytes_max'"); $DISTINCT distinct events"
mapfile -t FILES < <(q "SELECT file FROM bench_files ORDER BY id")
cat "${FILES[@]}" >/dev/null
qq "CREATE EXTENSION eventkit"

# the listeners connect to bench once it exists (they retry every 5 s)
for _ in $(seq 1 120); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/health" || true)" = 200 ] && break
	sleep 0.5
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/health")" = 200 ] || die "the HTTP listener does not answer"

# --- measurements -------------------------------------------------------------
declare -A RATES P50 P99

check() {
	if [ "$2" != "$3" ]; then log "CHECK FAILED: $1: got $2, want $3"; FAILED=1; fi
}

fresh_stream() {
	q "SELECT eventkit.drop_stream(c.oid::regclass) FROM pg_class c WHERE c.oid = to_regclass('bench_events')" >/dev/null
	q "SELECT eventkit.create_stream('bench_events', partition_interval => '1 day', premake => 4)" >/dev/null
	qq "TRUNCATE bench_results"
	qq "CHECKPOINT"
}

verify() { # label
	local n
	n=$(q "SELECT count(*) FROM bench_events")
	check "$1: events stored" "$n" "$DISTINCT"
	check "$1: accepted + duplicates" \
		"$(q "SELECT sum(accepted + duplicates) FROM eventkit.ingest_batches b JOIN eventkit.streams s USING (stream_id)
		       WHERE s.relid = 'bench_events'::regclass")" "$EVENTS"
}

pct() { # file of ms values, percentile
	sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int(p * NR); if (i < 1) i = 1; printf "%.1f", v[i] }'
}

measure_sql() {
	local per=$(( (NB + CLIENTS - 1) / CLIENTS ))
	fresh_stream
	qq "SELECT setval('bench_seq', 1, false)"
	rm -f "$W"/sqllog.*
	timer_start
	as_pg "$PGBIN/pgbench" -n -h "$W" -p "$PORT" -U postgres -c "$CLIENTS" -j "$CLIENTS" -t "$per" \
		-l --log-prefix="$W/sqllog" -f "$W/sql.pgbench" bench >"$W/pgbench.out" 2>&1 \
		|| { cat "$W/pgbench.out" >&2; tail -20 "$W/server.log" >&2; die "pgbench failed"; }
	timer_stop
	verify sql
	# latencies of the transactions that ingested a batch (not the ones past the last)
	awk '{ print $3 / 1000 }' "$W"/sqllog.* | sort -n | tail -n "$NB" >"$W/lat.txt"
	# pgbench's rate without its connection set-up (http_load.js times its
	# requests only, connections included); some of the transactions are
	# past the last batch and do nothing
	RATE=$(awk -v n="$EVENTS" -v t=$(( CLIENTS * per )) \
		'/^tps = .*without initial connection time/ { printf "%d", n * $3 / t }' "$W/pgbench.out")
	LP50=$(pct "$W/lat.txt" 0.5)
	LP99=$(pct "$W/lat.txt" 0.99)
}

measure_http() {
	local key out
	fresh_stream
	key=$(q "SET client_min_messages = error; SELECT eventkit.create_write_key('bench_events', 'bench')")
	timer_start
	out=$(node "$HERE/http_load.js" "http://127.0.0.1:$HTTP_PORT/v1/batch" "$key" "$CLIENTS" "${FILES[@]}") \
		|| die "http_load.js failed"
	timer_stop
	log "    $out"
	[[ "$out" == *'"failures":{}'* ]] || { log "CHECK FAILED: http: answers other than 200"; FAILED=1; }
	verify http
	RATE=$(sed -E 's/.*"events_per_s":([0-9]+).*/\1/' <<<"$out")
	LP50=$(sed -E 's/.*"p50_ms":([0-9.]+).*/\1/' <<<"$out")
	LP99=$(sed -E 's/.*"p99_ms":([0-9.]+).*/\1/' <<<"$out")
}

record() { # name
	RATES[$1]="${RATES[$1]:-} $RATE"
	P50[$1]="${P50[$1]:-} $LP50"
	P99[$1]="${P99[$1]:-} $LP99"
	log "  $1: $RATE events/s, p50 $LP50 ms, p99 $LP99 ms (machine CPU busy: $CPUUSE of $(nproc))"
}

RATIOS=
for rep in $(seq 1 "$REPEAT"); do
	log "repetition $rep/$REPEAT (load: $(cut -d' ' -f1-3 /proc/loadavg))"
	# alternate which path goes first
	if (( rep % 2 )); then
		measure_sql; record sql; s=$RATE
		measure_http; record http; h=$RATE
	else
		measure_http; record http; h=$RATE
		measure_sql; record sql; s=$RATE
	fi
	RATIOS="$RATIOS $(awk -v h="$h" -v s="$s" 'BEGIN { printf "%.3f", h / s }')"
done

# --- report -------------------------------------------------------------------
med() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m }'; }
mn() { printf '%s\n' "$@" | sort -g | head -1; }
mx() { printf '%s\n' "$@" | sort -g | tail -1; }

echo
echo "eventkit HTTP intake benchmark: PostgreSQL $PGVER, $(nproc) cores, fsync=on synchronous_commit=on"
echo "$EVENTS events ($DISTINCT distinct) in $NB batches of $BATCH (avg $(q "SELECT v FROM bench_meta WHERE k = 'payload_bytes_avg'") bytes)," \
	"$CLIENTS clients, $WORKERS listeners, $REPEAT repetitions"
for p in sql http; do
	# shellcheck disable=SC2086
	printf '%-5s events/s median=%-7s min=%-7s max=%-7s  latency ms p50=%-6s p99=%s (medians)\n' "$p" \
		"$(med ${RATES[$p]})" "$(mn ${RATES[$p]})" "$(mx ${RATES[$p]})" "$(med ${P50[$p]})" "$(med ${P99[$p]})"
done
# shellcheck disable=SC2086
echo "ratio http/sql: $(awk -v h="$(med ${RATES[http]})" -v s="$(med ${RATES[sql]})" 'BEGIN { printf "%.2f", h / s }') (medians);" \
	"per repetition:$RATIOS (median $(med $RATIOS)); goal >= 0.8"
[ "$FAILED" = 0 ] || { echo "SOME CHECKS FAILED"; exit 1; }
