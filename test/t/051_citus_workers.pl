
# Copyright: eventkit authors
#
# Ingest on the Citus workers: a coordinator and two workers on this machine
# (Unix sockets), shared_preload_libraries = 'citus,eventkit'.  Checks: the
# catalog of a distributed stream is on every node (a reference table, keyed
# by the coordinator's stream id and the stream's name) and a worker adopts
# it at its first ingest; alter_stream and attach_plan reach the workers;
# a worker's session follows the coordinator's catalog changes and adopts
# again after a rolled back transaction or savepoint;
# Segment SDK batches ingested on the workers give the same counts and rows
# as one node, and a re-send through the coordinator (or the other worker)
# stores nothing new; concurrent clients on all three nodes with overlapping
# ids store each id once; a stream with a rollup is ingested on a worker,
# its rollup counting the event (055 has the rest); a late event whose partition is missing on a worker waits
# in quarantine (out_of_range) instead of failing its batch; the
# coordinator's maintenance makes the partitions the workers' events wait
# for, and its redrive job stores them (eventkit.redrive_quarantine on each
# worker); on the coordinator, worker_conflicts and worker_ingest_batches
# list the conflicts and batches logged on each worker, with the node, and
# refuse a role without rights; forget_user deletes the user's conflicts
# and quarantine rows on every node, its ids in the distributed ledger, and
# suppresses its ids on every node (a re-send
# through a worker is rejected); drop_stream clears the catalog on every node.
#
# Skipped when Citus is not installed (shared/citus/install-citus.sh).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use EventkitCitus;
use IPC::Run;

citus_skip_unless_installed();

my @nodes = citus_cluster("citus.max_cached_conns_per_worker = 8\n");
my ($coord, $w1, $w2) = @nodes;

# --- the cluster-wide catalog ---------------------------------------------

# a worker cannot make streams of its own (Citus refuses the DDL there)
like(psql_err($w1, q{SELECT eventkit.create_stream('w1_own', key_partitions => 0)}),
	qr/operation is not allowed on this node/, 'a worker makes no streams of its own');
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('other', key_partitions => 0);
SELECT eventkit.create_stream('events', key_partitions => 0);
SELECT eventkit.create_stream('events_local', key_partitions => 0);
SELECT eventkit.distribute_stream('events', 8);
});
my $sid = $coord->safe_psql('postgres',
	q{SELECT stream_id FROM eventkit.streams WHERE relid = 'events'::regclass});
is( $coord->safe_psql(
		'postgres', q{
SELECT p.partmethod::text || ':' || c.stream_id || ':' || c.relname
  FROM eventkit_internal.cluster_streams c,
	   pg_dist_partition p WHERE p.logicalrelid = 'eventkit_internal.cluster_streams'::regclass}),
	"n:$sid:public.events",
	'the cluster catalog is a reference table, keyed by the coordinator\'s stream id and the name');
is($w2->safe_psql('postgres', q{SELECT stream_id FROM eventkit_internal.cluster_streams}),
	$sid, 'the workers have it');
is($w2->safe_psql('postgres', q{SELECT count(*) FROM eventkit.streams}),
	'0', 'before its first ingest a worker\'s own catalog has no stream');

# --- SDK batches through the workers -------------------------------------

$coord->safe_psql(
	'postgres', q{
CREATE TABLE batches AS
SELECT k, jsonb_build_object(
		'batch', jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
			'type', CASE WHEN id % 10 = 0 THEN 'identify' ELSE 'track' END,
			'messageId', 'm-' || id,
			'userId', CASE WHEN id % 3 = 0 THEN NULL ELSE 'u' || (id % 41) END,
			'anonymousId', 'a' || (id % 53),
			'event', CASE WHEN id % 10 = 0 THEN NULL ELSE 'Order Completed' END,
			'properties', jsonb_build_object('id', id, 'revenue', id % 97),
			'originalTimestamp', to_char(now() - (id % 40) * interval '1 hour' - interval '5 seconds',
										 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
			'sentAt', to_char(now(), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
			ORDER BY id),
		'sentAt', to_char(now(), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		'context', jsonb_build_object('library', jsonb_build_object('name', 'analytics.js'))) AS payload
  FROM generate_series(1, 20) k,
	   LATERAL (SELECT g AS id FROM generate_series(100 * k, 100 * k + 99) g
				UNION ALL SELECT g FROM generate_series(100 * k - 5, 100 * k - 1) g WHERE k > 1) ids
 GROUP BY k;
INSERT INTO batches
SELECT 21, jsonb_agg(jsonb_build_object('type', 'track', 'messageId', 'm-' || id,
		'userId', 'u' || (id % 41), 'event', 'Order Completed',
		'properties', jsonb_build_object('id', id, 'revenue', -1)) ORDER BY id)
  FROM generate_series(101, 110) id WHERE id % 3 <> 0;
CREATE TABLE results (node text, pass int, k int, accepted bigint, duplicates bigint,
					  conflicts bigint, quarantined bigint, rejected bigint);
-- the partitions the batches need (maintenance on the coordinator makes them for the
-- warm-up events, which wait in quarantine, and the re-drive stores those)
SELECT count(*) FROM generate_series(0, 48) h, LATERAL eventkit.ingest('events', jsonb_build_object('type', 'track',
		'messageId', 'warm-' || h, 'userId', 'warm', 'event', 'Warm',
		'timestamp', now() - h * interval '1 hour')) r;
SELECT eventkit.run_maintenance('events');
SELECT eventkit.redrive_quarantine('events');
});
$coord->safe_psql('postgres',
	q{INSERT INTO results SELECT 'local', 1, k, r.* FROM batches, LATERAL eventkit.ingest('events_local', payload) r ORDER BY k});

# the same batches: 1-10 through worker 1, 11-21 through worker 2 (the
# batches are read from the coordinator: psql on each worker gets them as text)
sub ingest_on { return citus_ingest_on($coord, @_); }
ingest_on($w1, 1, 'k <= 10');
ingest_on($w2, 1, 'k > 10');
is($w1->safe_psql('postgres', q{SELECT stream_id FROM eventkit.streams WHERE relid = 'events'::regclass}),
	$sid, 'worker 1 adopted the stream under the coordinator\'s id');
citus_counts_as_one_node($coord, q{pass = 1 AND node <> 'local'}, q{node = 'local'}, '2000|95|7',
	'ingest on the workers');

# re-sends: through the coordinator, and each worker's batches through the other worker
$coord->safe_psql('postgres',
	q{INSERT INTO results SELECT 'coordinator', 2, k, r.* FROM batches, LATERAL eventkit.ingest('events', payload) r ORDER BY k});
ingest_on($w2, 3, 'k <= 10');
ingest_on($w1, 3, 'k > 10');
is( $coord->safe_psql(
		'postgres', q{SELECT string_agg(pass || ':' || a || ':' || d, ',' ORDER BY pass) FROM (
  SELECT pass, sum(accepted) a, sum(duplicates) + sum(conflicts) d FROM results WHERE pass IN (2, 3) GROUP BY pass) s}),
	'2:0:2102,3:0:2102', 're-sent through the coordinator or the other worker: nothing new is stored');
citus_same_events($coord, q{event IS DISTINCT FROM 'Warm'});
is( $w1->safe_psql(
		'postgres', q{
SELECT coalesce(sum(pg_relation_size(inhrelid)), 0) + pg_relation_size('events')
  FROM pg_inherits WHERE inhparent = 'events'::regclass}),
	'0', 'nothing was written into the worker\'s shell tables');
cmp_ok($w1->safe_psql('postgres', q{SELECT last_value FROM eventkit.streams_stream_id_seq}),
	'>=', $sid, 'the worker\'s own new streams get ids after the adopted one');

# --- catalog changes reach the workers --------------------------------------

$coord->safe_psql('postgres', q{SELECT eventkit.alter_stream('events', max_batch_items => 3)});
$w2->safe_psql('postgres', q{SELECT eventkit.ingest('events', '{"type":"track","event":"E","userId":"u","messageId":"x1"}')});
is($w2->safe_psql('postgres', q{SELECT max_batch_items FROM eventkit.streams WHERE relid = 'events'::regclass}),
	'3', 'alter_stream on the coordinator reaches the workers');
# a worker's backend remembers the catalog version it adopted: in one
# session on the worker, a change made on the coordinator meanwhile is seen
# by the next call, and an adoption whose transaction or subtransaction
# rolled back is made again by the next call
sub alter_on_coord
{
	my $v = shift;
	return sprintf(
		q{\! psql -X -q -h '%s' -p %d -d postgres -c "SELECT eventkit.alter_stream('events', max_batch_items => %d)" >/dev/null},
		$coord->host, $coord->port, $v);
}
sub one_event
{
	my $id = shift;
	return qq{SELECT accepted FROM eventkit.ingest('events', '{"type":"track","event":"E","userId":"u","messageId":"$id"}');};
}
my $max_items = q{SELECT coalesce(max_batch_items, 0) FROM eventkit.streams WHERE relid = 'events'::regclass;};
is( $w2->safe_psql(
		'postgres',
		join("\n",
			one_event('cache-1'), alter_on_coord(5), one_event('cache-2'), $max_items,
			alter_on_coord(6), 'BEGIN;', one_event('cache-3'), 'ROLLBACK;', $max_items,
			one_event('cache-3'), $max_items,
			alter_on_coord(7), 'BEGIN;', 'SAVEPOINT s;', one_event('cache-4'), 'ROLLBACK TO SAVEPOINT s;',
			'COMMIT;', $max_items, one_event('cache-4'), $max_items)),
	join("\n", 1, 1, 5, 1, 5, 1, 6, 1, 6, 1, 7),
	'one worker session: follows the coordinator\'s changes, adopts again after a rollback or a rolled back savepoint');
$coord->safe_psql('postgres', q{SELECT eventkit.alter_stream('events', clear => ARRAY['max_batch_items'])});
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_plan('shop', '{"events": {"Checked": {"properties": {"type": "object",
	"properties": {"n": {"type": "integer"}}, "required": ["n"]}}}, "violations": "quarantine"}');
SELECT eventkit.attach_plan('events', 'shop');
});
is( $w1->safe_psql(
		'postgres', q{
SELECT accepted || ':' || quarantined FROM eventkit.ingest('events', '[{"type":"track","event":"Checked","userId":"p1","messageId":"plan-1","properties":{"n":1}},
	{"type":"track","event":"Checked","userId":"p2","messageId":"plan-2","properties":{"n":"one"}}]')}),
	'1:1', 'attach_plan on the coordinator reaches the workers: a violation is quarantined there');
# a new version of the plan (n may now be a string): the workers follow it
$coord->safe_psql('postgres', q{SELECT eventkit.create_plan('shop', '{"events": {"Checked": {"properties": {"type": "object",
	"properties": {"n": {"type": ["integer", "string"]}}, "required": ["n"]}}}, "violations": "quarantine"}')});
is( $w2->safe_psql(
		'postgres', q{
SELECT accepted || ':' || quarantined FROM eventkit.ingest('events', '{"type":"track","event":"Checked","userId":"p3","messageId":"plan-3","properties":{"n":"three"}}')}),
	'1:0', 'a new version of the plan made on the coordinator reaches the workers');
$coord->safe_psql('postgres', q{SELECT eventkit.detach_plan('events')});

# --- a rollup of a distributed stream ------------------------------------------

# (a stream that holds events ingested on the workers: the backfill folds
# all its rows, the workers' too; 057 has more)
is( $coord->safe_psql(
		'postgres', q{
SELECT eventkit.create_rollup('early', 'events', '1 hour', ARRAY['event'], ARRAY['count']) IS NOT NULL;
SELECT (SELECT sum(count) FROM early) = (SELECT count(*) FROM events);}),
	"t\nt", 'a rollup of a stream with events ingested on the workers counts them all');
$coord->safe_psql('postgres', q{SELECT eventkit.drop_rollup('early')});
$coord->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('rolled', key_partitions => 0);
SELECT eventkit.distribute_stream('rolled', 8);
SELECT eventkit.create_rollup('hourly', 'rolled', '1 hour', ARRAY['event'], ARRAY['count']);
});
is( $w1->safe_psql('postgres',
		q{SELECT accepted FROM eventkit.ingest('rolled', '{"type":"track","event":"R","userId":"u","messageId":"r1"}')}),
	'1', 'a stream with a rollup is ingested on a worker');
is($coord->safe_psql('postgres', q{SELECT sum(count) FROM hourly_realtime}),
	'1', '... and its rollup\'s realtime view counts the event (from the worker\'s deltas)');
$coord->safe_psql('postgres', q{SELECT eventkit.drop_rollup('hourly')});
is( $w1->safe_psql('postgres',
		q{SELECT accepted FROM eventkit.ingest('rolled', '{"type":"track","event":"R","userId":"u","messageId":"r2"}')}),
	'1', 'after drop_rollup a worker ingests it still');
$coord->safe_psql('postgres', q{SELECT eventkit.drop_stream('rolled')});

# --- concurrent clients on all three nodes, overlapping ids ------------------

my $nbatches = 30;
$coord->safe_psql(
	'postgres', qq{
CREATE TABLE overlap AS
SELECT k, jsonb_agg(jsonb_build_object(
			'type', 'track', 'messageId', 'ov-' || id, 'userId', 'u' || (id % 29),
			'event', 'Overlap', 'properties', jsonb_build_object('id', id))
			ORDER BY hashint4(id * 31 + k))::text AS payload
  FROM generate_series(1, $nbatches) k, generate_series(40 * k, 40 * k + 99) id
 GROUP BY k;
});
my ($calls, $accepted, $conflicts, $other) = citus_clients($coord,
	map { [ $nodes[$_], "SELECT payload FROM overlap WHERE k % 3 = $_ ORDER BY k" ] } 0 .. 2);
my $distinct = 40 * ($nbatches - 1) + 100;
is("$calls|$accepted|$conflicts", "$nbatches|$distinct|0",
	'concurrent clients on three nodes: every call answered, accepted counts add up to the distinct ids')
  or diag($other);
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT message_id) FROM events WHERE event = 'Overlap'}),
	"$distinct|$distinct", 'concurrent clients on three nodes: every id stored exactly once');

# --- a late event on a worker waits for the coordinator's partition ---------

my $parts = $coord->safe_psql('postgres', q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass});
my $late = $coord->safe_psql('postgres', q{SELECT to_char(now() - interval '20 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
is( $w2->safe_psql(
		'postgres', qq{
SELECT accepted || ':' || quarantined FROM eventkit.ingest('events', '[
	{"type":"track","messageId":"late-w","userId":"u1","event":"Late","timestamp":"$late"},
	{"type":"track","messageId":"now-w","userId":"u1","event":"Now"}]')}),
	'1:1', 'a late event on a worker is quarantined, the rest of its batch is stored');
is($w2->safe_psql('postgres', q{SELECT reasons->0->>'reason' FROM eventkit.quarantine WHERE message_id = 'late-w'}),
	'out_of_range', 'it waits with reason out_of_range');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass}),
	$parts, 'no partition was made by the worker');
is($w2->safe_psql('postgres', q{SELECT replayed || ':' || cardinality(waiting_partitions) FROM eventkit.redrive_quarantine('events')}),
	'0:1', 'by hand on the worker: nothing to replay yet, one partition missing');
# the coordinator's maintenance asks the workers what their events wait for
# and makes those partitions
my ($ret, $out, $err) = $coord->psql('postgres', q{SELECT eventkit.run_maintenance('events')});
is($err, '', 'run_maintenance on the coordinator reaches the workers without a warning');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass}),
	$parts + 1, 'the coordinator made the partition the worker\'s late event waits for');
is($w2->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine WHERE message_id = 'late-w'}),
	'1', 'the event still waits on the worker until the redrive');

# the background jobs do it all: a second late event, on the other worker, of
# another day; the coordinator's premake makes its partition, its redrive job
# replays both workers' waiting events
my $late2 = $coord->safe_psql('postgres', q{SELECT to_char(now() - interval '25 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
is( $w1->safe_psql(
		'postgres', qq{
SELECT accepted || ':' || quarantined FROM eventkit.ingest('events', '{"type":"track","messageId":"late2-w","userId":"u7","event":"Late","timestamp":"$late2"}')}),
	'0:1', 'a late event of another day on the other worker waits too');
$coord->safe_psql(
	'postgres', qq{
UPDATE eventkit.jobs SET schedule = '1 second', next_run_at = now()
 WHERE stream_id = $sid AND kind IN ('premake', 'redrive');
ALTER SYSTEM SET eventkit.naptime = 1;
ALTER SYSTEM SET eventkit.scheduler_enabled = on;
SELECT pg_reload_conf();
});
ok( $coord->poll_query_until(
		'postgres',
		q{SELECT count(*) = 2 FROM events WHERE message_id IN ('late-w', 'late2-w')}),
	'the coordinator\'s premake and redrive jobs store the workers\' waiting events');
is( join('|',
		map { $_->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine WHERE message_id LIKE 'late%'}) }
		  ($w1, $w2)),
	'0|0', 'nothing waits on the workers any more');
like(
	$coord->safe_psql(
		'postgres', qq{
SELECT string_agg(r.message, ' / ' ORDER BY r.run_id) FROM eventkit.job_runs r JOIN eventkit.jobs j USING (job_id)
 WHERE j.stream_id = $sid AND j.kind = 'redrive' AND r.status = 'succeeded'}),
	qr/on 2 workers: replayed \d+ events/,
	'the redrive job reaches the workers');
$coord->safe_psql(
	'postgres', q{
ALTER SYSTEM RESET eventkit.scheduler_enabled;
ALTER SYSTEM RESET eventkit.naptime;
SELECT pg_reload_conf();
});
is($coord->safe_psql('postgres', q{SELECT count(*) FROM events WHERE message_id IN ('late-w', 'now-w', 'late2-w')}),
	'3', 'every event of those batches is stored, once');

# --- the whole cluster's statistics and quarantine on the coordinator --------

my $wq = join('+', map { $_->safe_psql('postgres', qq{SELECT count(*) FROM eventkit.quarantine WHERE stream_id = $sid}) } ($w1, $w2));
my $wb = join('+', map { $_->safe_psql('postgres', qq{SELECT count(*) FROM eventkit.ingest_batches WHERE stream_id = $sid}) } ($w1, $w2));
is( $coord->safe_psql(
		'postgres', q{
SELECT (SELECT count(*) FROM eventkit.worker_stream_stats() WHERE stream_id = s.stream_id) || ':' ||
	   (s.accepted = (SELECT count(*) FROM events)) || ':' ||
	   (s.batches > (SELECT count(*) FROM eventkit.ingest_batches b WHERE b.stream_id = s.stream_id))
  FROM eventkit.stream_stats s WHERE s.stream = 'events'::regclass}),
	'2:true:true',
	'stream_stats on the coordinator counts the workers\' ingest: every stored event accepted once, more calls than its own log');
is( $coord->safe_psql(
		'postgres', qq{
SELECT (SELECT sum(batches) FROM eventkit.worker_stream_stats() WHERE stream_id = $sid) || ':' ||
	   (SELECT count(*) FROM eventkit.worker_quarantine('events')) || ':' ||
	   (SELECT bool_and(node ~ ':[0-9]+\$') FROM eventkit.worker_quarantine('events'))}),
	(eval $wb) . ':' . (eval $wq) . ':true',
	'worker_stream_stats and worker_quarantine return the workers\' batch logs and quarantine rows, with their node');
my $vq = q{
SELECT string_agg(concat_ws(',', plan, event, keyword, property_path, action, violations, batches), ' | '
				  ORDER BY keyword, property_path)
  FROM eventkit.violation_stats WHERE stream = 'events'::regclass};
my $w1v = $w1->safe_psql('postgres', $vq);
like($w1v, qr/^shop,Checked,type,/, 'worker 1 found the plan violation');
is($coord->safe_psql('postgres', $vq), $w1v,
	'violation_stats on the coordinator includes the findings made on a worker');
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM eventkit.worker_stream_stats() w JOIN eventkit.streams s USING (stream_id) WHERE s.relid = 'events_local'::regclass}),
	'0', 'a stream that is not distributed has no worker rows');
# health() on the coordinator: each worker answered; their own findings come
# with their node (the scheduler is off on the workers in this test)
is( $coord->safe_psql(
		'postgres', q{
SELECT string_agg(target || '=' || status, ',' ORDER BY target) FROM eventkit.health()
 WHERE component = 'citus' AND target !~ ' '}),
	join(',', map { $_->host . ':' . $_->port . '=ok' } sort { $a->host . ':' . $a->port cmp $b->host . ':' . $b->port } ($w1, $w2)),
	'health() on the coordinator has a row per worker that answered');
like( $coord->safe_psql(
		'postgres', q{SELECT string_agg(target, ',') FROM eventkit.health() WHERE component = 'citus' AND target ~ ' scheduler: '}),
	qr/:\d+ scheduler: /, 'and the workers\' own findings, with their node');
is($w1->safe_psql('postgres', q{SELECT count(*) FROM eventkit.worker_stream_stats()}),
	'0', 'on a worker worker_stream_stats returns nothing');

# --- the workers' conflicts and batch logs on the coordinator; erasure -------

# user cf: an event through the coordinator, re-sent with other content
# through each worker (a conflict logged there), one too new quarantined on
# worker 2
sub cf_event
{
	my ($id, $n) = @_;
	return qq{SELECT concat_ws(',', accepted, duplicates, conflicts, quarantined, rejected) FROM eventkit.ingest('events',
		'{"type":"track","event":"Cf","userId":"cf","messageId":"$id","properties":{"n":$n}}')};
}
is($coord->safe_psql('postgres', cf_event('cf-1', 1)), '1,0,0,0,0', 'user cf: an event through the coordinator');
is($w1->safe_psql('postgres', cf_event('cf-1', 2)), '0,0,1,0,0', 're-sent with other content through worker 1: a conflict');
is($w2->safe_psql('postgres', cf_event('cf-1', 3)), '0,0,1,0,0', '... and through worker 2');
my $future = $coord->safe_psql('postgres', q{SELECT to_char(now() + interval '3 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
is( $w2->safe_psql(
		'postgres', qq{SELECT quarantined FROM eventkit.ingest('events',
		'{"type":"track","event":"Cf","userId":"cf","messageId":"cf-2","timestamp":"$future"}')}),
	'1', 'an event of cf too new: quarantined on worker 2');
my %node_name = map { ($_->name => $_->host . ':' . $_->port) } ($w1, $w2);
is( $coord->safe_psql(
		'postgres', q{
SELECT string_agg(node || '=' || (payload->'properties'->>'n'), ',' ORDER BY payload->'properties'->>'n')
  FROM eventkit.worker_conflicts('events') WHERE message_id = 'cf-1'}),
	"$node_name{worker1}=2,$node_name{worker2}=3",
	'worker_conflicts on the coordinator lists the conflict logged on each worker, with its node');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.conflicts WHERE message_id = 'cf-1'}),
	'0', '(the coordinator logged none of them itself)');
my $wc = join('+', map { $_->safe_psql('postgres', qq{SELECT count(*) FROM eventkit.conflicts WHERE stream_id = $sid}) } ($w1, $w2));
is($coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.worker_conflicts('events')}),
	eval $wc, 'worker_conflicts returns every conflict the workers logged for the stream');
my $batch_logs = join(',', map {
		$node_name{ $_->name } . ':' . $_->safe_psql('postgres',
			qq{SELECT count(*) || ':' || sum(conflicts) || ':' || max(batch_id) FROM eventkit.ingest_batches WHERE stream_id = $sid})
	} sort { $node_name{ $a->name } cmp $node_name{ $b->name } } ($w1, $w2));
is( $coord->safe_psql(
		'postgres', q{
SELECT string_agg(node || ':' || n || ':' || c || ':' || m, ',' ORDER BY node)
  FROM (SELECT node, count(*) n, sum(conflicts) c, max(batch_id) m FROM eventkit.worker_ingest_batches('events') GROUP BY node) s}),
	$batch_logs, 'worker_ingest_batches returns each worker\'s batch log of the stream, with its node');

# a role that does not own the stream is refused (on the coordinator, and
# forget_user's part on a worker)
$coord->safe_psql('postgres', q{CREATE ROLE ek_nobody LOGIN});
like(psql_err($coord, q{SET ROLE ek_nobody; SELECT count(*) FROM eventkit.worker_conflicts('events')}),
	qr/must be owner of table events/, 'worker_conflicts: a role that does not own the stream is refused');
like(psql_err($coord, q{SET ROLE ek_nobody; SELECT count(*) FROM eventkit.worker_quarantine('events')}),
	qr/must be owner of table events/, 'worker_quarantine: a role that does not own the stream is refused, as by worker_conflicts');
like(psql_err($coord, q{SET ROLE ek_nobody; SELECT count(*) FROM eventkit.worker_ingest_batches('events')}),
	qr/permission denied for table ingest_batches/, 'worker_ingest_batches: a role that may not read the batch log is refused');
like(psql_err($w1, q{SET ROLE ek_nobody; SELECT * FROM eventkit.forget_user_on_worker('events', '{cf}', 1)}),
	qr/must be owner of table events/, 'forget_user_on_worker: a role that does not own the stream is refused');
like(psql_err($coord, q{SELECT * FROM eventkit.forget_user_on_worker('events', '{cf}', 1)}),
	qr/forget_user_on_worker runs on a Citus worker/, '... and it runs on a worker only');
is($w1->safe_psql('postgres', q{SELECT count(*) FROM eventkit.conflicts WHERE message_id = 'cf-1'}),
	'1', '(which deleted nothing)');

# forget_user on the coordinator erases cf on every node: its event, the
# workers' conflicts and quarantine rows; the ids are suppressed on every
# node, so that a re-send through a worker is rejected, not stored again
is($coord->safe_psql('postgres', q{SELECT eventkit.forget_user('events', 'cf')}),
	'4', 'forget_user: the event, two conflicts and a quarantined event deleted');
my $erasure = $coord->safe_psql('postgres',
	q{SELECT erasure_id || ':' || quarantined || ':' || conflicts || ':' || ledger_rows FROM eventkit.erasures WHERE user_id = 'cf'});
like($erasure, qr/^\d+:1:2:1$/, 'the erasure log counts the workers\' rows, and the ledger entry deleted');
is($coord->safe_psql('postgres', qq{SELECT count(*) FROM eventkit_ledgers.dist_ledger_$sid WHERE user_key = 'cf'}),
	'0', 'forget_user deleted the user\'s ids from the distributed ledger');
my ($erasure_id) = split /:/, $erasure;
is( join('|',
		map { $_->safe_psql('postgres', qq{
SELECT (SELECT count(*) FROM eventkit.conflicts WHERE stream_id = $sid AND message_id LIKE 'cf-%') || ':' ||
	   (SELECT count(*) FROM eventkit.quarantine WHERE stream_id = $sid AND message_id LIKE 'cf-%') || ':' ||
	   (SELECT string_agg(id || '/' || erasure_id, ',') FROM eventkit.suppressions WHERE stream_id = $sid)}) } @nodes),
	join('|', ("0:0:cf/$erasure_id") x 3),
	'forget_user deleted the conflicts and quarantine rows on every node, and suppressed the id on every node');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM eventkit.worker_conflicts('events') WHERE message_id LIKE 'cf-%'}),
	'0', 'worker_conflicts lists none of them any more');
is($w1->safe_psql('postgres', cf_event('cf-1', 1)), '0,0,0,0,1',
	'a re-send of the erased event through a worker is rejected (suppressed)');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM events WHERE user_id = 'cf'}), '0', 'and not stored');

# a worker that is down: health() says so, stream_stats warns and leaves it out
$w2->stop('fast');
is( $coord->safe_psql(
		'postgres', q{
SELECT string_agg(status, ',' ORDER BY target) FROM eventkit.health()
 WHERE component = 'citus' AND target !~ ' '}),
	join(',', map { $_->[1] } sort { $a->[0] cmp $b->[0] } ([ $w1->host . ':' . $w1->port, 'ok' ], [ $w2->host . ':' . $w2->port, 'error' ])),
	'health() on the coordinator: a worker that is down is an error');
($ret, $out, $err) = $coord->psql('postgres', q{SELECT accepted > 0 FROM eventkit.stream_stats WHERE stream = 'events'::regclass});
is($out, 't', 'stream_stats still answers with a worker down');
like($err, qr/WARNING:  could not read the stream statistics of Citus worker/, 'with a warning that names the worker');
$w2->start;

# --- drop_stream --------------------------------------------------------------

$coord->safe_psql('postgres', q{SELECT eventkit.drop_stream('events')});
is( join('|', map { $_->safe_psql('postgres',
		  q{SELECT (SELECT count(*) FROM eventkit_internal.cluster_streams) || ':' || (SELECT count(*) FROM eventkit.streams WHERE NOT relid::text ~ '^events_local$|^other$')}) } @nodes),
	'0:0|0:0|0:0', 'drop_stream forgets the stream in the catalog of every node');

$_->stop for @nodes;
done_testing();
