/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of every record.
 *
 * Polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value and final xor
 * 0xFFFFFFFF, as in iSCSI, ext4 and SSE4.2's crc32 instruction.  Uses the
 * CPU instruction where it exists (x86-64 SSE4.2, ARMv8 CRC), a
 * slicing-by-8 table otherwise.  Chaining works: crc32c(crc32c(0, a), b)
 * equals the CRC of a followed by b.
 */
#ifndef CH_CRC32C_H
#define CH_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

uint32_t ch_crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable implementation, exposed so tests can compare both paths. */
uint32_t ch_crc32c_portable(uint32_t crc, const void *buf, size_t len);

/*
 * For loops over many small records (framing a batch, verifying a
 * segment): ch_crc32c_hw() is asked once per batch, and the _fast
 * functions below then checksum a record inline, without a call per
 * record.  With hw false, or on other CPUs, they call ch_crc32c.
 * The x86 crc32 instruction is issued through inline asm, so that it can
 * sit in ordinary (non-SSE4.2) code behind the run-time check.
 */
int ch_crc32c_hw(void);

#define CH_CRC32C_INLINE_MAX 512	/* longer buffers: the 3-stream code */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CH_CRC32C_ASM 1
static inline uint64_t
ch_crc32c_u64_(uint64_t c, uint64_t w)
{
	__asm__("crc32q %1, %0" : "+r"(c) : "rm"(w));
	return c;
}

static inline uint32_t
ch_crc32c_u32_(uint32_t c, uint32_t w)
{
	__asm__("crc32l %1, %0" : "+r"(c) : "rm"(w));
	return c;
}

static inline uint32_t
ch_crc32c_u8_(uint32_t c, uint8_t b)
{
	__asm__("crc32b %1, %0" : "+r"(c) : "rm"(b));
	return c;
}
#endif

/* CRC of len bytes at p chained onto crc (like ch_crc32c). */
static inline uint32_t
ch_crc32c_fast(uint32_t crc, const void *p, size_t len, int hw)
{
#ifdef CH_CRC32C_ASM
	if (hw && len <= CH_CRC32C_INLINE_MAX) {
		const unsigned char *s = p;
		uint64_t c = ~crc;
		for (; len >= 8; s += 8, len -= 8) {
			uint64_t w;
			memcpy(&w, s, 8);
			c = ch_crc32c_u64_(c, w);
		}
		uint32_t c32 = (uint32_t)c;
		if (len >= 4) {
			uint32_t w;
			memcpy(&w, s, 4);
			c32 = ch_crc32c_u32_(c32, w);
			s += 4;
			len -= 4;
		}
		while (len--)
			c32 = ch_crc32c_u8_(c32, *s++);
		return ~c32;
	}
#endif
	(void)hw;
	return ch_crc32c(crc, p, len);
}

/* Copy len bytes from src to dst (not overlapping) and return their CRC
 * chained onto crc: one pass, each word checksummed on its way through. */
static inline uint32_t
ch_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len, int hw)
{
#ifdef CH_CRC32C_ASM
	if (hw && len <= CH_CRC32C_INLINE_MAX) {
		const unsigned char *s = src;
		unsigned char *d = dst;
		uint64_t c = ~crc;
		for (; len >= 8; s += 8, d += 8, len -= 8) {
			uint64_t w;
			memcpy(&w, s, 8);
			memcpy(d, &w, 8);
			c = ch_crc32c_u64_(c, w);
		}
		uint32_t c32 = (uint32_t)c;
		while (len--) {
			*d++ = *s;
			c32 = ch_crc32c_u8_(c32, *s++);
		}
		return ~c32;
	}
#endif
	if (len)	/* src may be NULL for an empty record */
		memcpy(dst, src, len);
	return ch_crc32c_fast(crc, dst, len, hw);
}

#endif
