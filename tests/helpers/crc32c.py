"""CRC-32C (Castagnoli), as channel(5) uses it: for test helpers that
doctor files by hand and must make their checksums match again.
common_setup puts this directory on PYTHONPATH."""


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
