/*
 * crc-check - the accelerated CRC-32C against the portable one: for
 * tests/10-format.bats.
 *
 *   crc-check
 *
 * ch_crc32c (the CPU's instructions where they exist: from 1 KiB on,
 * 512-bit carry-less folding where the CPU has it; three streams over
 * each long or short round, then one) and ch_crc32c_fast must agree with
 * the table-driven ch_crc32c_portable on every length from 0 to 20000
 * bytes, at each of 8 alignments, on frame-sized and longer buffers, and
 * when a buffer is checksummed in two pieces chained together.  The
 * check value of "123456789" is 0xE3069283 (iSCSI, RFC 3720).
 *
 * Prints "ok N comparisons" and exits 0, or prints the first mismatch
 * and exits 1.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "crc32c.h"

static unsigned long comparisons;

static void
agree(const char *what, uint32_t got, uint32_t want, size_t len, size_t off)
{
	comparisons++;
	if (got == want)
		return;
	printf("%s: length %zu at offset %zu: %08x, portable %08x\n", what,
	    len, off, (unsigned)got, (unsigned)want);
	exit(1);
}

int
main(void)
{
	const size_t max = (1u << 20) + 64;
	unsigned char *buf = malloc(max);
	uint64_t x = 0x9E3779B97F4A7C15u;

	if (!buf)
		return 1;
	for (size_t i = 0; i < max; i++) {	/* xorshift: any bytes */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	agree("check value", ch_crc32c(0, "123456789", 9), 0xE3069283u, 9, 0);
	agree("portable check value", ch_crc32c_portable(0, "123456789", 9),
	    0xE3069283u, 9, 0);
	int hw = ch_crc32c_hw();
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len <= 20000; len++) {
			uint32_t want = ch_crc32c_portable(7, buf + off, len);
			agree("ch_crc32c", ch_crc32c(7, buf + off, len), want,
			    len, off);
			agree("ch_crc32c_fast", ch_crc32c_fast(7, buf + off, len,
			    hw), want, len, off);
		}
	static const size_t longer[] = { 3071, 3072, 3073, 3840, 65416, 65536,
	    100003, 262144, 1u << 20 };
	for (size_t i = 0; i < sizeof longer / sizeof *longer; i++)
		for (size_t off = 0; off < 64; off += 9) {
			size_t len = longer[i];
			uint32_t want = ch_crc32c_portable(0, buf + off, len);
			agree("ch_crc32c", ch_crc32c(0, buf + off, len), want,
			    len, off);
			for (size_t cut = 1; cut < len; cut = cut * 3 + 5)
				agree("chained", ch_crc32c(ch_crc32c(0, buf + off,
				    cut), buf + off + cut, len - cut), want, len,
				    cut);
		}
	printf("ok %lu comparisons\n", comparisons);
	free(buf);
	return 0;
}
