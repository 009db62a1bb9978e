#!/usr/bin/env bash
# eventkit ingest benchmark (not part of CI).  See test/bench/README.md.
#
# Creates a throwaway PostgreSQL 15 cluster, generates the events
# deterministically, measures side by side in one run
#   copy           COPY of the flattened events into a daily-partitioned table (1.00)
#   insert_select  INSERT ... SELECT jsonb_array_elements(batch), one txn per batch
#   eventkit_1c    eventkit.ingest(text), one batch per txn, 1 pgbench client
#   eventkit_1c_jsonb  the same, the payload cast to jsonb first: ingest(jsonb)
#   eventkit_2c    eventkit_1c with 2 clients
#   eventkit_noid  (IDENTITY=1) eventkit_1c with the identity stage off, measured
#                  by turns with eventkit_1c (which one goes first alternates):
#                  the identity graph's cost at ingest (about half the events
#                  carry both userId and anonymousId: links)
#   eventkit_plan  (PLAN=1) eventkit_1c with a tracking plan attached: every event
#                  type checked against the e-commerce schema of plan_schema.json
#                  (~2% violations, quarantined)
#   eventkit_10M   (BIG=1) eventkit_1c on a stream already holding 10M events, by turns
#                  with eventkit_10M_ctl: the same on an empty stream in the same server
# and removes the cluster on exit.
#
# Environment: EVENTS (1000000) BATCH (1000) REPEAT (3) BIG (0) BIG_EVENTS (10000000)
#              PORT (54329) PGBIN (/usr/lib/postgresql/15/bin) EVENTKIT (auto|0|1)
#              MALLOC_TUNE (0: 1 starts the server with glibc malloc tunables that keep
#                freed memory in the process, see README)
#              PLAN (1: 0 skips eventkit_plan)
#              IDENTITY (0: 1 adds eventkit_noid, and prints identity_cost (wall
#                clock) and identity_cost_cpu: the server processes' CPU time)
#              ONLY_1C (0: 1 skips eventkit_1c_jsonb and eventkit_2c)
#              INSERT_SELECT (1: 0 skips insert_select, the slowest reference,
#                e.g. when only identity_cost is of interest)
#              SMALL (0: 1 sends small events of about 300 bytes instead of about
#                1 KB, see gen.sql; it sets PLAN=0: the plan describes the large ones)
#              KEEP (0: 1 keeps the cluster directory for inspection)
#              DIAG (0: 1 logs, per eventkit phase, the WAL it wrote (bytes, records,
#                full-page images: pg_stat_wal), checkpoints, identity_links' row
#                counters (inserts, updates, HOT updates) and autovacuum runs, and
#                the server CPU split by process kind; see README)
#              PERF (empty: a directory: each eventkit phase's backend is profiled
#                with perf record -e cpu-clock into PERF/<label>.<rep>.data)
#              USERS (50000: gen.sql's user ids; EVENTS=50000 USERS=2500 is the run
#                scaled down by 20, as instructions.sh's whole-run measure)
#              EXTRA_CONF (empty: lines appended to postgresql.conf, e.g.
#                'autovacuum = off' for an experiment; the run's report says so)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
EVENTS=${EVENTS:-1000000}
BATCH=${BATCH:-1000}
REPEAT=${REPEAT:-3}
BIG=${BIG:-0}
BIG_EVENTS=${BIG_EVENTS:-10000000}
PORT=${PORT:-54329}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
EVENTKIT=${EVENTKIT:-auto}
KEEP=${KEEP:-0}
MALLOC_TUNE=${MALLOC_TUNE:-0}
PLAN=${PLAN:-1}
IDENTITY=${IDENTITY:-0}
ONLY_1C=${ONLY_1C:-0}
INSERT_SELECT=${INSERT_SELECT:-1}
SMALL=${SMALL:-0}
DIAG=${DIAG:-0}
[ "$SMALL" = 1 ] && PLAN=0
export LC_ALL=C.UTF-8
export PGTZ=UTC
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE
export PGOPTIONS='-c client_min_messages=warning'

NB=$(( (EVENTS + BATCH - 1) / BATCH ))
FAILED=0

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The server (and everything that writes into the cluster directory) runs as
# the postgres OS user when we are root; otherwise as the invoking user.
if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi

W=$(mktemp -d /tmp/eventkit-bench.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$W"
chmod 700 "$W"
# Scripts the clients read.
cp "$HERE"/ingest.pgbench "$HERE"/ingest_pair.pgbench "$HERE"/ingest_jsonb.pgbench "$HERE"/insert_select.pgbench "$HERE"/prefill.pgbench "$W"/
chmod 644 "$W"/*.pgbench
[ "$(id -u)" = 0 ] && chown postgres: "$W"/*.pgbench

cleanup() {
	local rc=$?
	if [ -f "$W/data/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$W/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if [ "$KEEP" = 1 ]; then
		log "kept $W"
	else
		rm -rf "$W"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$W" -p "$PORT" -U postgres)
q() { as_pg "${PSQL[@]}" -d bench -Atc "$1"; }         # one value / rows, unaligned
qq() { as_pg "${PSQL[@]}" -d bench -c "$1" >/dev/null; } # statement, no output
now_ns() { date +%s%N; }
# Machine-wide CPU time in use (user+nice+system+irq+softirq+steal), in ticks.
cpu_ticks() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)
# CPU time (utime + stime, in clock ticks) of the cluster's server processes:
# the postmaster's own and its children's that it has reaped (cutime + cstime:
# a backend that exits during a phase, e.g. pgbench's, lands there), plus every
# live child's (backends, checkpointer, walwriter, eventkit's workers: all
# postgres processes of the cluster).  Other programs on the machine do not
# count: steadier than the wall clock on a shared machine.
server_ticks() {
	local pm
	pm=$(head -1 "$W/data/postmaster.pid")
	# (a process may exit between the glob and the read: cat then fails, which is fine)
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" '{
		pid = $1; sub(/^.*\) /, "")    # fields after "pid (comm) ": $1 state, $2 ppid, $12 utime ...
		if (pid == pm) t += $12 + $13 + $14 + $15
		else if ($2 == pm) t += $12 + $13 + $14 + $15
	} END { printf "%d", t }'
}
# timer_start / timer_stop: ELAPSED (ns) and CPUUSE (CPUs busy on average over the
# whole machine during the measurement: ~1 for one backend; more for a 1-client run
# means something else was running).
# SRVTICKS: server_ticks over the measurement (read a moment after it ends, so that a
# backend that has just exited has been reaped into the postmaster's counts).
timer_start() { T_SRV0=$(server_ticks); T_CPU0=$(cpu_ticks); T_NS0=$(now_ns); }
timer_stop() {
	local t1 c1
	t1=$(now_ns); c1=$(cpu_ticks)
	ELAPSED=$(( t1 - T_NS0 ))
	sleep 0.2
	SRVTICKS=$(( $(server_ticks) - T_SRV0 ))
	CPUUSE=$(awk -v c="$(( c1 - T_CPU0 ))" -v hz="$CLK_TCK" -v ns="$ELAPSED" 'BEGIN { printf "%.2f", c / hz / (ns / 1e9) }')
}

# DIAG=1: what a phase cost besides its own backend's work.  diag_ticks prints
# the server CPU ticks by process kind (the live children by their title; the
# postmaster's reaped children, i.e. the phase's client backend and the
# autovacuum workers that exited, as "reaped"); diag_snap the counters
# (pg_stat_wal, pg_stat_bgwriter, identity_links' row counters, autovacuum
# runs over all tables) as one line of name=value.
diag_ticks() {
	local pm
	pm=$(head -1 "$W/data/postmaster.pid")
	for p in /proc/[0-9]*; do
		local st kind
		st=$(cat "$p/stat" 2>/dev/null) || continue
		kind=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | sed -e 's/^postgres: //' -e 's/ *$//') || continue
		printf '%s\t%s\n' "$kind" "${st#*) }"
	done | awk -F'\t' -v pm="$pm" '{
		split($2, f, " ")    # f[1] state, f[2] ppid, f[12] utime, f[13] stime, f[14] cutime, f[15] cstime
		k = $1
		if (k ~ /^autovacuum worker/) k = "autovacuum_worker"
		else if (k ~ /^autovacuum launcher/) k = "autovacuum_launcher"
		else if (k ~ /^checkpointer/) k = "checkpointer"
		else if (k ~ /^walwriter/) k = "walwriter"
		else if (k ~ /^background writer/) k = "bgwriter"
		else k = "other"
		if (f[2] == pm) t[k] += f[12] + f[13]
	} END { for (k in t) printf "%s=%d ", k, t[k] }'
	awk '{ sub(/^.*\) /, ""); split($0, f, " "); printf "postmaster_reaped=%d", f[14] + f[15] }' "/proc/$pm/stat"
}
diag_snap() {
	q "SELECT format('wal_bytes=%s wal_records=%s wal_fpi=%s wal_buffers_full=%s wal_write=%s wal_sync=%s', wal_bytes, wal_records, wal_fpi, wal_buffers_full, wal_write, wal_sync) FROM pg_stat_wal" | tr '\n' ' '
	q "SELECT format('ckpt=%s ckpt_buffers=%s bgw_buffers=%s backend_buffers=%s', checkpoints_timed + checkpoints_req, buffers_checkpoint, buffers_clean, buffers_backend) FROM pg_stat_bgwriter" | tr '\n' ' '
	q "SELECT format('links_ins=%s links_upd=%s links_hot=%s links_del=%s links_av=%s', n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, autovacuum_count + autoanalyze_count)
	     FROM pg_stat_all_tables WHERE relid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	     WHERE n.nspname = 'eventkit' AND c.relname IN ('identity_links', 'identity_links_bench_off'))" | tr '\n' ' '
	printf 'wal_files=%s ' "$(ls "$W/data/pg_wal" | grep -c '^[0-9A-F]\{24\}$')"
	q "SELECT format('av_all=%s', sum(autovacuum_count + autoanalyze_count)) FROM pg_stat_all_tables" | tr '\n' ' '
	diag_ticks
}
# PERF=dir: perf record the phase's (first) pgbench backend, from when it
# shows in pg_stat_activity (within 50 ms of its start) until it exits.
perf_watch() { # label
	mkdir -p "$PERF"
	(
		for _ in $(seq 1 400); do
			pid=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' LIMIT 1")
			[ -n "$pid" ] && break
			sleep 0.05
		done
		[ -n "$pid" ] && perf record -q -e cpu-clock -F 1000 -g -p "$pid" -o "$PERF/$1.$rep.data" >/dev/null 2>&1
	) &
	PERF_PID=$!
}
# backend_watch: the CPU ticks (utime + stime) of the phase's pgbench backend
# alone, into $W/backend_ticks: read from its /proc/<pid>/stat every 20 ms until
# it exits (the last reading misses at most its last 20 ms).  Autovacuum
# workers, the checkpointer and the WAL writer are left out: what the ingest
# itself costs, the steadiest of the three measures on a shared machine.
backend_watch() {
	rm -f "$W/backend_ticks"
	(
		pid=
		for _ in $(seq 1 400); do
			pid=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' LIMIT 1")
			[ -n "$pid" ] && break
			sleep 0.05
		done
		[ -n "$pid" ] || exit 0
		last=
		while st=$(cat "/proc/$pid/stat" 2>/dev/null); do
			last=$(awk '{ sub(/^.*\) /, ""); split($0, f, " "); print f[12] + f[13] }' <<<"$st")
			sleep 0.02
		done
		echo "$last" >"$W/backend_ticks"
	) &
	BW_PID=$!
}
# diag_delta "before" "after": the after-minus-before of each name=value
diag_delta() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); va[kv[1]] = kv[2] }
		n = split(b, y, " "); for (i = 1; i <= n; i++) { split(y[i], kv, "="); printf "%s=%s ", kv[1], kv[2] - va[kv[1]] }
	}'
}

# --- cluster ------------------------------------------------------------------
[ -x "$PGBIN/postgres" ] || die "no PostgreSQL at $PGBIN"
PKGLIB=$("$PGBIN/pg_config" --pkglibdir)
SHAREDIR=$("$PGBIN/pg_config" --sharedir)
if [ "$EVENTKIT" = auto ]; then
	if [ -f "$PKGLIB/eventkit.so" ] && [ -f "$SHAREDIR/extension/eventkit.control" ]; then
		EVENTKIT=1
	else
		EVENTKIT=0
		log "eventkit is not installed (make && make install): eventkit measurements skipped"
	fi
fi

log "initdb in $W/data"
as_pg "$PGBIN/initdb" -D "$W/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >"$W/initdb.log" 2>&1 \
	|| { cat "$W/initdb.log" >&2; die "initdb failed"; }
cat >>"$W/data/postgresql.conf" <<EOF

# --- eventkit bench ---
port = $PORT
listen_addresses = ''
unix_socket_directories = '$W'
max_connections = 20
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 1GB
max_wal_size = 4GB
checkpoint_timeout = 30min
timezone = 'UTC'
log_timezone = 'UTC'
lc_messages = 'C'
EOF
if [ -n "${EXTRA_CONF:-}" ]; then
	printf '%s\n' "$EXTRA_CONF" >>"$W/data/postgresql.conf"
	log "EXTRA_CONF: $EXTRA_CONF"
fi
if [ "$EVENTKIT" = 1 ]; then
	echo "shared_preload_libraries = 'eventkit'" >>"$W/data/postgresql.conf"
fi

# MALLOC_TUNE=1: glibc keeps freed memory (no mmap for big chunks, no trim), so
# a backend does not page-fault its way through fresh memory on every batch.
MALLOC_ENV=()
if [ "$MALLOC_TUNE" = 1 ]; then
	MALLOC_ENV=(MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=268435456 MALLOC_TOP_PAD_=67108864)
fi
start_server() {
	as_pg env "${MALLOC_ENV[@]}" "$PGBIN/pg_ctl" -D "$W/data" -l "$W/server.log" -w -t 120 start >/dev/null
}
if ! start_server; then
	if [ "$EVENTKIT" = 1 ]; then
		log "server did not start with shared_preload_libraries = 'eventkit'; retrying without it"
		tail -5 "$W/server.log" >&2 || true
		sed -i "s/^shared_preload_libraries = 'eventkit'/#&/" "$W/data/postgresql.conf"
		start_server || { tail -20 "$W/server.log" >&2; die "server did not start"; }
	else
		tail -20 "$W/server.log" >&2; die "server did not start"
	fi
fi
as_pg "${PSQL[@]}" -d postgres -c "CREATE DATABASE bench" >/dev/null
PGVER=$(q "SHOW server_version")
log "PostgreSQL $PGVER on port $PORT; $(nproc) cores"

# --- data ---------------------------------------------------------------------
RTS=$(q "SELECT date_trunc('second', now())")
log "generating $EVENTS events in $NB batches of $BATCH (reference time $RTS)"
t0=$(now_ns)
as_pg mkdir -p "$W/batches"
as_pg "${PSQL[@]}" -d bench -v events="$EVENTS" -v batch="$BATCH" -v rts="$RTS" \
	-v flatfile="$W/flat.tsv" -v batchdir="$W/batches" -v small="$SMALL" ${USERS:+-v users="$USERS"} -f "$HERE/gen.sql" >/dev/null
t1=$(now_ns)
DISTINCT=$(q "SELECT v FROM bench_meta WHERE k = 'distinct'")
NBATCHES=$(q "SELECT v FROM bench_meta WHERE k = 'batches'")
[ "$NBATCHES" = "$NB" ] || die "expected $NB batches, got $NBATCHES"
log "generated in $(( (t1 - t0) / 1000000000 ))s: $EVENTS events sent, $DISTINCT distinct, $(( EVENTS - DISTINCT )) re-sent duplicates;" \
	"batch payload avg $(q "SELECT v FROM bench_meta WHERE k = 'payload_bytes_avg'") bytes," \
	"flat file $(( $(stat -c %s "$W/flat.tsv") / 1048576 )) MB; ts $(q "SELECT v FROM bench_meta WHERE k = 'ts_min'") .. $(q "SELECT v FROM bench_meta WHERE k = 'ts_max'")"
# Warm the caches the same way for every path.
q "SELECT sum(octet_length(payload)) FROM bench_batches" >/dev/null
cat "$W/flat.tsv" >/dev/null

if [ "$EVENTKIT" = 1 ]; then
	qq "CREATE EXTENSION eventkit"
	# Realistic 1,000-event batches (~1 KB per event) exceed Segment's 500 KB batch
	# default: raise the size/count limits for this database only, if below need.
	MAXB=$(q "SELECT v FROM bench_meta WHERE k = 'payload_bytes_max'")
	while IFS='|' read -r name unit setting maxval; do
		[ -n "$name" ] || continue
		case "$name" in
			eventkit.max_batch_bytes) need=$(( MAXB * 2 ));;
			eventkit.max_batch_items) need=$(( BATCH ));;
			*) continue;;
		esac
		case "$unit" in kB) need=$(( (need + 1023) / 1024 ));; MB) need=$(( (need + 1048575) / 1048576 ));; B|'') ;; *) continue;; esac
		if [ "$setting" -lt "$need" ]; then
			[ -n "$maxval" ] && [ "$maxval" -lt "$need" ] && need=$maxval
			qq "ALTER DATABASE bench SET $name = $need"
			log "ALTER DATABASE bench SET $name = $need${unit:+ $unit} (was $setting)"
		fi
	done < <(q "SELECT name, coalesce(unit, ''), setting, coalesce(max_val, '') FROM pg_settings
	             WHERE name IN ('eventkit.max_batch_bytes', 'eventkit.max_batch_items')")
fi

# --- measurements -------------------------------------------------------------
declare -A RATES     # name -> space-separated events/s of each repetition
declare -A TICKS     # name -> space-separated server CPU ticks of each repetition
declare -A BTICKS    # name -> the same, of the (one-client) pgbench backend alone

rate() { awk -v n="$1" -v ns="$2" 'BEGIN { printf "%d", n / (ns / 1e9) }'; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e9 }'; }
check() { # description, got, want
	if [ "$2" != "$3" ]; then
		log "CHECK FAILED: $1: got $2, want $3"
		FAILED=1
	fi
}

# pgbench over all batches, each exactly once: clients share bench_seq; a
# transaction that draws an id past the last batch does nothing.
run_pgbench() { # script clients [extra pgbench args...]
	local script=$1 clients=$2; shift 2
	local per=$(( (NB + clients - 1) / clients ))
	qq "SELECT setval('bench_seq', 1, false)"
	as_pg "$PGBIN/pgbench" -n -h "$W" -p "$PORT" -U postgres -c "$clients" -j "$clients" \
		-t "$per" -f "$W/$script" "$@" bench >"$W/pgbench.out" 2>&1 \
		|| { cat "$W/pgbench.out" >&2; tail -20 "$W/server.log" >&2; die "pgbench $script failed"; }
}

measure_copy() {
	qq "SELECT bench_make_flat('flat_events')"
	qq "CHECKPOINT"
	timer_start
	qq "COPY flat_events FROM '$W/flat.tsv'"
	timer_stop
	check "copy row count" "$(q "SELECT count(*) FROM flat_events")" "$EVENTS"
	qq "DROP TABLE flat_events"
}

measure_insert_select() {
	qq "SELECT bench_make_flat('ins_events')"
	qq "CHECKPOINT"
	timer_start
	run_pgbench insert_select.pgbench 1
	timer_stop
	check "insert_select row count" "$(q "SELECT count(*) FROM ins_events")" "$EVENTS"
	qq "DROP TABLE ins_events"
}

fresh_stream() { # [name, default bench_events]
	local name=${1:-bench_events}
	q "SELECT eventkit.drop_stream(c.oid::regclass) FROM pg_class c
	    WHERE c.oid = to_regclass('$name')" >/dev/null
	q "SELECT eventkit.create_stream('$name', partition_interval => '1 day', premake => 4,
	                                 retention => NULL, key_partitions => 0, dedup_window => '7 days')" >/dev/null
	qq "TRUNCATE bench_results"
}

verify_stream() { # label expected_rows
	local label=$1 rows=$2 r
	r=$(q "SELECT coalesce(sum(accepted),0), coalesce(sum(duplicates),0), coalesce(sum(conflicts),0),
	              coalesce(sum(quarantined),0), coalesce(sum(rejected),0), count(*) FROM bench_results")
	IFS='|' read -r acc dup con qua rej calls <<<"$r"
	log "  $label: accepted=$acc duplicates=$dup conflicts=$con quarantined=$qua rejected=$rej (ingest calls $calls)"
	check "$label: count(*) in stream" "$(q "SELECT count(*) FROM bench_events")" "$rows"
	check "$label: accepted + duplicates" "$(( acc + dup ))" "$EVENTS"
	check "$label: ingest calls" "$calls" "$NB"
	check "$label: conflicts + quarantined + rejected" "$(( con + qua + rej ))" 0
}

# Wait (up to 2 minutes) until no autovacuum worker runs: the vacuum and analyze
# of the previous phase's tables (a 1M-row stream, the identity graph) would
# otherwise count in the next phase's server CPU time.
settle_autovacuum() {
	local i
	for i in $(seq 1 120); do
		[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] && return
		sleep 1
	done
	log "  (autovacuum still running after 120 s)"
}

measure_eventkit() { # clients [script label]
	local clients=$1 script=${2:-ingest.pgbench} label=${3:-eventkit_${1}c}
	fresh_stream
	[ "$IDENTITY" = 1 ] && settle_autovacuum
	qq "CHECKPOINT"
	[ "$DIAG" = 1 ] && DIAG0=$(diag_snap)
	[ -n "${PERF:-}" ] && perf_watch "$label"
	[ "$clients" = 1 ] && backend_watch
	timer_start
	run_pgbench "$script" "$clients"
	timer_stop
	[ -n "${PERF:-}" ] && wait "$PERF_PID"
	if [ "$clients" = 1 ]; then
		wait "$BW_PID"
		BACKEND_TICKS=$(cat "$W/backend_ticks" 2>/dev/null || true)
	fi
	[ "$DIAG" = 1 ] && log "  $label diag: $(diag_delta "$DIAG0" "$(diag_snap)")"
	verify_stream "$label" "$DISTINCT"
}

# The same run with a tracking plan: the 8 event names share the properties
# schema of plan_schema.json (the schema of shared/peers/ajv_bench.js).
measure_eventkit_plan() {
	fresh_stream
	q "SELECT eventkit.create_plan('bench_plan', jsonb_build_object('events',
	     (SELECT jsonb_object_agg(n, jsonb_build_object('properties', '$(cat "$HERE/plan_schema.json")'::jsonb))
	        FROM unnest(ARRAY['Order Completed', 'Product Viewed', 'Product Added', 'Checkout Started',
	                          'Cart Viewed', 'Products Searched', 'Product Clicked', 'Coupon Applied']) n)))" >/dev/null
	q "SELECT eventkit.attach_plan('bench_events', 'bench_plan')" >/dev/null
	qq "CHECKPOINT"
	timer_start
	run_pgbench ingest.pgbench 1
	timer_stop
	local r acc dup qua rows qids
	r=$(q "SELECT coalesce(sum(accepted),0), coalesce(sum(duplicates),0), coalesce(sum(quarantined),0) FROM bench_results")
	IFS='|' read -r acc dup qua <<<"$r"
	rows=$(q "SELECT count(*) FROM bench_events")
	qids=$(q "SELECT count(DISTINCT message_id) FROM eventkit.quarantine")
	log "  eventkit_plan: accepted=$acc duplicates=$dup quarantined=$qua ($qids distinct ids), stored $rows"
	check "eventkit_plan: accepted + duplicates + quarantined" "$(( acc + dup + qua ))" "$EVENTS"
	check "eventkit_plan: stored + distinct quarantined" "$(( rows + qids ))" "$DISTINCT"
	check "eventkit_plan: violations found" "$(( qua > 0 ))" 1
}

# eventkit_1c without the identity stage (IDENTITY=1).  The stage runs only
# against a 1.4 catalog, which the library recognises by its landmark
# eventkit.identity_links (src/catalog/catalog.c): renamed for the run, the
# library ingests as against a 1.3 catalog, everything else alike.
# The previous run's stream is dropped first, while the catalog is 1.4:
# dropped with identity_links renamed, its links would stay behind and
# every later eventkit_1c would write into a larger graph.
measure_eventkit_noid() {
	q "SELECT eventkit.drop_stream(c.oid::regclass) FROM pg_class c
	    WHERE c.oid = to_regclass('bench_events')" >/dev/null
	qq "ALTER TABLE eventkit.identity_links RENAME TO identity_links_bench_off"
	measure_eventkit 1 ingest.pgbench eventkit_noid
	qq "ALTER TABLE eventkit.identity_links_bench_off RENAME TO identity_links"
}

# Transaction latencies of a pgbench -l log (3rd field, us): median, p90, max (which).
batch_latencies() {
	awk '{ print $3 / 1000, NR }' "$@" | sort -n | awk '{ v[NR] = $1; b[NR] = $2 } END {
		printf "p50 %.1f p90 %.1f max %.1f (the %dth)", v[int((NR + 1) / 2)], v[int(NR * 0.9)], v[NR], b[NR] }'
}

record() { # name ns
	local r
	r=$(rate "$EVENTS" "$2")
	RATES[$1]="${RATES[$1]:-} $r"
	log "  $1: $(secs "$2") s, $r events/s${CPUUSE:+ (machine CPU busy: $CPUUSE of $(nproc))}${SRVTICKS:+, server CPU $SRVTICKS ticks}"
	[ -n "${SRVTICKS:-}" ] && TICKS[$1]="${TICKS[$1]:-} $SRVTICKS"
	if [ -n "${BACKEND_TICKS:-}" ]; then
		BTICKS[$1]="${BTICKS[$1]:-} $BACKEND_TICKS"
		log "  $1: backend CPU $BACKEND_TICKS ticks"
	fi
	BACKEND_TICKS=
	SRVTICKS=
}

TSTART=$(now_ns)
for rep in $(seq 1 "$REPEAT"); do
	log "repetition $rep/$REPEAT"
	measure_copy; record copy "$ELAPSED"
	if [ "$INSERT_SELECT" = 1 ]; then
		measure_insert_select; record insert_select "$ELAPSED"
	fi
	if [ "$EVENTKIT" = 1 ]; then
		if [ "$IDENTITY" = 1 ] && (( rep % 2 == 0 )); then
			measure_eventkit_noid; record eventkit_noid "$ELAPSED"
		fi
		measure_eventkit 1; record eventkit_1c "$ELAPSED"
		if [ "$IDENTITY" = 1 ]; then
			log "  identity links after eventkit_1c: $(q "SELECT count(*) || ' ids, ' || count(DISTINCT canonical_id) || ' users' FROM eventkit.identity_links")"
		fi
		if [ "$IDENTITY" = 1 ] && (( rep % 2 == 1 )); then
			measure_eventkit_noid; record eventkit_noid "$ELAPSED"
		fi
		if [ "$ONLY_1C" != 1 ]; then
			measure_eventkit 1 ingest_jsonb.pgbench eventkit_1c_jsonb; record eventkit_1c_jsonb "$ELAPSED"
			measure_eventkit 2; record eventkit_2c "$ELAPSED"
		fi
		if [ "$PLAN" = 1 ]; then
			measure_eventkit_plan; record eventkit_plan "$ELAPSED"
		fi
	fi
done

if [ "$EVENTKIT" = 1 ] && [ "$BIG" = 1 ]; then
	NK=$(( BIG_EVENTS / BATCH ))
	log "BIG: prefilling a fresh stream with $(( NK * BATCH )) new events ($NK batches, 2 clients)"
	fresh_stream
	t0=$(now_ns)
	PER=$(( (NK + 1) / 2 ))
	qq "SELECT setval('bench_seq', 1, false)"
	as_pg "$PGBIN/pgbench" -n -h "$W" -p "$PORT" -U postgres -c 2 -j 2 -t "$PER" \
		-D nk="$NK" -D bsize="$BATCH" -f "$W/prefill.pgbench" bench >"$W/pgbench.out" 2>&1 \
		|| { cat "$W/pgbench.out" >&2; tail -20 "$W/server.log" >&2; die "prefill failed"; }
	t1=$(now_ns)
	r=$(q "SELECT coalesce(sum(accepted),0), coalesce(sum(quarantined),0), coalesce(sum(duplicates + conflicts + rejected),0) FROM bench_results")
	IFS='|' read -r acc qua other <<<"$r"
	log "  prefill: $(secs $(( t1 - t0 ))) s incl. generation; accepted=$acc quarantined=$qua other=$other"
	check "prefill accepted + quarantined" "$(( acc + qua ))" "$(( NK * BATCH ))"
	check "prefill duplicates + conflicts + rejected" "$other" 0
	# A batch of new events may wait in quarantine (out_of_range) when the
	# other client is making the partition of its day and this transaction
	# has written already (bench_seq's nextval writes WAL, and takes an xid,
	# every 32 calls): docs/reference.md, Partitions.  Re-drive them, as the
	# worker's redrive job would, before the stream is counted.
	if [ "$qua" != 0 ]; then
		log "  re-driving the prefill's quarantined events: $(q "SELECT replayed FROM eventkit.redrive_quarantine('bench_events')") stored"
	fi
	PREFILLED=$(q "SELECT count(*) FROM bench_events")
	log "  stream holds $PREFILLED rows"
	check "prefill rows" "$PREFILLED" "$(( NK * BATCH ))"
	log "  VACUUM ANALYZE + CHECKPOINT (steady state)"
	qq "VACUUM (ANALYZE)"
	# The worker rotated the ledger by size during the prefill
	# (eventkit.ledger_generation_rows) and builds each sealed generation's
	# filter right after; wait (up to 5 minutes) until every sealed one has it.
	SID=$(q "SELECT stream_id FROM eventkit.streams WHERE relid = 'bench_events'::regclass")
	if [ -n "$(q "SELECT 1 FROM pg_attribute WHERE attrelid = 'eventkit.ledger_generations'::regclass AND attname = 'filter'")" ]; then
		for _ in $(seq 1 300); do
			[ "$(q "SELECT count(*) FROM eventkit.ledger_generations WHERE ended_at IS NOT NULL AND filter IS NULL")" = 0 ] && break
			sleep 1
		done
		log "  ledger before: $(q "SELECT string_agg(format('g%s %s ids%s', l.gen, l.n, CASE WHEN g.ended_at IS NULL THEN ' (current)' WHEN g.filter IS NULL THEN ' (no filter)' ELSE '' END), ', ' ORDER BY l.gen)
		     FROM (SELECT gen, count(*) AS n FROM eventkit_internal.ledger_$SID GROUP BY gen) l
		     JOIN eventkit.ledger_generations g ON g.stream_id = $SID AND g.gen = l.gen")"
	fi
	# The 1M events go once more into the 10M stream and, by turns on the same
	# connection, into an empty control stream (bench_ctl): each batch into
	# one, then the other (ingest_pair.pgbench; which goes first alternates).
	# Both see the same server (its buffer pool full of the prefill), the same
	# moments of a shared machine and one connection's caches.  Each stream's
	# time is pgbench's mean latency of its statements times their number.
	fresh_stream bench_ctl
	(( NB % 2 == 0 )) || die "BIG=1 needs an even number of batches"
	BIG_T0=$(q "SELECT clock_timestamp()")
	qq "CHECKPOINT"
	qq "SELECT setval('bench_seq', 1, false)"
	timer_start
	as_pg "$PGBIN/pgbench" -n -h "$W" -p "$PORT" -U postgres -c 1 -j 1 -t $(( NB / 2 )) -r \
		-l --log-prefix="$W/pairlog" -f "$W/ingest_pair.pgbench" bench >"$W/pgbench.out" 2>&1 \
		|| { cat "$W/pgbench.out" >&2; tail -20 "$W/server.log" >&2; die "pgbench ingest_pair failed"; }
	timer_stop
	# statement latencies (ms), in script order: 10M, control, control, 10M
	mapfile -t LAT < <(awk '/^statement latencies/ { on = 1; next } on && NF >= 3 { print $1 }' "$W/pgbench.out")
	[ "${#LAT[@]}" = 4 ] || { cat "$W/pgbench.out" >&2; die "no statement latencies from pgbench -r"; }
	T_BIG=$(awk -v a="${LAT[0]}" -v b="${LAT[3]}" -v n=$(( NB / 2 )) 'BEGIN { printf "%.0f", (a + b) * n * 1e6 }')
	T_CTL=$(awk -v a="${LAT[1]}" -v b="${LAT[2]}" -v n=$(( NB / 2 )) 'BEGIN { printf "%.0f", (a + b) * n * 1e6 }')
	log "  10M and control by turns: $(secs "$ELAPSED") s in all (machine CPU busy: $CPUUSE of $(nproc));" \
		"mean batch ms: 10M ${LAT[0]} (first of a pair) ${LAT[3]} (second), control ${LAT[1]} (second) ${LAT[2]} (first)"
	log "  pair (4 batches) ms: $(batch_latencies "$W"/pairlog.*)"
	r=$(q "SELECT coalesce(sum(accepted),0), coalesce(sum(duplicates),0), coalesce(sum(conflicts),0),
	              coalesce(sum(quarantined),0), coalesce(sum(rejected),0), count(*) FROM bench_results")
	IFS='|' read -r acc dup con qua rej calls <<<"$r"
	log "  eventkit_10M + control: accepted=$acc duplicates=$dup conflicts=$con quarantined=$qua rejected=$rej (ingest calls $calls)"
	check "eventkit_10M: count(*) in stream" "$(q "SELECT count(*) FROM bench_events")" "$(( PREFILLED + DISTINCT ))"
	check "control: count(*) in stream" "$(q "SELECT count(*) FROM bench_ctl")" "$DISTINCT"
	check "eventkit_10M + control: accepted + duplicates" "$(( acc + dup ))" "$(( 2 * EVENTS ))"
	check "eventkit_10M + control: accepted" "$acc" "$(( 2 * DISTINCT ))"
	check "eventkit_10M + control: ingest calls" "$calls" "$(( 2 * NB ))"
	check "eventkit_10M + control: conflicts + quarantined + rejected" "$(( con + qua + rej ))" 0
	log "  ledger after: $(q "SELECT string_agg(format('g%s %s ids', gen, n), ', ' ORDER BY gen)
	     FROM (SELECT gen, count(*) AS n FROM eventkit_internal.ledger_$SID GROUP BY gen) l")"
	log "  ledger job runs meanwhile (start, duration): $(q "SELECT coalesce(string_agg(format('%s %s ms', to_char(started_at, 'HH24:MI:SS.MS'),
	       round(extract(epoch FROM ended_at - started_at) * 1000)), ', ' ORDER BY run_id), 'none')
	     FROM eventkit.job_runs WHERE kind = 'ledger' AND started_at >= '$BIG_T0'")"
	CPUUSE=
	record eventkit_10M "$T_BIG"
	record eventkit_10M_ctl "$T_CTL"
fi
TEND=$(now_ns)

# --- report -------------------------------------------------------------------
stats() { # values... -> "median min max"
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%d %d %d", m, v[1], v[NR] }'
}
COPY_MED=
line() { # name goal_text
	local name=$1 note=${2:-} med min max ratio
	if [ -z "${RATES[$name]:-}" ]; then
		printf '%-18s skipped%s\n' "$name" "${3:-}"
		return
	fi
	# shellcheck disable=SC2086
	read -r med min max <<<"$(stats ${RATES[$name]})"
	[ -n "$COPY_MED" ] || COPY_MED=$med
	ratio=$(awk -v a="$med" -v b="$COPY_MED" 'BEGIN { printf "%.2f", a / b }')
	printf '%-18s events/s median=%-8s min=%-8s max=%-8s ratio=%s%s\n' "$name" "$med" "$min" "$max" "$ratio" "$note"
}

echo
echo "eventkit ingest benchmark: PostgreSQL $PGVER, $(nproc) cores, fsync=on synchronous_commit=on${MALLOC_ENV[*]:+, ${MALLOC_ENV[*]}}"
[ -n "${EXTRA_CONF:-}" ] && echo "postgresql.conf += $EXTRA_CONF"
echo "events=$EVENTS (distinct $DISTINCT, re-sent $(( EVENTS - DISTINCT ))) batch=$BATCH repeat=$REPEAT" \
	"measured in $(( (TEND - TSTART) / 1000000000 ))s"
line copy
line insert_select "  (reference 0.34)"
line eventkit_1c "  (goal >= 0.75)" " (eventkit not installed)"
line eventkit_1c_jsonb "  (payload::jsonb)" " (eventkit not installed)"
line eventkit_2c "" " (eventkit not installed)"
if [ "$IDENTITY" = 1 ]; then
	line eventkit_noid "  (identity stage off)" " (eventkit not installed)"
	if [ -n "${RATES[eventkit_noid]:-}" ]; then
		# shellcheck disable=SC2086
		read -r withid _ _ <<<"$(stats ${RATES[eventkit_1c]})"
		# shellcheck disable=SC2086
		read -r noid _ _ <<<"$(stats ${RATES[eventkit_noid]})"
		printf '%-18s eventkit_1c / eventkit_noid = %s  (identity cost %s%%; goal <= 5%%)\n' identity_cost \
			"$(awk -v a="$withid" -v b="$noid" 'BEGIN { printf "%.3f", a / b }')" \
			"$(awk -v a="$withid" -v b="$noid" 'BEGIN { printf "%.1f", (1 - a / b) * 100 }')"
		# The same in server CPU time, repetition by repetition (the two runs of a
		# repetition are adjacent): ticks(eventkit_1c) / ticks(eventkit_noid).
		# shellcheck disable=SC2206
		local_with=(${TICKS[eventkit_1c]}) local_noid=(${TICKS[eventkit_noid]})
		CPUR=()
		for i in "${!local_noid[@]}"; do
			CPUR+=("$(awk -v a="${local_with[$i]}" -v b="${local_noid[$i]}" 'BEGIN { printf "%.3f", a / b }')")
		done
		read -r cmed cmin cmax <<<"$(printf '%s\n' "${CPUR[@]}" | sort -n | awk '{ v[NR] = $1 } END {
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.3f %.3f %.3f", m, v[1], v[NR] }')"
		printf '%-18s %s  (server CPU ticks eventkit_1c / eventkit_noid per repetition: %s; median %s, spread %s..%s; identity cost %s%%; ticks 1c: %s, noid: %s)\n' \
			identity_cost_cpu "$cmed" "${CPUR[*]}" "$cmed" "$cmin" "$cmax" \
			"$(awk -v m="$cmed" 'BEGIN { printf "%.1f", (m - 1) * 100 }')" \
			"${TICKS[eventkit_1c]# }" "${TICKS[eventkit_noid]# }"
		# The same for the pgbench backend's own CPU time (backend_watch): no
		# autovacuum worker, checkpointer or WAL writer in it.
		# shellcheck disable=SC2206
		local_with=(${BTICKS[eventkit_1c]:-}) local_noid=(${BTICKS[eventkit_noid]:-})
		if [ "${#local_with[@]}" = "${#local_noid[@]}" ] && [ "${#local_noid[@]}" -gt 0 ]; then
			CPUR=()
			for i in "${!local_noid[@]}"; do
				CPUR+=("$(awk -v a="${local_with[$i]}" -v b="${local_noid[$i]}" 'BEGIN { printf "%.3f", a / b }')")
			done
			read -r cmed cmin cmax <<<"$(printf '%s\n' "${CPUR[@]}" | sort -n | awk '{ v[NR] = $1 } END {
				m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
				printf "%.3f %.3f %.3f", m, v[1], v[NR] }')"
			printf '%-18s %s  (the pgbench backend'"'"'s CPU ticks eventkit_1c / eventkit_noid per repetition: %s; median %s, spread %s..%s; identity cost %s%%; ticks 1c: %s, noid: %s)\n' \
				identity_cost_backend "$cmed" "${CPUR[*]}" "$cmed" "$cmin" "$cmax" \
				"$(awk -v m="$cmed" 'BEGIN { printf "%.1f", (m - 1) * 100 }')" \
				"${BTICKS[eventkit_1c]# }" "${BTICKS[eventkit_noid]# }"
		fi
	fi
fi
[ "$PLAN" = 1 ] && line eventkit_plan "  (goal >= 0.75, plan attached)" " (eventkit not installed)"
if [ "$BIG" = 1 ]; then
	if [ -n "${RATES[eventkit_10M]:-}" ] && [ -n "${RATES[eventkit_1c]:-}" ]; then
		# shellcheck disable=SC2086
		read -r big _ _ <<<"$(stats ${RATES[eventkit_10M]})"
		# shellcheck disable=SC2086
		read -r empty _ _ <<<"$(stats ${RATES[eventkit_1c]})"
		printf '%-18s events/s value=%-8s (1 run, stream prefilled with %s)  ratio=%s  ratio_vs_empty=%s (goal >= 0.90)\n' \
			eventkit_10M "$big" "$PREFILLED" \
			"$(awk -v a="$big" -v b="$COPY_MED" 'BEGIN { printf "%.2f", a / b }')" \
			"$(awk -v a="$big" -v b="$empty" 'BEGIN { printf "%.3f", a / b }')"
		# shellcheck disable=SC2086
		read -r ctl _ _ <<<"$(stats ${RATES[eventkit_10M_ctl]})"
		printf '%-18s events/s value=%-8s (empty stream, batch by batch by turns with eventkit_10M)  ratio_10M_vs_ctl=%s\n' \
			eventkit_10M_ctl "$ctl" "$(awk -v a="$big" -v b="$ctl" 'BEGIN { printf "%.3f", a / b }')"
	else
		printf '%-18s skipped (eventkit not installed)\n' eventkit_10M
	fi
fi
if [ "$FAILED" != 0 ]; then
	echo "SOME CHECKS FAILED (see log above)"
	exit 1
fi
