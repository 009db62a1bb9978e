# eventkit's Citus benchmarks' cluster (sourced by test/bench/citus.sh and
# test/bench/citus_rollup.sh; not run on its own): a single node and a
# 3-node Citus cluster (coordinator, two workers) in a throwaway directory
# $W, started, with Citus's nodes added; q NODE runs psql on a node
# (single, coord, w1, w2); $setup holds the SQL of the batches table and
# the run(stream) procedure that ingests them, for the caller to run.
# Expects EVENTS, BATCH, PORT, PGBIN, KEEP, CACHED_CONNS and BENCH_NAME.
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi
[ -f "$("$PGBIN/pg_config" --pkglibdir)/citus.so" ] || die "Citus is not installed (shared/citus/install-citus.sh)"

W=$(mktemp -d "/tmp/eventkit-$BENCH_NAME.XXXXXX")
chmod 755 "$W"
[ "$(id -u)" = 0 ] && chown postgres: "$W"
NODES="single coord w1 w2"
cleanup() {
	for n in $NODES; do
		[ -f "$W/$n/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$W/$n" -m fast -w stop >/dev/null 2>&1 || true
	done
	if [ "$KEEP" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

port_of() { case $1 in single) echo $PORT ;; coord) echo $((PORT + 1)) ;; w1) echo $((PORT + 2)) ;; w2) echo $((PORT + 3)) ;; esac; }
q() { local n=$1; shift; as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$W" -p "$(port_of $n)" -d postgres "$@"; }

for n in $NODES; do
	as_pg "$PGBIN/initdb" -D "$W/$n" -A trust -U postgres >/dev/null
	preload="'citus,eventkit'"
	[ $n = single ] && preload="'eventkit'"
	cat >>"$W/$n/postgresql.conf" <<CONF
port = $(port_of $n)
listen_addresses = ''
unix_socket_directories = '$W'
shared_preload_libraries = $preload
max_prepared_transactions = 100
shared_buffers = 256MB
eventkit.scheduler_enabled = off
CONF
	[ $n = single ] || cat >>"$W/$n/postgresql.conf" <<CONF
citus.node_conninfo = 'sslmode=disable'
citus.local_hostname = '$W'
citus.max_cached_conns_per_worker = $CACHED_CONNS
CONF
	as_pg "$PGBIN/pg_ctl" -D "$W/$n" -l "$W/$n.log" -w start >/dev/null
done
for n in coord w1 w2; do q $n -c "CREATE EXTENSION citus"; done
q coord -c "SELECT citus_set_coordinator_host('$W', $(port_of coord))" \
	-c "SELECT citus_add_node('$W', $(port_of w1))" -c "SELECT citus_add_node('$W', $(port_of w2))" >/dev/null

# the same events on the single node and the coordinator (setup, run by the
# caller): ids i (batch k holds ids k*BATCH .. +BATCH-1, and re-sends the
# first 5% of the batch before it)
setup="
CREATE EXTENSION eventkit;
CREATE TABLE batches AS
SELECT k, jsonb_build_object('sentAt', '2026-01-01T00:00:00Z', 'batch', jsonb_agg(jsonb_build_object(
		'type', 'track', 'messageId', 'm-' || id, 'userId', 'u' || (id % 997),
		'anonymousId', 'a' || (id % 1009), 'event', 'Order Completed',
		'properties', jsonb_build_object('id', id, 'revenue', id % 97, 'sku', 'sku-' || (id % 113)),
		'context', jsonb_build_object('library', jsonb_build_object('name', 'analytics.js')),
		'timestamp', now() - (id % 48) * interval '1 hour') ORDER BY id)) AS payload
  FROM generate_series(0, $EVENTS / $BATCH - 1) k,
	   LATERAL (SELECT g AS id FROM generate_series(k * $BATCH, k * $BATCH + $BATCH * 95 / 100 - 1) g
				UNION ALL SELECT g FROM generate_series((k - 1) * $BATCH, (k - 1) * $BATCH + $BATCH / 20 - 1) g
				 WHERE k > 0) ids
 GROUP BY k;
CREATE PROCEDURE run(stream regclass) LANGUAGE plpgsql AS \$\$
DECLARE b record;
BEGIN
	FOR b IN SELECT payload FROM batches ORDER BY k LOOP
		PERFORM eventkit.ingest(stream, b.payload);
		COMMIT;
	END LOOP;
END \$\$;"
