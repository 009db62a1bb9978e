
# Copyright: eventkit authors
#
# The HTTP intake's API with curl, against one listener (so that every
# connection shares it): each endpoint, authentication (HTTP Basic, writeKey
# in the body, bad, unknown and revoked keys, roles that lost their rights),
# gzip and deflate, bodies that are not Segment payloads, the limits (by
# Content-Length, while streaming, a gzip bomb, events and items), wrong
# method and path, a huge header, a client that stops mid-body or trickles
# it, CORS, a cancelled request (503), and a stream trigger that tries to
# leave the key's role.  The listener stays up (same pid) and loses nothing
# through all of them.
#
# Polls with deadlines, no fixed sleeps.

use strict;
use warnings;

use IO::Compress::Deflate qw(deflate $DeflateError);
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Select;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use EventkitHttp;

if (system('curl --version >/dev/null 2>&1') != 0)
{
	plan skip_all => 'curl is not installed' unless $ENV{EK_HTTP_SDK_REQUIRED};
	BAIL_OUT('curl is not installed (test/run_tests.sh installs it)');
}

my ($node, $port) = http_node(
	'http_api', q{
eventkit.http_workers = 1
eventkit.http_timeout = 2
eventkit.max_batch_items = 100
eventkit.http_cors_origins = 'https://shop.example, https://other.example'
});

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION eventkit;
CREATE ROLE writer;
CREATE ROLE writer_b;
CREATE ROLE lapsed;
SELECT eventkit.create_stream('ev');
SELECT eventkit.create_stream('ev_b');
GRANT INSERT ON ev TO writer, lapsed;
GRANT INSERT ON ev_b TO writer_b;
});
my $key = $node->safe_psql('postgres', q{SET ROLE writer; SELECT eventkit.create_write_key('ev')});
my $key_b = $node->safe_psql('postgres', q{SET ROLE writer_b; SELECT eventkit.create_write_key('ev_b')});
my $lapsed_key = $node->safe_psql('postgres', q{SET ROLE lapsed; SELECT eventkit.create_write_key('ev')});
like($key, qr/^ek_[a-z2-7]{32}$/, 'a write key');

ok(wait_healthy($port), 'GET /health answers 200');
my $pid = listener_pids($node);
like($pid, qr/^\d+$/, 'one listener');

sub count_ev
{
	my ($where) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM ev WHERE $where");
}

# ---- the endpoints
my ($status, $body, $headers) = http($port, path => '/v1/track', key => $key,
	data => '{"userId": "u1", "event": "Signed Up", "messageId": "t1", "properties": {"plan": "pro"},'
	  . ' "writeKey": "' . $key . '"}');
is($status, 200, 'POST /v1/track with HTTP Basic');
is($body, '{"success": true}', '... answers {"success": true}');
like($headers, qr/Content-Type: application\/json/i, '... as JSON');
is($node->safe_psql('postgres', q{SELECT type || ' ' || event || ' ' || user_id || ' ' || properties::text FROM ev WHERE message_id = 't1'}),
	'track Signed Up u1 {"plan": "pro"}', '... stored with the type of its path');
is($node->safe_psql('postgres', q{SELECT ingested_by FROM eventkit.ingest_batches ORDER BY batch_id DESC LIMIT 1}),
	'writer', '... ingested as the role of the key');

for my $type (qw(identify page screen group alias))
{
	# the path decides the type, whatever the body says
	($status) = http($port, path => "/v1/$type", key => $key,
		data => qq({"type": "track", "userId": "u1", "messageId": "p-$type", "name": "N", "groupId": "g", "previousId": "a"}));
	is($status, 200, "POST /v1/$type");
}
is($node->safe_psql('postgres', q{SELECT string_agg(type, ',' ORDER BY type) FROM ev WHERE message_id LIKE 'p-%'}),
	'alias,group,identify,page,screen', 'each single-event path sets its type');

# the key in the body only (browsers: analytics.js), also inside the events
($status) = http($port, path => '/v1/batch',
	data => qq({"writeKey": "$key", "sentAt": "2024-01-01T00:00:00Z", "batch": [
		{"type": "track", "userId": "u2", "event": "E", "messageId": "b1", "writeKey": "$key"},
		{"type": "track", "userId": "u2", "event": "E", "messageId": "b2"},
		{"type": "track", "event": "No User", "messageId": "b3", "writeKey": "$key"}]}));
is($status, 200, 'POST /v1/batch with writeKey in the body');
($status) = http($port, path => '/v1/import', key => $key,
	data => '{"batch": [{"type": "identify", "userId": "u3", "traits": {"a": 1}, "messageId": "i1"}]}');
is($status, 200, 'POST /v1/import');
is(count_ev(q{message_id IN ('b1', 'b2', 'i1')}), 3, 'the batches are stored');
is($node->safe_psql('postgres',
		"SELECT (SELECT count(*) FROM ev t WHERE strpos(row_to_json(t)::text, '$key') > 0)"
	  . " + (SELECT count(*) FROM eventkit.quarantine q WHERE strpos(row_to_json(q)::text, '$key') > 0)"
	  . " + (SELECT count(*) FROM eventkit.ingest_batches b WHERE strpos(row_to_json(b)::text, '$key') > 0)"),
	0, 'the write key is stored nowhere (events, quarantine, batch log)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM eventkit.quarantine WHERE message_id = 'b3'}),
	1, 'an event without a user is quarantined (and answered 200)');

# gzip and deflate
my $batch = '{"batch": [{"type": "track", "userId": "u4", "event": "Zipped", "messageId": "z1"}]}';
my ($gz, $df);
gzip(\$batch => \$gz) or die $GzipError;
($status) = http($port, key => $key, headers => ['Content-Encoding: gzip'], data => $gz);
is($status, 200, 'a gzip body');
$batch =~ s/z1/z2/;
deflate(\$batch => \$df) or die $DeflateError;
($status) = http($port, key => $key, headers => ['Content-Encoding: deflate'], data => $df);
is($status, 200, 'a deflate body');
is(count_ev(q{message_id IN ('z1', 'z2')}), 2, '... both stored');
($status) = http($port, key => $key, headers => ['Content-Encoding: gzip'], data => 'not gzip at all');
is($status, 400, 'a body that is not gzip: 400');
($status) = http($port, key => $key, headers => ['Content-Encoding: br'], data => $batch);
is($status, 415, 'an unknown encoding: 415');

# ---- authentication
my $before = $node->safe_psql('postgres',
	q{SELECT (SELECT count(*) FROM ev) || '/' || (SELECT count(*) FROM eventkit.ingest_batches) || '/'
	  || (SELECT count(*) FROM eventkit.quarantine) || '/' || (SELECT string_agg(coalesce(last_used_at::text, '-'), ',' ORDER BY key_prefix) FROM eventkit.intake_keys)});
my $event = '{"batch": [{"type": "track", "userId": "x", "event": "E", "messageId": "nope"}]}';
($status, $body, $headers) = http($port, data => $event);
is($status, 401, 'no key: 401');
like($headers, qr/WWW-Authenticate: Basic/i, '... with WWW-Authenticate');
like($body, qr/"success": false/, '... and a JSON error');
($status) = http($port, key => 'not-a-key', data => $event);
is($status, 401, 'a malformed key: 401');
($status) = http($port, key => 'ek_' . ('a' x 32), data => $event);
is($status, 401, 'an unknown key: 401');
($status) = http($port, data => '{"writeKey": "ek_' . ('b' x 32) . '", "batch": []}');
is($status, 401, 'an unknown key in the body: 401');
is($node->safe_psql('postgres',
		q{SELECT (SELECT count(*) FROM ev) || '/' || (SELECT count(*) FROM eventkit.ingest_batches) || '/'
		  || (SELECT count(*) FROM eventkit.quarantine) || '/' || (SELECT string_agg(coalesce(last_used_at::text, '-'), ',' ORDER BY key_prefix) FROM eventkit.intake_keys)}),
	$before, 'unauthenticated requests wrote nothing');

# a revoked key: 401 at once (no cache)
my $short_key = $node->safe_psql('postgres', q{SET ROLE writer; SELECT eventkit.create_write_key('ev', 'short-lived')});
($status) = http($port, key => $short_key, data => '{"batch": [{"type": "track", "userId": "r", "event": "E", "messageId": "r1"}]}');
is($status, 200, 'a new key works');
$node->safe_psql('postgres', qq{SET ROLE writer; SELECT eventkit.revoke_write_key('$short_key')});
($status, $body) = http($port, key => $short_key, data => '{"batch": [{"type": "track", "userId": "r", "event": "E", "messageId": "r2"}]}');
is($status, 401, 'the next request after revoke_write_key: 401');
like($body, qr/revoked/, '... saying it was revoked');
is(count_ev(q{message_id = 'r2'}), 0, '... and nothing stored');

# a key for stream B writes stream B only
($status) = http($port, key => $key_b, data => '{"batch": [{"type": "track", "userId": "b", "event": "E", "messageId": "kb1"}]}');
is($status, 200, 'the key of stream B');
is($node->safe_psql('postgres', q{SELECT (SELECT count(*) FROM ev WHERE message_id = 'kb1') || '/' || (SELECT count(*) FROM ev_b WHERE message_id = 'kb1')}),
	'0/1', '... wrote stream B, not A');

# a role that lost INSERT, a dropped role, a dropped stream: 403
$node->safe_psql('postgres', q{REVOKE INSERT ON ev FROM lapsed});
($status, $body) = http($port, key => $lapsed_key, data => '{"batch": [{"type": "track", "userId": "l", "event": "E", "messageId": "l1"}]}');
is($status, 403, 'a role without INSERT any more: 403');
like($body, qr/permission denied/, '... permission denied');
$node->safe_psql('postgres', q{DROP ROLE lapsed});
($status) = http($port, key => $lapsed_key, data => '{"batch": [{"type": "track", "userId": "l", "event": "E", "messageId": "l2"}]}');
is($status, 403, 'a dropped role: 403');
$node->safe_psql('postgres', q{SELECT eventkit.drop_stream('ev_b')});
($status) = http($port, key => $key_b, data => '{"batch": [{"type": "track", "userId": "b", "event": "E", "messageId": "kb2"}]}');
is($status, 403, 'a dropped stream: 403');
is(count_ev(q{message_id IN ('l1', 'l2', 'kb2')}), 0, '... nothing stored');

# ---- bodies that are not Segment payloads: 400 with a JSON message
for my $case (
	[ 'malformed JSON', '/v1/batch', '{"batch": [' ],
	[ 'an array', '/v1/batch', '[{"type": "track"}]' ],
	[ 'no batch', '/v1/batch', '{"type": "track", "userId": "u", "event": "E"}' ],
	[ 'batch not an array', '/v1/batch', '{"batch": {"type": "track"}}' ],
	[ 'a string event', '/v1/track', '"track"' ],
	[ 'bad sentAt', '/v1/batch', '{"batch": [], "sentAt": "yesterday"}' ],
	[ 'invalid UTF-8', '/v1/batch', "{\"batch\": [{\"type\": \"track\", \"userId\": \"\xff\", \"event\": \"E\"}]}" ],
	[ 'a NUL byte', '/v1/track', "{\"userId\": \"u\x00\", \"event\": \"E\"}" ],
	[ 'an empty body', '/v1/track', '' ],
	[ 'deep nesting', '/v1/track', '{"userId": "u", "event": "E", "properties": ' . ('[' x 100000) . (']' x 100000) . '}' ])
{
	($status, $body) = http($port, path => $case->[1], key => $key, data => $case->[2]);
	is($status, 400, "$case->[0]: 400");
	like($body, qr/^\{"success": false, "code": "invalid_payload", "message": ".+"\}$/, "... $case->[0]: a JSON message");
}

# ---- limits
my $big = '{"batch": [' . join(',', map { qq({"type": "track", "userId": "u", "event": "E", "messageId": "big$_", "properties": {"pad": ") . ('x' x 5000) . '"}}' } 1 .. 120) . ']}';
my $t0 = time;
($status, $body) = http($port, key => $key, headers => ['Expect: 100-continue'], data => $big);
is($status, 413, 'a body over max_batch_bytes (Content-Length): 413 before it is sent');
($status) = http($port, key => $key, headers => ['Transfer-Encoding: chunked'], data => $big);
is($status, 413, 'a chunked body that grows over the limit: 413');
my $bomb;
gzip(\('{"batch": [' . (' ' x 50_000_000) . ']}') => \$bomb) or die $GzipError;
($status, $body) = http($port, key => $key, headers => ['Content-Encoding: gzip'], data => $bomb);
is($status, 413, 'a gzip bomb (50 MB from ' . length($bomb) . ' bytes): 413');
like($body, qr/inflated/, '... refused while inflating');
my $fat = '{"userId": "u", "event": "E", "messageId": "fat", "properties": {"pad": "' . ('x' x 40000) . '"}}';
($status, $body) = http($port, path => '/v1/track', key => $key, data => $fat);
is($status, 413, 'an event over max_event_bytes: 413');
like($body, qr/max_event_bytes/, '... naming the limit');
($status, $body) = http($port, key => $key,
	data => '{"batch": [' . join(',', map { qq({"type": "track", "userId": "u", "event": "E", "messageId": "many$_"}) } 1 .. 101) . ']}');
is($status, 413, 'more than max_batch_items events: 413');
# the stream's own (tighter) limit applies too
$node->safe_psql('postgres', q{SELECT eventkit.alter_stream('ev', max_batch_items => 5)});
($status, $body) = http($port, key => $key,
	data => '{"batch": [' . join(',', map { qq({"type": "track", "userId": "u", "event": "E", "messageId": "many$_"}) } 1 .. 6) . ']}');
is($status, 413, 'more events than the stream\'s own max_batch_items: 413');
like($body, qr/max_batch_items of stream/, '... naming the stream\'s limit');
$node->safe_psql('postgres', q{SELECT eventkit.alter_stream('ev', clear => '{max_batch_items}')});
is(count_ev(q{message_id LIKE 'big%' OR message_id LIKE 'many%' OR message_id = 'fat'}), 0, '... nothing of them stored');
ok(time - $t0 < 30, 'the limits answered without waiting for timeouts');

# ---- wrong method, wrong path, a huge header
($status, $body, $headers) = http($port, method => 'GET', key => $key);
is($status, 405, 'GET /v1/batch: 405');
like($headers, qr/Allow: POST/i, '... with Allow');
($status) = http($port, method => 'PUT', path => '/v1/track', key => $key, data => '{}');
is($status, 405, 'PUT /v1/track: 405');
($status) = http($port, method => 'POST', path => '/health', data => '{}');
is($status, 405, 'POST /health: 405');
($status) = http($port, path => '/v1/../../etc/passwd', key => $key, data => '{}');
is($status, 404, 'an unknown path: 404');
($status) = http($port, path => '/v2/batch', key => $key, data => '{}');
is($status, 404, '/v2/batch: 404');
($status) = http($port, key => $key, headers => ['X-Padding: ' . ('p' x 100_000)], data => $event);
is($status, 431, 'a 100 kB header: 431');

# ---- CORS
($status, $body, $headers) = http($port, method => 'OPTIONS', path => '/v1/track',
	headers => [ 'Origin: https://shop.example', 'Access-Control-Request-Method: POST' ]);
is($status, 204, 'a CORS preflight: 204');
like($headers, qr{Access-Control-Allow-Origin: https://shop.example}i, '... allows the configured origin');
like($headers, qr{Access-Control-Allow-Headers: .*Authorization}i, '... and the Authorization header');
# analytics.js: the short paths, text/plain, the key in the body (also in
# each event of a batch)
($status, $body, $headers) = http($port, path => '/v1/t', headers => [ 'Origin: https://other.example', 'Content-Type: text/plain' ],
	data => qq({"writeKey": "$key", "userId": "u5", "event": "From A Browser", "messageId": "cors1"}));
is($status, 200, 'a browser POST to /v1/t (text/plain, key in the body)');
like($headers, qr{Access-Control-Allow-Origin: https://other.example}i, '... answered with its origin');
($status, $body, $headers) = http($port, path => '/v1/b', headers => [ 'Origin: https://shop.example', 'Content-Type: text/plain' ],
	data => qq({"writeKey": "$key", "sentAt": "2024-01-01T00:00:00Z", "batch": [
		{"writeKey": "$key", "type": "page", "anonymousId": "a5", "name": "Home", "messageId": "cors2"},
		{"writeKey": "$key", "type": "track", "anonymousId": "a5", "event": "Clicked", "messageId": "cors3"}]}));
is($status, 200, 'a browser batch to /v1/b');
is(count_ev(q{message_id IN ('cors1', 'cors2', 'cors3')}), 3, '... stored');
($status, $body, $headers) = http($port, method => 'OPTIONS', path => '/v1/track', headers => ['Origin: https://evil.example']);
unlike($headers, qr/Access-Control-Allow-Origin/i, 'another origin gets no CORS header');

# ---- slow clients: one that stops mid-body, one that trickles; meanwhile
# others are served at once by the same (only) listener
my $stalled = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
  or die "connect: $!";
print $stalled "POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
  . "Content-Length: 1000\r\nAuthorization: Basic xx\r\n\r\n{\"batch\": [";
$stalled->flush;
my $trickle = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
  or die "connect: $!";
print $trickle "POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
$trickle->flush;
$t0 = time;
($status) = http($port, key => $key, data => '{"batch": [{"type": "track", "userId": "u6", "event": "E", "messageId": "meanwhile"}]}');
is($status, 200, 'a request while two clients are slow');
ok(time - $t0 < 1.5, '... is answered at once');
# the trickle keeps its connection busy, one byte every 200 ms: it is cut off
# once its request takes longer than eventkit.http_timeout (2 s)
my $trickle_closed;
ok( poll_until(
		sub {
			local $SIG{PIPE} = 'IGNORE';
			$trickle_closed //= time unless print $trickle ' ';
			$trickle->flush;
			select(undef, undef, undef, 0.2);
			return defined $trickle_closed;
		},
		30),
	'a trickling body is cut off');
ok($trickle_closed - $t0 < 10, '... within the timeout (' . sprintf('%.1f', $trickle_closed - $t0) . ' s)');
# the stalled one is closed once idle for eventkit.http_timeout
my $buf;
ok(IO::Select->new($stalled)->can_read(30) && !sysread($stalled, $buf, 100) && time - $t0 < 10,
	'a client that stops mid-body is disconnected within the timeout');
close $stalled;
close $trickle;

# ---- a request cancelled in the database: 503, and the listener survives it
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE ev IN SHARE MODE;');
my ($cout, $cerr) = ('', '');
my $curl = IPC::Run::start(
	[ 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-u', "$key:", '--data-binary',
		'{"batch": [{"type": "track", "userId": "c", "event": "E", "messageId": "cancelled"}]}',
		"http://127.0.0.1:$port/v1/batch" ],
	'>', \$cout, '2>', \$cerr, IPC::Run::timeout(60));
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'eventkit http' AND wait_event_type = 'Lock'}),
	'the listener waits for the stream lock');
$node->safe_psql('postgres', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE backend_type = 'eventkit http'});
$curl->finish;
is($cout, '503', 'a cancelled request: 503 (the SDK retries)');
$locker->query_safe('ROLLBACK');
$locker->quit;
($status) = http($port, key => $key, data => '{"batch": [{"type": "track", "userId": "c", "event": "E", "messageId": "cancelled"}]}');
is($status, 200, '... and its retry is stored');
is(count_ev(q{message_id = 'cancelled'}), 1, '... once');

# ---- a stream trigger cannot leave the key's role (the listener's session is
# the bootstrap superuser's)
$node->safe_psql(
	'postgres', q{
CREATE TABLE trigger_log (who text, what text);
GRANT INSERT ON trigger_log TO writer;
CREATE FUNCTION escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		SET ROLE postgres;
		INSERT INTO trigger_log VALUES (current_user, 'SET ROLE worked');
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO trigger_log VALUES (current_user, SQLERRM);
	END;
	BEGIN
		RESET ROLE;
		INSERT INTO trigger_log VALUES (current_user, 'RESET ROLE worked');
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO trigger_log VALUES (current_user, SQLERRM);
	END;
	BEGIN
		SET SESSION AUTHORIZATION postgres;
		INSERT INTO trigger_log VALUES (current_user, 'SET SESSION AUTHORIZATION worked');
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO trigger_log VALUES (current_user, SQLERRM);
	END;
	BEGIN
		CREATE TEMP TABLE escaped (x int);
		INSERT INTO trigger_log VALUES (current_user, 'CREATE TEMP TABLE worked');
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO trigger_log VALUES (current_user, SQLERRM);
	END;
	RETURN NEW;
END $$;
CREATE TRIGGER escalate BEFORE INSERT ON ev FOR EACH ROW EXECUTE FUNCTION escalate();
});
($status) = http($port, key => $key, data => '{"batch": [{"type": "track", "userId": "t", "event": "E", "messageId": "trig1"}]}');
is($status, 200, 'an event through a stream with a trigger');
is($node->safe_psql('postgres', q{SELECT string_agg(who || ': ' || what, E'\n' ORDER BY what) FROM trigger_log}),
	join("\n",
		'writer: cannot create temporary table within security-restricted operation',
		'writer: cannot set parameter "role" within security-definer function',
		'writer: cannot set parameter "role" within security-definer function',
		'writer: cannot set parameter "session_authorization" within security-definer function'),
	'the trigger ran as the key\'s role, could not change it, and ran as a security-restricted operation');
$node->safe_psql('postgres', q{DROP TRIGGER escalate ON ev});

is($node->safe_psql('postgres', "SELECT count(*) FROM ev t WHERE strpos(row_to_json(t)::text, '$key') > 0"),
	0, 'no key stored by the browser calls either');

# ---- the listener stayed up through all of it, and lost nothing
is(listener_pids($node), $pid, 'the same listener served every request');
is(count_ev(q{message_id IN ('t1', 'p-identify', 'p-page', 'p-screen', 'p-group', 'p-alias', 'b1', 'b2', 'i1', 'z1', 'z2', 'r1', 'cors1', 'cors2', 'cors3', 'meanwhile', 'cancelled', 'trig1')}),
	18, 'every accepted event is stored, once');
is($node->safe_psql('postgres', q{SELECT count(*) FROM eventkit.write_keys WHERE last_used_at IS NOT NULL}),
	3, 'write_keys shows when the keys were last used');

# ---- eventkit dropped and created again in the listener's database: 503
# while it is absent, then the new catalog's keys work (no stale plan)
$node->safe_psql('postgres', q{SELECT eventkit.drop_stream('ev'); DROP EXTENSION eventkit;});
($status, $body) = http($port, method => 'GET', path => '/health');
is($status, 503, 'without eventkit in the database: /health answers 503');
like($body, qr/not installed/, '... saying why');
($status) = http($port, key => $key, data => $event);
is($status, 503, '... and so does a POST');
$node->safe_psql('postgres', q{CREATE EXTENSION eventkit; SELECT eventkit.create_stream('ev2'); GRANT INSERT ON ev2 TO writer;});
my $key2 = $node->safe_psql('postgres', q{SET ROLE writer; SELECT eventkit.create_write_key('ev2')});
($status) = http($port, key => $key2, data => '{"batch": [{"type": "track", "userId": "n", "event": "E", "messageId": "again"}]}');
is($status, 200, 'eventkit created again: a new key works');
($status) = http($port, key => $key, data => $event);
is($status, 401, '... an old one is unknown');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ev2}), 1, '... and the event is stored');
is(listener_pids($node), $pid, 'the same listener still');

$node->stop;
done_testing();
