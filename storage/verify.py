"""Offline verification of a data directory (``vectord verify``), and index repair.

For each collection: the MANIFEST's checksum and format, every checkpoint file against its
sha256 in the MANIFEST, the log's frames (a torn tail is reported, damage in the middle is
not), and a full recovery in memory exactly as the server would do it, without writing
anything. A damaged ``index.hnsw`` is a derived cache: the server rebuilds it in memory at
every start; ``repair=True`` rebuilds it from the stored vectors and writes a new checkpoint
so the next start loads it again.

The directory lock is taken for the whole run, so a running server is never verified (or
repaired) under its feet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from vectord.errors import DataDirectoryLockedError, DataLossError
from . import layout as disk
from . import framing
from .collection import Collection
from .fsio import FileSystem
from .types import Tuning

OK, DAMAGED, INDEX_DAMAGED, INDEX_REBUILT = "OK", "DAMAGED", "INDEX_DAMAGED", "INDEX_REBUILT"


@dataclass
class Report:
    """The verdict on one collection directory."""

    name: str
    directory: str
    status: str
    detail: str = ""
    records: int | None = None

    @property
    def ok(self) -> bool:
        return self.status in (OK, INDEX_REBUILT)

    def line(self) -> str:
        count = "" if self.records is None else f" ({self.records} records)"
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.status:<13} {self.name} [{self.directory}]{count}{detail}"


class _ReadOnlyFS(FileSystem):
    """Lets recovery run without changing a byte: the log is opened read-only and a torn
    tail is left in place (the server cuts it off at its next start)."""

    def open_log(self, path: Path) -> int:
        return os.open(path, os.O_RDONLY)

    def truncate(self, fd: int, size: int) -> None:
        pass

    def _refuse(self, *args, **kwargs):  # pragma: no cover - recovery writes nothing else
        raise PermissionError("vectord verify does not write without --repair")

    create = write_file = append = mkdir = rename = remove_tree = remove = _refuse


def _index_problem(directory: Path, manifest: dict) -> str | None:
    """Why the generation's index.hnsw would not be loaded, or None if it is fine/absent."""
    meta = manifest.get("index")
    if manifest.get("generation") is None or meta is None:
        return None
    try:
        path = disk._verified(directory / manifest["generation"], manifest["files"], disk.INDEX)
    except DataLossError as exc:
        return exc.message
    config = manifest["config"]
    if meta.get("dim") != config["dim"] or meta.get("space") != config["metric"]:
        return f"{path}: built for another dim or metric"
    return None


def _damaged_segment_indexes(directory: Path, manifest: dict) -> dict[str, str]:
    """The sealed segments (by name) whose index.hnsw would not be loaded, and why: each is
    rebuilt in memory at every start, as the generation's (docs/segments.md)."""
    problems = {}
    for entry in manifest.get("segments") or []:
        fake = {"generation": entry["name"], "files": entry["files"], "index": entry.get("index"),
                "config": manifest["config"]}
        problem = _index_problem(directory, fake)
        if problem is not None:
            problems[entry["name"]] = problem
    return problems


def _log_note(directory: Path) -> str:
    path = directory / disk.WAL
    if not path.exists():
        return "log missing"
    with open(path, "rb") as handle:  # one frame at a time: the log can be large
        size = os.fstat(handle.fileno()).st_size
        reader = framing.FrameReader(handle, size, f"log {path}")
        for _ in reader:  # raises DataLossError on damage mid-log
            pass
    if reader.torn:
        return (f"log has a torn tail of {size - reader.valid_end} bytes after byte "
                f"{reader.valid_end} (an unacknowledged write; cut off at the next start)")
    return ""


def verify_collection(directory: Path, tuning: Tuning | None = None, repair: bool = False) -> Report:
    tuning = tuning or Tuning()
    name = directory.name
    try:
        manifest = disk.read_manifest(directory)
        name = manifest["config"]["name"]
        note = _log_note(directory)
        collection = Collection.open(_ReadOnlyFS(), directory, tuning)
        records = collection._live_count()  # the tail's and every sealed segment's
        collection.close(checkpoint=False)
    except DataLossError as exc:
        return Report(name, directory.name, DAMAGED, exc.message)
    except Exception as exc:  # anything else that stops recovery is damage too
        return Report(name, directory.name, DAMAGED, f"recovery fails: {exc!r}")
    # a file that passes its checksum yet hnswlib refuses is damaged too
    tail_problem = _index_problem(directory, manifest) or collection.index_problem
    segments = _damaged_segment_indexes(directory, manifest)
    problem = tail_problem or next(iter(segments.values()), None)
    if problem is None:
        return Report(name, directory.name, OK, note, records)
    if not repair:
        return Report(name, directory.name, INDEX_DAMAGED,
                      f"{problem} (the server rebuilds it in memory at each start; "
                      "`vectord verify --repair` rewrites it)", records)
    collection = Collection.open(FileSystem(), directory, tuning)
    try:
        if tail_problem is not None and collection._index is None:
            collection._build_index()  # the manifest had a graph: rebuild it from the vectors
        for name in segments:  # rewritten alone (a merge of one), with a graph built anew
            collection._maintenance.merge([[s.name for s in collection.sealed].index(name)])
        collection.checkpoint(force=True)
    finally:
        collection.close(checkpoint=False)
    again = verify_collection(directory, tuning, repair=False)
    if again.status != OK:
        return again
    return Report(name, directory.name, INDEX_REBUILT,
                  f"{problem}; rebuilt from the stored vectors in a new checkpoint", records)


def verify(data_dir: str | Path, repair: bool = False, tuning: Tuning | None = None) -> list[Report]:
    """Verifies every collection of ``data_dir`` (holding its lock); see the module doc.

    Raises:
        DataDirectoryLockedError: a server (or another process) owns the directory.
    """
    path = Path(data_dir).resolve()
    root = path / "collections"
    if not root.is_dir():
        raise FileNotFoundError(f"{path} is not a vectord data directory (no collections/)")
    lock = FileLock(str(path / "LOCK"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DataDirectoryLockedError(
            f"data directory {path} is in use by another vectord process; stop it first") from None
    try:
        reports = []
        for entry in sorted(root.iterdir()):
            if not entry.is_dir() or entry.name.startswith((".tmp-", ".trash-")):
                continue  # leftovers of an interrupted create/delete, removed at the next start
            reports.append(verify_collection(entry, tuning, repair))
        return reports
    finally:
        lock.release()
