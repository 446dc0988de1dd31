"""Raw zip archives with many entries, built directly (zipfile takes seconds for 230,000)."""

from __future__ import annotations

import struct
import zlib


def many_entry_zip(count: int, *, first: tuple[str, bytes] | None = None, declare: int | None = None) -> bytes:
    """A stored (uncompressed) zip of ``count`` empty entries, optionally led by
    one real file; ``declare`` writes a different entry count into the end
    records (a lying archive). Zip64 end records when the count needs them."""
    members = ([first] if first else []) + [(f"{index:x}", b"") for index in range(count - (1 if first else 0))]
    local, central = bytearray(), bytearray()
    for name, content in members:
        encoded, crc = name.encode(), zlib.crc32(content)
        offset = len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(content), len(content), len(encoded), 0)
        local += encoded + content
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc, len(content), len(content),
                               len(encoded), 0, 0, 0, 0, 0, offset) + encoded  # fmt: skip
    listed = count if declare is None else declare
    tail = bytearray()
    directory_offset = len(local)
    if listed > 0xFFFE:
        zip64_at = len(local) + len(central)
        tail += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, listed, listed, len(central), directory_offset)
        tail += struct.pack("<4sLQL", b"PK\x06\x07", 0, zip64_at, 1)
        tail += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(central), directory_offset, 0)
    else:
        tail += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, listed, listed, len(central), directory_offset, 0)
    return bytes(local + central + tail)
