
# Copyright: eventkit authors
#
# Helpers shared by eventkit's TAP tests.

package EventkitTest;

use strict;
use warnings;

use Test::More;

use Exporter 'import';
our @EXPORT = qw(poll_jobs);

# Passes once $sql returns true in $db (PostgreSQL::Test::Cluster's
# poll_query_until, with its deadline); on failure, shows the worker's job
# runs, the usual explanation.
sub poll_jobs
{
	my ($node, $db, $sql, $what) = @_;
	ok($node->poll_query_until($db, $sql), $what)
	  or diag($node->safe_psql($db,
			"SELECT string_agg(format('%s %s %s: %s', job_id, kind, status, message), E'\\n' ORDER BY run_id)"
			  . " FROM eventkit.job_runs WHERE to_regclass('eventkit.job_runs') IS NOT NULL"));
	return;
}

1;
