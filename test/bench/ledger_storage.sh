#!/usr/bin/env bash
# Storage of eventkit's dedup against the plain stack (not part of CI; issue 19
# part 4).  Ingests EVENTS Segment-style events (~350 B, 5% re-sends of the
# previous batch, BATCH per call) with eventkit.ingest(text) into a stream, then
# stores the same rows in a plain table with a unique btree on message_id,
# filled batch by batch in the same order (as INSERT ... ON CONFLICT would),
# and prints, each with its size per stored event:
#   stream      the stream's partitions with their indexes
#   ledger      the dedup ledger's generations with their indexes
#   plain       the plain table with its unique index
#   ratio       (stream + ledger) / plain   (goal: <= 1.10)
# Uses the eventkit installed in PGBIN's PostgreSQL.
#
# Environment: EVENTS (1000000) BATCH (1000) PORT (54359) PGBIN (pg_config --bindir)
#              KEEP (0)
set -euo pipefail

EVENTS=${EVENTS:-1000000}
BATCH=${BATCH:-1000}
PORT=${PORT:-54359}
PGBIN=${PGBIN:-$(pg_config --bindir)}
KEEP=${KEEP:-0}
export LC_ALL=C.UTF-8 PGTZ=UTC
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
export PGOPTIONS='-c client_min_messages=warning'

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
if [ "$(id -u)" = 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi

W=$(mktemp -d /tmp/eventkit-ledger.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$W"
chmod 700 "$W"
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

as_pg "$PGBIN/initdb" -D "$W/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >"$W/initdb.log" 2>&1 \
	|| { cat "$W/initdb.log" >&2; die "initdb failed"; }
cat >>"$W/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$W'
shared_buffers = 512MB
max_wal_size = 4GB
fsync = off
timezone = 'UTC'
shared_preload_libraries = 'eventkit'
eventkit.scheduler_enabled = off
CONF
as_pg "$PGBIN/pg_ctl" -D "$W/data" -l "$W/server.log" -w -t 120 start >/dev/null \
	|| { tail -20 "$W/server.log" >&2; die "server did not start"; }
as_pg "${PSQL[@]}" -d postgres -c "CREATE DATABASE bench" >/dev/null

# the events of test/bench/rollup_compare.sh (without late events)
as_pg "${PSQL[@]}" -d bench >/dev/null <<'SQL'
CREATE EXTENSION eventkit;
CREATE FUNCTION bench_event(i bigint, t timestamptz) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object(
    'type', 'track', 'messageId', 'msg-' || md5('m' || i),
    'userId', 'user-' || (hashint8(i) & 2147483647) % 20000,
    'event', (ARRAY['Order Completed', 'Product Viewed', 'Product Added', 'Checkout Started',
                    'Cart Viewed', 'Products Searched', 'Product Clicked', 'Coupon Applied'])[1 + (hashint8(i * 3) & 2147483647) % 8],
    'properties', jsonb_build_object(
        'currency', (ARRAY['USD', 'EUR', 'GBP'])[1 + (hashint8(i * 5) & 2147483647) % 3],
        'revenue', ((hashint8(i * 7) & 2147483647) % 20000) / 100.0,
        'product_id', 'p' || (hashint8(i * 11) & 2147483647) % 5000,
        'category', (ARRAY['shoes', 'shirts', 'hats', 'bags'])[1 + (hashint8(i * 13) & 2147483647) % 4]),
    'context', jsonb_build_object('library', jsonb_build_object('name', 'analytics.js', 'version', '2.1.0'),
        'page', jsonb_build_object('path', '/p/' || (hashint8(i * 17) & 2147483647) % 500)),
    'timestamp', to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;
CREATE FUNCTION bench_batch(first bigint, size int, n bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_agg(bench_event(e, timestamptz '2026-02-26 00:00:00+00' + (least(e, n - 1) * 259200000 / n) * interval '1 ms')
                   ORDER BY g)::text
    FROM generate_series(0, size - 1) g
   CROSS JOIN LATERAL (SELECT CASE WHEN first > 0 AND g % 20 = 0 THEN first - size + g + 1 ELSE first + g END AS e) x
$$;
CREATE PROCEDURE bench_load(nb bigint, size int, n bigint) LANGUAGE plpgsql AS $$
BEGIN
  FOR b IN 0 .. nb - 1 LOOP
    PERFORM eventkit.ingest('ev', bench_batch(b * size, size, n), '2026-03-01 00:00:00+00');
    COMMIT;
  END LOOP;
END $$;
SQL
q "ALTER DATABASE bench SET eventkit.max_batch_items = $BATCH" >/dev/null
NB=$(( EVENTS / BATCH ))
LOAD0=$(uptime)
log "$EVENTS events in $NB batches of $BATCH"
q "SELECT eventkit.create_stream('ev', partition_interval => '1 day', premake => 4)" >/dev/null
as_pg "${PSQL[@]}" -d bench -c "CALL bench_load($NB, $BATCH, $EVENTS)" >/dev/null
# the plain stack: the same rows, a unique btree on message_id, filled in ingest order
q "CREATE TABLE plain (LIKE ev); CREATE UNIQUE INDEX ON plain (message_id)" >/dev/null
q "DO \$\$ DECLARE b bigint; BEGIN FOR b IN SELECT DISTINCT batch_id FROM ev ORDER BY 1 LOOP
     INSERT INTO plain SELECT * FROM ev WHERE batch_id = b ON CONFLICT (message_id) DO NOTHING;
   END LOOP; END \$\$" >/dev/null
q "VACUUM ANALYZE" >/dev/null
ROWS=$(q "SELECT count(*) FROM ev")
[ "$(q "SELECT count(*) FROM plain")" = "$ROWS" ] || die "plain table does not hold the stream's rows"
STREAM_B=$(q "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('ev') WHERE isleaf")
LEDGER_B=$(q "SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)
              FROM eventkit.streams s, pg_partition_tree(format('eventkit_internal.ledger_%s', s.stream_id)::regclass) t
             WHERE s.relid = 'ev'::regclass AND t.isleaf")
LEDGER_IDX=$(q "SELECT coalesce(sum(pg_indexes_size(t.relid)), 0)
              FROM eventkit.streams s, pg_partition_tree(format('eventkit_internal.ledger_%s', s.stream_id)::regclass) t
             WHERE s.relid = 'ev'::regclass AND t.isleaf")
LEDGER_N=$(q "SELECT count(*) FROM eventkit_internal.ledger_1")
PLAIN_B=$(q "SELECT pg_total_relation_size('plain')")
PLAIN_IDX=$(q "SELECT pg_indexes_size('plain')")
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1048576 }'; }
per() { awk -v b="$1" -v n="$2" 'BEGIN { printf "%.0f B", b / n }'; }
echo "eventkit $(q "SELECT extversion FROM pg_extension WHERE extname = 'eventkit'"), $ROWS events stored of $EVENTS sent, $LEDGER_N ledger ids"
echo "stream:  $(mb "$STREAM_B") ($(per "$STREAM_B" "$ROWS")/event)"
echo "ledger:  $(mb "$LEDGER_B") ($(per "$LEDGER_B" "$LEDGER_N")/id, of which index $(per "$LEDGER_IDX" "$LEDGER_N"))"
echo "plain:   $(mb "$PLAIN_B") ($(per "$PLAIN_B" "$ROWS")/event, of which unique index $(per "$PLAIN_IDX" "$ROWS"))"
awk -v s="$STREAM_B" -v l="$LEDGER_B" -v p="$PLAIN_B" 'BEGIN { printf "ratio:   (stream + ledger) / plain = %.3f (goal <= 1.10)\n", (s + l) / p }'
echo "load: before: $LOAD0; after: $(uptime)"
