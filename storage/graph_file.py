"""Reads a graph saved by hnswlib's ``save_index`` into an index without ``load_index``.

Why: a restart spends most of its time loading graphs (a 250k x 384 collection's open:
0.53 s of 1.4), and hnswlib 0.8's ``load_index`` reads the file through a C++ stream twice,
the first pass only to check its length, element by element. The same bytes can be handed
to hnswlib's own deserialiser, the one behind ``pickle`` (``Index.__setstate__``), which
takes whole arrays: the file is mapped, its level-0 block (vectors, labels and links: nearly
all of it) goes to hnswlib as one view of the map, and only the upper layers'
variable-length lists (about 1 element in M has any) need a walk, done a run of level-0-only
elements at a time by a regular expression. Measured against ``load_index`` on the same
files, alternating (2 cores; benchmarks/graph_load_ab.py): GloVe 100k x 50 (34 MB) 0.06-0.09 s
against 0.12 s; the 15 graphs of a 1M x 384 collection (1.6 GiB) 1.31 s against 1.90 s with
the huge pages the server asks for (server/huge_pages.py), about even without them (both are
then bound by page faults); that collection's restart 6.11 s against 6.72 s, medians of 5
(benchmarks/results/restart-1m-2026-12-03-graph-load.md).

The file format (hnswlib's ``HierarchicalNSW::saveIndex``, unchanged since 0.6): a header of
13 fields, then ``cur_element_count`` level-0 blocks of ``size_data_per_element`` bytes each
([link count: u32][maxM0 neighbour ids: u32]...[vector][label: u64]), then for each element
a u32 byte size followed by that many bytes of its upper layers' lists (a u32 count and
``maxM`` ids each). Nothing on disk changes: ``load_index`` still reads every graph.

Everything read is checked before hnswlib sees it (sizes against the header and the file's
length, link counts against their caps, neighbour ids against the element count): a graph
that passed its checksum may still have been written wrong, and a bad id would crash a
search rather than fail it. An inconsistency raises ``ValueError``, which the callers treat
as they treat ``load_index`` refusing a file: the graph is rebuilt from the stored vectors.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from pathlib import Path

import hnswlib
import numpy as np

#: hnswlib's saveIndex header: offsetLevel0, max_elements, cur_element_count,
#: size_data_per_element, label_offset, offsetData (size_t each), maxlevel (int),
#: enterpoint_node (u32), maxM, maxM0, M (size_t), mult (double), ef_construction (size_t).
HEADER = struct.Struct("<QQQQQQiIQQQdQ")

#: A run of elements without upper layers (15 in 16 of them at M = 16): a zero size each.
_ZERO_WORDS = re.compile(rb"(?:\x00\x00\x00\x00)*")


def load_graph(path: Path, space: str, dim: int, max_elements: int, seed: int) -> hnswlib.Index:
    """The hnswlib index saved at ``path``, with room for ``max_elements`` (at least its count).

    Raises:
        ValueError: the file is not a consistent hnswlib graph of ``dim`` floats.
        MemoryError: hnswlib could not allocate the index.
    """
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size < HEADER.size:
            raise ValueError(f"{path}: {size} bytes, shorter than hnswlib's header ({HEADER.size})")
        # populated at once: the pages are read in one sweep rather than faulted one by one
        mapped = mmap.mmap(file.fileno(), size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                           prot=mmap.PROT_READ)
    try:
        state = _state(memoryview(mapped), size, path, space, dim, max_elements, seed)
        index = hnswlib.Index.__new__(hnswlib.Index)
        index.__setstate__((state,))  # copies every array: nothing refers to the map after it
        del state
    finally:
        try:
            mapped.close()
        except BufferError:  # an array still viewing it (an exception's frame): freed with it
            pass
    return index


def _state(buffer: memoryview, size: int, path: Path, space: str, dim: int, max_elements: int,
           seed: int) -> dict:
    """hnswlib's pickle state (``Index.__getstate__``'s dict) for the file in ``buffer``."""
    (offset_level0, _saved_max, count, per_element, label_offset, data_offset, max_level,
     entry, max_m, max_m0, m, mult, ef_construction) = HEADER.unpack_from(buffer, 0)
    links0 = 4 + 4 * max_m0
    if (offset_level0 != 0 or data_offset != links0 or label_offset != data_offset + 4 * dim
            or per_element != label_offset + 8 or not 0 < m <= max_m <= max_m0 < 1 << 16):
        raise ValueError(f"{path}: the header does not describe a graph of {dim} floats "
                         f"(M {m}, maxM {max_m}, maxM0 {max_m0}, element {per_element} B, data at {data_offset})")
    level0_end = HEADER.size + count * per_element
    if level0_end + 4 * count > size:
        raise ValueError(f"{path}: {size} bytes cannot hold the {count} elements its header counts")
    if count and not 0 <= entry < count:
        raise ValueError(f"{path}: entry point {entry} outside the {count} elements")

    blocks = np.frombuffer(buffer, np.int8, count * per_element, HEADER.size)
    rows = blocks.view(np.uint8).reshape(count, per_element)
    links = rows[:, :links0].view(np.uint32)
    _check_lists(links, max_m0, count, path, "level 0")
    labels = rows[:, label_offset:].view(np.uint64).ravel().copy()

    per_level = 4 + 4 * max_m
    levels, upper = _upper_layers(buffer, level0_end, size, count, per_level, path)
    top = int(levels.max(initial=0))
    if count and top != max_level:
        raise ValueError(f"{path}: the header's top level {max_level} is not its elements' ({top})")
    _check_lists(upper.view(np.uint32).reshape(-1, 1 + max_m), max_m, count, path, "upper levels")

    capacity = max(max_elements, count)
    element_levels = np.zeros(capacity, np.int32)
    element_levels[:count] = levels
    deleted = bool((links[:, 0] >> 16 & 0xFF).any())  # hnswlib's DELETE_MARK byte
    return {
        "ser_version": 1, "space": space, "dim": dim, "index_inited": True, "ep_added": True,
        "normalize": space == "cosine", "num_threads": os.cpu_count() or 1, "seed": seed,
        "offset_level0": 0, "max_elements": capacity, "cur_element_count": count,
        "size_data_per_element": per_element, "label_offset": label_offset, "offset_data": data_offset,
        "max_level": max_level, "enterpoint_node": entry,  # an empty graph's -1s, as saved
        "max_M": max_m, "max_M0": max_m0, "M": m, "mult": mult, "ef_construction": ef_construction,
        "ef": 10, "has_deletions": deleted, "size_links_per_element": per_level,
        "label_lookup_external": labels, "label_lookup_internal": np.arange(count, dtype=np.uint32),
        "element_levels": element_levels, "data_level0": blocks, "link_lists": upper,
    }


def _upper_layers(buffer: memoryview, start: int, size: int, count: int, per_level: int,
                  path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Each element's top level and all upper-layer lists, concatenated in element order
    (the form hnswlib's deserialiser takes), from the size-prefixed records after level 0."""
    levels = np.zeros(count, np.int32)
    starts, lengths = [], []  # of each non-empty record's lists, in bytes from ``start``
    element, at = 0, start
    while True:
        # elements on level 0 only are a zero word each: a run of them is skipped in C
        run = (_ZERO_WORDS.match(buffer, at, min(size, at + 4 * (count - element))).end() - at) // 4
        element, at = element + run, at + 4 * run
        if element == count:
            break
        if at + 4 > size:
            raise ValueError(f"{path}: ends after {element} of {count} elements' upper layers")
        nbytes = int.from_bytes(buffer[at:at + 4], "little")
        if nbytes % per_level or at + 4 + nbytes > size:
            raise ValueError(f"{path}: element {element}'s upper layers, {nbytes} bytes, are not whole "
                             f"lists of {per_level} bytes within the file")
        levels[element] = nbytes // per_level
        starts.append(at + 4 - start)
        lengths.append(nbytes)
        at += 4 + nbytes
        element += 1
    if at != size:
        raise ValueError(f"{path}: {size - at} bytes after the last element's upper layers")
    if not starts:
        return levels, np.zeros(0, np.int8)
    # every word of every list, gathered at once: each run's start repeated over its length
    # (all of it 4-byte aligned: the header, the level-0 blocks and each list are whole words)
    section = np.frombuffer(buffer, np.uint32, (size - start) // 4, start)
    words = np.asarray(lengths, np.int64) // 4
    firsts = np.repeat(np.asarray(starts, np.int64) // 4 - np.cumsum(words) + words, words)
    return levels, section[firsts + np.arange(int(words.sum()))].view(np.int8)


def _check_lists(lists: np.ndarray, cap: int, count: int, path: Path, where: str) -> None:
    """Each row [count, ids...] holds at most ``cap`` ids, each below ``count``."""
    if not len(lists):
        return
    sizes = lists[:, 0] & 0xFFFF
    if int(sizes.max()) > cap:
        raise ValueError(f"{path}: a list on {where} holds {int(sizes.max())} neighbours, over its cap of {cap}")
    outside = lists[:, 1:] >= count
    outside &= np.arange(lists.shape[1] - 1)[None, :] < sizes[:, None]  # only the ids in use
    if outside.any():
        raise ValueError(f"{path}: a neighbour on {where} is outside the {count} elements")
