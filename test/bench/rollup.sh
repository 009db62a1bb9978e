#!/usr/bin/env bash
# eventkit rollup benchmark (not part of CI).  See test/bench/README.md.
#
# In one throwaway cluster, on the events of gen.sql (deterministic):
#   ingest events/s of BASE_EVENTS events (1 pgbench client, one batch per
#   transaction) into a fresh stream without a rollup and with one rollup
#   attached (hourly x event: count, distinct(user_id) as hll,
#   sum(properties.revenue)) -> ingest overhead of keeping the rollup;
#   then, on the stream with the rollup (VACUUM ANALYZE after the base load,
#   as autovacuum would), ingest DELTA_PCT % more events and time
#     incremental   SELECT eventkit.refresh_rollup(...)
#     full          CREATE TABLE ... AS SELECT <same aggregate> FROM stream GROUP BY ...
#     matview       REFRESH MATERIALIZED VIEW of the same aggregate
#   -> incremental / full and matview / full.  Checks that the rollup equals
#   the full recompute.  Median and spread over REPEAT repetitions.
#
# Environment: BASE_EVENTS (1000000) DELTA_PCT (1) BATCH (1000) REPEAT (3)
#              PORT (54339) PGBIN (bindir of pg_config in PATH) KEEP (0)
# Run it under flock when others benchmark on the same machine:
#   flock /tmp/ek-bench.lock test/bench/rollup.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BASE_EVENTS=${BASE_EVENTS:-1000000}
DELTA_PCT=${DELTA_PCT:-1}
BATCH=${BATCH:-1000}
REPEAT=${REPEAT:-3}
PORT=${PORT:-54339}
PGBIN=${PGBIN:-$(pg_config --bindir)}
KEEP=${KEEP:-0}
export LC_ALL=C.UTF-8 PGTZ=UTC
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
export PGOPTIONS='-c client_min_messages=warning'

NB0=$(( BASE_EVENTS / BATCH ))
NB1=$(( NB0 * DELTA_PCT / 100 ))
[ "$NB1" -ge 1 ] || NB1=1
NB=$(( NB0 + NB1 ))
EVENTS=$(( NB * BATCH ))
FAILED=0

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
if [ "$(id -u)" = 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi

W=$(mktemp -d /tmp/eventkit-rollup-bench.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$W"
chmod 700 "$W"
cp "$HERE"/ingest.pgbench "$W"/ && chmod 644 "$W"/ingest.pgbench
[ "$(id -u)" = 0 ] && chown postgres: "$W"/ingest.pgbench
cleanup() {
	local rc=$?
	[ -f "$W/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$W/data" -m fast -w stop >/dev/null 2>&1 || true
	if [ "$KEEP" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$W" -p "$PORT" -U postgres)
q() { as_pg "${PSQL[@]}" -d bench -Atc "$1"; }
qq() { as_pg "${PSQL[@]}" -d bench -c "$1" >/dev/null; }
now_ns() { date +%s%N; }
# Duration of one statement, in ms (psql \timing), in a session warmed up the
# same way for every path (the stream's partitions and indexes in the relcache,
# hll loaded), as the long-lived backend of a background worker would be.
WARMUP="EXPLAIN SELECT * FROM bench_events WHERE batch_id > 0"
timed_ms() {
	as_pg "$PGBIN/psql" -X -v ON_ERROR_STOP=1 -h "$W" -p "$PORT" -U postgres -d bench \
		-c "$WARMUP" -c "SELECT hll_empty()" -c '\timing on' -c "$1" | awk '/^Time: / { print $2 }' | tail -1
}

as_pg "$PGBIN/initdb" -D "$W/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >"$W/initdb.log" 2>&1 \
	|| { cat "$W/initdb.log" >&2; die "initdb failed"; }
cat >>"$W/data/postgresql.conf" <<EOF
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
lc_messages = 'C'
shared_preload_libraries = 'eventkit'
EOF
as_pg "$PGBIN/pg_ctl" -D "$W/data" -l "$W/server.log" -w -t 120 start >/dev/null \
	|| { tail -20 "$W/server.log" >&2; die "server did not start"; }
as_pg "${PSQL[@]}" -d postgres -c "CREATE DATABASE bench" >/dev/null
log "PostgreSQL $(q 'SHOW server_version'), $(nproc) cores; generating $EVENTS events ($NB0 + $NB1 batches of $BATCH)"
RTS=$(q "SELECT date_trunc('second', now())")
as_pg mkdir -p "$W/batches"
as_pg "${PSQL[@]}" -d bench -v events="$EVENTS" -v batch="$BATCH" -v rts="$RTS" \
	-v flatfile="$W/flat.tsv" -v batchdir="$W/batches" -f "$HERE/gen.sql" >/dev/null
qq "CREATE EXTENSION eventkit"
qq "CREATE EXTENSION hll"
MAXB=$(q "SELECT v FROM bench_meta WHERE k = 'payload_bytes_max'")
qq "ALTER DATABASE bench SET eventkit.max_batch_bytes = '$(( MAXB * 2 / 1024 + 1 ))kB'"
qq "ALTER DATABASE bench SET eventkit.max_batch_items = $BATCH"
q "SELECT sum(octet_length(payload)) FROM bench_batches" >/dev/null

AGG="SELECT pg_catalog.date_bin('1 hour', ts, '2000-01-01 00:00:00+00') AS bucket, event, count(*) AS count,
            hll_add_agg(hll_hash_text(user_id, 0)) AS users,
            sum(CASE WHEN jsonb_typeof(properties->'revenue') = 'number' THEN (properties->'revenue')::numeric END) AS revenue
       FROM bench_events GROUP BY 1, 2"

ingest() { # first_batch last_batch
	qq "SELECT setval('bench_seq', $1, false)"
	as_pg "$PGBIN/pgbench" -n -h "$W" -p "$PORT" -U postgres -c 1 -j 1 -t $(( $2 - $1 + 1 )) \
		-f "$W/ingest.pgbench" bench >"$W/pgbench.out" 2>&1 \
		|| { cat "$W/pgbench.out" >&2; die "pgbench failed"; }
}
fresh_stream() {
	q "SELECT eventkit.drop_rollup(name) FROM eventkit.rollups" >/dev/null
	qq "DROP MATERIALIZED VIEW IF EXISTS bench_mv"
	qq "DROP TABLE IF EXISTS bench_full"
	q "SELECT eventkit.drop_stream(c.oid::regclass) FROM pg_class c WHERE c.oid = to_regclass('bench_events')" >/dev/null
	q "SELECT eventkit.create_stream('bench_events', partition_interval => '1 day', premake => 4)" >/dev/null
	qq "TRUNCATE bench_results"
}
check() { if [ "$2" != "$3" ]; then log "CHECK FAILED: $1: got $2, want $3"; FAILED=1; fi; }

declare -A V
add() { V[$1]="${V[$1]:-} $2"; }
measure_without() {
	fresh_stream
	qq "CHECKPOINT"
	local t0 t1 r
	t0=$(now_ns); ingest 1 "$NB0"; t1=$(now_ns)
	r=$(awk -v n="$(( NB0 * BATCH ))" -v ns="$(( t1 - t0 ))" 'BEGIN { printf "%d", n / (ns / 1e9) }')
	add ingest_without "$r"; log "  ingest without rollup: $r events/s"
}
# leaves the stream with the rollup in place for the refresh measurements
measure_with() {
	fresh_stream
	q "SELECT eventkit.create_rollup('bench_hourly', 'bench_events', '1 hour', '{event}',
	     '{count,\"distinct(user_id) AS users\",\"sum(properties.revenue) AS revenue\"}')" >/dev/null
	qq "CHECKPOINT"
	local t0 t1 r
	t0=$(now_ns); ingest 1 "$NB0"; t1=$(now_ns)
	r=$(awk -v n="$(( NB0 * BATCH ))" -v ns="$(( t1 - t0 ))" 'BEGIN { printf "%d", n / (ns / 1e9) }')
	add ingest_with "$r"; log "  ingest with rollup:    $r events/s"
}
measure_refresh() {
	local stored
	stored=$(q "SELECT count(*) FROM bench_events")
	qq "VACUUM ANALYZE bench_events"
	qq "CREATE MATERIALIZED VIEW bench_mv AS $AGG WITH NO DATA"
	local ms ms_full ms_mv delta diff
	ms=$(timed_ms "SELECT eventkit.refresh_rollup('bench_hourly')")
	add first_refresh "$ms"; log "  first refresh (folds $stored events): $ms ms"
	qq "REFRESH MATERIALIZED VIEW bench_mv"
	qq "CHECKPOINT"

	ingest $(( NB0 + 1 )) "$NB"
	delta=$(( $(q "SELECT count(*) FROM bench_events") - stored ))
	ms=$(timed_ms "SELECT eventkit.refresh_rollup('bench_hourly')")
	add incremental "$ms"
	ms_full=$(timed_ms "CREATE TABLE bench_full AS $AGG")
	add full "$ms_full"
	ms_mv=$(timed_ms "REFRESH MATERIALIZED VIEW bench_mv")
	add matview "$ms_mv"
	log "  +$delta events: incremental $ms ms, full recompute $ms_full ms, REFRESH MATERIALIZED VIEW $ms_mv ms"

	diff=$(q "SELECT count(*) FROM bench_full f FULL JOIN bench_hourly r ON f.bucket = r.bucket AND f.event IS NOT DISTINCT FROM r.event
	          WHERE f.bucket IS NULL OR r.bucket IS NULL OR f.count <> r.count OR f.revenue IS DISTINCT FROM r.revenue
	             OR hll_cardinality(f.users) <> hll_cardinality(r.users)")
	check "rollup = full recompute (rows differing)" "$diff" 0
}
for rep in $(seq 1 "$REPEAT"); do
	log "repetition $rep/$REPEAT"
	# alternate which of the two ingest runs goes first (cache and ordering bias)
	if [ $(( rep % 2 )) = 1 ]; then
		measure_without; measure_with; measure_refresh
	else
		measure_with; measure_refresh; measure_without
	fi
done

stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
	m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %s %s", m, v[1], v[NR] }'; }
med() { read -r m _ _ <<<"$(stats ${V[$1]})"; echo "$m"; }
line() { read -r m lo hi <<<"$(stats ${V[$1]})"; printf '%-16s median=%-10s min=%-10s max=%-10s %s\n' "$1" "$m" "$lo" "$hi" "$2"; }
echo
echo "eventkit rollup benchmark: PostgreSQL $(q 'SHOW server_version'), $(nproc) cores; base $(( NB0 * BATCH )) events sent," \
	"+$(( NB1 * BATCH )) sent ($DELTA_PCT%); rollup hourly x event: count, hll distinct(user_id), sum(revenue); repeat=$REPEAT"
line ingest_without "events/s"
line ingest_with "events/s"
line first_refresh "ms (folds the base events)"
line incremental "ms"
line full "ms"
line matview "ms"
awk -v a="$(med incremental)" -v b="$(med full)" -v c="$(med matview)" -v w="$(med ingest_with)" -v wo="$(med ingest_without)" 'BEGIN {
	printf "incremental / full recompute = %.2f%% (goal <= 1%%)\n", 100 * a / b
	printf "matview / full recompute     = %.1f%%\n", 100 * c / b
	printf "ingest overhead of the rollup = %.1f%% (goal <= 10%%)\n", 100 * (1 - w / wo) }'
[ "$FAILED" = 0 ] || { echo "SOME CHECKS FAILED"; exit 1; }
