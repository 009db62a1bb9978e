# Copyright: eventkit authors
#
# The identity graph of a distributed stream, on a Citus coordinator and two
# workers (test/t/EventkitCitus.pm): a call on a worker links its batch's ids
# in the coordinator's graph too, in its distributed transaction, through the
# stream's worker links table (src/pipeline/identity_dist.c).  The stream
# belongs to a role that is not a superuser, which ingests through every node
# (and a role with only INSERT through a worker).
# Checks: an identify through worker1, track events of its anonymous id
# through worker2 and the coordinator, an alias through worker2 and more links
# through the coordinator give, on the coordinator, the resolve_user,
# eventkit.identities, <stream>_resolved and distinct-resolved-users count that
# one server gives for the same events (a stream that is not distributed, fed
# the same batches in the same order); anonymous ids of one user linked by
# calls on the two workers at once end in one set, as on one server; a call
# that rolls back leaves no link on the coordinator (nor rows in the worker
# links table); forget_user on the coordinator erases a user whose links were
# made on a worker; a stream distributed without the table (as before 1.16)
# takes a worker's call with links into that worker's graph only, as 1.15
# did, until distribute_identity_graph made it and took in the workers'
# graphs; the
# table goes with the stream (drop_stream) and follows it to a new owner.
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

citus_skip_unless_installed();

my ($coord, $w1, $w2) = citus_cluster("citus.max_cached_conns_per_worker = 8\n");

$coord->safe_psql(
	'postgres', q{
CREATE ROLE ek_owner LOGIN;
CREATE SCHEMA app AUTHORIZATION ek_owner;
});
$coord->safe_psql('postgres',
	q{SET ROLE ek_owner; SELECT eventkit.create_stream('app.events', key_partitions => 0, premake => 2);
	  SELECT eventkit.create_stream('app.single', key_partitions => 0, premake => 2)});
$coord->safe_psql('postgres', q{SELECT eventkit.distribute_stream('app.events', 4)});
my $sid = $coord->safe_psql('postgres',
	q{SELECT stream_id FROM eventkit.streams WHERE relid = 'app.events'::regclass});
is( $coord->safe_psql(
		'postgres', qq{SELECT pg_get_userbyid(relowner) FROM pg_class
		WHERE oid = 'eventkit_ledgers.worker_links_$sid'::regclass}),
	'ek_owner', 'distribute_stream made the worker links table, the stream owner\'s');
is( $coord->safe_psql(
		'postgres', qq{SELECT count(*) FROM pg_dist_partition
		WHERE logicalrelid = 'eventkit_ledgers.worker_links_$sid'::regclass}),
	'1', '... a Citus table');

my $ts = $coord->safe_psql('postgres', q{SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
my $mid = 0;

sub ev
{
	my (%f) = @_;
	$mid++;
	my $type = $f{type} // 'track';
	my @kv = (qq("type":"$type"), qq("messageId":"m$mid"), qq("timestamp":"$ts"));
	push @kv, qq("event":"e") if $type eq 'track';
	for my $k (qw(userId anonymousId previousId))
	{
		push @kv, qq("$k":"$f{$k}") if defined $f{$k};
	}
	return '{' . join(',', @kv) . '}';
}

# each batch through its node into the distributed stream, and through the
# coordinator into the single-node stream, in the same order
sub both
{
	my ($node, @events) = @_;
	my $payload = '[' . join(',', @events) . ']';
	my $r = citus_ingest_as('ek_owner', $node, $payload, 'app.events');
	my $s = citus_ingest_as('ek_owner', $coord, $payload, 'app.single');
	is($r, $s, 'a batch through ' . $node->name . ' counts as on one server: ' . $r);
	return;
}

both($w1, ev(type => 'identify', anonymousId => 'a1', userId => 'u1'));
both($w2, ev(anonymousId => 'a1'), ev(anonymousId => 'a1'));
both($coord, ev(anonymousId => 'a1'), ev(anonymousId => 'a2'));
both($w2, ev(type => 'alias', previousId => 'a2', userId => 'u1'));
both($coord, ev(type => 'identify', anonymousId => 'a3', userId => 'u3'), ev(anonymousId => 'a3'));
both($w1, ev(type => 'identify', anonymousId => 'a4', userId => 'u4'),
	ev(type => 'identify', anonymousId => 'a4', userId => 'u3'));
both($w2, ev(type => 'alias', previousId => 'u3', userId => 'u5', anonymousId => 'a5'), ev(userId => 'u5'));

is($w1->safe_psql('postgres', q{SELECT eventkit.resolve_user('app.events', 'a1')}),
	'u1', 'worker1 resolves a1 with its own graph, as before');
is($coord->safe_psql('postgres', q{SELECT eventkit.resolve_user('app.events', 'a1')}),
	'u1', 'the coordinator resolves a1, linked by a call on worker1');

my $ids = q{SELECT string_agg(x || '=' || eventkit.resolve_user('app.%s', x), ',' ORDER BY x)
	FROM unnest('{a1,a2,a3,a4,a5,u1,u3,u4,u5,zz}'::text[]) x};
is( $coord->safe_psql('postgres', sprintf($ids, 'events')),
	$coord->safe_psql('postgres', sprintf($ids, 'single')),
	'resolve_user on the coordinator: as on one server');
note $coord->safe_psql('postgres', sprintf($ids, 'events'));
my $idv = q{SELECT string_agg(id || '>' || canonical_user_id || ' ' || first_seen || ' ' || last_seen, ',' ORDER BY id)
	FROM eventkit.identities WHERE stream = 'app.%s'::regclass};
is( $coord->safe_psql('postgres', sprintf($idv, 'events')),
	$coord->safe_psql('postgres', sprintf($idv, 'single')),
	'eventkit.identities on the coordinator: as on one server');
my $res = q{SET ROLE ek_owner; SELECT string_agg(message_id || '>' || resolved_user_id, ',' ORDER BY message_id)
	FROM app.%s_resolved};
is( $coord->safe_psql('postgres', sprintf($res, 'events')),
	$coord->safe_psql('postgres', sprintf($res, 'single')),
	'<stream>_resolved on the coordinator: as on one server');
my $dau = q{SET ROLE ek_owner; SELECT count(DISTINCT resolved_user_id) FROM app.%s_resolved};
is($coord->safe_psql('postgres', sprintf($dau, 'events')), '2', 'distinct resolved users: 2 (u1, u5)');
is( $coord->safe_psql('postgres', sprintf($dau, 'events')),
	$coord->safe_psql('postgres', sprintf($dau, 'single')), '... as on one server');
is($coord->safe_psql('postgres', "SELECT count(*) FROM eventkit_ledgers.worker_links_$sid"),
	'0', 'the worker links table keeps no rows: applied and deleted');

# calls on the two workers at once link anonymous ids of the same users
my @c;
my $gen = q{SELECT json_build_array(json_build_object('type', 'identify', 'messageId', '%s' || i,
	'anonymousId', '%s' || i, 'userId', 'cu' || (i %% 7), 'timestamp', '%s'))::text
	FROM generate_series(1, 40) i ORDER BY i};
my $h = citus_clients_start($coord,
	[ $w1, sprintf($gen, 'cm1_', 'ca', $ts), 'app.events' ],
	[ $w2, sprintf($gen, 'cm2_', 'cb', $ts), 'app.events' ]);
my ($calls, $accepted, $conflicts, $other) = citus_clients_finish($h);
is("$calls,$accepted,$other", '80,80,', 'two workers at once: 80 calls, every event stored');
for my $p (qw(ca cb))
{
	$coord->safe_psql('postgres',
		    "SELECT eventkit.ingest('app.single', json_build_array(json_build_object('type', 'identify',"
		  . " 'messageId', 's$p' || i, 'anonymousId', '$p' || i, 'userId', 'cu' || (i % 7), 'timestamp', '$ts'))::jsonb)"
		  . " FROM generate_series(1, 40) i");
}
my $sets = q{SELECT string_agg(x || '=' || eventkit.resolve_user('app.%s', x), ',' ORDER BY x)
	FROM (SELECT 'ca' || i AS x FROM generate_series(1, 40) i UNION ALL SELECT 'cb' || i FROM generate_series(1, 40) i) s};
is( $coord->safe_psql('postgres', sprintf($sets, 'events')),
	$coord->safe_psql('postgres', sprintf($sets, 'single')),
	'the concurrent links: every anonymous id resolves on the coordinator as on one server');
is( $coord->safe_psql(
		'postgres', q{SELECT count(DISTINCT canonical_user_id) FROM eventkit.identities
		WHERE stream = 'app.events'::regclass AND canonical_user_id LIKE 'cu%'}),
	'7', '... seven users');

# a role with only INSERT on the stream, through a worker
$coord->safe_psql('postgres', q{CREATE ROLE ek_writer LOGIN; GRANT USAGE ON SCHEMA app TO ek_writer;
	GRANT INSERT ON app.events TO ek_writer});
is(citus_ingest_as('ek_writer', $w2, '[' . ev(type => 'identify', anonymousId => 'wa1', userId => 'wu1') . ']', 'app.events'),
	'1,0,0,0,0', 'a role with only INSERT ingests an identify through worker2');
is($coord->safe_psql('postgres', q{SELECT eventkit.resolve_user('app.events', 'wa1')}),
	'wu1', '... its link in the coordinator\'s graph');

# the trigger function elsewhere (a role's own table) links nothing
$coord->safe_psql('postgres', q{CREATE TABLE public.fake (batch int8, seq int8, from_id text, to_id text, alias bool, ts timestamptz)});
$coord->safe_psql('postgres', "CREATE TRIGGER t AFTER INSERT ON public.fake REFERENCING NEW TABLE AS links"
	  . " FOR EACH STATEMENT EXECUTE FUNCTION eventkit.apply_worker_links('$sid')");
like(psql_err($coord, q{INSERT INTO public.fake VALUES (1, 1, 'fk1', 'fku', false, now())}),
	qr/fired on table "fake", not on stream \d+'s worker links table/,
	'apply_worker_links on another table: refused');
is($coord->safe_psql('postgres', q{SELECT eventkit.resolve_user('app.events', 'fk1')}), 'fk1', '... no link');

# a call that rolls back leaves no link
$w1->safe_psql('postgres',
	    q{SET ROLE ek_owner; BEGIN; SELECT eventkit.ingest('app.events', '}
	  . '[' . ev(type => 'identify', anonymousId => 'rb1', userId => 'rbu') . ']'
	  . q{'); ROLLBACK});
is($coord->safe_psql('postgres', q{SELECT eventkit.resolve_user('app.events', 'rb1')}),
	'rb1', 'a call on a worker that rolled back: no link on the coordinator');
is($coord->safe_psql('postgres', "SELECT count(*) FROM eventkit_ledgers.worker_links_$sid"),
	'0', '... and no row in the worker links table');

# forget_user on the coordinator erases a user linked on the workers
$coord->safe_psql('postgres', q{SET ROLE ek_owner; SELECT eventkit.forget_user('app.events', 'u1')});
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM eventkit.identities
		WHERE stream = 'app.events'::regclass AND (id IN ('a1', 'a2', 'u1') OR canonical_user_id = 'u1')}),
	'0', 'forget_user on the coordinator: the links made on the workers are gone there');
is($w1->safe_psql('postgres', q{SELECT eventkit.resolve_user('app.events', 'a1')}),
	'a1', '... and on worker1');
is( $coord->safe_psql(
		'postgres', q{SET ROLE ek_owner; SELECT count(*) FROM app.events
		WHERE anonymous_id IN ('a1', 'a2') OR user_id = 'u1'}),
	'0', '... its events on every node too');

# a stream distributed as before 1.16 (no worker links table): a worker's
# call with links is taken and links in that worker's graph only, as 1.15
# did; distribute_identity_graph makes the table and takes in what the
# workers linked before
$coord->safe_psql('postgres',
	q{SET ROLE ek_owner; SELECT eventkit.create_stream('app.old', key_partitions => 0, premake => 2)});
$coord->safe_psql('postgres', q{SELECT eventkit.distribute_stream('app.old', 4)});
my $oid = $coord->safe_psql('postgres', q{SELECT stream_id FROM eventkit.streams WHERE relid = 'app.old'::regclass});
$coord->safe_psql('postgres', "DROP TABLE eventkit_ledgers.worker_links_$oid");
# the links its workers made before (by hand: as a 1.15 worker's call did)
$w1->safe_psql('postgres',
	"INSERT INTO eventkit.identity_links VALUES ($oid, 'oa1', 'ou1', now(), now()), ($oid, 'oa2', 'ou1', now(), now())");
$w2->safe_psql('postgres', "INSERT INTO eventkit.identity_links VALUES ($oid, 'oa3', 'ou1', now(), now())");
is(citus_ingest_as('ek_owner', $w1, '[' . ev(type => 'identify', anonymousId => 'ob1', userId => 'ou2') . ']', 'app.old'),
	'1,0,0,0,0', 'a stream distributed before 1.16: a worker call with links is stored');
is($w1->safe_psql('postgres', q{SELECT eventkit.resolve_user('app.old', 'ob1')}),
	'ou2', '... and links in that worker\'s graph');
is($coord->safe_psql('postgres', q{SELECT eventkit.resolve_user('app.old', 'ob1')}),
	'ob1', '... not yet in the coordinator\'s');
is(citus_ingest_as('ek_owner', $w1, '[' . ev(anonymousId => 'ob3') . ']', 'app.old'),
	'1,0,0,0,0', '... a batch without links is stored');
is($coord->safe_psql('postgres', q{SELECT eventkit.distribute_identity_graph('app.old')}),
	'4', 'distribute_identity_graph read the workers\' 4 links');
is( $coord->safe_psql('postgres',
		q{SELECT string_agg(eventkit.resolve_user('app.old', x), ',' ORDER BY x) FROM unnest('{oa1,oa2,oa3,ob1}'::text[]) x}),
	'ou1,ou1,ou1,ou2', '... the coordinator resolves them');
is($coord->safe_psql('postgres', q{SELECT eventkit.distribute_identity_graph('app.old')}),
	'0', '... a second call does nothing');
is(citus_ingest_as('ek_owner', $w1, '[' . ev(type => 'identify', anonymousId => 'oc1', userId => 'ou3') . ']', 'app.old'),
	'1,0,0,0,0', '... and a worker call with links is taken');
is($coord->safe_psql('postgres', q{SELECT eventkit.resolve_user('app.old', 'oc1')}),
	'ou3', '... its link in the coordinator\'s graph');

# drop_stream leaves no worker links table
$coord->safe_psql('postgres', q{SET ROLE ek_owner; SELECT eventkit.drop_stream('app.old')});
is($coord->safe_psql('postgres', "SELECT to_regclass('eventkit_ledgers.worker_links_$oid') IS NULL"),
	't', 'drop_stream dropped the worker links table');

# ALTER TABLE ... OWNER TO of the stream: its worker links table follows, and
# the new owner's calls through a worker still link on the coordinator
$coord->safe_psql('postgres', q{CREATE ROLE ek_owner2 LOGIN; GRANT USAGE ON SCHEMA app TO ek_owner2;
	ALTER TABLE app.events OWNER TO ek_owner2});
is( $coord->safe_psql(
		'postgres', qq{SELECT pg_get_userbyid(relowner) FROM pg_class
		WHERE oid = 'eventkit_ledgers.worker_links_$sid'::regclass}),
	'ek_owner2', 'a new owner of the stream: the worker links table follows');
is(citus_ingest_as('ek_owner2', $w1, '[' . ev(type => 'identify', anonymousId => 'na1', userId => 'nu1') . ']', 'app.events'),
	'1,0,0,0,0', '... the new owner ingests an identify through worker1');
is($coord->safe_psql('postgres', q{SELECT eventkit.resolve_user('app.events', 'na1')}),
	'nu1', '... its link in the coordinator\'s graph');

done_testing();
