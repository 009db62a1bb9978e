#!/usr/bin/env perl
#
# check_layers.pl: eventkit's source tree is layered (docs/architecture.md).
#
# Reads every .c and .h file under src/ (or the directory given), builds
# the graph of dependencies between files and fails (exit 1, one line per
# offending edge) when
#   - a file has no floor in the layer map below (a new folder or file
#     must be placed);
#   - a file depends on a file of a higher floor (an upward edge);
#   - files depend on each other in a cycle (any floor).
# Otherwise it prints one summary line and exits 0.
#
# A dependency of file A on file B (an edge A -> B) is any of:
#   - A includes B ('#include "..."', resolved next to A, then under src/);
#   - A names a function or global variable that B defines (a call, or a
#     function passed as a pointer, or a variable read or written), in a
#     function body or an initializer; a header counts only in the bodies
#     of its inline functions, not in its declarations;
#   - A uses a macro whose body (through other macros too) names such a
#     function or variable of B.
#
# Limits (what it cannot see): calls that PostgreSQL makes for us (SQL
# functions through pg_proc, background workers through bgw_function_name,
# hooks and callbacks registered with PostgreSQL); a function of A that B
# calls back through a pointer A handed to it (the edge A -> B is seen, the
# call back is by design); names built by the preprocessor (## pasting);
# conditional compilation (#ifdef branches are all read).  Function names
# must be unique across files, as they are for the linker.
#
# Usage: perl test/check_layers.pl [--verbose] [src-directory]
#
use strict;
use warnings;
use File::Find;
use File::Basename;

# ---------------------------------------------------------------------
# The layer map: each path (a folder ending in '/', or a file), relative
# to src/, and its floor.  The most specific entry wins.  A file may
# depend on files of its own floor or below, never above.
# ---------------------------------------------------------------------
my @FLOORS = qw(util catalog stage orchestrator process);

my @LAYER_MAP = (
	# floor 0: utilities and settings; depend on PostgreSQL only
	[ 'util/'                     => 'util' ],

	# floor 1: the catalog layer, the only code that reads and writes
	# eventkit.* rows
	[ 'catalog/'                  => 'catalog' ],

	# floor 2: pipeline stages, each returning a result; the JSON Schema
	# validator; the rollup stages (definitions, values, fold, deltas); the
	# workers' shared memory (what backends ask of the workers)
	[ 'jsonschema/'               => 'stage' ],
	[ 'pipeline/'                 => 'stage' ],
	[ 'rollup/'                   => 'stage' ],
	[ 'worker/shmem.c'            => 'stage' ],
	[ 'worker/worker.h'           => 'stage' ],
	[ 'worker/worker_int.h'       => 'stage' ],

	# floor 3: orchestrators and their SQL wrappers
	[ 'ingest/'                   => 'orchestrator' ],
	[ 'stream/'                   => 'orchestrator' ],
	[ 'rollup/refresh.c'          => 'orchestrator' ],
	[ 'rollup/refresh.h'          => 'orchestrator' ],
	[ 'rollup/manage.c'           => 'orchestrator' ],
	[ 'rollup/manage.h'           => 'orchestrator' ],
	[ 'worker/maintenance.c'      => 'orchestrator' ],
	[ 'worker/maintenance.h'      => 'orchestrator' ],
	[ 'worker/jobs.c'             => 'orchestrator' ],
	[ 'worker/jobs.h'             => 'orchestrator' ],
	[ 'intake/'                   => 'orchestrator' ],

	# floor 4: processes (launcher, schedulers, job workers, intake
	# workers) and the module's entry point
	[ 'worker/'                   => 'process' ],
	[ 'intake/http.c'             => 'process' ],
	[ 'intake/http.h'             => 'process' ],
	[ 'intake/kafka_consumer.c'   => 'process' ],
	[ 'intake/kafka_consumer.h'   => 'process' ],
	[ 'eventkit.c'                => 'process' ],
);

my %FLOOR_RANK;
@FLOOR_RANK{@FLOORS} = (0 .. $#FLOORS);

my $verbose = 0;
if (@ARGV && $ARGV[0] eq '--verbose')
{
	$verbose = 1;
	shift @ARGV;
}
my $root = shift(@ARGV) // 'src';
$root =~ s{/+$}{};
die "check_layers: no directory $root\n" unless -d $root;

my @files;
find({ wanted => sub { push @files, $File::Find::name if /\.[ch]$/ }, no_chdir => 1 },
	$root);
@files = sort map { my $f = $_; $f =~ s{^\Q$root\E/}{}; $f } @files;

sub floor_of
{
	my ($file) = @_;
	my ($best, $len) = (undef, -1);
	for my $e (@LAYER_MAP)
	{
		my ($path, $floor) = @$e;
		my $match = $path =~ m{/$} ? index($file, $path) == 0 : $file eq $path;
		if ($match && length($path) > $len)
		{
			($best, $len) = ($floor, length($path));
		}
	}
	return $best;
}

# ---------------------------------------------------------------------
# Reading the sources
# ---------------------------------------------------------------------

# Comments, strings and character literals out (their length kept apart
# from newlines, which do not matter here).
sub strip_code
{
	my ($s) = @_;
	$s =~ s{/\*.*?\*/}{ }gs;
	$s =~ s{//[^\n]*}{}g;
	$s =~ s/"(?:\\.|[^"\\\n])*"/""/g;
	$s =~ s/'(?:\\.|[^'\\\n])*'/''/g;
	return $s;
}

my (%includes, %code, %macro_body);
my %macro_def;    # macro name -> file that defines it
for my $f (@files)
{
	open my $fh, '<', "$root/$f" or die "check_layers: $root/$f: $!\n";
	local $/;
	my $raw = <$fh>;
	close $fh;

	# preprocessor lines (with their continuations) apart from the code
	my $text = $raw;
	$text =~ s{/\*.*?\*/}{my $c = $&; $c =~ tr/\n//cd; ' ' . $c}gse;
	$text =~ s/\\\n/ /g;
	my @code_lines;
	for my $line (split /\n/, $text)
	{
		if ($line =~ /^\s*#\s*include\s+"([^"]+)"/)
		{
			my $inc = $1;
			my $dir = dirname($f);
			my @try = (($dir eq '.' ? $inc : "$dir/$inc"), $inc);
			my ($found) = grep { -f "$root/$_" } @try;
			if (defined $found)
			{
				$found =~ s{(^|/)\./}{$1}g;
				1 while $found =~ s{[^/]+/\.\./}{};
				$includes{$f}{$found} = 1;
			}
			push @code_lines, '';
		}
		elsif ($line =~ /^\s*#\s*define\s+([A-Za-z_]\w*)(\([^)]*\))?\s*(.*)$/)
		{
			$macro_def{$1} = $f;
			$macro_body{$1} = strip_code($3);
			push @code_lines, '';
		}
		elsif ($line =~ /^\s*#/)
		{
			push @code_lines, '';
		}
		else
		{
			push @code_lines, $line;
		}
	}
	$code{$f} = strip_code(join("\n", @code_lines));
}

# Definitions: non-static functions (a parameter list, then a body, at
# file level) and non-static global variables.
my %defined;    # name -> file
my %static_in;  # file -> { name -> 1 }: its own statics shadow globals
for my $f (grep { /\.c$/ } @files)
{
	my $s = $code{$f};
	my $depth = 0;
	my @decl;    # tokens of the current file-level declaration
	while ($s =~ /([A-Za-z_]\w*|[{}();=\[\],*])/g)
	{
		my $t = $1;
		if ($t eq '{')
		{
			if ($depth == 0)
			{
				my ($name, $is_static) = function_head(\@decl);
				if (defined $name)
				{
					if ($is_static) { $static_in{$f}{$name} = 1; }
					else { $defined{$name} //= $f; }
				}
				else
				{
					# a type's body or an initializer: the declarator, if
					# any, is before '=' or after the body
					push @decl, '{}';
					$depth++;
					next;
				}
				@decl = ();
			}
			$depth++;
			next;
		}
		if ($t eq '}')
		{
			$depth-- if $depth > 0;
			@decl = () if $depth == 0 && !grep { $_ eq '{}' } @decl;
			next;
		}
		next if $depth > 0;
		if ($t eq ';')
		{
			global_variable(\@decl, $f);
			@decl = ();
			next;
		}
		push @decl, $t;
	}
}

# The name of a function definition's head ("static int foo(...)"), or undef.
sub function_head
{
	my ($decl) = @_;
	return (undef) unless @$decl && $decl->[-1] eq ')';
	return (undef) if grep { $_ eq '=' || $_ eq 'typedef' } @$decl;
	# the identifier before the first '(' at nesting level zero
	for my $i (1 .. $#$decl)
	{
		if ($decl->[$i] eq '(')
		{
			my $name = $decl->[ $i - 1 ];
			return (undef) unless $name =~ /^[A-Za-z_]\w*$/;
			my $is_static = grep { $_ eq 'static' } @$decl[ 0 .. $i - 1 ];
			return ($name, $is_static);
		}
	}
	return (undef);
}

# "int ek_x = ...;", "bool ek_y;", "Foo *ek_z[3] = {...}" (not static,
# extern or typedef; no parameter list before the name).
sub global_variable
{
	my ($decl, $f) = @_;
	return unless @$decl;
	return if grep { $_ eq 'extern' || $_ eq 'typedef' } @$decl;
	my $is_static = grep { $_ eq 'static' } @$decl;
	my $name;
	for my $i (0 .. $#$decl)
	{
		my $t = $decl->[$i];
		last if $t eq '=' || $t eq '[';
		return if $t eq '(';
		if ($t eq '{}')
		{
			undef $name;    # a type's body: the name follows it
			next;
		}
		$name = $t if $t =~ /^[A-Za-z_]\w*$/;
	}
	return unless defined $name;
	return if $name =~ /^(struct|union|enum|const|volatile|unsigned|signed)$/;
	if ($is_static) { $static_in{$f}{$name} = 1; }
	else { $defined{$name} //= $f; }
}

# Names a file uses: in .c files everything inside braces (bodies,
# initializers); in headers, the bodies of inline functions only.
my %uses;    # file -> { name -> 1 }
for my $f (@files)
{
	my $s = $code{$f};
	my $depth = 0;
	while ($s =~ /([A-Za-z_]\w*|[{}])/g)
	{
		my $t = $1;
		if ($t eq '{') { $depth++; next; }
		if ($t eq '}') { $depth-- if $depth > 0; next; }
		next unless $depth > 0;
		$uses{$f}{$t} = 1;
	}
}

# What a macro names, through the macros it uses.
my %macro_names;
sub macro_names
{
	my ($m, $seen) = @_;
	return $macro_names{$m} if $macro_names{$m};
	$seen //= {};
	return {} if $seen->{$m}++;
	my %n;
	for my $id ($macro_body{$m} =~ /([A-Za-z_]\w*)/g)
	{
		$n{$id} = 1;
		if (exists $macro_body{$id})
		{
			my $sub = macro_names($id, $seen);
			$n{$_} = 1 for keys %$sub;
		}
	}
	return $macro_names{$m} = \%n;
}

# ---------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------
my %edge;    # "a\0b" -> { reason -> 1 }
sub add_edge
{
	my ($a, $b, $why) = @_;
	return if $a eq $b;
	$edge{"$a\0$b"}{$why} = 1;
}

for my $f (@files)
{
	add_edge($f, $_, '#include') for keys %{ $includes{$f} // {} };
	for my $name (keys %{ $uses{$f} // {} })
	{
		my @names = ($name);
		if (exists $macro_body{$name})
		{
			push @names, map { "$_ (in macro $name)" } keys %{ macro_names($name) };
		}
		for my $n (@names)
		{
			my ($id) = $n =~ /^(\w+)/;
			next if $static_in{$f}{$id};
			my $def = $defined{$id};
			next unless defined $def;
			add_edge($f, $def, $n);
		}
	}
}

my %succ;
for my $k (keys %edge)
{
	my ($a, $b) = split /\0/, $k;
	$succ{$a}{$b} = 1;
}

my @errors;

# every file has a floor
my %floor;
for my $f (@files)
{
	my $fl = floor_of($f);
	if (!defined $fl)
	{
		push @errors, "no floor: $root/$f is not in the layer map (test/check_layers.pl)";
		next;
	}
	$floor{$f} = $fl;
}

# no upward edge
for my $k (sort keys %edge)
{
	my ($a, $b) = split /\0/, $k;
	next unless defined $floor{$a} && defined $floor{$b};
	next unless $FLOOR_RANK{ $floor{$a} } < $FLOOR_RANK{ $floor{$b} };
	push @errors, sprintf("upward: %s/%s (%s) -> %s/%s (%s): %s",
		$root, $a, $floor{$a}, $root, $b, $floor{$b}, join(', ', sort keys %{ $edge{$k} }));
}

# no cycle (Tarjan's strongly connected components)
my (%index, %low, %on_stack, @stack, @sccs);
my $next_index = 0;
sub strongconnect
{
	my ($v) = @_;
	$index{$v} = $low{$v} = $next_index++;
	push @stack, $v;
	$on_stack{$v} = 1;
	for my $w (sort keys %{ $succ{$v} // {} })
	{
		if (!defined $index{$w})
		{
			strongconnect($w);
			$low{$v} = $low{$w} if $low{$w} < $low{$v};
		}
		elsif ($on_stack{$w})
		{
			$low{$v} = $index{$w} if $index{$w} < $low{$v};
		}
	}
	if ($low{$v} == $index{$v})
	{
		my @c;
		my $w;
		do
		{
			$w = pop @stack;
			$on_stack{$w} = 0;
			push @c, $w;
		} while ($w ne $v);
		push @sccs, [ sort @c ] if @c > 1;
	}
}
for my $f (@files)
{
	strongconnect($f) unless defined $index{$f};
}
for my $c (@sccs)
{
	my %in = map { $_ => 1 } @$c;
	push @errors, sprintf("cycle: %d files: %s", scalar(@$c), join(' ', map { "$root/$_" } @$c));
	for my $a (@$c)
	{
		for my $b (sort keys %{ $succ{$a} })
		{
			next unless $in{$b};
			push @errors, sprintf("  in cycle: %s/%s -> %s/%s: %s", $root, $a, $root, $b,
				join(', ', sort keys %{ $edge{"$a\0$b"} }));
		}
	}
}

if ($verbose)
{
	for my $f (@files)
	{
		printf "%-14s %s/%s\n", $floor{$f} // '?', $root, $f;
		for my $b (sort keys %{ $succ{$f} // {} })
		{
			printf "%-14s   -> %s/%s: %s\n", '', $root, $b,
				join(', ', sort keys %{ $edge{"$f\0$b"} });
		}
	}
}

if (@errors)
{
	print "$_\n" for @errors;
	printf "check_layers: %d problems in %d files under %s\n", scalar(@errors),
		scalar(@files), $root;
	exit 1;
}
printf "check_layers: %d files, %d dependencies, no cycle, no upward dependency\n",
	scalar(@files), scalar(keys %edge);
exit 0;
