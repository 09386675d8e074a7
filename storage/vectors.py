"""A collection's original vectors, by label: the checkpoint's file mapped read-only, plus
the vectors written since in memory.

Why a map and not an array in memory: the HNSW graph keeps its own copy of every vector for
search (normalised, for cosine), so holding the originals in anonymous memory as well would
double a large collection's footprint. The originals are read only to return embeddings,
for exact search over few candidates, to compare an update with the stored vector and for
compaction; the page cache keeps the hot pages and the kernel may drop cold ones, as
Qdrant's on-disk vector storage does.

The mapped file never changes under the map: labels below ``base_slots`` are never
rewritten (an update gives the record a new label), a checkpoint writes a new generation's
file and maps it with ``rebase``, and an old file stays readable while mapped after its
generation is removed.

Squared norms (for cosine and l2 exact search) are kept in memory, 4 bytes a slot, so that
a search never has to read every mapped page.

The maps' resident pages are bounded, all maps of the process together
(``RESIDENT_BUDGET_BYTES``, one ``ResidentBudget``): once reads through them have touched
more than that since the last release, the pages of every map read meanwhile are released
with ``madvise(MADV_DONTNEED)``. The data stays in the kernel's page cache, so the next read
of a released page is a minor fault, not a disk read; but a server that has returned every
embedding once does not carry a second copy of its vectors in its own resident memory
(1M x 384: 1.5 GiB, as much as the graph's copy; benchmarks/memory_steady.py). The budget is
one for all maps, not one per map, because a collection holds a map per sealed segment and
a server may hold many collections: a budget per map let a 1M x 384 collection ingested in
segments keep 230 MiB of its maps resident. While every map of the process together is
smaller than the budget nothing is released, so small collections never fault again.

Not thread-safe: the collection's read/write lock guards it.
"""

from __future__ import annotations

import mmap
import threading
import weakref
from pathlib import Path

import numpy as np

#: Bytes read at a time when a file's norms are computed.
_READ_BLOCK_BYTES = 4 << 20
#: Bytes the originals' map may have made resident before its pages are released.
RESIDENT_BUDGET_BYTES = 32 << 20
#: What one read of a mapped row can make resident: Linux maps the pages around a faulting
#: one that are already cached (fault_around_bytes, 64 KiB by default): 10,000 random rows
#: of 1M x 384 made 660 MiB of the map resident, not 15 MB.
_FAULT_AROUND_BYTES = 64 << 10


def _sqnorms(rows: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", rows, rows, dtype=np.float32)


def read_sqnorms(path: Path, dim: int, digest=None) -> np.ndarray:
    """Every row's squared norm of a float32 (n, ``dim``) .npy file, with plain reads block by
    block, so that no page of a map of it is made resident (empty if its rows are not ``dim``
    wide). ``digest`` (a hashlib object), when given, is fed every byte of the file on the
    way: opening a collection checks the file's sha256 in the same pass (at 1M x 384 two
    separate passes cost ~2 s each)."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, _ = read_header(handle)
        header = handle.tell()
        if digest is not None:
            handle.seek(0)
            digest.update(handle.read(header))
        rows = shape[0] if len(shape) == 2 and shape[1] == dim else 0
        sqnorms = np.zeros(rows, np.float32)
        row_bytes, done = dim * 4, 0
        while chunk := handle.read(max(1, _READ_BLOCK_BYTES // row_bytes) * row_bytes):
            if digest is not None:
                digest.update(chunk)
            whole = min(len(chunk) // row_bytes, rows - done)
            if whole > 0:
                block = np.frombuffer(chunk, np.float32, whole * dim).reshape(whole, dim)
                sqnorms[done:done + whole] = _sqnorms(block)
                done += whole
    return sqnorms


class ResidentBudget:
    """How much the originals' maps of several stores may have made resident, together,
    before the pages of those read meanwhile are released (``VectorStore.release``).

    Thread-safe: stores of different collections charge it from their own readers. A
    store may be released by another's read; that is safe (a released page faults in
    again), and it is why a release never happens under this lock's callers' locks."""

    def __init__(self, limit_bytes: int | None = None) -> None:
        self._limit = limit_bytes  # None: RESIDENT_BUDGET_BYTES, read when charged
        self._lock = threading.Lock()
        self._touched = 0
        self._mapped: weakref.WeakSet[VectorStore] = weakref.WeakSet()  # every store with a map
        self._read: weakref.WeakSet[VectorStore] = weakref.WeakSet()  # read since the last release

    @property
    def limit_bytes(self) -> int:
        return RESIDENT_BUDGET_BYTES if self._limit is None else self._limit

    def track(self, store: "VectorStore") -> None:
        """Counts ``store``'s map among the process's (see ``charge``)."""
        with self._lock:
            self._mapped.add(store)

    def charge(self, store: "VectorStore", nbytes: int) -> None:
        """Counts ``nbytes`` that a read through ``store``'s map may have made resident;
        past the limit, releases every store read since the last release, unless all maps
        together fit in the limit."""
        limit = self.limit_bytes
        with self._lock:
            self._read.add(store)
            self._touched += nbytes
            if self._touched <= limit:
                return
            self._touched = 0
            if sum(s.base_bytes for s in self._mapped) <= limit:
                return
            stores, self._read = list(self._read), weakref.WeakSet()
        for read in stores:
            read.release()


#: The budget every store of this process charges (tests give a store its own).
PROCESS_BUDGET = ResidentBudget()


class VectorStore:
    def __init__(self, dim: int, budget: ResidentBudget | None = None) -> None:
        self.dim = dim
        self._base = np.empty((0, dim), np.float32)
        self._tail = np.zeros((16, dim), np.float32)
        self._tail_n = 0
        self._sqnorms = np.zeros(16, np.float32)
        self._budget = PROCESS_BUDGET if budget is None else budget

    # ------------------------------------------------------------------ building
    @classmethod
    def mapped(cls, path: Path, dim: int, sqnorms: np.ndarray | None = None,
               budget: ResidentBudget | None = None) -> "VectorStore":
        """Maps a verified vectors.npy read-only; its squared norms are ``sqnorms`` (one per
        row) when the caller has them, as compaction and opening do, else ``read_sqnorms``.
        ``budget``: what bounds its map's resident pages (default: the process's)."""
        store = cls(dim, budget)
        store._map(path)
        if sqnorms is None:
            sqnorms = read_sqnorms(path, dim)
        if len(sqnorms) != len(store._base):
            raise ValueError(f"{path}: {len(store._base)} vectors but {len(sqnorms)} norms")
        store._sqnorms = np.zeros(max(16, len(store._base)), np.float32)
        store._sqnorms[: len(sqnorms)] = sqnorms
        return store

    @classmethod
    def in_memory(cls, vectors: np.ndarray) -> "VectorStore":
        """A store holding ``vectors`` (labels 0..n-1) in memory, as after compaction."""
        store = cls(vectors.shape[1])
        store.append(vectors)
        return store

    def _map(self, path: Path) -> None:
        base = np.load(path, mmap_mode="r", allow_pickle=False)
        if base.dtype != np.float32 or base.ndim != 2 or base.shape[1] != self.dim:
            raise ValueError(f"{path}: vectors have shape {base.shape} and type {base.dtype}, "
                             f"expected (*, {self.dim}) float32")
        # np.load maps an empty array as a plain array, with no offset
        self._base = base if len(base) else np.empty((0, self.dim), np.float32)
        if len(base):
            self._budget.track(self)

    def rebase(self, path: Path) -> np.ndarray:
        """After a checkpoint wrote exactly this store's vectors to ``path``: map that file
        and drop the in-memory tail (the squared norms do not change). Returns the old
        map, so that the caller unmaps it (by dropping it) outside its lock."""
        slots = self.slots
        old = self._base
        self._map(path)
        if len(self._base) != slots:
            raise ValueError(f"{path}: holds {len(self._base)} vectors, expected {slots}")
        self._tail = np.zeros((16, self.dim), np.float32)
        self._tail_n = 0
        return old

    # ------------------------------------------------------------------ reading
    @property
    def slots(self) -> int:
        return len(self._base) + self._tail_n

    @property
    def filename(self) -> Path | None:
        """The mapped file (None when nothing is mapped)."""
        name = getattr(self._base, "filename", None)
        return Path(name) if name else None

    @property
    def base_slots(self) -> int:
        return len(self._base)

    @property
    def base_bytes(self) -> int:
        """Bytes of the mapped part."""
        return self._base.nbytes

    @property
    def sqnorms(self) -> np.ndarray:
        """Squared norms by label (a view; valid for labels below ``slots``)."""
        return self._sqnorms[: self.slots]

    def row(self, label: int) -> np.ndarray:
        base = len(self._base)
        if label >= base:
            return np.array(self._tail[label - base])
        out = np.array(self._base[label])
        self._charge(1, 1)
        return out

    def take(self, labels: np.ndarray) -> np.ndarray:
        """The vectors of ``labels`` (an int64 array), as a new in-memory array."""
        base = len(self._base)
        labels = np.asarray(labels, np.int64)
        if len(labels) == 0:
            return np.empty((0, self.dim), np.float32)
        # np.take, not fancy indexing: 3-4 x faster on a map and on memory alike (10,000 of
        # 100,000 x 50 rows: 0.15 ms against 0.5 ms; issue 13)
        low, high = int(labels.min()), int(labels.max())
        if low >= base:
            return np.take(self._tail, labels - base, axis=0)
        if high < base:
            out = np.take(self._base, labels, axis=0)
        else:
            out = np.empty((len(labels), self.dim), np.float32)
            in_base = labels < base
            out[in_base] = self._base[labels[in_base]]
            out[~in_base] = self._tail[labels[~in_base] - base]
        # charged after the read, so that a release past the budget also drops what it mapped
        self._charge(len(labels), min(high, base - 1) - low + 1)
        return out

    def blocks(self, labels: np.ndarray, rows: int = 8192):
        """Yields the vectors of ``labels`` (sorted, int64) as in-memory blocks of at most
        ``rows`` rows, in order. The mapped part is read with plain file reads of the span
        each block covers, not through the map, so that a pass over every live vector (a
        compaction) does not make the whole map resident; a sparse span (most of it
        deleted) is gathered through the map instead."""
        base = len(self._base)
        handle = open(self._base.filename, "rb") if base else None
        try:
            for start in range(0, len(labels), rows):
                part = labels[start:start + rows]
                first, last = int(part[0]), int(part[-1])
                if last >= base or handle is None or last - first + 1 > 4 * len(part):
                    yield self.take(part)
                    continue
                row_bytes = self.dim * 4
                handle.seek(self._base.offset + first * row_bytes)
                span = last - first + 1
                data = handle.read(span * row_bytes)
                if len(data) != span * row_bytes:
                    raise OSError(f"{self._base.filename}: shorter than its header says")
                block = np.frombuffer(data, np.float32).reshape(span, self.dim)
                yield block[part - first]
        finally:
            if handle is not None:
                handle.close()

    def all(self) -> np.ndarray:
        """Every slot's vector, in label order (in memory: for small stores and exact
        search over everything)."""
        self._charge(len(self._base), len(self._base))
        if self._tail_n == 0:
            return self._base
        if len(self._base) == 0:
            return self._tail[: self._tail_n]
        return np.concatenate([self._base, self._tail[: self._tail_n]])

    def _charge(self, rows: int, span: int) -> None:
        """Charges the budget with a read of ``rows`` mapped rows lying within ``span``
        consecutive rows: what it may have made resident, a fault-around window a row, at
        most the span."""
        if rows:
            self._budget.charge(self, min(rows * _FAULT_AROUND_BYTES, span * self.dim * 4 + _FAULT_AROUND_BYTES))

    def release(self) -> None:
        """Drops the map's pages from this process's resident memory (they stay in the page
        cache). Safe while other readers use the map, from any thread: a released page
        faults in again."""
        handle = getattr(self._base, "_mmap", None)
        if handle is not None and hasattr(handle, "madvise"):
            try:
                handle.madvise(mmap.MADV_DONTNEED)
            except ValueError:  # unmapped meanwhile (a rebase dropped it): nothing resident
                pass

    # ------------------------------------------------------------------ writing
    def append(self, vectors: np.ndarray) -> int:
        """Adds vectors under the next labels; returns the first new label."""
        start, n = self.slots, len(vectors)
        if self._tail_n + n > len(self._tail):
            grown = np.zeros((max(self._tail_n + n, 2 * len(self._tail)), self.dim), np.float32)
            grown[: self._tail_n] = self._tail[: self._tail_n]
            self._tail = grown
        self._tail[self._tail_n: self._tail_n + n] = vectors
        self._tail_n += n
        if start + n > len(self._sqnorms):
            grown_norms = np.zeros(max(start + n, 2 * len(self._sqnorms)), np.float32)
            grown_norms[:start] = self._sqnorms[:start]
            self._sqnorms = grown_norms
        self._sqnorms[start:start + n] = _sqnorms(np.asarray(vectors, np.float32))
        return start

    def write_npy(self, out) -> None:
        """Writes every slot as one .npy array to the binary writer ``out``. The mapped part
        is copied with plain reads of its file, not through the map."""
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                  "fortran_order": False, "shape": (self.slots, self.dim)}
        np.lib.format.write_array_header_1_0(out, header)
        if len(self._base):
            with open(self._base.filename, "rb") as handle:
                handle.seek(self._base.offset)
                remaining = self._base.nbytes
                while remaining:
                    chunk = handle.read(min(remaining, 1 << 22))
                    if not chunk:
                        raise OSError(f"{self._base.filename}: shorter than its header says")
                    out.write(chunk)
                    remaining -= len(chunk)
        if self._tail_n:
            out.write(memoryview(np.ascontiguousarray(self._tail[: self._tail_n])).cast("B"))
