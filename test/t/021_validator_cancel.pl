
# Copyright: eventkit authors
#
# pg_cancel_backend, pg_terminate_backend and "pg_ctl stop -m fast" stop a
# backend that is validating against a pathological schema: 45 levels of
# anyOf pairs of $refs (2^45 paths, days of work), directly and as a
# tracking plan during ingest, and a back-reference pattern that PostgreSQL's
# regex engine would backtrack on for minutes.  Before the validator checked
# for interrupts, a cancel or terminate had no effect on the first two, a
# fast shutdown waited for ever, and only kill -9 (a crash restart of the
# whole cluster) ended them; the regex was cancelled, but reported as an
# invalid regular expression (2201B) instead of 57014.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);

# How long a backend may take to answer; the validator checks at every
# step, so it answers in milliseconds, but the machine may be busy.
my $deadline = 5;

my $node = PostgreSQL::Test::Cluster->new('validator_cancel');
$node->init;
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION eventkit;
CREATE FUNCTION nested_anyof(levels int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('$ref', '#/definitions/d0', 'definitions',
    jsonb_object_agg('d' || i, CASE WHEN i = levels THEN '{"type": "string"}'::jsonb
      ELSE jsonb_build_object('anyOf', jsonb_build_array(
             jsonb_build_object('$ref', '#/definitions/d' || (i + 1)),
             jsonb_build_object('$ref', '#/definitions/d' || (i + 1)))) END))
  FROM generate_series(0, levels) i $$;
SELECT eventkit.create_stream('deep_events');
SELECT eventkit.create_plan('deep', jsonb_build_object('events',
  jsonb_build_object('Deep', jsonb_build_object('properties', nested_anyof(45)))));
SELECT eventkit.attach_plan('deep_events', 'deep');
});

my $deep_ingest = q{SELECT * FROM eventkit.ingest('deep_events',
  '{"type": "track", "event": "Deep", "userId": "u1", "messageId": "d1",
    "properties": {"a": 1}}'::jsonb)};

# Start $sql in its own psql (verbose errors: the SQLSTATE is shown); wait
# until its backend is running it; return the harness, its pid and stderr.
sub start_victim
{
	my ($name, $sql) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'psql', '-XAtq', '-v', 'VERBOSITY=verbose', '-d',
			$node->connstr('postgres') . " application_name=$name",
			'-c', $sql
		],
		'>', \$out, '2>', \$err);
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE application_name = '$name' AND state = 'active'
   AND clock_timestamp() - query_start > interval '200 ms'}),
		"$name: running");
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = '$name'");
	return ($h, $pid, \$err);
}

# Wait until backend $pid is gone (psql exits after the error); true if
# before the deadline.  A victim that does not answer is killed (its psql;
# the backend goes with the node).
sub ended_in_time
{
	my ($name, $h, $pid, $t0) = @_;
	while (time() - $t0 < $deadline)
	{
		if ($node->safe_psql('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid") eq '0')
		{
			$h->finish;
			note sprintf("%s: ended %.3f s after the signal", $name, time() - $t0);
			return 1;
		}
		usleep(50_000);
	}
	$h->kill_kill;
	return 0;
}

# pg_cancel_backend, then the error the client gets
sub cancel_case
{
	my ($name, $sql, $signal, $expect) = @_;
	my ($h, $pid, $err) = start_victim($name, $sql);
	my $t0 = time();
	is($node->safe_psql('postgres', "SELECT $signal($pid)"), 't', "$name: $signal sent");
	ok(ended_in_time($name, $h, $pid, $t0),
		"$name: the backend answers $signal within $deadline s");
	like($$err, $expect, "$name: the client gets the right error");
	return;
}

my $canceled = qr/ERROR:  57014: canceling statement due to user request/;
my $terminated = qr/FATAL:  57P01: terminating connection due to administrator command/;

cancel_case('schema_valid', q{SELECT eventkit.schema_valid(nested_anyof(45), '1')},
	'pg_cancel_backend', $canceled);
cancel_case('plan_ingest_cancel', $deep_ingest, 'pg_cancel_backend', $canceled);
cancel_case('plan_ingest_terminate', $deep_ingest, 'pg_terminate_backend', $terminated);
cancel_case(
	'regex', q{SELECT eventkit.schema_valid(
  '{"pattern": "^(.*)\\\\1(.*)\\\\2(.*)\\\\3(.*)\\\\4$"}', to_jsonb(repeat('ab', 2000) || 'x'))},
	'pg_cancel_backend', $canceled);

is($node->safe_psql('postgres', 'SELECT count(*) FROM deep_events'), '0',
	'nothing was stored by the interrupted ingests');

# A fast shutdown while a backend validates: it ends the backend and the
# server stops, without waiting for the validation.
{
	my ($h, $pid, $err) = start_victim('shutdown', $deep_ingest);
	my $t0 = time();
	local $ENV{PGCTLTIMEOUT} = 2 * $deadline;
	ok($node->stop('fast', fail_ok => 1), 'pg_ctl stop -m fast succeeds');
	cmp_ok(time() - $t0, '<', 2 * $deadline, 'the fast shutdown did not wait for the validation');
	$h->kill_kill;
}

done_testing();
