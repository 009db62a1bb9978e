#!/usr/bin/env bash
# Rollups of a distributed stream, benchmark (not part of CI; docs/citus.md,
# "Rollups").
#
# On this machine, four throwaway PostgreSQL 15 instances: a plain one with
# eventkit (single node) and a Citus cluster (coordinator and two workers,
# shared_preload_libraries = 'citus,eventkit'; the coordinator holds no
# shards).  REPEAT times, on each path, a new stream (on the cluster made by
# eventkit.distribute_stream(stream, SHARDS)) with a rollup (hourly, by
# event: count, sum, max, distinct users), refreshed once while empty; then
# EVENTS deterministic Segment-style events (~5% re-sent) ingested in
# batches of BATCH on the single instance or the coordinator, one client;
# then, each in a new session (as the refresh job's worker is), the
# realtime view read (SELECT count(*), sum(count) FROM <rollup>_realtime)
# and the rollup refreshed (eventkit.refresh_rollup), timed by psql's
# \timing.  Prints the median, min and max of each per path (and of the
# ingest's events/s, sent events over the wall time of all batches),
# whether the rollup's sum(count) equals the events stored, and the load
# (uptime).
#
# Environment: EVENTS (20000) BATCH (1000) REPEAT (5) SHARDS (8)
#              PORT (55420, uses PORT..PORT+3) PGBIN (pg_config's bindir)
#              KEEP (0)
#              ON_SHARDS (on, the default since 1.17: the rollup made with
#              eventkit.worker_deltas_on_shards on, its worker delta table
#              on the shards, folded by generations; off: on the
#              coordinator)
# Needs eventkit, Citus and hll installed into that PostgreSQL.  Run as
# root or as a user who can initdb.
set -euo pipefail

EVENTS=${EVENTS:-20000}
BATCH=${BATCH:-1000}
REPEAT=${REPEAT:-5}
SHARDS=${SHARDS:-8}
PORT=${PORT:-55420}
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
KEEP=${KEEP:-0}
ON_SHARDS=${ON_SHARDS:-on}
export LC_ALL=C.UTF-8 PGTZ=UTC
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
export PGOPTIONS="-c client_min_messages=warning -c eventkit.worker_deltas_on_shards=$ON_SHARDS"

BENCH_NAME=citus-rollup-bench
CACHED_CONNS=16
. "$(dirname "$0")/citus_cluster.sh"
setup="CREATE EXTENSION hll;$setup"
q single -c "$setup"
q coord -c "$setup"
# the workers' clients: each half of the batches as a script of ingest calls
for i in 0 1; do
	q coord -c "SELECT 'SELECT 1 FROM eventkit.ingest(''ev'', ' || quote_literal(payload::text) || '::jsonb);'
				  FROM batches WHERE k % 2 = $i ORDER BY k" >"$W/w$i.sql"
done
chmod 644 "$W"/w?.sql
PATHS="single coordinator workers workers-plain"

# milliseconds of the statement, in a new session (psql's \timing)
timed() { q "$1" -c '\timing on' -c "$2" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1; }

declare -A views refreshes ingests
for r in $(seq 1 "$REPEAT"); do
	for path in $PATHS; do
		n=single
		[ $path != single ] && n=coord
		q $n -c "SELECT eventkit.drop_rollup('ev_hourly') WHERE to_regclass('ev_hourly') IS NOT NULL" \
			-c "SELECT eventkit.drop_stream(c.oid::regclass) FROM pg_class c WHERE c.oid = to_regclass('ev')" \
			-c "SELECT eventkit.create_stream('ev', key_partitions => 0)" >/dev/null 2>&1
		[ $path != single ] && q coord -c "SELECT eventkit.distribute_stream('ev', $SHARDS)" >/dev/null 2>&1
		q $n -c "SELECT count(*) FROM generate_series(0, 49) h, LATERAL eventkit.ingest('ev',
				jsonb_build_object('type', 'track', 'messageId', 'warm-' || h, 'userId', 'warm',
				'event', 'Warm', 'timestamp', now() - h * interval '1 hour')) r" >/dev/null
		[ $path != workers-plain ] && q $n -c "SELECT eventkit.create_rollup('ev_hourly', 'ev', '1 hour', ARRAY['event'],
				ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top',
					  'distinct(user_id) AS users'])" -c "SELECT eventkit.refresh_rollup('ev_hourly')" >/dev/null 2>&1
		t0=$(date +%s.%N)
		case $path in
			workers | workers-plain)
				q w1 -f "$W/w0.sql" >/dev/null &
				p1=$!
				q w2 -f "$W/w1.sql" >/dev/null &
				p2=$!
				wait $p1
				wait $p2
				;;
			*) q $n -c "CALL run('ev')" ;;
		esac
		t1=$(date +%s.%N)
		rate=$(echo "$EVENTS / ($t1 - $t0)" | bc -l)
		ingests[$path]="${ingests[$path]:-} $rate"
		q $n -c "CHECKPOINT"
		if [ $path = workers-plain ]; then
			log "$path run $r: ingest $(printf '%.0f' "$rate") events/s (no rollup)"
			continue
		fi
		v=$(timed $n "SELECT count(*), sum(count) FROM ev_hourly_realtime")
		f=$(timed $n "SELECT eventkit.refresh_rollup('ev_hourly')")
		views[$path]="${views[$path]:-} $v"
		refreshes[$path]="${refreshes[$path]:-} $f"
		ok=$(q $n -c "SELECT (SELECT sum(count) FROM ev_hourly) = (SELECT count(*) FROM ev)")
		log "$path run $r: ingest $(printf '%.0f' "$rate") events/s, realtime view $v ms, refresh $f ms (rollup sum(count) = events stored: $ok)"
	done
done

stats() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f", m, a[1], a[NR]}'; }
echo "$EVENTS events in batches of $BATCH (~5% re-sent) per run, $REPEAT runs, $SHARDS shards on 2 workers"
for path in $PATHS; do
	read -r m mn mx <<<"$(echo "${ingests[$path]}" | stats)"
	printf '%-13s ingest:        median %s events/s (min %s, max %s)\n' $path "$m" "$mn" "$mx"
	[ $path = workers-plain ] && continue
	read -r m mn mx <<<"$(echo "${views[$path]}" | stats)"
	printf '%-13s realtime view: median %s ms (min %s, max %s)\n' $path "$m" "$mn" "$mx"
	read -r m mn mx <<<"$(echo "${refreshes[$path]}" | stats)"
	printf '%-13s refresh:       median %s ms (min %s, max %s)\n' $path "$m" "$mn" "$mx"
done
echo "load: $(uptime)"
