
# Copyright: eventkit authors
#
# The catalog's version is cached in each backend (src/catalog/catalog.c)
# and must be forgotten when another session updates the extension: a
# session that ingested at 1.1 keeps ingesting after ALTER EXTENSION
# eventkit UPDATE commits elsewhere, and from then on writes as a 1.3
# catalog wants (the quarantine's retry key: a retried bad event is stored
# once), without reconnecting.  And back: after DROP and CREATE EXTENSION
# at 1.1 in another session, it writes as 1.1 again.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('catalog_version');
$node->init;
$node->append_conf('postgresql.conf', "eventkit.scheduler_enabled = off\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION eventkit VERSION '1.1';
SELECT eventkit.create_stream('ev');
});

my $bad = q{SELECT quarantined FROM eventkit.ingest('ev',
  '{"type": "track", "messageId": "q1", "event": "No User"}')};
my $rows = q{SELECT count(*) || ' rows, ' || count(*) FILTER (WHERE fingerprint IS NOT NULL) || ' keyed'
  FROM eventkit.quarantine};

# a long-lived session, at 1.1: each retry is stored
my $session = $node->background_psql('postgres');
is($session->query_safe($bad), '1', 'a bad event is quarantined at 1.1');
is($session->query_safe($bad), '1', 'its retry too');
is($node->safe_psql('postgres', 'SELECT count(*) FROM eventkit.quarantine'), '2',
	'at 1.1 every retry is stored (no retry key)');

# another session updates the extension
$node->safe_psql('postgres', 'ALTER EXTENSION eventkit UPDATE');

# the same session, without reconnecting, now writes with the retry key
is($session->query_safe($bad), '1', 'after the update elsewhere: quarantined');
is($session->query_safe($bad), '1', 'and its retry');
is($node->safe_psql('postgres', $rows), '3 rows, 1 keyed',
	'the session saw the 1.3 catalog: its first retry stored with a fingerprint, the next not again');

# and back to 1.1, the extension made anew by another session
$node->safe_psql('postgres', q{
SELECT eventkit.drop_stream('ev');
DROP EXTENSION eventkit;
CREATE EXTENSION eventkit VERSION '1.1';
SELECT eventkit.create_stream('ev');
});
is($session->query_safe($bad), '1',
	'after DROP and CREATE EXTENSION at 1.1 elsewhere: quarantined, as 1.1 (no fingerprint column to write)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM eventkit.quarantine'), '1',
	'one row in the new catalog');

$session->quit;
$node->stop;
done_testing();
