#!/usr/bin/env bash
# Scale-out on Citus, benchmark (not part of CI; docs/citus.md).
#
# On this machine, four throwaway PostgreSQL 15 instances: a plain one with
# eventkit (single node) and a Citus cluster (coordinator and two workers,
# shared_preload_libraries = 'citus,eventkit').  The same deterministic
# Segment-style events (~5% re-sent) in batches of BATCH, one transaction
# per batch, one client, by turns, REPEAT times, each time into a new
# stream:
#   single       eventkit.ingest on the plain instance
#   coordinator  eventkit.ingest on the coordinator, into a stream made by
#                eventkit.distribute_stream(stream, SHARDS)
#   workers      the same stream, the batches split over two clients, one
#                connected to each worker, in parallel (each autocommit call
#                one transaction, as above): each call reaches the other
#                worker too (a node-function call and a two-phase commit)
#   workers_routed  the same events, split by the node that holds each
#                event's user (eventkit.route_events, before the clock
#                starts) into batches of BATCH, in their order, loaded into
#                a table on that node, and ingested there as single and
#                coordinator ingest theirs (CALL of a procedure that
#                ingests each batch and commits), one client per node that
#                holds shards (here the two workers: the coordinator holds
#                none), in parallel: each call claims and writes its own
#                node's shards only.  (The workers path's clients send
#                their batches as literals, which the servers parse:
#                ~20% of a worker backend's CPU under perf.)
# Prints events/s of each (median, min, max), the ratio of each to single
# of the medians, and the load (uptime); and, less dependent on the load
# of a shared machine, the CPU time the servers spent per 1,000 events
# (user + system of every process of the path's nodes: the single
# instance, or the coordinator and both workers; from /proc, median).
#
# Environment: EVENTS (50000) BATCH (1000) REPEAT (3) SHARDS (8)
#              CACHED_CONNS (16: citus.max_cached_conns_per_worker; Citus's
#              default, 1, opens a connection per shard and call)
#              PORT (54350, uses PORT..PORT+3) PGBIN (pg_config's bindir)
#              KEEP (0)
#              ROLLUP (0; 1: every path's stream gets an hourly rollup by
#              event of count, sum and max before the clock starts, so
#              that each call also writes its batch's rollup deltas)
#              ON_SHARDS (on: the rollup made with
#              eventkit.worker_deltas_on_shards = on, its worker delta
#              table on the shards; off: on the coordinator, the default)
# Needs eventkit and Citus installed into that PostgreSQL (make install;
# shared/citus/install-citus.sh).  Run as root or as a user who can initdb.
set -euo pipefail

EVENTS=${EVENTS:-50000}
BATCH=${BATCH:-1000}
REPEAT=${REPEAT:-3}
SHARDS=${SHARDS:-8}
CACHED_CONNS=${CACHED_CONNS:-16}
PORT=${PORT:-54350}
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
KEEP=${KEEP:-0}
ROLLUP=${ROLLUP:-0}
ON_SHARDS=${ON_SHARDS:-on}
export LC_ALL=C.UTF-8 PGTZ=UTC
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
export PGOPTIONS='-c client_min_messages=warning'

BENCH_NAME=citus-bench
. "$(dirname "$0")/citus_cluster.sh"
q single -c "$setup"
q coord -c "$setup"
NB=$(q single -c "SELECT sum(jsonb_array_length(payload->'batch')) FROM batches")
# workers_routed: each node ingests its own batches from a local table
# (a procedure of each node's own: Citus would refuse it on a worker)
for m in w1 w2 coord; do
	q $m -c "SET citus.enable_ddl_propagation = off" -c "CREATE OR REPLACE PROCEDURE run_routed() LANGUAGE plpgsql AS \$\$
		DECLARE b record;
		BEGIN
			FOR b IN SELECT payload FROM routed_batches ORDER BY k LOOP
				PERFORM eventkit.ingest('ev', b.payload);
				COMMIT;
			END LOOP;
		END \$\$"
done
# the workers' clients: each half of the batches as a script of ingest calls
for i in 0 1; do
	q coord -c "SELECT 'SELECT 1 FROM eventkit.ingest(''ev'', ' || quote_literal(payload::text) || '::jsonb);'
				  FROM batches WHERE k % 2 = $i ORDER BY k" >"$W/w$i.sql"
done
chmod 644 "$W"/w?.sql

# CPU seconds (user + system) so far of all processes of the nodes given:
# ended backends count in their postmaster's cutime/cstime, live ones in
# their own utime/stime
TCK=$(getconf CLK_TCK)
cpu_of() {
	local total=0 pm
	for n in "$@"; do
		pm=$(head -1 "$W/$n/postmaster.pid")
		total=$((total + $(awk '{print $14 + $15 + $16 + $17}' /proc/$pm/stat)))
		for c in $(pgrep -P "$pm"); do
			total=$((total + $(awk '{print $14 + $15}' /proc/$c/stat 2>/dev/null || echo 0)))
		done
	done
	echo "$total / $TCK" | bc -l
}

declare -A rates cpus
for r in $(seq 1 "$REPEAT"); do
	for path in single coordinator workers workers_routed; do
		n=single
		[ $path != single ] && n=coord
		q $n -c "SELECT eventkit.drop_rollup('ev_hourly') WHERE to_regclass('ev_hourly') IS NOT NULL" \
			-c "SELECT eventkit.drop_stream(c.oid::regclass) FROM pg_class c WHERE c.oid = to_regclass('ev')" \
			-c "SELECT eventkit.create_stream('ev', key_partitions => 0)" >/dev/null
		[ $path != single ] && q coord -c "SELECT eventkit.distribute_stream('ev', $SHARDS)" >/dev/null 2>&1
		# the partitions of the events' 48 hours, made before the clock
		# starts, on every path (on a distributed stream only the
		# coordinator makes them; a worker quarantines events without one)
		q $n -c "SELECT count(*) FROM generate_series(0, 49) h, LATERAL eventkit.ingest('ev',
				jsonb_build_object('type', 'track', 'messageId', 'warm-' || h, 'userId', 'warm',
				'event', 'Warm', 'timestamp', now() - h * interval '1 hour')) r" >/dev/null
		[ "$ROLLUP" = 1 ] && q $n -c "SET eventkit.worker_deltas_on_shards = $ON_SHARDS" -c "SELECT eventkit.create_rollup('ev_hourly', 'ev', '1 hour', ARRAY['event'],
				ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top'])" >/dev/null
		# workers_routed: each node's events (route_events), in batches
		# of BATCH in their order, a script per node (empty: no client)
		if [ $path = workers_routed ]; then
			q coord -c "DROP TABLE IF EXISTS routed" -c "CREATE TABLE routed AS
				WITH r AS MATERIALIZED (SELECT b.k, r.item, r.nodeport FROM batches b,
										LATERAL eventkit.route_events('ev', b.payload) r)
				SELECT r.nodeport, (row_number() OVER (PARTITION BY r.nodeport ORDER BY b.k, e.i) - 1) / $BATCH AS rk,
					   b.k, e.i, e.ev
				  FROM batches b, LATERAL jsonb_array_elements(b.payload->'batch') WITH ORDINALITY e(ev, i), r
				 WHERE r.k = b.k AND r.item = e.i"
			[ "$(q coord -c "SELECT count(*) FROM routed WHERE nodeport IS NULL")" = 0 ] || die "events without a node"
			for m in coord w1 w2; do
				q $m -c "DROP TABLE IF EXISTS routed_batches" -c "CREATE TABLE routed_batches (k int, payload jsonb)"
				q coord -c "COPY (SELECT rk, jsonb_build_object('sentAt', '2026-01-01T00:00:00Z',
										'batch', jsonb_agg(ev ORDER BY k, i))
									FROM routed WHERE nodeport = $(port_of $m) GROUP BY rk) TO STDOUT" |
					q $m -c "COPY routed_batches FROM STDIN"
				q $m -c "VACUUM ANALYZE routed_batches"
			done
		fi
		q $n -c "CHECKPOINT"
		nodes=single
		[ $path != single ] && nodes="coord w1 w2"
		c0=$(cpu_of $nodes)
		t0=$(date +%s.%N)
		if [ $path = workers ]; then
			q w1 -f "$W/w0.sql" >/dev/null &
			p1=$!
			q w2 -f "$W/w1.sql" >/dev/null &
			p2=$!
			wait $p1
			wait $p2
		elif [ $path = workers_routed ]; then
			pids=""
			for m in coord w1 w2; do
				[ "$(q $m -c "SELECT count(*) FROM routed_batches")" = 0 ] && continue
				q $m -c "CALL run_routed()" &
				pids="$pids $!"
			done
			for p in $pids; do wait $p; done
		else
			q $n -c "CALL run('ev')"
		fi
		t1=$(date +%s.%N)
		# (the clients' backends are gone once psql returns, but their CPU
		# is in their postmaster's cutime only once it has reaped them: a
		# backend not reaped yet, a zombie, counted nothing, and the single
		# path's one backend of 0.3 s then read 0 ms)
		for n2 in $nodes; do
			pm=$(head -1 "$W/$n2/postmaster.pid")
			for _ in $(seq 1 50); do
				grep -qs '^State:[[:space:]]*Z' $(for c in $(pgrep -P "$pm"); do echo /proc/$c/status; done) || break
				sleep 0.01
			done
		done
		c1=$(cpu_of $nodes)
		cpu=$(echo "($c1 - $c0) * 1000 * 1000 / $NB" | bc -l)
		cpus[$path]="${cpus[$path]:-} $cpu"
		stored=$(q $n -c "SELECT count(*) FROM ev WHERE event <> 'Warm'")
		rate=$(echo "$NB / ($t1 - $t0)" | bc -l)
		rates[$path]="${rates[$path]:-} $rate"
		log "$path run $r: $NB events ($stored stored) in $(printf '%.2f' "$(echo "$t1 - $t0" | bc -l)") s: $(printf '%.0f' "$rate") events/s, $(printf '%.0f' "$cpu") CPU ms per 1000 events"
	done
done

stats() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f %.0f %.0f", m, a[1], a[NR]}'; }
read -r ms mins maxs <<<"$(echo "${rates[single]}" | stats)"
read -r mc minc maxc <<<"$(echo "${rates[coordinator]}" | stats)"
read -r mw minw maxw <<<"$(echo "${rates[workers]}" | stats)"
read -r mr minr maxr <<<"$(echo "${rates[workers_routed]}" | stats)"
echo "events per run: $NB in batches of $BATCH (~5% re-sent), $REPEAT runs, $SHARDS shards on 2 workers$([ "$ROLLUP" = 1 ] && echo ', a rollup on every stream')"
printf '%-14s median %8s events/s  (min %s, max %s)\n' single "$ms" "$mins" "$maxs"
printf '%-14s median %8s events/s  (min %s, max %s)\n' coordinator "$mc" "$minc" "$maxc"
printf '%-14s median %8s events/s  (min %s, max %s)\n' workers "$mw" "$minw" "$maxw"
printf '%-14s median %8s events/s  (min %s, max %s)\n' workers_routed "$mr" "$minr" "$maxr"
printf 'ratio coordinator/single (medians): %.2f\n' "$(echo "$mc / $ms" | bc -l)"
printf 'ratio workers/single (medians): %.2f\n' "$(echo "$mw / $ms" | bc -l)"
printf 'ratio workers_routed/single (medians): %.2f\n' "$(echo "$mr / $ms" | bc -l)"
for path in single coordinator workers workers_routed; do
	read -r m mn mx <<<"$(echo "${cpus[$path]}" | stats)"
	printf '%-14s server CPU per 1000 events: median %s ms (min %s, max %s)\n' $path "$m" "$mn" "$mx"
done
echo "load: $(uptime)"
