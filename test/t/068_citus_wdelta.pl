
# Copyright: eventkit authors
#
# A worker's rollup deltas stay on the worker (1.17, with
# eventkit.worker_deltas_on_shards on, the default; docs/citus.md, "Rollups"): the
# worker delta table of a rollup of a distributed stream is
# distributed by ek_shard_key and co-located with the stream, and a worker
# call writes its batch's deltas into a shard of its own node, in its own
# transaction.  On a coordinator without shards and two workers: the table
# is distributed and co-located; routed calls on each worker (their events'
# shards all on that worker, no identity links) send no command to another
# node (citus.log_remote_commands in the session) and no statement of their
# session reaches another node (log_statement on the others), and their
# deltas are in the worker's own shards; the realtime view equals GROUP BY
# before a refresh, the rollup table after it (count, sum, min, max, hll
# distinct), every row marked and folded (by generations: src/rollup/wdelta.c).
# Concurrent routed ingest on both workers while the coordinator refreshes
# again and again: after a final refresh the rollup equals GROUP BY exactly
# (nothing lost, nothing doubled), and the realtime view did before it.  A
# refresh with max_events folds whole generations; one in a transaction that
# locked the table before marks without folding what it marked.  The realtime view read
# 300 times while 200 refreshes and routed ingest on both workers run: every
# read exact.  A refresh cancelled, then terminated, after its own first
# transaction marked its rows: they stay marked, the next refresh folds them
# once.  A REPEATABLE READ transaction older than a fold still counts the
# folded rows (their deletion waits for it).  A shard moved between ingest and refresh takes its
# worker delta shard with it and loses nothing.  A worker delta table as
# 1.16 made it (a Citus local table on the coordinator) keeps working, the
# coordinator in the call's two-phase commit.  The rollup given to another
# role: the worker delta table follows, and the workers' calls write it as
# that role (a call of the other worker's events too: through Citus, as a
# role other than the stream's owner, Citus would refuse it).  drop_rollup drops both kinds,
# the rollup owned by another role than the stream's too.
#
# Skipped when Citus is not installed (shared/citus/install-citus.sh).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib $FindBin::RealBin;
use EventkitCitus;

citus_skip_unless_installed();

my @nodes = citus_cluster("citus.max_cached_conns_per_worker = 8\n");
my ($coord, $w1, $w2) = @nodes;

# the worker delta tables on the shards (off by default): for every
# session of the coordinator's database, and this one
$coord->safe_psql(
	'postgres', q{
ALTER DATABASE postgres SET eventkit.worker_deltas_on_shards = on;
SET eventkit.worker_deltas_on_shards = on;
CREATE EXTENSION IF NOT EXISTS hll;
SELECT eventkit.create_stream('events', key_partitions => 0);
SELECT eventkit.distribute_stream('events', 8);
SELECT count(*) FROM generate_series(0, 41) h, LATERAL eventkit.ingest('events', jsonb_build_object('type', 'track',
		'messageId', 'warm-' || h, 'userId', 'warm', 'event', 'Warm',
		'timestamp', now() - h * interval '1 hour')) r;
SELECT eventkit.run_maintenance('events');
SELECT eventkit.create_rollup('hourly', 'events', '1 hour', ARRAY['event'],
		ARRAY['count', 'sum(properties.revenue) AS revenue', 'max(properties.revenue) AS top',
			  'min(properties.revenue) AS low', 'distinct(user_id) AS users']);
-- events with a userId alone (no anonymousId: no identity link)
CREATE FUNCTION ev(id int) RETURNS jsonb LANGUAGE sql AS $$
SELECT jsonb_build_object('type', 'track', 'messageId', 'w-' || id, 'userId', 'u' || (id % 97),
		'event', CASE WHEN id % 3 = 0 THEN 'Viewed' ELSE 'Ordered' END,
		'properties', jsonb_build_object('revenue', id % 101 - 20),
		'timestamp', to_char(now() - (id % 30) * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;
-- (a route of each event: the node of its user's shard)
CREATE TABLE evs AS
SELECT id, e.ev, r.nodeport FROM generate_series(1, 6000) id, LATERAL (SELECT ev(id) AS ev) e,
	   LATERAL eventkit.route_events('events', e.ev) r;
});
is($coord->safe_psql('postgres', q{SELECT count(DISTINCT nodeport) FROM evs}), '2',
	'the events are routed to both workers');

is( $coord->safe_psql(
		'postgres', q{
SELECT p.partmethod::text || ',' || (p.colocationid = s.colocationid)::text FROM pg_dist_partition p, pg_dist_partition s
 WHERE p.logicalrelid = 'hourly_wdelta'::regclass AND s.logicalrelid = 'events'::regclass}),
	'h,true', 'the worker delta table is distributed, co-located with the stream');

my $groupby = q{SELECT date_trunc('hour', ts), event, count(*), sum((properties->>'revenue')::numeric),
		max((properties->>'revenue')::numeric), min((properties->>'revenue')::numeric), count(DISTINCT user_id)
   FROM events GROUP BY 1, 2};
# (the table's users is an hll, the view's its cardinality)
sub diff
{
	my ($rel) = @_;
	my $users = $rel =~ /_realtime$/ ? 'users::bigint' : 'round(hll_cardinality(users))::bigint';
	my $cols = "bucket, event, count, revenue, top, low, $users";
	return "SELECT count(*) FROM ((SELECT $cols FROM $rel EXCEPT $groupby)"
	  . " UNION ALL ($groupby EXCEPT SELECT $cols FROM $rel)) d";
}
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly')});
is($coord->safe_psql('postgres', diff('hourly')), '0', 'the rollup of the warm-up events equals GROUP BY');
# The rows of the worker delta table not folded yet: of no generation, or
# of one above the generation folded (src/rollup/wdelta.c)
my $unfolded = q{SELECT count(*) FROM hourly_wdelta
  WHERE ek_gen IS NULL OR ek_gen > (SELECT wdelta_folded FROM eventkit.rollups WHERE relid = 'hourly'::regclass)};
# A refresh: its rows marked first in a transaction of its own, then folded
sub refresh_hourly
{
	my ($name) = @_;
	$name //= 'hourly';
	$coord->safe_psql('postgres', "SELECT eventkit.refresh_rollup('$name')");
}

# The routed batches of ids [$lo, $hi] for $node, $size events each.
sub batches_for
{
	my ($node, $lo, $hi, $size) = @_;
	return sprintf(
		q{SELECT jsonb_build_object('batch', jsonb_agg(ev ORDER BY id))::text FROM evs
  WHERE nodeport = %d AND id BETWEEN %d AND %d GROUP BY id / %d ORDER BY id / %d},
		$node->port, $lo, $hi, $size, $size);
}

# --- routed calls on each worker reach no other node -------------------------
for my $n ($w1, $w2)
{
	my @others = grep { $_->name ne $n->name } @nodes;
	for my $o (@others)
	{
		$o->safe_psql('postgres', q{ALTER SYSTEM SET log_statement = 'all'; SELECT pg_reload_conf()});
		$o->poll_query_until('postgres', q{SELECT current_setting('log_statement') = 'all'});
	}
	my %mark = map { $_->name => -s $_->logfile } @others;
	my $script = $n->basedir . '/routed.sql';
	open(my $fh, '>', $script) or die "$script: $!";
	print $fh "SET citus.log_remote_commands = on;\nSET citus.log_local_commands = on;\n"
	  . "SET client_min_messages = log;\nSELECT 'gpid ' || citus_backend_gpid();\n";
	for my $line (split /\n/, $coord->safe_psql('postgres', batches_for($n, 1, 1000, 50)))
	{
		$line =~ s/'/''/g;
		print $fh "SELECT 'acc ' || accepted FROM eventkit.ingest('events', '$line'::jsonb);\n";
	}
	close $fh;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $n->host, '-p', $n->port,
					'-d', 'postgres', '-f', $script ], '>', \$out, '2>', \$err)
	  or die "psql on " . $n->name . " failed: $err";
	my ($gpid) = $out =~ /^gpid (\d+)$/m;
	my $accepted = 0;
	$accepted += $1 while $out =~ /^acc (\d+)$/mg;
	ok($accepted > 100, $n->name . ": its routed calls stored $accepted events");
	ok(defined $gpid && $err !~ /issuing/, $n->name . ': its routed calls with a rollup sent no command to another node')
	  or diag($err);
	ok($err !~ /executing the command locally: [^\n]*_wdelta/,
		$n->name . ': ... and wrote its deltas into the shard directly (no Citus local execution of a statement on them)')
	  or diag($err);
	my $reached = '';
	for my $o (@others)
	{
		$o->safe_psql('postgres', q{ALTER SYSTEM RESET log_statement; SELECT pg_reload_conf()});
		$reached .= join('', grep { /citus_internal gpid=$gpid\b/ } split /^/, slurp_file($o->logfile, $mark{ $o->name }));
	}
	is($reached, '', $n->name . ': no statement of that session reached another node (no two-phase commit)');
}
is( $coord->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE n.nodeport = (SELECT min(nodeport) FROM evs)) > 0
	   AND count(*) FILTER (WHERE n.nodeport = (SELECT max(nodeport) FROM evs)) > 0
  FROM (SELECT DISTINCT get_shard_id_for_distribution_column('hourly_wdelta', ek_shard_key) AS shardid
		  FROM hourly_wdelta) s
  JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)}),
	't', 'the deltas are in shards of both workers');
is($coord->safe_psql('postgres', diff('hourly_realtime')), '0', 'the realtime view equals GROUP BY before a refresh');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly')});
is($coord->safe_psql('postgres', diff('hourly') . ' UNION ALL ' . $unfolded . ' UNION ALL SELECT count(*) FROM hourly_wdelta WHERE ek_gen IS NULL'),
	"0\n0\n0", 'after a refresh the rollup table equals GROUP BY, every row marked and folded');

# --- concurrent routed ingest on both workers while the coordinator refreshes
my $handle = citus_clients_start($coord, [ $w1, batches_for($w1, 1001, 4000, 40) ],
	[ $w2, batches_for($w2, 1001, 4000, 40) ]);
my $refreshes = 0;
my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
while (grep { $_->pumpable } @{ $handle->[0] })
{
	# (reads the clients' output; one that ended is finished below)
	for my $h (grep { $_->pumpable } @{ $handle->[0] })
	{
		eval { $h->pump_nb; };
	}
	$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly')});
	$refreshes++;
	last if time() > $deadline;
}
my ($calls, $accepted, $conflicts, $other) = citus_clients_finish($handle);
is($other, '', 'the concurrent calls succeeded');
ok($refreshes >= 2, "the coordinator refreshed $refreshes times during $calls calls");
is($coord->safe_psql('postgres', diff('hourly_realtime')), '0',
	'the realtime view equals GROUP BY before the final refresh');
refresh_hourly();
is($coord->safe_psql('postgres', diff('hourly') . ' UNION ALL ' . $unfolded),
	"0\n0", 'after the final refreshes the rollup equals GROUP BY exactly: nothing lost, nothing doubled');
is( $coord->safe_psql(
		'postgres', q{SELECT (SELECT sum(count) FROM hourly) = (SELECT count(*) FROM events)}),
	't', '... every event counted once');

# --- max_events: whole generations of the worker delta table -----------------
# Worker 1's batches marked by a refresh in a transaction that locked the
# worker delta table before it (no transaction of its own to mark in first,
# which would wait for that lock: it marks them and folds what was marked
# before, nothing), then worker 2's by the next refresh's
# own transaction: with max_events 1 that refresh folds the first
# generation alone, whole.
my %accepted;
for my $n ($w1, $w2)
{
	$accepted{ $n->name } = 0;
	for my $line (split /\n/, $coord->safe_psql('postgres', batches_for($n, 4001, 4300, 25)))
	{
		$line =~ s/'/''/g;
		$accepted{ $n->name } += $n->safe_psql('postgres', "SELECT accepted FROM eventkit.ingest('events', '$line'::jsonb)");
	}
	is( $coord->safe_psql(
			'postgres', $n == $w1
			? q{BEGIN; LOCK TABLE hourly_wdelta IN ROW SHARE MODE; SELECT eventkit.refresh_rollup('hourly', 1); COMMIT;}
			: q{SELECT eventkit.refresh_rollup('hourly', 1)}),
		$n == $w1 ? '0' : $accepted{ $w1->name },
		'max_events 1, after ' . $n->name . '\'s batches: '
		  . ($n == $w1 ? 'in a transaction that locked the worker delta table, marked, nothing folded' : 'the first generation folded, whole'));
	is($coord->safe_psql('postgres', diff('hourly_realtime')), '0', '... the realtime view equals GROUP BY');
}
ok($coord->safe_psql('postgres', $unfolded) > 0, '... worker 2\'s rows wait for the next refresh');
is($coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly', 1)}), $accepted{ $w2->name },
	'the next refresh with max_events 1 folds them');
is($coord->safe_psql('postgres', diff('hourly') . ' UNION ALL ' . $unfolded), "0\n0",
	'the rollup equals GROUP BY');

# --- the realtime view is exact while refreshes commit (src/rollup/wdelta.c) --
# Events of their own: 'Fixed' (ingested first, not refreshed), 'Kill',
# 'Held', then 'Live' (ingested while the view is read)
$coord->safe_psql(
	'postgres', q{
CREATE TABLE evs2 AS
SELECT id, e.ev, r.nodeport FROM generate_series(10001, 16000) id,
	   LATERAL (SELECT jsonb_set(jsonb_set(ev(id), '{event}', to_jsonb(CASE WHEN id <= 10600 THEN 'Fixed'
			WHEN id <= 10800 THEN 'Kill' WHEN id <= 11000 THEN 'Held' ELSE 'Live' END)),
			'{messageId}', to_jsonb('x-' || id)) AS ev) e,
	   LATERAL eventkit.route_events('events', e.ev) r;
});
sub batches_of
{
	my ($node, $event, $size) = @_;
	return sprintf(
		q{SELECT jsonb_build_object('batch', jsonb_agg(ev ORDER BY id))::text FROM evs2
  WHERE nodeport = %d AND ev->>'event' = '%s' GROUP BY id / %d ORDER BY id / %d},
		$node->port, $event, $size, $size);
}
sub ingest_of
{
	my ($node, $event, $size) = @_;
	for my $line (split /\n/, $coord->safe_psql('postgres', batches_of($node, $event, $size)))
	{
		$line =~ s/'/''/g;
		$node->safe_psql('postgres', "SELECT eventkit.ingest('events', '$line'::jsonb)");
	}
}
ingest_of($_, 'Fixed', 50) for ($w1, $w2);
my $fixed = $coord->safe_psql('postgres', q{SELECT count(*) FROM events WHERE event <> 'Live'});
ok($coord->safe_psql('postgres', $unfolded) > 0, "the 'Fixed' events' rows unfolded ($fixed events but 'Live')");
# The reader: in each round, in statements of their own, the 'Live' events
# stored (c0), the view's totals, the 'Live' events stored (c1): the view's
# 'Live' count is between c0 and c1 (a worker's call commits its rows and
# deltas on its node together), the others' is $fixed.
my $rounds = 300;
my $reader = $coord->basedir . '/reader.sql';
open(my $rfh, '>', $reader) or die "$reader: $!";
for (1 .. $rounds)
{
	print $rfh "SELECT count(*) AS c0 FROM events WHERE event = 'Live' \\gset\n"
	  . "SELECT coalesce(sum(count) FILTER (WHERE event = 'Live'), 0) AS v,"
	  . " sum(count) FILTER (WHERE event <> 'Live') AS f FROM hourly_realtime \\gset\n"
	  . "SELECT count(*) AS c1 FROM events WHERE event = 'Live' \\gset\n"
	  . "SELECT CASE WHEN :f = $fixed AND :v BETWEEN :c0 AND :c1 THEN 'ok'"
	  . " ELSE 'bad f=' || :f || ' v=' || :v || ' c0=' || :c0 || ' c1=' || :c1 END;\n";
}
close $rfh;
my $refresher = $coord->basedir . '/refresher.sql';
open(my $ffh, '>', $refresher) or die "$refresher: $!";
print $ffh "SELECT 'r ' || eventkit.refresh_rollup('hourly');\n" x 200;
close $ffh;
my $live = citus_clients_start($coord, [ $w1, batches_of($w1, 'Live', 10) ], [ $w2, batches_of($w2, 'Live', 10) ]);
my ($fout, $rout, $rerr) = ('', '', '');
my $fh_run = IPC::Run::start([ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $coord->host, '-p', $coord->port,
							   '-d', 'postgres', '-f', $refresher ], '>', \$fout, '2>&1');
IPC::Run::run([ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $coord->host, '-p', $coord->port,
				'-d', 'postgres', '-f', $reader ], '>', \$rout, '2>', \$rerr);
$fh_run->finish;
my ($lcalls, $laccepted, $lconflicts, $lother) = citus_clients_finish($live);
is($lother, '', "the concurrent 'Live' calls succeeded ($lcalls calls)");
my @rounds = split /\n/, $rout;
my @bad = grep { $_ ne 'ok' } @rounds;
is(scalar(@rounds), $rounds, "the reader read the realtime view $rounds times") or diag($rerr);
is(scalar(@bad), 0, '... each read exact: the events folded meanwhile counted once, none missed')
  or diag(join("\n", @bad[ 0 .. ($#bad < 9 ? $#bad : 9) ]));
my $rcount = () = $fout =~ /^r \d+$/mg;
ok($rcount == 200, "while $rcount refreshes ran") or diag($fout);
refresh_hourly();
is($coord->safe_psql('postgres', diff('hourly') . ' UNION ALL ' . $unfolded), "0\n0",
	'then the rollup equals GROUP BY');

# --- a refresh that fails after its rows were marked and committed (its
# first transaction) and before its fold commits: they stay marked, the next
# refresh folds them, once.  The refresh's merge waits on the rollup table,
# locked by another session; it is cancelled, then terminated.
ingest_of($w1, 'Kill', 50);
my $marked = q{SELECT count(*) FROM hourly_wdelta
  WHERE ek_gen > (SELECT wdelta_folded FROM eventkit.rollups WHERE relid = 'hourly'::regclass) AND event = 'Kill'};
my $kill_rows = $coord->safe_psql('postgres', q{SELECT count(*) FROM hourly_wdelta WHERE event = 'Kill'});
ok($kill_rows > 0, "the 'Kill' events' $kill_rows rows");
for my $how ('cancel', 'terminate')
{
	my $locker = $coord->background_psql('postgres');
	$locker->query_safe('BEGIN; LOCK TABLE hourly IN EXCLUSIVE MODE');
	my $refresh = $coord->background_psql('postgres', on_error_stop => 0);
	my $pid = $refresh->query_safe('SELECT pg_backend_pid()');
	$refresh->query_until(qr/refreshing/, "\\echo refreshing\nSELECT eventkit.refresh_rollup('hourly');\n");
	$coord->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND relation = 'hourly'::regclass})
	  or die "the refresh did not wait on the rollup table";
	is($coord->safe_psql('postgres', $marked), $kill_rows,
		"a refresh waiting to merge: its rows marked and committed, not folded ($how)");
	is($coord->safe_psql('postgres', diff('hourly_realtime')), '0', '... the realtime view equals GROUP BY');
	$coord->safe_psql('postgres', "SELECT pg_${how}_backend($pid)");
	$coord->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid AND state = 'active'")
	  or die "the refresh did not end";
	eval { $refresh->quit; };
	if ($how eq 'cancel')
	{
		like($refresh->{stderr}, qr/canceling statement due to user request/, '... cancelled');
	}
	else
	{
		is($coord->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid"), '0',
			'... terminated');
	}
	$locker->query_safe('ROLLBACK');
	$locker->quit;
	is($coord->safe_psql('postgres', $marked), $kill_rows, '... the rows stay marked, not folded');
	is($coord->safe_psql('postgres', diff('hourly_realtime')), '0', '... the realtime view equals GROUP BY');
}
is($coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly')}),
	$coord->safe_psql('postgres', q{SELECT count(*) FROM events WHERE event = 'Kill'}),
	"the next refresh folds the 'Kill' events");
is($coord->safe_psql('postgres', diff('hourly') . ' UNION ALL ' . $unfolded), "0\n0",
	'... once: the rollup equals GROUP BY');

# --- the rows folded are deleted only once no snapshot of the coordinator can
# still count them in the worker delta table: a REPEATABLE READ transaction
# that took its snapshot before they were folded, and reads the workers
# after, still counts them
ingest_of($w1, 'Held', 50);
my $held = $coord->safe_psql('postgres', q{SELECT count(*) FROM events WHERE event = 'Held'});
{
	my $rr = $coord->background_psql('postgres');
	$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
	$rr->query_safe('SELECT count(*) FROM evs2');	# (its snapshot, on the coordinator only)
	$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly')}) for 1 .. 3;
	is($coord->safe_psql('postgres', q{SELECT sum(count) FROM hourly WHERE event = 'Held'}), $held,
		"'Held' events folded while an older REPEATABLE READ transaction is open");
	ok($coord->safe_psql('postgres', q{SELECT count(*) FROM hourly_wdelta WHERE event = 'Held'}) > 0,
		'... their rows not deleted');
	is($rr->query_safe(q{SELECT coalesce(sum(count), 0) FROM hourly_realtime WHERE event = 'Held'}), $held,
		'... that transaction\'s first read of the view counts them, from them');
	$rr->query_safe('COMMIT');
	$rr->quit;
}
my $deleted = 0;
for (1 .. 20)
{
	$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('hourly')});
	$deleted = 1, last if $coord->safe_psql('postgres', q{SELECT count(*) FROM hourly_wdelta}) eq '0';
}
ok($deleted, 'once it ended, a refresh deletes the rows folded');
is($coord->safe_psql('postgres', diff('hourly_realtime') . ' UNION ALL ' . diff('hourly')), "0\n0",
	'the realtime view and the rollup table equal GROUP BY');

# --- a shard move between ingest and refresh ----------------------------------
for my $line (split /\n/, $coord->safe_psql('postgres', batches_for($w1, 4301, 6000, 50)))
{
	$line =~ s/'/''/g;
	$w1->safe_psql('postgres', "SELECT eventkit.ingest('events', '$line'::jsonb)");
}
my $with_rows = join(',', split /\n/, $coord->safe_psql('postgres',
	q{SELECT DISTINCT get_shard_id_for_distribution_column('hourly_wdelta', ek_shard_key) FROM hourly_wdelta}));
my $shard = $coord->safe_psql(
	'postgres', qq{
SELECT s.shardid
  FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
 WHERE s.logicalrelid = 'hourly_wdelta'::regclass AND n.nodeport = @{[ $w1->port ]}
   AND s.shardid IN ($with_rows)
 ORDER BY s.shardid LIMIT 1});
ok(defined $shard && $shard > 0, "a worker delta shard of worker 1 holds deltas ($shard)");
my $stream_shard = $coord->safe_psql(
	'postgres', qq{
SELECT shardid FROM pg_dist_shard s WHERE logicalrelid = 'events'::regclass
   AND shardminvalue = (SELECT shardminvalue FROM pg_dist_shard WHERE shardid = $shard)});
$coord->safe_psql(
	'postgres', sprintf(
		q{SELECT citus_move_shard_placement(%d, '%s', %d, '%s', %d, shard_transfer_mode => 'block_writes')},
		$stream_shard, $w1->host, $w1->port, $w2->host, $w2->port));
is( $coord->safe_psql(
		'postgres', qq{SELECT string_agg(DISTINCT n.nodeport::text, ',') FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
						WHERE p.shardid IN ($shard, $stream_shard)}),
	$w2->port, 'the stream\'s shard moved to worker 2, its worker delta shard with it');
is($coord->safe_psql('postgres', diff('hourly_realtime')), '0', 'the realtime view equals GROUP BY after the move');
refresh_hourly();
is($coord->safe_psql('postgres', diff('hourly') . ' UNION ALL ' . $unfolded),
	"0\n0", 'a refresh after the move loses nothing');
# routed again to the moved shard's new node
$coord->safe_psql('postgres', q{UPDATE evs SET nodeport = (SELECT r.nodeport FROM eventkit.route_events('events', evs.ev) r)});
$coord->safe_psql('postgres', q{UPDATE evs SET ev = jsonb_set(ev, '{messageId}', to_jsonb('again-' || id))});
for my $line (split /\n/, $coord->safe_psql('postgres', batches_for($w2, 1, 2000, 100)))
{
	$line =~ s/'/''/g;
	$w2->safe_psql('postgres', "SELECT eventkit.ingest('events', '$line'::jsonb)");
}
refresh_hourly();
is($coord->safe_psql('postgres', diff('hourly') . ' UNION ALL ' . $unfolded),
	"0\n0", 'ingest on the moved shard\'s new node, refreshed: the rollup equals GROUP BY');

# --- a batch on worker 1 of worker 2's events only: nothing stored on worker
# 1, whose call still writes its deltas into a worker delta shard of its
# own (the first one, with a key that hashes there), not through Citus
$coord->safe_psql('postgres', q{UPDATE evs SET ev = jsonb_set(ev, '{messageId}', to_jsonb('cross-' || id))});
my ($cross_out, $cross_err) = ('', '');
my $cross = $coord->safe_psql('postgres', batches_for($w2, 1, 400, 1000));
$cross =~ s/'/''/g;
IPC::Run::run([ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $w1->host, '-p', $w1->port, '-d', 'postgres',
				'-c', 'SET citus.log_remote_commands = on', '-c', 'SET client_min_messages = log',
				'-c', "SELECT accepted FROM eventkit.ingest('events', '$cross'::jsonb)" ],
	'>', \$cross_out, '2>', \$cross_err);
like($cross_out, qr/^[1-9]\d*$/m, 'worker 2\'s events sent to worker 1: stored') or diag($cross_err);
unlike($cross_err, qr/issuing (?:INSERT INTO|COPY) public\.hourly_wdelta/,
	'... their deltas sent nowhere through Citus')
  or diag($cross_err);
is( $coord->safe_psql(
		'postgres', qq{
SELECT count(*) > 0 AND bool_and(n.nodeport = @{[ $w1->port ]})
  FROM (SELECT get_shard_id_for_distribution_column('hourly_wdelta', ek_shard_key) AS shardid FROM hourly_wdelta
		 WHERE ek_gen IS NULL) s
  JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)}),
	't', '... but into a worker delta shard of worker 1 (its rows, the only ones no refresh marked)');
is($coord->safe_psql('postgres', diff('hourly_realtime')), '0', 'the realtime view equals GROUP BY');
refresh_hourly();
is($coord->safe_psql('postgres', diff('hourly') . ' UNION ALL ' . $unfolded),
	"0\n0", '... and the rollup table after a refresh');

# --- the rollup given to another role (ALTER TABLE ... OWNER TO): its worker
# delta table and shards follow; a worker's calls write them as that role,
# into its own shard and, for a batch of the other worker's events, through
# Citus
$coord->safe_psql('postgres', q{
CREATE ROLE ek_rollup_owner LOGIN;  -- (Citus reaches the shards as it: view, refresh)
GRANT SELECT ON events TO ek_rollup_owner;
ALTER TABLE hourly OWNER TO ek_rollup_owner;
UPDATE evs SET ev = jsonb_set(ev, '{messageId}', to_jsonb('owned-' || id));
});
is($w1->safe_psql('postgres', q{SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE tablename LIKE 'hourly_wdelta%'}),
	'ek_rollup_owner', 'the worker delta table and its shards follow the rollup to its new owner');
for my $pair ([ $w1, $w1 ], [ $w1, $w2 ])
{
	my ($on, $of) = @$pair;
	my $p = $coord->safe_psql('postgres', batches_for($of, 401, 800, 1000));
	$p =~ s/'/''/g;
	my $r = $on->safe_psql('postgres', "SELECT accepted FROM eventkit.ingest('events', '$p'::jsonb)");
	ok($r > 0, 'a call on worker 1 of ' . $of->name . '\'s events into the stream of the rollup owned by another role');
	$coord->safe_psql('postgres', q{UPDATE evs SET ev = jsonb_set(ev, '{messageId}', to_jsonb('owned2-' || id))});
}
is($coord->safe_psql('postgres', diff('hourly_realtime')), '0', 'the realtime view equals GROUP BY');
refresh_hourly();
is($coord->safe_psql('postgres', diff('hourly') . ' UNION ALL ' . $unfolded),
	"0\n0", '... and the rollup table after a refresh');

# --- a worker delta table made before 1.17 (a Citus local table on the
# coordinator, no ek_shard_key) keeps working: a worker's call writes it
# through Citus, the coordinator in its two-phase commit
$coord->safe_psql('postgres', q{
SELECT eventkit.create_rollup('old_hourly', 'events', '1 hour', ARRAY['event'], ARRAY['count']);
CREATE TABLE old_hourly_wdelta_was (LIKE old_hourly_wdelta INCLUDING ALL);
ALTER TABLE old_hourly_wdelta_was DROP COLUMN ek_shard_key, DROP COLUMN ek_gen;
DROP TABLE old_hourly_wdelta;
});
$coord->safe_psql('postgres', q{
ALTER TABLE old_hourly_wdelta_was RENAME TO old_hourly_wdelta;
SELECT citus_add_local_table_to_metadata('old_hourly_wdelta');
});
is($coord->safe_psql('postgres', q{SELECT partmethod FROM pg_dist_partition WHERE logicalrelid = 'old_hourly_wdelta'::regclass}),
	'n', 'a rollup with a worker delta table as 1.16 made it (a Citus local table)');
$coord->safe_psql('postgres', q{UPDATE evs SET ev = jsonb_set(ev, '{messageId}', to_jsonb('old-' || id))});
my ($old_out, $old_err) = ('', '');
my $payload = $coord->safe_psql('postgres', batches_for($w1, 1, 300, 1000));
$payload =~ s/'/''/g;
IPC::Run::run([ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $w1->host, '-p', $w1->port, '-d', 'postgres',
				'-c', 'SET citus.log_remote_commands = on', '-c', 'SET client_min_messages = log',
				'-c', "SELECT accepted FROM eventkit.ingest('events', '$payload'::jsonb)" ],
	'>', \$old_out, '2>', \$old_err);
like($old_out, qr/^\d+$/m, 'a routed call on worker 1 into the stream with both rollups') or diag($old_err);
like($old_err, qr/issuing (?:INSERT INTO|COPY) public\.old_hourly_wdelta.*issuing PREPARE TRANSACTION/s,
	'... writes the old rollup\'s deltas on the coordinator through Citus, in two phases');
unlike($old_err, qr/issuing (?:INSERT INTO|COPY) public\.hourly_wdelta/, '... and the new one\'s on its node');
my $old_diff = q{SELECT count(*) FROM ((SELECT bucket, event, count FROM %1$s EXCEPT
  SELECT date_trunc('hour', ts), event, count(*) FROM events GROUP BY 1, 2) UNION ALL
  (SELECT date_trunc('hour', ts), event, count(*) FROM events GROUP BY 1, 2 EXCEPT SELECT bucket, event, count FROM %1$s)) d};
is($coord->safe_psql('postgres', sprintf($old_diff, 'old_hourly_realtime')), '0',
	'the old rollup\'s realtime view equals GROUP BY');
$coord->safe_psql('postgres', q{SELECT eventkit.refresh_rollup('old_hourly')});
refresh_hourly();
is($coord->safe_psql('postgres', sprintf($old_diff, 'old_hourly') . ' UNION ALL SELECT count(*) FROM old_hourly_wdelta UNION ALL ' . diff('hourly')),
	"0\n0\n0", '... and its table after a refresh, as the new one\'s');
$coord->safe_psql('postgres', q{SELECT eventkit.drop_rollup('old_hourly')});
is($coord->safe_psql('postgres', q{SELECT to_regclass('old_hourly_wdelta') IS NULL}), 't',
	'drop_rollup drops the old worker delta table');

# --- drop_rollup drops the distributed worker delta table, of a rollup owned
# by another role than the stream's too (the worker delta table and the
# stream's batch_id index dropped as one role: Citus refuses two roles on
# co-located placements in one transaction) ----------------------------------
is($coord->safe_psql('postgres', q{SELECT tableowner FROM pg_tables WHERE tablename = 'hourly'}),
	'ek_rollup_owner', 'the rollup is owned by another role than its stream');
$coord->safe_psql('postgres', q{SELECT eventkit.drop_rollup('hourly')});
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'hourly%'}),
	'0', 'drop_rollup dropped the worker delta table');
is($w2->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname LIKE 'hourly_wdelta%'}),
	'0', '... and its shards (worker 2, where the moved one went)');

done_testing();
