#!/usr/bin/env bash
# Times the analyst queries of docs/analytics.md (not part of CI).
#
# Creates a throwaway PostgreSQL 15 cluster, generates EVENTS events with
# analytics_data.sql, makes the typed views (eventkit.create_event_views), and
# runs each query of docs/analytics.md (the "-- analytics: <name>" sql
# blocks, as sql/analytics.sql reads them) REPEAT times, by turns with its
# baseline: the same query written by hand over the stream's jsonb (what an
# analyst wrote before the views: the same filters, casts by hand).  Prints
# per query the median, min and max in ms of both and the ratio of the
# medians (views / by hand), and the load average.
#
# Environment: EVENTS (1000000) BATCH (1000) REPEAT (5) PORT (54337)
#              PGBIN (/usr/lib/postgresql/15/bin) KEEP (0: 1 keeps the cluster)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
EVENTS=${EVENTS:-1000000}
BATCH=${BATCH:-1000}
REPEAT=${REPEAT:-5}
PORT=${PORT:-54337}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
KEEP=${KEEP:-0}
export LC_ALL=C.UTF-8
export PGTZ=UTC
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
export PGOPTIONS='-c client_min_messages=warning'

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
if [ "$(id -u)" = 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi

W=$(mktemp -d /tmp/eventkit-analytics-bench.XXXXXX)
mkdir -p "$W/test" && cp -r "$ROOT/test/fixtures" "$W/test/" && cp "$HERE/analytics_data.sql" "$ROOT/docs/analytics.md" "$W/"
[ "$(id -u)" = 0 ] && chown -R postgres: "$W"
chmod 700 "$W"
cleanup() {
	local rc=$?
	[ -f "$W/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$W/data" -m fast -w stop >/dev/null 2>&1 || true
	if [ "$KEEP" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$W" -p "$PORT" -U postgres -d bench)
q() { as_pg "${PSQL[@]}" -Atc "$1"; }
timed_ms() { # file
	as_pg "$PGBIN/psql" -X -v ON_ERROR_STOP=1 -h "$W" -p "$PORT" -U postgres -d bench \
		-c '\timing on' -f "$1" | awk '/^Time: / { print $2 }' | tail -1
}
stats() { # values... -> "median min max"
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f %.1f %.1f", m, v[1], v[NR] }'
}

as_pg "$PGBIN/initdb" -D "$W/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >"$W/initdb.log" 2>&1 \
	|| { cat "$W/initdb.log" >&2; die "initdb failed"; }
cat >>"$W/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$W'
shared_buffers = 1GB
work_mem = 64MB
max_wal_size = 4GB
timezone = 'UTC'
lc_messages = 'C'
CONF
as_pg "$PGBIN/pg_ctl" -D "$W/data" -l "$W/server.log" -w -t 120 start >/dev/null \
	|| { tail -20 "$W/server.log" >&2; die "server did not start"; }
as_pg "$PGBIN/psql" -X -q -h "$W" -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE bench"
q "CREATE EXTENSION eventkit"
log "PostgreSQL $(q 'SHOW server_version'), $(nproc) cores; generating $EVENTS events"
t0=$(date +%s)
(cd "$W" && as_pg "${PSQL[@]}" -v events="$EVENTS" -v batch="$BATCH" -f analytics_data.sql) >&2
log "generated and ingested in $(( $(date +%s) - t0 )) s: $(q "SELECT count(*) FROM shop_events") events, $(q "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'shop_events'::regclass")"
q "CREATE SCHEMA analytics"
q "SELECT count(*) FROM eventkit.create_event_views('shop_events', 'analytics')" >/dev/null

# the queries, from the document; the baselines: the same, over the stream by hand
NAMES=$(cd "$W" && as_pg "${PSQL[@]}" -At <<'SQL'
\set doc `cat analytics.md`
SELECT m[1] FROM regexp_matches(:'doc', E'```sql\n-- analytics: ([a-z_]+)\n([^`]*)```', 'g') AS m;
SQL
)
BY_HAND_SRC="COALESCE(user_id, anonymous_id) AS resolved_user_id, ts FROM public.shop_events WHERE type = 'track'"
for n in $NAMES; do
	(cd "$W" && as_pg "${PSQL[@]}" -At -v name="$n" <<'SQL'
\set doc `cat analytics.md`
SELECT m[2] FROM regexp_matches(:'doc', E'```sql\n-- analytics: ([a-z_]+)\n([^`]*)```', 'g') AS m WHERE m[1] = :'name';
SQL
	) | as_pg tee "$W/$n.sql" >/dev/null
	sed -e "s/analytics\.tracks/(SELECT $BY_HAND_SRC)/" \
		-e "s/analytics\.product_viewed/(SELECT $BY_HAND_SRC AND event = 'Product Viewed')/" \
		-e "s/analytics\.product_added/(SELECT $BY_HAND_SRC AND event = 'Product Added')/" \
		-e "s/analytics\.signed_up/(SELECT $BY_HAND_SRC AND event = 'Signed Up')/" \
		-e "s/analytics\.order_completed/(SELECT CASE WHEN jsonb_typeof(properties -> 'revenue') = 'number' THEN (properties ->> 'revenue')::numeric END AS revenue, $BY_HAND_SRC AND event = 'Order Completed')/" \
		"$W/$n.sql" | as_pg tee "$W/$n.hand.sql" >/dev/null
	grep -q 'analytics\.' "$W/$n.hand.sql" && die "no by-hand form for a view in query $n"
	# same answer both ways
	[ "$(q "$(cat "$W/$n.sql")" | md5sum)" = "$(q "$(cat "$W/$n.hand.sql")" | md5sum)" ] || die "query $n: the views and the by-hand form disagree"
done

printf '\n%-14s %28s %28s %8s\n' query "views ms (median min max)" "by hand ms (median min max)" ratio
for n in $NAMES; do
	timed_ms "$W/$n.sql" >/dev/null; timed_ms "$W/$n.hand.sql" >/dev/null    # warm
	a=(); b=()
	for r in $(seq "$REPEAT"); do
		a+=("$(timed_ms "$W/$n.sql")")
		b+=("$(timed_ms "$W/$n.hand.sql")")
	done
	sa=$(stats "${a[@]}"); sb=$(stats "${b[@]}")
	printf '%-14s %28s %28s %8s\n' "$n" "$sa" "$sb" \
		"$(awk -v x="${sa%% *}" -v y="${sb%% *}" 'BEGIN { printf "%.2f", x / y }')"
done
printf '\nevents %s, repetitions %s, load: %s\n' "$EVENTS" "$REPEAT" "$(uptime | sed 's/.*load average: //')"
