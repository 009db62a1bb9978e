
# Copyright: eventkit authors
#
# The id hash and the ledger filter format are stored and dumped: a change
# would silently let duplicates through after an upgrade or a restore.
# sql/pinned_formats.sql pins their answers; this test checks that what it
# pins is the documented algorithm's answer, with the independent Perl
# implementation in test/pinned/EkReference.pm:
#
#   - every known-answer vector of expected/pinned_formats.out (its input
#     bytes are in the file) hashes to the pinned value;
#   - the pinned filter bytes are the filter of pinned-id-001 ..
#     pinned-id-100, and the pinned answers of the made-up filters are the
#     reference's;
#   - on a server, the extension's hash and filter answers equal the
#     reference's for 400 random ids (ASCII, UTF-8 of 1 to 4 bytes, 0 to
#     256 bytes long, fixed seed), and for the filter that maintenance
#     builds over 300 of them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../pinned";
use EkReference;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# ---- the pinned answers, read from the expected output
my $expected = slurp_file("$FindBin::RealBin/../../expected/pinned_formats.out");

my $nvectors = 0;
my @bad;
while ($expected =~ /^([a-z0-9-]+)\|(\d+)\|([0-9a-f]{16})\|([0-9a-f]*)$/mg)
{
	my ($label, $bytes, $hash, $input) = ($1, $2, $3, $4);
	my $id = pack('H*', $input);
	$nvectors++;
	push @bad, "$label: length $bytes, input has " . length($id) if length($id) != $bytes;
	my $want = EkReference::id_hash64($id);
	push @bad, "$label: pinned $hash, reference $want" if $want ne $hash;
}
cmp_ok($nvectors, '>=', 30, 'the known-answer vectors are in the expected output');
is(join("\n", @bad), '', 'every pinned hash is the reference hash of its input');

my ($filter_table) = $expected =~ /^ row \| +bytes +\n-+\+-+\n(.*?)^\(\d+ rows\)$/ms;
my $pinned_filter = join('', ($filter_table // '') =~ /^ +\d+ \| ([0-9a-f]+)$/mg);
is($pinned_filter,
	unpack('H*', EkReference::filter_bytes(map { sprintf('pinned-id-%03d', $_) } 1 .. 100)),
	'the pinned filter is the reference filter of pinned-id-001 .. pinned-id-100');

my %made_up = (
	block2 => pack('H*', '454b4246010800000000000000000000' . '04000000' . '00000000'
		  . ('00' x 128) . ('ff' x 64) . ('00' x 64)),
	even => pack('H*', '454b4246010800000000000000000000' . '01000000' . '00000000'
		  . ('55' x 64)));
my ($pinned_block2) = $expected =~ /^block2\|(.*)$/m;
my ($pinned_even) = $expected =~ /^even\|(.*)$/m;
is($pinned_block2,
	join(' ', grep { EkReference::filter_contains($made_up{block2}, $_) } map { "other-id-$_" } 1 .. 200),
	'the pinned answers of the block-2 filter are the reference answers');
is($pinned_even,
	join(' ', grep { EkReference::filter_contains($made_up{even}, $_) } map { "other-id-$_" } 1 .. 2000),
	'the pinned answers of the even-bits filter are the reference answers');

# ---- the extension against the reference, on random ids
srand(20240614);

sub random_id
{
	my $target = int(rand(257));
	my $s = '';
	while (1)
	{
		my $r = rand();
		my $cp =
			$r < 0.70 ? 1 + int(rand(127))
		  : $r < 0.85 ? 0x80 + int(rand(0x780))
		  : $r < 0.95 ? 0x800 + int(rand(0xD000))
		  : 0x10000 + int(rand(0x100000));
		my $c = chr($cp);
		utf8::encode($c);
		last if length($s) + length($c) > $target;
		$s .= $c;
	}
	return $s;
}

my @ids = map { random_id() } 1 .. 400;
# some exact lengths too: every length 0 .. 40, and 250 .. 256 bytes
push @ids, map { 'k' x $_ } 0 .. 40, 250 .. 256;

my $node = PostgreSQL::Test::Cluster->new('pinned');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION eventkit');
$node->safe_psql('postgres',
	    'CREATE TABLE ids (i int PRIMARY KEY, id text NOT NULL); INSERT INTO ids VALUES '
	  . join(', ', map { sprintf("(%d, convert_from('\\x%s'::bytea, 'UTF8'))", $_, unpack('H*', $ids[$_])) } 0 .. $#ids));

my %server = split /[|\n]/, $node->safe_psql('postgres',
	"SELECT i, lpad(to_hex(eventkit_internal.id_hash64(id)), 16, '0') FROM ids ORDER BY i");
@bad = grep { ($server{$_} // '') ne EkReference::id_hash64($ids[$_]) } 0 .. $#ids;
is(scalar(@bad), 0, scalar(@ids) . ' random ids: the extension hashes as the reference does')
  or diag(join("\n", map { "id " . unpack('H*', $ids[$_]) . ": extension $server{$_}, reference " . EkReference::id_hash64($ids[$_]) } @bad[ 0 .. ($#bad < 9 ? $#bad : 9) ]));

my %keys = split /[|\n]/, $node->safe_psql('postgres',
	"SELECT i, eventkit_internal.ledger_key(id) FROM ids ORDER BY i");
@bad = grep { ($keys{$_} // '') ne EkReference::ledger_key($ids[$_]) } 0 .. $#ids;
is(scalar(@bad), 0, scalar(@ids) . ' random ids: the extension\'s ledger keys are the reference\'s')
  or diag(join("\n", map { "id " . unpack('H*', $ids[$_]) . ": extension $keys{$_}, reference " . EkReference::ledger_key($ids[$_]) } @bad[ 0 .. ($#bad < 9 ? $#bad : 9) ]));

# a filter built by maintenance over the first 300 random ids
$node->safe_psql(
	'postgres', q{
SELECT eventkit.create_stream('rnd');
SET eventkit.ledger_generation_rows = 100;
SELECT eventkit.ingest('rnd', (SELECT jsonb_agg(jsonb_build_object('type', 'track', 'messageId', id,
                                                 'userId', 'u', 'event', 'E') ORDER BY i)
                                 FROM ids WHERE i < 300 AND id <> ''));
SELECT eventkit.run_maintenance('rnd');
SELECT eventkit.run_maintenance('rnd');
});
my $filter = $node->safe_psql('postgres',
	"SELECT encode(filter, 'hex') FROM eventkit.ledger_generations WHERE gen = 1");
my @in = grep { $_ ne '' } @ids[ 0 .. 299 ];
my %seen;
@in = grep { !$seen{$_}++ } @in;
is($filter, unpack('H*', EkReference::filter_bytes(@in)),
	'the filter maintenance builds over ' . scalar(@in) . ' random ids is the reference filter');

my $fbytes = pack('H*', $filter);
my %answers = split /[|\n]/, $node->safe_psql('postgres',
	"SELECT i, eventkit_internal.ledger_filter_contains(f.filter, id)"
	  . " FROM ids, (SELECT filter FROM eventkit.ledger_generations WHERE gen = 1) f ORDER BY i");
@bad = grep { ($answers{$_} eq 't' ? 1 : 0) != EkReference::filter_contains($fbytes, $ids[$_]) } 0 .. $#ids;
is(scalar(@bad), 0, 'the extension answers for every id as the reference does');
is(scalar(grep { $answers{$_} ne 't' } grep { $ids[$_] ne '' } 0 .. 299), 0,
	'every id the filter was built from is found');

$node->stop;
done_testing();
