#!/usr/bin/env bash
# Instructions, not seconds (not part of CI): what one backend executes
# (valgrind --tool=callgrind, "Ir") to ingest EVENTS events of gen.sql
# (1,000-event batches, ~5% re-sends) into a stream without a plan, with
# run.sh's tracking plan, and with rollup.sh's rollup, and to refresh that
# rollup; each printed with an empty run's count (startup) to subtract.
# The identity stage's share: s_noid ingests the same batches into a fresh
# stream with the stage off (run.sh's trick: eventkit.identity_links, the
# 1.4 catalog's landmark, renamed for that run, so the library ingests as
# against a 1.3 catalog); s_noplan has the stage on.  gen.sql's events are
# its worst case: ~49% carry both ids, and the links are new (a fresh
# stream), about 0.6 link rows per event in the first 20,000.
# CGOUT=dir keeps the callgrind files (callgrind_annotate); IDENTITY=0 skips s_noid; ONLY_IDENTITY=1 runs only s_noplan and s_noid;
# SMALL=1 sends gen.sql's small events (~370 bytes instead of ~1 KB).
# EXTRA_CONF='lines' are appended to postgresql.conf (as run.sh's), e.g.
# 'eventkit.identity_time_step = 7d'.
# USERS=N (50000) gen.sql's user ids: EVENTS=50000 USERS=2500 (no WARMUP) is the
# whole 1M-event run of run.sh scaled by 20 (20 events per user over 3 days, one
# backend from a fresh stream: 0.10 new link rows per event), the average cost
# of the stage over a run rather than a stretch of it.
# WARMUP=N (0) ingests N more events first, outside callgrind, into s_noplan and
# s_noid (the stage off for s_noid's, as when it is measured): gen.sql makes
# EVENTS+WARMUP events and the EVENTS measured are the last ones, into streams
# (and a graph) that already hold the first N: the steady state, where most
# events link ids the graph knows (WARMUP=200000: ~2% of the users are new).
# The new-link rate (link rows the measured events added, per event) is printed.
# WARM_SAME=1 (with WARMUP) runs the warm-up in the measured backend instead,
# callgrind's instrumentation off until it is done (callgrind_control -i on):
# what a long-lived session (pgbench's, an intake worker's) executes once its
# backend-local state (the identity stage's cache of known links) is warm.
# ANALYZE_EVERY=K adds an ANALYZE of eventkit.identity_links after every K
# measured batches (of the renamed table for s_noid): what autovacuum does to
# the graph's table during run.sh's ingest (its statistics, written into
# pg_class, send the relcache invalidation the stage's cache used to be
# flushed by), which single-user mode has no autovacuum to do.
# Postgres runs in single-user mode: no other process takes part, and the
# counts are the same whatever else the machine is doing, so two builds
# compare on a shared machine where wall-clock benchmarks swing by 20%.
#
#   PGBIN=/path/to/bin EVENTS=20000 test/bench/instructions.sh   (as root)
#
# Needs valgrind and the hll extension; eventkit installed in PGBIN's PostgreSQL.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
events=${EVENTS:-20000}
PGB=${PGBIN:-/usr/lib/postgresql/15/bin}
W=$(mktemp -d /tmp/eventkit-instr.XXXXXX); chown postgres $W
trap 'rm -rf "$W"' EXIT
as_pg() { runuser -u postgres -- "$@"; }
as_pg $PGB/initdb -D $W/data -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
echo "port = ${PORT:-54400}
listen_addresses = ''
unix_socket_directories = '$W'
shared_buffers = 256MB
fsync = off" >> $W/data/postgresql.conf
# EXTRA_CONF: lines appended to postgresql.conf (e.g. 'eventkit.identity_time_step = 7d')
if [ -n "${EXTRA_CONF:-}" ]; then printf '%s\n' "$EXTRA_CONF" >> $W/data/postgresql.conf; fi
as_pg $PGB/pg_ctl -D $W/data -l $W/log -w start >/dev/null
P="$PGB/psql -X -q -h $W -p ${PORT:-54400} -U postgres"
as_pg $P -d postgres -c "CREATE DATABASE bench"
as_pg mkdir -p $W/batches
warmup=${WARMUP:-0}
as_pg $P -d bench -v events=$((events + warmup)) -v batch=1000 -v rts='2026-12-01 00:00:00+00' -v flatfile=$W/flat.tsv -v batchdir=$W/batches -v small=${SMALL:-0} -v users=${USERS:-50000} -f $HERE/gen.sql >/dev/null
as_pg $P -d bench -c "CREATE EXTENSION eventkit" -c "CREATE EXTENSION hll" >/dev/null
# s_rollup lives alone in a copy of this database (bench_r): the catalog tables
# every stream shares (eventkit.identity_links above all) are then as empty when
# it starts as they are for s_noplan, the first stream of bench; in bench it came
# after s_noplan and s_plan, and the identity stage read and wrote into their
# links (+71M instructions of 20,000 events counted as the rollup's).
as_pg $P -d postgres -c "CREATE DATABASE bench_r TEMPLATE bench"
for s in s_noplan s_plan s_noid; do
  as_pg $P -d bench -c "SELECT eventkit.create_stream('$s', partition_interval => '1 day', premake => 4, retention => NULL, key_partitions => 0, dedup_window => '7 days')" >/dev/null
done
as_pg $P -d bench_r -c "SELECT eventkit.create_stream('s_rollup', partition_interval => '1 day', premake => 4, retention => NULL, key_partitions => 0, dedup_window => '7 days')" >/dev/null
as_pg $P -d bench -c "SELECT eventkit.create_plan('bench_plan', jsonb_build_object('events',
	     (SELECT jsonb_object_agg(n, jsonb_build_object('properties', '$(cat $HERE/plan_schema.json)'::jsonb))
	        FROM unnest(ARRAY['Order Completed', 'Product Viewed', 'Product Added', 'Checkout Started',
	                          'Cart Viewed', 'Products Searched', 'Product Clicked', 'Coupon Applied']) n)))" -c "SELECT eventkit.attach_plan('s_plan', 'bench_plan')" >/dev/null
as_pg $P -d bench_r -c "SELECT eventkit.create_rollup('r_hourly', 's_rollup', '1 hour', '{event}', '{count,\"distinct(user_id) AS users\",\"sum(properties.revenue) AS revenue\"}')" -c "SELECT eventkit.refresh_rollup('r_hourly')" >/dev/null
wb=$(( (warmup + 999) / 1000 ))
ids=$(as_pg $P -d bench -Atc "SELECT id FROM bench_batches WHERE id > $wb ORDER BY id")
wids=$(as_pg $P -d bench -Atc "SELECT id FROM bench_batches WHERE id <= $wb ORDER BY id")
as_pg $PGB/pg_ctl -D $W/data -w stop >/dev/null
declare -A IR
run() { # label script [database]
  as_pg valgrind --tool=callgrind --callgrind-out-file=$W/cg.$1 $PGB/postgres --single \
    -c eventkit.max_batch_bytes=4000000 -c eventkit.max_batch_items=1000 -D $W/data ${3:-bench} < $2 > $W/out.$1 2>&1
  if grep -q ERROR $W/out.$1; then grep -m3 ERROR $W/out.$1 >&2; echo "instructions.sh: $1 failed" >&2; exit 1; fi
  if [ -n "${CGOUT:-}" ]; then mkdir -p "$CGOUT"; cp $W/cg.$1 "$CGOUT/"; fi
  IR[$1]=$(grep -m1 '^summary:' $W/cg.$1 | awk '{print $2}')
}
echo "SELECT 1;" > $W/empty.sql
links_of() { # the link rows of s_noplan
  echo "SELECT 'links=' || count(*) FROM eventkit.identity_links l JOIN eventkit.streams s USING (stream_id) WHERE s.relid = 's_noplan'::regclass;" \
    | as_pg $PGB/postgres --single -D $W/data bench 2>&1 | grep -o 'links=[0-9]*"' | tr -d '"' | cut -d= -f2 || true
}
WARM_SAME=${WARM_SAME:-0}
# run_warm label warm-script script: one backend, the first script not counted
run_warm() {
  local pid
  rm -f $W/fifo.$1; mkfifo $W/fifo.$1; chown postgres $W/fifo.$1
  as_pg valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$W/cg.$1 $PGB/postgres --single \
    -c eventkit.max_batch_bytes=4000000 -c eventkit.max_batch_items=1000 -D $W/data bench < $W/fifo.$1 > $W/out.$1 2>&1 &
  exec 7>$W/fifo.$1
  cat $2 >&7
  echo "SELECT 'WARM' || 'DONE';" >&7
  until grep -q WARMDONE $W/out.$1; do sleep 1; done
  pid=$(pgrep -u postgres -f "callgrind-out-file=$W/cg.$1 " | head -1)	# valgrind's, not runuser's
  as_pg callgrind_control -i on $pid > $W/ctl.$1 2>&1 || { cat $W/ctl.$1 >&2; echo "instructions.sh: callgrind_control failed" >&2; exit 1; }
  cat $3 >&7
  exec 7>&-
  wait
  if grep -q ERROR $W/out.$1; then grep -m3 ERROR $W/out.$1 >&2; echo "instructions.sh: $1 failed" >&2; exit 1; fi
  if [ -n "${CGOUT:-}" ]; then mkdir -p "$CGOUT"; cp $W/cg.$1 "$CGOUT/"; fi
  IR[$1]=$(grep -m1 '^summary:' $W/cg.$1 | awk '{print $2}')
  [ "${IR[$1]:-0}" -gt 0 ] || { echo "instructions.sh: $1 counted nothing (instrumentation not switched on)" >&2; exit 1; }
}
if [ "$warmup" -gt 0 ]; then
  for s in s_noplan s_noid; do
    : > $W/warm.$s.sql
    for i in $wids; do echo "SELECT count(*) FROM bench_batches b CROSS JOIN LATERAL eventkit.ingest('$s'::regclass, b.payload, b.received_at) r WHERE b.id = $i;" >> $W/warm.$s.sql; done
  done
  : > $W/out.warm
  if [ "$WARM_SAME" != 1 ]; then
  as_pg $PGB/postgres --single -c eventkit.max_batch_bytes=4000000 -c eventkit.max_batch_items=1000 -D $W/data bench < $W/warm.s_noplan.sql > $W/out.warm 2>&1
  echo "ALTER TABLE eventkit.identity_links RENAME TO identity_links_bench_off;" | as_pg $PGB/postgres --single -D $W/data bench >/dev/null 2>&1
  as_pg $PGB/postgres --single -c eventkit.max_batch_bytes=4000000 -c eventkit.max_batch_items=1000 -D $W/data bench < $W/warm.s_noid.sql >> $W/out.warm 2>&1
  echo "ALTER TABLE eventkit.identity_links_bench_off RENAME TO identity_links;" | as_pg $PGB/postgres --single -D $W/data bench >/dev/null 2>&1
  fi
  if grep -q ERROR $W/out.warm; then grep -m3 ERROR $W/out.warm >&2; echo "instructions.sh: warm-up failed" >&2; exit 1; fi
fi
links0=$(links_of)
for s in s_noplan s_plan s_rollup s_noid; do
  : > $W/$s.sql
  n=0
  for i in $ids; do echo "SELECT r.accepted, r.duplicates, r.quarantined FROM bench_batches b CROSS JOIN LATERAL eventkit.ingest('$s'::regclass, b.payload, b.received_at) r WHERE b.id = $i;" >> $W/$s.sql
    n=$((n + 1))
    # ANALYZE_EVERY=K: an ANALYZE of the graph's table every K batches, as autovacuum's in run.sh
    if [ -n "${ANALYZE_EVERY:-}" ] && (( n % ANALYZE_EVERY == 0 )); then
      if [ $s = s_noid ]; then echo "ANALYZE eventkit.identity_links_bench_off;" >> $W/$s.sql; else echo "ANALYZE eventkit.identity_links;" >> $W/$s.sql; fi
    fi
  done
done
run empty $W/empty.sql
if [ "$warmup" -gt 0 ] && [ "$WARM_SAME" = 1 ]; then
  run_warm s_noplan $W/warm.s_noplan.sql $W/s_noplan.sql
else
  run s_noplan $W/s_noplan.sql
fi
shown="s_noplan"
if [ "${ONLY_IDENTITY:-0}" != 1 ]; then
  run s_plan $W/s_plan.sql
  run s_rollup $W/s_rollup.sql bench_r
  echo "SELECT eventkit.refresh_rollup('r_hourly');" > $W/refresh.sql
  run refresh $W/refresh.sql bench_r
  shown="s_noplan s_plan s_rollup refresh"
fi
if [ "${IDENTITY:-1}" = 1 ]; then
  links1=$(links_of)
  links="links=${links1:-?}, $(( ${links1:-0} - ${links0:-0} )) new in the measured events: $(awk -v a=${links1:-0} -v b=${links0:-0} -v n=$events 'BEGIN { printf "%.3f", (a - b) / n }') new link rows per event"
  # (the warm-up ran in the measured process: the same rows as without WARM_SAME)
  [ "$warmup" -gt 0 ] && [ "$WARM_SAME" = 1 ] && links="links=${links1:-?}, the new ones as without WARM_SAME"
  echo "ALTER TABLE eventkit.identity_links RENAME TO identity_links_bench_off;" | as_pg $PGB/postgres --single -D $W/data bench >/dev/null 2>&1
  if [ "$warmup" -gt 0 ] && [ "$WARM_SAME" = 1 ]; then
    run_warm s_noid $W/warm.s_noid.sql $W/s_noid.sql
  else
    run s_noid $W/s_noid.sql
  fi
  echo "ALTER TABLE eventkit.identity_links_bench_off RENAME TO identity_links;" | as_pg $PGB/postgres --single -D $W/data bench >/dev/null 2>&1
fi
echo "instructions (callgrind Ir) for $events events in $(echo $ids | wc -w) batches$( [ "$warmup" -gt 0 ] && echo " after a warm-up of $warmup events ($wb batches, not measured)"), the empty run's ${IR[empty]} subtracted:"
for k in $shown; do
  printf '%-10s %15d  (%.0f per event)\n' "$k" $(( IR[$k] - IR[empty] )) "$(awk -v a=${IR[$k]} -v b=${IR[empty]} -v n=$events 'BEGIN { print (a - b) / n }')"
done
if [ -n "${IR[s_rollup]:-}" ]; then
  printf 'rollup     %15d  (%.0f per event)  s_rollup / s_noplan = %s  (rollup ingest cost %s%%; goal <= 5%%)\n' \
    $(( IR[s_rollup] - IR[s_noplan] )) "$(awk -v a=${IR[s_rollup]} -v b=${IR[s_noplan]} -v n=$events 'BEGIN { print (a - b) / n }')" \
    "$(awk -v a=${IR[s_rollup]} -v b=${IR[s_noplan]} -v e=${IR[empty]} 'BEGIN { printf "%.3f", (a - e) / (b - e) }')" \
    "$(awk -v a=${IR[s_rollup]} -v b=${IR[s_noplan]} -v e=${IR[empty]} 'BEGIN { printf "%.1f", ((a - e) / (b - e) - 1) * 100 }')"
fi
if [ -n "${IR[s_noid]:-}" ]; then
  k=s_noid
  printf '%-10s %15d  (%.0f per event)  (s_noplan with the identity stage off)\n' "$k" $(( IR[$k] - IR[empty] )) "$(awk -v a=${IR[$k]} -v b=${IR[empty]} -v n=$events 'BEGIN { print (a - b) / n }')"
  printf 'identity   %15d  (%.0f per event; %s)  s_noplan / s_noid = %s  (identity cost %s%%; goal <= 5%%)\n' \
    $(( IR[s_noplan] - IR[s_noid] )) "$(awk -v a=${IR[s_noplan]} -v b=${IR[s_noid]} -v n=$events 'BEGIN { print (a - b) / n }')" "${links:-links=?}" \
    "$(awk -v a=${IR[s_noplan]} -v b=${IR[s_noid]} -v e=${IR[empty]} 'BEGIN { printf "%.3f", (a - e) / (b - e) }')" \
    "$(awk -v a=${IR[s_noplan]} -v b=${IR[s_noid]} -v e=${IR[empty]} 'BEGIN { printf "%.1f", ((a - e) / (b - e) - 1) * 100 }')"
fi

