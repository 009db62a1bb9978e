
# Copyright: eventkit authors
#
# The official JSON Schema Test Suite, draft-07 (vendored in
# test/conformance/draft7, see test/conformance/LICENSE), run through
# eventkit.schema_valid.  Every file is run and its pass count printed.
# A required test (outside optional/) that does not pass fails this test,
# except:
#   - tests that need the suite's remote documents (refRemote.json, and any
#     schema whose $ref points to http://localhost:1234/, the suite's
#     remote server), which are skipped and listed by name;
#   - tests whose JSON jsonb cannot hold (a string with \u0000), which
#     cannot reach a jsonb function at all; skipped and listed by name.
# Optional tests are reported (pass rate), never required.
# The suite runs with eventkit.testing_regex_crosscheck on: every answer of
# the validator's fast pattern matcher is checked against PostgreSQL's
# regex engine, and a disagreement, in a required or an optional test,
# fails this test.

use strict;
use warnings;

use File::Basename;
use FindBin;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $suite = "$FindBin::RealBin/../conformance/draft7";

my $node = PostgreSQL::Test::Cluster->new('conformance');
$node->init;
$node->append_conf('postgresql.conf', 'eventkit.testing_regex_crosscheck = on');
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION eventkit;
CREATE FUNCTION try_valid(s text, d text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	sj jsonb;
	dj jsonb;
BEGIN
	BEGIN
		sj := s::jsonb;
		dj := d::jsonb;
	EXCEPTION WHEN others THEN
		RETURN 'unrepresentable: ' || SQLERRM;
	END;
	RETURN eventkit.schema_valid(sj, dj)::text;
EXCEPTION WHEN others THEN
	RETURN 'error: ' || replace(SQLERRM, E'\n', ' ');
END $$;
});

my @files = (sort(glob("$suite/*.json")), sort(glob("$suite/optional/*.json")),
	sort(glob("$suite/optional/format/*.json")));

my ($req_total, $req_pass, $opt_total, $opt_pass) = (0, 0, 0, 0);
my ($fmt_total, $fmt_pass) = (0, 0);
my (@skipped, @unrepresentable, @disagreements);

foreach my $file (@files)
{
	(my $name = $file) =~ s{^\Q$suite\E/}{};
	my $optional = $name =~ m{^optional/};
	my $text = slurp_file($file);
	die "dollar-quote tag inside $name" if $text =~ /\$ekcase\$/;

	# jsonb cannot hold U+0000 (nor can PostgreSQL's json functions
	# de-escape it): find the tests that contain one, and neutralise it in
	# the text sent to the server; those tests are reported, not run.
	my $json = JSON::PP->new->canonical;
	my $groups = $json->decode($text);
	my @nul;
	foreach my $g (@$groups)
	{
		my $snul = $json->encode([ $g->{schema} ]) =~ /\\u0000/ ? 1 : 0;
		push @nul,
		  map { ($snul || $json->encode([ $_->{data} ]) =~ /\\u0000/) ? 1 : 0 }
		  @{ $g->{tests} };
	}
	$text =~ s/\\u0000/\\u0001/g;

	my $out = $node->safe_psql(
		'postgres', qq{
WITH g AS (
	SELECT gi, ge FROM json_array_elements(\$ekcase\$$text\$ekcase\$::json)
		WITH ORDINALITY AS x(ge, gi)),
t AS (
	SELECT gi, ti, ge->>'description' AS gd, te->>'description' AS td,
		(ge->'schema')::text AS s, (te->'data')::text AS d,
		(te->>'valid')::boolean AS v
	FROM g, json_array_elements(ge->'tests') WITH ORDINALITY AS y(te, ti))
SELECT v, try_valid(s, d), position('http://localhost:1234' in s) > 0, gd, td
FROM t ORDER BY gi, ti});

	my ($total, $pass, $skip) = (0, 0, 0);
	my @failures;
	my $i = 0;
	foreach my $line (split /\n/, $out)
	{
		my ($expect, $got, $remote, $gd, $td) = split /\|/, $line, 5;
		$got = 'unrepresentable: contains U+0000' if $nul[ $i++ ];
		my $label = "$name: $gd: $td";
		if ($name eq 'refRemote.json'
			|| ($remote eq 't' && $got =~ /^error: .*cannot resolve \$ref/))
		{
			push @skipped, $label;
			$skip++;
			next;
		}
		if ($got =~ /^unrepresentable/)
		{
			push @unrepresentable, "$label ($got)";
			$skip++;
			next;
		}
		push @disagreements, "$label: $got" if $got =~ /matcher and PostgreSQL's disagree/;
		$total++;
		my $want = $expect eq 't' ? 'true' : 'false';
		if ($got eq $want)
		{
			$pass++;
		}
		else
		{
			push @failures, "$label: expected $want, got $got";
		}
	}
	note(sprintf("%-40s %4d/%-4d passed%s%s", $name, $pass, $total,
			$skip ? " ($skip skipped)" : "", $optional ? " [optional]" : ""));
	if ($optional)
	{
		$opt_total += $total;
		$opt_pass += $pass;
		if ($name =~ m{^optional/format/})
		{
			$fmt_total += $total;
			$fmt_pass += $pass;
		}
		note("  optional failure: $_") foreach @failures;
	}
	else
	{
		$req_total += $total;
		$req_pass += $pass;
		is(scalar(@failures), 0, "required tests of $name pass")
		  or diag(join("\n", @failures));
	}
}

note("skipped (remote \$ref): $_") foreach @skipped;
note("skipped (not representable in jsonb): $_") foreach @unrepresentable;
note(sprintf("required: %d/%d passed; optional: %d/%d passed (%.1f%%), of which optional/format: %d/%d (%.1f%%); %d skipped",
		$req_pass, $req_total, $opt_pass, $opt_total,
		$opt_total ? 100.0 * $opt_pass / $opt_total : 0,
		$fmt_pass, $fmt_total, $fmt_total ? 100.0 * $fmt_pass / $fmt_total : 0,
		scalar(@skipped) + scalar(@unrepresentable)));
cmp_ok($req_total, '>', 0, 'required tests ran');
is($node->safe_psql('postgres', 'SHOW eventkit.testing_regex_crosscheck'), 'on',
	'the suite ran with the regex cross-check on');
is(scalar(@disagreements), 0, 'the fast pattern matcher and PostgreSQL\'s regex engine agree on the whole suite')
  or diag(join("\n", @disagreements));

$node->stop;
done_testing();
