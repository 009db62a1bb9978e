#!/usr/bin/env bash
# Intake from Kafka, benchmark (not part of CI; docs/intake-kafka.md).
#
# In one throwaway cluster, the same events by two paths, one transaction
# per batch of BATCH events, one client each, by turns, REPEAT times:
#   sql    eventkit.ingest(stream, text) of NDJSON payloads of BATCH events
#          (a procedure that commits after each call)
#   kafka  a Kafka source consuming the same events, one per message, from
#          the mock cluster (test/kafka/mock_cluster), with
#          eventkit.kafka_batch_messages = BATCH; timed from the moment its
#          consumer may write until it stored the last one
# and prints events/s of each (median, min, max) and the ratio kafka/sql of
# the medians (goal: >= 0.8).
#
# Environment: EVENTS (100000) BATCH (1000) REPEAT (5) PARTITIONS (3)
#              PORT (54339) PGBIN (pg_config's bindir, else
#              /usr/lib/postgresql/15/bin) KEEP (0)
# Needs eventkit installed (make install) and librdkafka; builds the mock
# cluster helper if it is missing.  Run as root or as a user who can initdb.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
EVENTS=${EVENTS:-100000}
BATCH=${BATCH:-1000}
REPEAT=${REPEAT:-5}
PARTITIONS=${PARTITIONS:-3}
PORT=${PORT:-54339}
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
KEEP=${KEEP:-0}
export LC_ALL=C.UTF-8 PGTZ=UTC
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
export PGOPTIONS='-c client_min_messages=warning'

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi

MOCK=$TOP/test/kafka/mock_cluster
if [ ! -x "$MOCK" ]; then
	cc -O2 -o "$MOCK" "$TOP/test/kafka/mock_cluster.c" -lrdkafka || die "could not build $MOCK"
fi

W=$(mktemp -d /tmp/eventkit-kafka-bench.XXXXXX)
chmod 755 "$W"
[ "$(id -u)" = 0 ] && chown postgres: "$W"
MOCK_PID=
cleanup() {
	local rc=$?
	[ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null || true
	exec 3>&- 2>/dev/null || true
	if [ -f "$W/data/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$W/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if [ "$KEEP" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$W" -p "$PORT" -U postgres -d postgres)
q() { as_pg "${PSQL[@]}" -Atc "$1"; }

# --- the mock cluster ---------------------------------------------------------
mkfifo "$W/mock.in"
"$MOCK" -t events -p "$PARTITIONS" <"$W/mock.in" >"$W/mock.out" 2>"$W/mock.err" &
MOCK_PID=$!
exec 3>"$W/mock.in"
mock() { # one command, its answer
	local before
	before=$(wc -l <"$W/mock.out")
	echo "$1" >&3
	while [ "$(wc -l <"$W/mock.out")" -le "$before" ]; do sleep 0.05; done
	local reply
	reply=$(sed -n "$((before + 1))p" "$W/mock.out")
	case "$reply" in ok*) echo "$reply";; *) die "mock cluster: $1: $reply";; esac
}
for _ in $(seq 100); do [ -s "$W/mock.out" ] && break; sleep 0.05; done
BOOT=$(head -1 "$W/mock.out" | awk '$1 == "bootstrap" {print $2}')
[ -n "$BOOT" ] || die "mock cluster did not start: $(cat "$W/mock.err")"

# --- events: one per line, ~300 bytes, deterministic --------------------------
awk -v n="$EVENTS" 'BEGIN {
	split("Product Viewed,Product Added,Checkout Started,Order Completed,Signed Up,Page Viewed,Coupon Applied,Cart Viewed", names, ",");
	for (i = 1; i <= n; i++)
		printf "{\"type\":\"track\",\"messageId\":\"k-%d\",\"userId\":\"user-%d\",\"event\":\"%s\",\"properties\":{\"product_id\":\"p-%d\",\"price\":%d.%02d,\"currency\":\"EUR\",\"quantity\":%d},\"context\":{\"library\":{\"name\":\"analytics.js\",\"version\":\"4.1.0\"},\"ip\":\"10.0.%d.%d\",\"locale\":\"en-GB\"}}\n",
			i, i % 9973, names[i % 8 + 1], i % 5000, i % 200, i % 100, i % 4 + 1, (i / 256) % 256, i % 256
}' >"$W/events.ndjson"
chmod 644 "$W/events.ndjson"
BYTES=$(stat -c %s "$W/events.ndjson")
log "$EVENTS events, $((BYTES / EVENTS)) bytes each on average"
mock "produce events -1 $W/events.ndjson" >/dev/null
for p in $(seq 0 $((PARTITIONS - 1))); do
	lo=$(mock "wm events $p" | awk '{print $2}')
	[ "$lo" = 0 ] || die "the mock cluster dropped messages of partition $p (low watermark $lo): use fewer EVENTS"
done

# --- the server ---------------------------------------------------------------
as_pg "$PGBIN/initdb" -D "$W/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >"$W/initdb.log" 2>&1 \
	|| { cat "$W/initdb.log" >&2; die "initdb failed"; }
cat >>"$W/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$W'
fsync = on
synchronous_commit = on
shared_buffers = 1GB
max_wal_size = 4GB
checkpoint_timeout = 30min
shared_preload_libraries = 'eventkit'
eventkit.naptime = 1
eventkit.kafka_batch_messages = $BATCH
max_worker_processes = 16
EOF
as_pg "$PGBIN/pg_ctl" -D "$W/data" -l "$W/server.log" -w start >/dev/null || { tail "$W/server.log"; die "server did not start"; }
as_pg "${PSQL[@]}" >/dev/null <<EOF
CREATE EXTENSION eventkit;
CREATE TABLE lines (i serial, line text);
COPY lines (line) FROM '$W/events.ndjson' WITH (FORMAT text);
CREATE TABLE payloads AS
  SELECT (i - 1) / $BATCH AS b, string_agg(line, E'\n' ORDER BY i) AS body
    FROM lines GROUP BY 1;
CREATE PROCEDURE ingest_all(stream regclass, INOUT seconds float8 DEFAULT NULL)
LANGUAGE plpgsql AS \$\$
DECLARE
	t0 timestamptz := clock_timestamp();
	p record;
BEGIN
	FOR p IN SELECT body FROM payloads ORDER BY b LOOP
		PERFORM eventkit.ingest(stream, p.body);
		COMMIT;
	END LOOP;
	seconds := extract(epoch FROM clock_timestamp() - t0);
END
\$\$;
EOF
[ "$(q 'SELECT count(*) FROM lines')" = "$EVENTS" ] || die "COPY lost lines"

sql_run() { # rep -> seconds
	q "SELECT eventkit.create_stream('s_sql_$1')" >/dev/null
	local s
	s=$(q "CALL ingest_all('s_sql_$1')")
	[ "$(q "SELECT count(*) FROM s_sql_$1")" = "$EVENTS" ] || die "sql run $1: not every event stored"
	echo "$s"
}

kafka_run() { # rep -> seconds
	local r=$1
	q "SELECT eventkit.create_stream('s_kafka_$r')" >/dev/null
	# A session holds the stream in EXCLUSIVE mode: the consumer starts,
	# polls its first batch and waits for it; the clock starts when the
	# session lets go.
	rm -f "$W/locked_$r"
	as_pg "${PSQL[@]}" -At >"$W/kafka_$r.out" 2>&1 <<EOF &
BEGIN;
LOCK TABLE s_kafka_$r IN EXCLUSIVE MODE;
\\! touch $W/locked_$r
DO \$\$
BEGIN
	FOR i IN 1 .. 1200 LOOP
		PERFORM pg_stat_clear_snapshot();
		EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity
						   WHERE backend_type = 'eventkit kafka' AND wait_event_type = 'Lock');
		PERFORM pg_sleep(0.05);
	END LOOP;
END
\$\$;
COMMIT;
DO \$\$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	WHILE (SELECT coalesce(sum(o.messages), 0) FROM eventkit.kafka_offsets o
			 JOIN eventkit.kafka_source_config c USING (source_id) WHERE c.name = 'k$r') < $EVENTS LOOP
		PERFORM pg_sleep(0.02);
		IF clock_timestamp() - t0 > interval '30 minutes' THEN
			RAISE EXCEPTION 'the consumer did not finish';
		END IF;
	END LOOP;
	RAISE WARNING 'seconds=%', extract(epoch FROM clock_timestamp() - t0);
END
\$\$;
EOF
	local bg=$!
	for _ in $(seq 600); do [ -e "$W/locked_$r" ] && break; sleep 0.05; done
	q "SELECT eventkit.create_kafka_source('k$r', 's_kafka_$r', '$BOOT', 'events')" >/dev/null
	wait $bg || { cat "$W/kafka_$r.out" >&2; die "kafka run $r failed"; }
	[ "$(q "SELECT count(*) FROM s_kafka_$r")" = "$EVENTS" ] || die "kafka run $r: not every event stored"
	q "SELECT eventkit.drop_kafka_source('k$r')" >/dev/null
	sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$W/kafka_$r.out"
}

SQL_RATES=()
KAFKA_RATES=()
log "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
for r in $(seq 1 "$REPEAT"); do
	s=$(sql_run "$r")
	k=$(kafka_run "$r")
	sr=$(awk -v n="$EVENTS" -v s="$s" 'BEGIN { printf "%d", n / s }')
	kr=$(awk -v n="$EVENTS" -v s="$k" 'BEGIN { printf "%d", n / s }')
	SQL_RATES+=("$sr")
	KAFKA_RATES+=("$kr")
	log "repetition $r: sql ${sr} events/s (${s}s), kafka ${kr} events/s (${k}s), ratio $(awk -v a="$kr" -v b="$sr" 'BEGIN { printf "%.2f", a / b }')"
done

stats() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%d %d %d", m, v[1], v[NR] }'; }
read -r smed smin smax <<<"$(stats "${SQL_RATES[@]}")"
read -r kmed kmin kmax <<<"$(stats "${KAFKA_RATES[@]}")"
printf 'events=%d batch=%d repeat=%d partitions=%d load=%s\n' "$EVENTS" "$BATCH" "$REPEAT" "$PARTITIONS" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s events/s median=%-8s min=%-8s max=%-8s\n' sql "$smed" "$smin" "$smax" kafka "$kmed" "$kmin" "$kmax"
printf 'ratio kafka/sql (medians) = %s (goal >= 0.8)\n' "$(awk -v a="$kmed" -v b="$smed" 'BEGIN { printf "%.2f", a / b }')"
