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
        if length == 0 or length > MAX_FRAME_BYTES or end > size:
            # Cut short by a crash, or zero-filled by the file system after one: a torn tail
            # only if nothing but zeros (or the frame's own cut-off bytes) follows.
            if end > size or not any(data[offset:]):
                return FrameScan(records, offset, torn=True)
            raise DataLossError(f"{what}: damaged frame header at byte {offset} of {size}")
        payload = data[start:end]
        if google_crc32c.value(payload) != crc:
            if end == size:
                return FrameScan(records, offset, torn=True)
            raise DataLossError(f"{what}: checksum mismatch in frame at byte {offset} of {size}")
        try:
            records.append(unpack(payload))
        except Exception as exc:  # a payload that passed its CRC yet does not decode
            raise DataLossError(f"{what}: undecodable frame at byte {offset}: {exc}") from exc
        offset = end
    return FrameScan(records, offset, torn=False)


def decode_single(data: bytes, what: str) -> Any:
    """Decodes a file that must hold exactly one whole frame (a manifest)."""
    scan = scan_frames(data, what)
    if len(scan.records) != 1 or scan.torn or scan.valid_end != len(data):
        raise DataLossError(f"{what}: expected one whole checksummed record, file is damaged")
    return scan.records[0]
