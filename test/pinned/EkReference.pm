
# Copyright: eventkit authors
#
# An independent implementation, in Perl, of the formats eventkit stores
# and dumps in a layout of its own, written from their documentation (the
# header comments of src/pipeline/dedup/ledger_filter.c and ledger_key.c),
# not from the C
# code, and never linked to the extension:
#
#   id_hash64(bytes)          the 64-bit hash of a message id (hex)
#   ledger_key(bytes)         the 128-bit dedup ledger key of a message id (uuid text)
#   filter_bytes(@ids)        the ledger filter over those ids (raw bytes)
#   filter_contains($f, $id)  whether filter bytes $f may hold $id
#
# 64-bit arithmetic is done with Math::BigInt and masked explicitly, so the
# result does not depend on Perl's integer size or overflow behaviour.
# test/t/017_pinned_formats.pl checks the answers pinned in
# expected/pinned_formats.out, and the extension's answers for random ids,
# against this file.
#
# By hand:  perl test/pinned/EkReference.pm 'some id'   prints its hash.

package EkReference;

use strict;
use warnings;

use Math::BigInt;

my $MASK = Math::BigInt->from_hex('ffffffffffffffff');
my $C1 = Math::BigInt->from_hex('87c37b91114253d5');
my $C2 = Math::BigInt->from_hex('4cf5ad432745937f');
my $SEED = Math::BigInt->from_hex('6b8b4567327b23c6');
my $GOLDEN = Math::BigInt->from_hex('9e3779b97f4a7c15');
my $F1 = Math::BigInt->from_hex('ff51afd7ed558ccd');
my $F2 = Math::BigInt->from_hex('c4ceb9fe1a85ec53');

sub mul { my ($a, $b) = @_; return ($a * $b) & $MASK; }
sub add { my ($a, $b) = @_; return ($a + $b) & $MASK; }
sub rotl { my ($x, $r) = @_; return (($x << $r) | ($x >> (64 - $r))) & $MASK; }

sub fmix64
{
	my $k = shift->copy;
	$k ^= $k >> 33;
	$k = mul($k, $F1);
	$k ^= $k >> 33;
	$k = mul($k, $F2);
	$k ^= $k >> 33;
	return $k;
}

# bytes read as a little-endian unsigned number (0 to 8 bytes)
sub le_word
{
	my $bytes = shift;
	my $w = Math::BigInt->bzero;
	my @b = unpack('C*', $bytes);
	for my $i (reverse 0 .. $#b)
	{
		$w = ($w << 8) | $b[$i];
	}
	return $w;
}

sub mix_word
{
	my $w = shift;
	return mul(rotl(mul($w, $C1), 31), $C2);
}

# The hash, as a Math::BigInt.
#   h = SEED xor (length * GOLDEN)
#   each whole 8-byte word w, little-endian:
#       h ^= rotl(w * C1, 31) * C2;  h = rotl(h, 27) * 5 + 0x52dce729
#   the last 0 to 7 bytes as one little-endian word t, zero-extended:
#       h ^= rotl(t * C1, 31) * C2
#   result fmix64(h) (murmur3's finalizer); all arithmetic modulo 2^64.
sub id_hash64_int
{
	my $bytes = shift;
	my $len = length($bytes);
	my $h = $SEED ^ mul(Math::BigInt->new($len), $GOLDEN);
	my $p = 0;

	while ($len - $p >= 8)
	{
		$h ^= mix_word(le_word(substr($bytes, $p, 8)));
		$h = add(mul(rotl($h, 27), Math::BigInt->new(5)), Math::BigInt->from_hex('52dce729'));
		$p += 8;
	}
	$h ^= mix_word(le_word(substr($bytes, $p)));
	return fmix64($h);
}

# The hash of a message id's bytes, as 16 hex digits.
sub id_hash64
{
	my $hex = id_hash64_int(shift)->as_hex;
	$hex =~ s/^0x//;
	return ('0' x (16 - length($hex))) . $hex;
}

# The second lane of a ledger key (header comment of
# src/pipeline/dedup/ledger_key.c), as a Math::BigInt:
#   h = 0x2545f4914f6cdd1d xor (length * 0xc2b2ae3d27d4eb4f)
#   each whole 8-byte word w, little-endian:
#       h ^= rotl(w * C2, 33) * C1;  h = rotl(h, 31) * 5 + 0x38495ab5
#   the last 0 to 7 bytes as one little-endian word t, zero-extended:
#       h ^= rotl(t * C2, 33) * C1
#   h ^= h >> 29; result fmix64(h); all arithmetic modulo 2^64.
sub id_hash64_b_int
{
	my $bytes = shift;
	my $len = length($bytes);
	my $h = Math::BigInt->from_hex('2545f4914f6cdd1d')
	  ^ mul(Math::BigInt->new($len), Math::BigInt->from_hex('c2b2ae3d27d4eb4f'));
	my $p = 0;
	my $mix = sub { return mul(rotl(mul(shift, $C2), 33), $C1); };

	while ($len - $p >= 8)
	{
		$h ^= $mix->(le_word(substr($bytes, $p, 8)));
		$h = add(mul(rotl($h, 31), Math::BigInt->new(5)), Math::BigInt->from_hex('38495ab5'));
		$p += 8;
	}
	$h ^= $mix->(le_word(substr($bytes, $p)));
	$h ^= $h >> 29;
	return fmix64($h);
}

# The ledger key of a message id's bytes (format 1), as uuid text: 16 bytes,
# id_hash64 little-endian, then the second lane little-endian.
sub ledger_key
{
	my $bytes = shift;
	my $hex = unpack('H*', le_bytes(id_hash64_int($bytes), 8) . le_bytes(id_hash64_b_int($bytes), 8));
	return join('-', substr($hex, 0, 8), substr($hex, 8, 4), substr($hex, 12, 4),
		substr($hex, 16, 4), substr($hex, 20, 12));
}

# The block of a key: the high 32 bits of the hash scaled to nblocks.
sub key_block
{
	my ($h, $nblocks) = @_;
	return ((($h >> 32) * $nblocks) >> 32)->numify;
}

# The 8 bits (0..511) of a key in its block: the low 9 bits of the hash,
# then 7 times 9 bits of fmix64(hash xor GOLDEN) from the lowest up.
sub key_bits
{
	my $h = shift;
	my $g = fmix64($h ^ $GOLDEN);
	my @bits = (($h & 511)->numify);
	push @bits, (($g >> (9 * ($_ - 1))) & 511)->numify for 1 .. 7;
	return @bits;
}

sub le_bytes
{
	my ($n, $width) = @_;
	my $s = '';
	for (1 .. $width)
	{
		$s .= chr(($n & 255)->numify);
		$n >>= 8;
	}
	return $s;
}

# The filter over the ids (their UTF-8 bytes), as a string of bytes:
#   0..3 "EKBF", 4 version 1, 5 k = 8, 6..7 zero, 8..15 number of keys
#   (little-endian), 16..19 number of 64-byte blocks (little-endian),
#   20..23 zero, then the blocks; 32 bits per key, at least one block;
#   bit i of block b is bit i % 8 of byte 24 + 64 * b + i / 8.
sub filter_bytes
{
	my @ids = @_;
	my $n = scalar(@ids);
	my $nblocks = int(($n * 32 + 511) / 512);
	$nblocks = 1 if $nblocks < 1;
	my @blocks = (0) x (64 * $nblocks);

	for my $id (@ids)
	{
		my $h = id_hash64_int($id);
		my $b = key_block($h, $nblocks);
		$blocks[ 64 * $b + ($_ >> 3) ] |= 1 << ($_ & 7) for key_bits($h);
	}
	return 'EKBF' . chr(1) . chr(8) . "\0\0"
	  . le_bytes(Math::BigInt->new($n), 8)
	  . le_bytes(Math::BigInt->new($nblocks), 4) . "\0\0\0\0"
	  . pack('C*', @blocks);
}

# Whether filter bytes may hold an id: all 8 of its bits are set in its block.
sub filter_contains
{
	my ($f, $id) = @_;
	my $nblocks = unpack('V', substr($f, 16, 4));
	my $h = id_hash64_int($id);
	my $base = 24 + 64 * key_block($h, $nblocks);
	for my $bit (key_bits($h))
	{
		return 0 unless ord(substr($f, $base + ($bit >> 3), 1)) & (1 << ($bit & 7));
	}
	return 1;
}

if (!caller)
{
	print id_hash64($_), "  $_\n" foreach @ARGV;
}

1;
