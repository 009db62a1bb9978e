
# Copyright: eventkit authors
#
# The source tree is layered (docs/architecture.md): test/check_layers.pl
# finds no file outside the layer map, no upward dependency and no cycle in
# src/.  And the check can fail: in a copy of src/ with an upward call, a
# cycle or an unplaced file, it fails and names what is wrong.

use strict;
use warnings;

use File::Temp qw(tempdir);
use Test::More;

my $check = 'test/check_layers.pl';

sub run_check
{
	my ($dir) = @_;
	my $out = `perl $check $dir 2>&1`;
	return ($? >> 8, $out);
}

my ($rc, $out) = run_check('src');
is($rc, 0, 'src/ is layered: every file placed, no upward dependency, no cycle')
  or diag($out);
like($out, qr/no cycle, no upward dependency/, 'the check says what it checked');

# a copy of the tree to break
sub copy_tree
{
	my $dir = tempdir(CLEANUP => 1);
	system('cp', '-R', 'src', "$dir/src") == 0 or die "cp: $?";
	return "$dir/src";
}

sub append_to
{
	my ($file, $text) = @_;
	open my $fh, '>>', $file or die "$file: $!";
	print $fh $text;
	close $fh;
	return;
}

# a utility that calls the catalog layer: upward
my $tree = copy_tree();
append_to("$tree/util/spi.c",
	"\nextern void ek_layers_probe(void);\nvoid\nek_layers_probe(void)\n{\n\t(void) ek_catalog_version();\n}\n");
($rc, $out) = run_check($tree);
isnt($rc, 0, 'a utility calling the catalog layer fails the check');
like($out, qr{upward: \S*/util/spi\.c \(util\) -> \S*/catalog/catalog\.c \(catalog\): ek_catalog_version},
	'... and the upward edge is named');

# a stage that calls the orchestrator above it, through a macro
$tree = copy_tree();
append_to("$tree/pipeline/writer.c",
	"\n#define EK_PROBE_REPLAY(r) ek_replay_quarantine((r), (Datum) 0, true, NULL)\n"
	  . "extern void ek_layers_probe(void);\nvoid\nek_layers_probe(void)\n{\n\tEK_PROBE_REPLAY(InvalidOid);\n}\n");
($rc, $out) = run_check($tree);
isnt($rc, 0, 'a call upward through a macro fails the check');
like($out, qr{upward: \S*/pipeline/writer\.c \(stage\) -> \S*/ingest/ingest\.c \(orchestrator\): ek_replay_quarantine \(in macro EK_PROBE_REPLAY\)},
	'... and names the macro');

# two stages that call each other: a cycle
$tree = copy_tree();
append_to("$tree/pipeline/event.c",
	"\nextern int64 ek_layers_probe(SegmentEvent *ev);\nint64\nek_layers_probe(SegmentEvent *ev)\n{\n\treturn ek_payload_fingerprint(ev);\n}\n");
($rc, $out) = run_check($tree);
isnt($rc, 0, 'a cycle between two files of a floor fails the check');
like($out, qr{cycle: 2 files: \S*/pipeline/event\.c \S*/pipeline/payload\.c}, '... and the cycle is named');

# a function handed down as a pointer is a dependency too
$tree = copy_tree();
append_to("$tree/util/clock.c",
	"\nextern void *ek_layers_probe(void);\nvoid *\nek_layers_probe(void)\n{\n\treturn (void *) &ek_streams_read;\n}\n");
($rc, $out) = run_check($tree);
like($out, qr{upward: \S*/util/clock\.c \(util\) -> \S*/catalog/streams\.c \(catalog\): ek_streams_read},
	'a function pointer taken upward fails the check');

# a file in no floor
$tree = copy_tree();
mkdir "$tree/newdir";
append_to("$tree/newdir/x.c", "int ek_layers_x = 1;\n");
($rc, $out) = run_check($tree);
isnt($rc, 0, 'a file outside the layer map fails the check');
like($out, qr{no floor: \S*/newdir/x\.c}, '... and is named');

done_testing();
