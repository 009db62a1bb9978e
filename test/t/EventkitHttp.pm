# Copyright: eventkit authors
#
# Helpers of the HTTP intake's TAP tests (030_http_api.pl, 031_http_sdk.pl):
# a node whose listener is on a free loopback port, requests with curl, and
# the listeners' pids.

package EventkitHttp;

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use Exporter 'import';
our @EXPORT = qw(http_node http wait_healthy listener_pids poll_until);

# A node with eventkit preloaded and the HTTP intake on 127.0.0.1:<free
# port>; extra settings in $conf.  Returns the node and the port.
sub http_node
{
	my ($name, $conf) = @_;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'eventkit'
eventkit.scheduler_enabled = off
eventkit.http_listen = '127.0.0.1:$port'
restart_after_crash = on
log_min_messages = log
} . ($conf // ''));
	$node->start;
	return ($node, $port);
}

# One request with curl.  %a: method, path, key (HTTP Basic user name),
# headers (array), data (the body, as is), file (body from a file), timeout.
# Returns (status, body, headers): status 0 when curl got no answer.
sub http
{
	my ($port, %a) = @_;
	my @cmd = ('curl', '-s', '-S', '-D', '-', '-w', '\n__STATUS__%{http_code}',
		'--max-time', $a{timeout} // 60,
		'-X', $a{method} // 'POST', "http://127.0.0.1:$port" . ($a{path} // '/v1/batch'));
	push @cmd, '-u', "$a{key}:" if defined $a{key};
	push @cmd, map { ('-H', $_) } @{ $a{headers} // [] };
	my $in = '';
	if (defined $a{data})
	{
		push @cmd, '--data-binary', '@-';
		$in = $a{data};
	}
	push @cmd, '--data-binary', "\@$a{file}" if defined $a{file};
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '<', \$in, '>', \$out, '2>', \$err);
	my ($status) = $out =~ /__STATUS__(\d+)$/;
	$out =~ s/\n?__STATUS__\d+$//;
	# the last header block (curl shows 100 Continue first)
	my @parts = split /\r\n\r\n/, $out, -1;
	my ($headers, $body) = ('', $out);
	while (@parts > 1 && $parts[0] =~ m{^HTTP/})
	{
		$headers = shift @parts;
		$body = join "\r\n\r\n", @parts;
	}
	return ($status // 0, $body, $headers);
}

# Poll $check (a sub) until it returns true, for at most $seconds.
sub poll_until
{
	my ($check, $seconds) = @_;
	my $deadline = time + ($seconds // $PostgreSQL::Test::Utils::timeout_default);
	while (time < $deadline)
	{
		return 1 if $check->();
		usleep(100_000);
	}
	return 0;
}

# Wait until GET /health answers 200.
sub wait_healthy
{
	my ($port) = @_;
	return poll_until(sub { (http($port, method => 'GET', path => '/health', timeout => 5))[0] == 200 });
}

# The listeners' pids, in order.
sub listener_pids
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
		   WHERE backend_type = 'eventkit http'});
}

1;
