#!/usr/bin/env bash
# JSON Schema validation benchmark (not part of CI): Ajv 8 against
# eventkit.schema_valid on the same schema and the same 1,000 events, in one
# run, on one core each.
#
#   ajv       test/bench/ajv_bench.js (a copy of shared/peers/ajv_bench.js):
#             Ajv 8 + ajv-formats, allErrors, compiled once, N validations in
#             a loop over the 1,000 events (its own timer, after a warm-up).
#   eventkit  SELECT count(*) FILTER (WHERE eventkit.schema_valid(<schema>, e))
#             FROM bench   -- the 1,000 events Ajv validated (written by the
#             script, loaded untouched), COPIES times over, one row each; no
#             parallel workers, no JIT.  The time is psql's \timing of the
#             whole statement: executor, scan, function call, validation.
#   scan      the same statement with count(e) instead of schema_valid: the
#             executor's share, printed so the validator's own rate can be
#             derived (net = rows / (eventkit - scan)).
#
# Ajv and eventkit runs alternate, REPEAT times each; medians and min..max
# are printed, and the ratio eventkit/Ajv of the medians (gross).  Each run's
# log line shows "machine CPU busy: x of <nproc>", the whole machine's CPU use
# during that run (as test/bench/run.sh): about 1 for the run alone; clearly
# more means something else was running and the figure is not trustworthy.
#
# npm installs ajv@8 and ajv-formats into $SCRATCH (eventkit does not depend
# on node).  The extension must be installed in $EK_PG_CONFIG's PostgreSQL
# (make install); a throwaway cluster is created and removed.
# Run it alone: flock /tmp/ek-bench.lock bash test/bench/validate.sh
#
# Environment: EK_PG_CONFIG (pg_config), N (2000000 Ajv validations per run),
#   COPIES (300: rows = 1,000 x COPIES per eventkit run), REPEAT (5),
#   PORT (54991), SCRATCH (/tmp/ek-validate-bench)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PG_CONFIG=${EK_PG_CONFIG:-${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}}
PGBIN=$("$PG_CONFIG" --bindir)
N=${N:-2000000}
COPIES=${COPIES:-300}
REPEAT=${REPEAT:-5}
PORT=${PORT:-54991}
SCRATCH=${SCRATCH:-/tmp/ek-validate-bench}
export LC_ALL=C.UTF-8
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
# Machine-wide CPU time in use (user+nice+system+irq+softirq+steal), in ticks.
cpu_ticks() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)
# busy TICKS0 NS0: CPUs busy on average over the machine since then
busy() {
	awk -v c="$(( $(cpu_ticks) - $1 ))" -v hz="$CLK_TCK" -v ns="$(( $(date +%s%N) - $2 ))" \
		'BEGIN { printf "%.2f", c / hz / (ns / 1e9) }'
}

mkdir -p "$SCRATCH/node"
if [ ! -d "$SCRATCH/node/node_modules/ajv" ] || [ ! -d "$SCRATCH/node/node_modules/ajv-formats" ]; then
	log "installing ajv@8 ajv-formats into $SCRATCH/node"
	(cd "$SCRATCH/node" && { [ -f package.json ] || npm init -y >/dev/null; } &&
		npm install --no-audit --no-fund ajv@8 ajv-formats >/dev/null)
fi

# PostgreSQL refuses to run as root
if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi
DATA="$SCRATCH/pg"
rm -rf "$DATA"
mkdir -p "$DATA"
[ "$(id -u)" = 0 ] && chown postgres "$DATA"
cleanup() { as_pg "$PGBIN/pg_ctl" -D "$DATA/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DATA"; }
trap cleanup EXIT

# The schema and the events, as Ajv sees them
EK_DUMP_DIR="$SCRATCH" NODE_PATH="$SCRATCH/node/node_modules" node "$HERE/ajv_bench.js" 1000 >/dev/null
chmod a+r "$SCRATCH/schema.json" "$SCRATCH/events.ndjson"

as_pg "$PGBIN/initdb" -D "$DATA/data" -E UTF8 --locale=C.UTF-8 -A trust >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DATA/data" -l "$DATA/log" -w \
	-o "-p $PORT -k $DATA -c shared_buffers=512MB -c max_parallel_workers_per_gather=0 -c jit=off" start >/dev/null
PSQL=(as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DATA" -p "$PORT" -d postgres)

SCHEMA=$(cat "$SCRATCH/schema.json")
"${PSQL[@]}" <<SQL
CREATE EXTENSION eventkit;
CREATE TABLE events (i serial, e jsonb);
-- CSV with impossible quote/delimiter characters: each line is taken verbatim
\copy events (e) FROM '$SCRATCH/events.ndjson' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
CREATE TABLE bench AS
	SELECT e FROM generate_series(1, $COPIES) AS c, events ORDER BY c, i;
VACUUM ANALYZE bench;
SELECT count(*) FROM bench;
SQL
ROWS=$("${PSQL[@]}" -At -c "SELECT count(*) FROM bench")
log "$ROWS rows ($(cat "$SCRATCH/events.ndjson" | wc -l) distinct events); Ajv: $N validations per run; $REPEAT runs each"

time_sql() {
	# prints the statement's time in ms (psql \timing), after one warm-up
	local out
	out=$("${PSQL[@]}" <<SQL
SET max_parallel_workers_per_gather = 0;
$1;
\timing on
$1;
SQL
)
	echo "$out" | awk '/^Time:/ {print $2}' | tail -1
}

Q_VALID="SELECT count(*) FILTER (WHERE eventkit.schema_valid('$SCHEMA'::jsonb, e)) FROM bench"
Q_SCAN="SELECT count(e) FROM bench"
VALID=$("${PSQL[@]}" -At -c "$Q_VALID")

ajv=() ek=() scan=() ek_busy=()
for r in $(seq 1 "$REPEAT"); do
	c0=$(cpu_ticks) n0=$(date +%s%N)
	a=$(NODE_PATH="$SCRATCH/node/node_modules" node "$HERE/ajv_bench.js" "$N" | head -1 |
		sed -n 's/.*"per_second":\([0-9]*\).*/\1/p')
	ab=$(busy "$c0" "$n0")
	ajv+=("$a")
	c0=$(cpu_ticks) n0=$(date +%s%N)
	t=$(time_sql "$Q_VALID")
	eb=$(busy "$c0" "$n0")
	ek_busy+=("$eb")
	ek+=("$(awk -v n="$ROWS" -v t="$t" 'BEGIN {printf "%.0f", n / (t / 1000)}')")
	s=$(time_sql "$Q_SCAN")
	scan+=("$s:$t")
	log "run $r: ajv ${a}/s (machine CPU busy: $ab of $(nproc)); eventkit ${t} ms for $ROWS rows (machine CPU busy: $eb of $(nproc)); scan alone ${s} ms"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
minmax() { printf '%s\n' "$@" | sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo ".." hi}'; }

net=()
for st in "${scan[@]}"; do
	s=${st%%:*} t=${st##*:}
	net+=("$(awk -v n="$ROWS" -v s="$s" -v t="$t" 'BEGIN {printf "%.0f", n / ((t - s) / 1000)}')")
done
AJV_MED=$(median "${ajv[@]}")
EK_MED=$(median "${ek[@]}")
NET_MED=$(median "${net[@]}")

echo "schema: shared/peers/ajv_bench.js Order Completed schema; events: its 1,000 events ($VALID of $ROWS rows valid)"
printf '%-34s %12s/s  (min..max %s, %d runs)\n' "ajv $(NODE_PATH="$SCRATCH/node/node_modules" node -p "require('ajv/package.json').version")" \
	"$AJV_MED" "$(minmax "${ajv[@]}")" "$REPEAT"
printf '%-34s %12s/s  (min..max %s, %d runs)\n' "eventkit.schema_valid (gross)" "$EK_MED" "$(minmax "${ek[@]}")" "$REPEAT"
printf '%-34s %12s/s  (min..max %s)\n' "eventkit, scan time subtracted" "$NET_MED" "$(minmax "${net[@]}")"
printf '%-34s %12s of %d  (min..max %s)\n' "machine CPU busy, eventkit runs" \
	"$(median "${ek_busy[@]}")" "$(nproc)" "$(minmax "${ek_busy[@]}")"
awk -v e="$EK_MED" -v a="$AJV_MED" -v n="$NET_MED" \
	'BEGIN {printf "ratio eventkit/ajv: %.2f (gross, whole SELECT), %.2f (validation alone)\n", e / a, n / a}'
