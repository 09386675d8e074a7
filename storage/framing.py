"""Checksummed framing of msgpack records, used by the log and the manifest.

A frame is ``[u32 length][u32 crc32c(payload)][payload]`` (little-endian). A reader can
tell a torn tail (a frame cut short by a crash, or the zero bytes a file system may leave
after one) from damage in the middle of a file (a bad frame followed by more data).

``FrameReader`` reads a file one frame at a time, so that recovery holds one record's
bytes, not the whole log (which can be half the size of the collection).
"""

from __future__ import annotations

import io
import struct
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator

import google_crc32c
import msgpack
import numpy as np

from vectord.errors import DataLossError

_HEADER = struct.Struct("<II")
HEADER_SIZE = _HEADER.size
#: No single frame may claim more than this; a larger length is damage, not data.
MAX_FRAME_BYTES = 1 << 31
#: How much of the file the search for a valid frame after a bad one reads at a time.
_SEARCH_CHUNK = 1 << 20


_local = threading.local()


def pack(obj: Any) -> bytes:
    """``msgpack.packb(obj, use_bin_type=True)``, on this thread's own ``Packer``: packb
    builds a new Packer every call, ~0.3 us of a small map's ~0.5 (every record of a
    write is packed on its own, storage/records.py). A Packer is not thread-safe, hence
    one per thread; it resets itself after each call, a failed one included."""
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(obj)


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


class FrameReader:
    """Iterates over the frames of a file, one record in memory at a time.

    After the iteration ends, ``valid_end`` is the offset just past the last whole, valid
    frame and ``torn`` says whether bytes after it are a torn tail that may be cut off.
    Iterating raises ``DataLossError`` when a damaged frame is followed by a valid one
    (damage in the middle, not a torn tail); records yielded before that were valid, but
    the caller must not trust the file as a whole.
    """

    def __init__(self, handle: BinaryIO, size: int, what: str) -> None:
        self._handle, self._size, self._what = handle, size, what
        self.valid_end = 0
        self.torn = False

    def __iter__(self) -> Iterator[Any]:
        handle, size, what = self._handle, self._size, self._what
        handle.seek(0)
        offset = 0
        while offset < size:
            header = handle.read(HEADER_SIZE) if size - offset >= HEADER_SIZE else b""
            payload = None
            if len(header) == HEADER_SIZE:
                length, crc = _HEADER.unpack(header)
                if 0 < length <= MAX_FRAME_BYTES and offset + HEADER_SIZE + length <= size:
                    payload = handle.read(length)
                    if len(payload) != length or google_crc32c.value(payload) != crc:
                        payload = None
            if payload is None:
                # A crash can leave the last frame cut short, or zero-filled by the file
                # system. That is a torn tail only if no valid frame follows: a valid frame
                # after a bad one means damage in the middle, and skipping it would lose
                # acknowledged data.
                later = _next_valid_frame(handle, offset + 1, size)
                if later is None:
                    self.torn = True
                    return
                raise DataLossError(
                    f"{what}: damaged frame at byte {offset} of {size}, followed by a valid "
                    f"frame at byte {later}")
            try:
                record = unpack(payload)
            except Exception as exc:  # a payload that passed its CRC yet does not decode
                raise DataLossError(f"{what}: undecodable frame at byte {offset}: {exc}") from exc
            del payload  # only the decoded record stays alive while the caller applies it
            offset += HEADER_SIZE + length
            self.valid_end = offset
            yield record


def scan_frames(data: bytes, what: str) -> FrameScan:
    """Decodes consecutive frames from ``data`` (a small file read whole: a manifest).

    Raises:
        DataLossError: a damaged frame is followed by more data (not a torn tail).
    """
    reader = FrameReader(io.BytesIO(data), len(data), what)
    records = list(reader)
    return FrameScan(records, reader.valid_end, reader.torn)


def _next_valid_frame(handle: BinaryIO, start: int, size: int) -> int | None:
    """Offset of the first whole, valid frame at or after ``start``, or None.

    Every payload is a msgpack map of fewer than 16 keys, so its first byte is 0x80-0x8f;
    numpy finds those candidates and their plausible lengths a chunk of the file at a time,
    and only they are checksummed.
    """
    pos = start
    while size - pos > HEADER_SIZE:
        handle.seek(pos)
        window = handle.read(_SEARCH_CHUNK + HEADER_SIZE)
        limit = len(window) - HEADER_SIZE  # candidates whose payload starts in the window
        if limit <= 0:
            return None
        raw = np.frombuffer(window, np.uint8)
        rel = np.flatnonzero((raw[HEADER_SIZE:HEADER_SIZE + limit] & 0xF0) == 0x80)
        if len(rel):
            lengths = np.zeros(len(rel), np.uint64)
            for k in range(4):  # little-endian u32 at each candidate
                lengths |= raw[rel + k].astype(np.uint64) << np.uint64(8 * k)
            plausible = (lengths > 0) & (rel + pos + HEADER_SIZE + lengths <= size)
            for offset, length in zip(rel[plausible].tolist(), lengths[plausible].tolist()):
                crc = _HEADER.unpack_from(window, offset)[1]
                if _crc_at(handle, window, pos, offset + HEADER_SIZE, length) == crc:
                    return pos + offset
        pos += limit
    return None


def _crc_at(handle: BinaryIO, window: bytes, window_pos: int, start: int, length: int) -> int:
    """CRC32C of ``length`` bytes at ``start`` in ``window`` (which begins at file offset
    ``window_pos``), reading past the window from the file in bounded pieces."""
    if start + length <= len(window):
        return google_crc32c.value(window[start:start + length])
    handle.seek(window_pos + start)
    crc, left = 0, length
    while left:
        piece = handle.read(min(left, _SEARCH_CHUNK))
        if not piece:
            return -1  # the file ended: not a whole frame
        crc = google_crc32c.extend(crc, piece)
        left -= len(piece)
    return crc


def decode_single(data: bytes, what: str) -> Any:
    """Decodes a file that must hold exactly one whole frame (a manifest)."""
    scan = scan_frames(data, what)
    if len(scan.records) != 1 or scan.torn or scan.valid_end != len(data):
        raise DataLossError(f"{what}: expected one whole checksummed record, file is damaged")
    return scan.records[0]
