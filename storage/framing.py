"""Checksummed framing of msgpack records, used by the log and the manifest.

A frame is ``[u32 length][u32 crc32c(payload)][payload]`` (little-endian). A reader can
tell a torn tail (a frame cut short by a crash, or the zero bytes a file system may leave
after one) from damage in the middle of a file (a bad frame followed by more data).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import google_crc32c
import msgpack
import numpy as np

from vectord.errors import DataLossError

_HEADER = struct.Struct("<II")
HEADER_SIZE = _HEADER.size
#: No single frame may claim more than this; a larger length is damage, not data.
MAX_FRAME_BYTES = 1 << 31


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=True)


def encode_frame(obj: Any) -> bytes:
    """msgpack-encodes ``obj`` and frames it with its length and CRC32C."""
    payload = pack(obj)
    return _HEADER.pack(len(payload), google_crc32c.value(payload)) + payload


@dataclass
class FrameScan:
    """The result of reading a sequence of frames."""

    records: list[Any]
    #: Offset just past the last whole, valid frame.
    valid_end: int
    #: True when bytes after ``valid_end`` are a torn tail that may be cut off.
    torn: bool


def scan_frames(data: bytes, what: str) -> FrameScan:
    """Decodes consecutive frames from ``data``.

    Raises:
        DataLossError: a damaged frame is followed by more data (not a torn tail).
    """
    records: list[Any] = []
    offset, size = 0, len(data)
    while offset < size:
        if size - offset < HEADER_SIZE:
            return FrameScan(records, offset, torn=True)
        length, crc = _HEADER.unpack_from(data, offset)
        start, end = offset + HEADER_SIZE, offset + HEADER_SIZE + length
        if length == 0 or length > MAX_FRAME_BYTES or end > size \
                or google_crc32c.value(data[start:end]) != crc:
            # A crash can leave the last frame cut short, or zero-filled by the file system.
            # That is a torn tail only if no valid frame follows: a valid frame after a bad
            # one means damage in the middle, and skipping it would lose acknowledged data.
            later = _next_valid_frame(data, offset + 1)
            if later is None:
                return FrameScan(records, offset, torn=True)
            raise DataLossError(
                f"{what}: damaged frame at byte {offset} of {size}, followed by a valid frame "
                f"at byte {later}")
        payload = data[start:end]
        try:
            records.append(unpack(payload))
        except Exception as exc:  # a payload that passed its CRC yet does not decode
            raise DataLossError(f"{what}: undecodable frame at byte {offset}: {exc}") from exc
        offset = end
    return FrameScan(records, offset, torn=False)


def _next_valid_frame(data: bytes, start: int) -> int | None:
    """Offset of the first whole, valid frame at or after ``start``, or None.

    Every payload is a msgpack map of fewer than 16 keys, so its first byte is 0x80-0x8f;
    numpy finds those candidates and their plausible lengths at once, and only they are
    checksummed.
    """
    size = len(data)
    if size - start <= HEADER_SIZE:
        return None
    raw = np.frombuffer(data, np.uint8)
    first_payload = raw[start + HEADER_SIZE:]
    offsets = np.flatnonzero((first_payload & 0xF0) == 0x80) + start
    if not len(offsets):
        return None
    lengths = np.zeros(len(offsets), np.uint64)
    for k in range(4):  # little-endian u32 at each candidate
        lengths |= raw[offsets + k].astype(np.uint64) << np.uint64(8 * k)
    plausible = (lengths > 0) & (offsets + HEADER_SIZE + lengths <= size)
    for offset, length in zip(offsets[plausible].tolist(), lengths[plausible].tolist()):
        crc = _HEADER.unpack_from(data, offset)[1]
        if google_crc32c.value(data[offset + HEADER_SIZE:offset + HEADER_SIZE + length]) == crc:
            return offset
    return None


def decode_single(data: bytes, what: str) -> Any:
    """Decodes a file that must hold exactly one whole frame (a manifest)."""
    scan = scan_frames(data, what)
    if len(scan.records) != 1 or scan.torn or scan.valid_end != len(data):
        raise DataLossError(f"{what}: expected one whole checksummed record, file is damaged")
    return scan.records[0]
