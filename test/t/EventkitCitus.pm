
# Copyright: eventkit authors
#
# The Citus cluster of eventkit's Citus TAP tests (050, 051, 052): a
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

use Exporter 'import';
our @EXPORT = qw(citus_skip_unless_installed citus_cluster psql_err poll_until);

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
# into every node's postgresql.conf after the common settings.
sub citus_cluster
{
	my ($extra_conf) = @_;
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
CREATE EXTENSION eventkit;
}, $coord->host, $coord->port, $w1->host, $w1->port, $w2->host, $w2->port));
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

1;
