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

uint32_t ch_crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable implementation, exposed so tests can compare both paths. */
uint32_t ch_crc32c_portable(uint32_t crc, const void *buf, size_t len);

#endif
