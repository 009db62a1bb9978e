
# Copyright: eventkit authors
#
# A mock Kafka cluster for the TAP tests: test/kafka/mock_cluster (built by
# `make installcheck`) in a child process, driven through its stdin.

package KafkaMock;

use strict;
use warnings;

use File::Temp qw(tempfile);
use IPC::Run;
use Test::More;

my $bin = $ENV{EK_MOCK_CLUSTER} // 'test/kafka/mock_cluster';

# KafkaMock->new(topic => 'events', partitions => 3, brokers => 3)
sub new
{
	my ($class, %args) = @_;
	my @cmd = ($bin, '-b', $args{brokers} // 3);
	push @cmd, '-t', $args{topic}, '-p', $args{partitions} // 3 if defined $args{topic};
	BAIL_OUT("$bin is missing: run make test/kafka/mock_cluster") unless -x $bin;

	my $self = bless { in => '', out => '', err => '' }, $class;
	$self->{timer} = IPC::Run::timer(180);
	$self->{h} = IPC::Run::start(\@cmd, '<', \$self->{in}, '>', \$self->{out},
		'2>', \$self->{err}, $self->{timer});
	my $line = $self->_reply;
	($self->{bootstrap}) = $line =~ /^bootstrap (\S+)$/
	  or die "mock_cluster did not start: $line $self->{err}";
	return $self;
}

sub bootstrap { return $_[0]->{bootstrap}; }

sub _reply
{
	my ($self) = @_;
	$self->{timer}->start(180);
	$self->{h}->pump until $self->{out} =~ /\n/;
	$self->{out} =~ s/^([^\n]*)\n//;
	return $1;
}

# One command; returns the words after "ok", dies on "error".
sub cmd
{
	my ($self, $line) = @_;
	$self->{in} .= "$line\n";
	my $reply = $self->_reply;
	die "mock_cluster: $line: $reply\n" unless $reply =~ /^ok ?(.*)$/;
	return $1;
}

# Each element of @$lines is one message (no newlines in them); partition
# -1 spreads message i over partition i % partitions.  Returns the count.
sub produce
{
	my ($self, $topic, $partition, $lines) = @_;
	my ($fh, $file) = tempfile(UNLINK => 1);
	print $fh map { "$_\n" } @$lines;
	close $fh;
	return $self->cmd("produce $topic $partition $file");
}

sub produce_hex
{
	my ($self, $topic, $partition, $hex) = @_;
	return $self->cmd("hex $topic $partition $hex");
}

# (low, high) watermarks of a partition
sub watermarks
{
	my ($self, $topic, $partition) = @_;
	return split / /, $self->cmd("wm $topic $partition");
}

sub stop
{
	my ($self) = @_;
	return unless $self->{h};
	$self->{in} .= "quit\n";
	eval { $self->{h}->finish; };
	$self->{h}->kill_kill if $@;
	delete $self->{h};
	return;
}

sub DESTROY { $_[0]->stop; }

1;
