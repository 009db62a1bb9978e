
# Copyright: eventkit authors
#
# The Citus cluster of eventkit's Citus TAP tests (050 to 059): a
# coordinator and two workers on this machine (Unix sockets),
# shared_preload_libraries = 'citus,eventkit', the workers added to the
# coordinator and eventkit created (Citus creates it on the workers).
# citus_skip_unless_installed skips the whole test, saying why, where
# Citus is not installed (shared/citus/install-citus.sh).

package EventkitCitus;

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

use Exporter 'import';
our @EXPORT = qw(citus_skip_unless_installed citus_cluster psql_err poll_until
  citus_ingest_on citus_clients citus_clients_start citus_clients_finish rollup_groupby_diff
  citus_counts_as_one_node citus_same_events citus_ingest_as);

sub citus_skip_unless_installed
{
	my $pkglibdir = `pg_config --pkglibdir`;
	chomp $pkglibdir;
	plan skip_all => "Citus is not installed ($pkglibdir/citus.so is missing): "
	  . 'the Citus tests are skipped; install it with shared/citus/install-citus.sh'
	  unless -f "$pkglibdir/citus.so";
	return;
}

# Starts the three nodes and returns ($coord, $w1, $w2).  $extra_conf goes
# into every node's postgresql.conf after the common settings; $version,
# if given, is the eventkit version created (the newest if not).
sub citus_cluster
{
	my ($extra_conf, $version) = @_;
	my @nodes;
	for my $name (qw(coordinator worker1 worker2))
	{
		my $n = PostgreSQL::Test::Cluster->new($name);
		$n->init;
		$n->append_conf(
			'postgresql.conf', q{
shared_preload_libraries = 'citus,eventkit'
max_prepared_transactions = 100
citus.node_conninfo = 'sslmode=disable'
citus.recover_2pc_interval = '1s'
citus.shard_count = 8
deadlock_timeout = '100ms'
eventkit.scheduler_enabled = off
});
		$n->append_conf('postgresql.conf', $extra_conf) if defined $extra_conf;
		# Citus reaches a node itself (shard moves) at citus.local_hostname
		$n->append_conf('postgresql.conf', "citus.local_hostname = '" . $n->host . "'\n");
		$n->start;
		$n->safe_psql('postgres', 'CREATE EXTENSION citus');
		push @nodes, $n;
	}
	my ($coord, $w1, $w2) = @nodes;
	$coord->safe_psql(
		'postgres', sprintf(
			q{
SELECT citus_set_coordinator_host('%s', %d);
SELECT citus_add_node('%s', %d);
SELECT citus_add_node('%s', %d);
CREATE EXTENSION eventkit%s;
}, $coord->host, $coord->port, $w1->host, $w1->port, $w2->host, $w2->port,
			defined $version ? " VERSION '$version'" : ''));
	return @nodes;
}

# The error of $sql on $node, or '' when it succeeded.
sub psql_err
{
	my ($node, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	return $ret == 0 ? '' : $err;
}

# True once $check returns true, false after the tests' default timeout.
sub poll_until
{
	my ($check) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		return 1 if $check->();
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

# Ingests, on $node, the batches of the coordinator's table batches (k,
# payload) that $where selects, one call each, into stream 'events', and
# records each call's counts in the coordinator's table results (node,
# pass, k, accepted, duplicates, conflicts, quarantined, rejected).  The
# batches are read from the coordinator: psql on each node gets them as
# text.
sub citus_ingest_on
{
	my ($coord, $node, $pass, $where) = @_;
	my $rows = $coord->safe_psql('postgres', "SELECT k || E'\\t' || payload::text FROM batches WHERE $where ORDER BY k");
	my @out;
	for my $line (split /\n/, $rows)
	{
		my ($k, $payload) = split /\t/, $line, 2;
		$payload =~ s/'/''/g;
		my $r = $node->safe_psql('postgres',
			"SELECT concat_ws(',', accepted, duplicates, conflicts, quarantined, rejected) FROM eventkit.ingest('events', '$payload'::jsonb)");
		push @out, "('" . $node->name . "', $pass, $k, $r)";
	}
	$coord->safe_psql('postgres', 'INSERT INTO results VALUES ' . join(', ', @out));
	return;
}

# One ingest call of $payload (JSON text without quotes) into $stream
# ('app.events' if not given) on $node as $role: its counts "accepted,
# duplicates,conflicts,quarantined,rejected".
sub citus_ingest_as
{
	my ($role, $node, $payload, $stream) = @_;
	$stream //= 'app.events';
	return $node->safe_psql('postgres',
		"SET ROLE $role; SELECT concat_ws(',', accepted, duplicates, conflicts, quarantined, rejected)"
		  . " FROM eventkit.ingest('$stream', '$payload')");
}

# Concurrent clients: for each [$node, $sql, $stream] of @clients, a psql
# on $node that ingests into $stream ('events' if not given), one call
# each, the payloads $sql selects on the coordinator (in its order), all
# clients at once.  Returns (calls answered, accepted, conflicts, the other
# lines of their output).
sub citus_clients
{
	my ($coord, @clients) = @_;
	return citus_clients_finish(citus_clients_start($coord, @clients));
}

# citus_clients in two steps: citus_clients_start starts the clients and
# returns a handle; citus_clients_finish(handle) waits for them and
# returns what citus_clients returns.
sub citus_clients_start
{
	my ($coord, @clients) = @_;
	my (@runs, @out);
	for my $i (0 .. $#clients)
	{
		my ($node, $sql, $stream) = @{ $clients[$i] };
		$stream //= 'events';
		my $script = $node->basedir . "/client_$i.sql";
		open(my $fh, '>', $script) or die "$script: $!";
		for my $line (split /\n/, $coord->safe_psql('postgres', $sql))
		{
			$line =~ s/'/''/g;
			print $fh "SELECT accepted, duplicates, conflicts FROM eventkit.ingest('$stream', '$line'::jsonb);\n";
		}
		close $fh;
		$out[$i] = '';
		push @runs, IPC::Run::start(
			[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
			  '-d', 'postgres', '-f', $script ],
			'>', \$out[$i], '2>', \$out[$i]);
	}
	return [ \@runs, \@out ];
}

sub citus_clients_finish
{
	my ($handle) = @_;
	my ($runs, $out) = @$handle;
	$_->finish for @$runs;
	my ($calls, $accepted, $conflicts, @other) = (0, 0, 0);
	for my $line (map { split /\n/ } @$out)
	{
		if ($line =~ /^(\d+)\|(\d+)\|(\d+)$/)
		{
			$calls++;
			$accepted += $1;
			$conflicts += $3;
		}
		else
		{
			push @other, $line;
		}
	}
	return ($calls, $accepted, $conflicts, join("\n", @other));
}

# The coordinator's table results (k, accepted, duplicates, conflicts,
# quarantined, rejected, ...): the calls that SQL condition $dist selects
# count each batch k as the calls $local selects (one node's), summed per
# batch; and their sums of accepted|duplicates|conflicts are $sums.  Two
# tests, named after $what.
sub citus_counts_as_one_node
{
	my ($coord, $dist, $local, $sums, $what) = @_;
	my $per_batch = 'k, sum(accepted), sum(duplicates), sum(conflicts), sum(quarantined), sum(rejected)';
	is( $coord->safe_psql(
			'postgres', qq{
SELECT count(*) FROM (
  SELECT $per_batch FROM results WHERE $dist GROUP BY k
  EXCEPT
  SELECT $per_batch FROM results WHERE $local GROUP BY k) d}),
		'0', "$what: each batch counts as on one node");
	my ($a, $d, $c) = split /\|/, $sums;
	is( $coord->safe_psql(
			'postgres',
			"SELECT sum(accepted) || '|' || sum(duplicates) || '|' || sum(conflicts) FROM results WHERE $dist"),
		$sums, "$what: $a ids accepted, $d in-batch re-sends, $c conflicts");
	return;
}

# The distributed stream 'events' (its rows that SQL condition $filter
# selects, all if not given) holds the same events as one node's stream
# 'events_local': rows, distinct ids and the sum of properties.revenue.
sub citus_same_events
{
	my ($coord, $filter) = @_;
	my $where = defined $filter ? " WHERE $filter" : '';
	my $digest = q{SELECT count(*) || ':' || count(DISTINCT message_id) || ':' || sum((properties->>'revenue')::int)};
	is($coord->safe_psql('postgres', "SELECT ($digest FROM events$where) = ($digest FROM events_local)"),
		't', 'the distributed stream holds the same events as one node');
	return;
}

# A query counting the rows in which rollup table or view $rollup
# (bucket, event, count, revenue = sum(properties.revenue), top =
# max(properties.revenue)) and GROUP BY over stream $stream differ.
sub rollup_groupby_diff
{
	my ($rollup, $stream) = @_;
	my $groupby = "SELECT date_trunc('hour', ts), event, count(*), sum((properties->>'revenue')::numeric),"
	  . " max((properties->>'revenue')::numeric) FROM $stream GROUP BY 1, 2";
	return "SELECT count(*) FROM ((SELECT bucket, event, count, revenue, top FROM $rollup EXCEPT $groupby)"
	  . " UNION ALL ($groupby EXCEPT SELECT bucket, event, count, revenue, top FROM $rollup)) d";
}

1;
