"""A restored snapshot's MANIFEST and paths are untrusted input: checks before any file is touched.

An uploaded snapshot is bytes from a client, and a MANIFEST's frame checksum (crc32c) is
no protection: anyone can compute one. So before ``restore`` creates, links or copies a
single file, ``check_manifest`` proves that the MANIFEST has the shape this engine writes:
every required key with its type, a config that CreateCollection would accept, a
generation named as ``write_generation`` names them, file names from the fixed set of files
a generation holds, sha256 digests and sizes within the upload limit, and the same of each
sealed segment it lists (storage/segment.py: a directory named as ``Segment.write`` names
them, its files, and its delete bitmap's name, size and digest). Paths are then built
only from those checked names, and ``confined`` resolves each one and refuses any that
would leave its directory (absolute paths, ``..``, separators, symlinks on the way).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import fields
from pathlib import Path
from typing import Any

from vectord import limits
from vectord.errors import InvalidArgumentError, VectordError
from . import layout as disk
from . import framing
from . import validation
from .analyzers import fulltext_config
from .types import CollectionConfig

#: A generation directory, exactly as checkpoint.write_generation names it.
GENERATION = re.compile(r"gen-[0-9]{20}")
#: A sealed segment's directory and its delete bitmap, exactly as storage/segment.py names them.
SEGMENT = re.compile(r"seg-[0-9]{20}-[0-9a-f]{8}")
SEGMENT_DELETES = re.compile(r"(seg-[0-9]{20}-[0-9a-f]{8})\.deletes-[0-9]{20}")
#: Most segments one snapshot may list (a MANIFEST of at most MAX_MANIFEST_BYTES holds a
#: few thousand; a collection's merge policy keeps tens).
MAX_SEGMENTS = 4096
#: The files a generation may hold; the first two are required.
GENERATION_FILES = (disk.VECTORS, disk.RECORDS, disk.INDEX)
REQUIRED_FILES = (disk.VECTORS, disk.RECORDS)
SHA256 = re.compile(r"[0-9a-f]{64}")
MANIFEST_KEYS = ("format", "config", "generation", "applied_seq", "slots", "files", "index")
CONFIG_KEYS = frozenset(f.name for f in fields(CollectionConfig))
CONFIG_REQUIRED = ("id", "name", "dim", "metric", "hnsw")
INDEX_INTS = ("count", "deleted", "dim")
#: np.save's header is 128 bytes (format 1.0); a crafted one may not be much larger.
MAX_NPY_HEADER_BYTES = 4096
#: Largest MANIFEST read into memory (a real one holds a config and a few digests).
MAX_MANIFEST_BYTES = 1 << 20


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    def __init__(self, where: str, error: type[VectordError]) -> None:
        self.where, self.error = where, error

    def fail(self, field: str, value: Any, why: str) -> VectordError:
        return self.error(f"{self.where}: MANIFEST {field} {_show(value)} {why}")

    def int_in(self, field: str, value: Any, low: int, high: int) -> int:
        if not _int(value) or not low <= value <= high:
            raise self.fail(field, value, f"must be an integer in {low}..{high}")
        return value


def check_manifest(manifest: Any, where: str, error: type[VectordError] = InvalidArgumentError,
                   uploaded: bool = True) -> dict[str, Any]:
    """Checks a snapshot's MANIFEST before anything is done with it; returns it.

    ``where`` starts every message (e.g. "snapshot upload"); ``error`` is the class raised:
    InvalidArgumentError for an upload, FailedPreconditionError for a stored snapshot. The
    files of an upload must fit ``limits.MAX_SNAPSHOT_UPLOAD_BYTES``; a stored snapshot, of a
    collection this server held, may be larger.

    Raises:
        ``error``: a key is missing or has the wrong type or value (the message names the
            field and the value).
    """
    c = _Checker(where, error)
    max_bytes = limits.MAX_SNAPSHOT_UPLOAD_BYTES if uploaded else 2**62
    if not isinstance(manifest, dict):
        raise c.fail("", manifest, "is not a map")
    for key in MANIFEST_KEYS:
        if key not in manifest:
            raise c.fail(key, None, "is missing (required)")
    if manifest["format"] != disk.FORMAT_VERSION or not _int(manifest["format"]):
        raise c.fail("format", manifest["format"], f"is not supported (expected {disk.FORMAT_VERSION})")
    _check_config(c, manifest["config"])
    generation, seq = manifest["generation"], manifest["applied_seq"]
    if not isinstance(generation, str) or not GENERATION.fullmatch(generation):
        raise c.fail("generation", generation, "must be a name like 'gen-' and 20 digits")
    c.int_in("applied_seq", seq, 0, 10**20 - 1)
    if generation != f"gen-{seq:020d}":
        raise c.fail("generation", generation, f"does not match applied_seq {seq}")
    dim = manifest["config"]["dim"]
    slots = c.int_in("slots", manifest["slots"], 0, max_bytes // (4 * dim))
    total = _check_files(c, "", manifest["files"], slots, manifest["index"],
                         manifest["config"], max_bytes)
    segments = manifest.get("segments", [])
    if not isinstance(segments, list) or len(segments) > MAX_SEGMENTS:
        raise c.fail("segments", f"{type(segments).__name__} of {len(segments) if isinstance(segments, list) else '?'}",
                     f"must be a list of at most {MAX_SEGMENTS} segments")
    names: set[str] = set()
    for i, entry in enumerate(segments):
        at = f"segments[{i}]"
        if not isinstance(entry, dict):
            raise c.fail(at, entry, "is not a map")
        name = entry.get("name")
        if not isinstance(name, str) or not SEGMENT.fullmatch(name):
            raise c.fail(f"{at}.name", name, "must be a name like 'seg-', 20 digits, '-' and 8 hex digits")
        if name in names:
            raise c.fail(f"{at}.name", name, "is listed twice")
        names.add(name)
        slots = c.int_in(f"{at}.slots", entry.get("slots"), 0, max_bytes // (4 * dim))
        total += _check_files(c, f"{at}.", entry.get("files"), slots, entry.get("index"),
                              manifest["config"], max_bytes)
        deletes = entry.get("deletes")
        if deletes is not None:
            if not isinstance(deletes, dict):
                raise c.fail(f"{at}.deletes", deletes, "is not a map")
            match = SEGMENT_DELETES.fullmatch(deletes.get("file")) if isinstance(deletes.get("file"), str) else None
            if match is None or match.group(1) != name:
                raise c.fail(f"{at}.deletes.file", deletes.get("file"),
                             f"must be '{name}.deletes-' and 20 digits")
            if not isinstance(deletes.get("sha256"), str) or not SHA256.fullmatch(deletes["sha256"]):
                raise c.fail(f"{at}.deletes.sha256", deletes.get("sha256"), "is not a sha256 in hex")
            if deletes.get("size") != (slots + 7) // 8 or not _int(deletes.get("size")):
                raise c.fail(f"{at}.deletes.size", deletes.get("size"),
                             f"is not the size of a bitmap of {slots} slots ({(slots + 7) // 8} bytes)")
    if total > max_bytes:
        raise c.fail("files", f"{total} bytes", f"exceed the limit of {max_bytes} bytes of an uploaded snapshot "
                     "(MAX_SNAPSHOT_UPLOAD_BYTES)")
    return manifest


def _check_files(c: _Checker, prefix: str, files: Any, slots: int, index: Any, config: dict[str, Any],
                 max_bytes: int) -> int:
    """The files of a generation or a segment (``prefix`` names which in messages): names
    from the fixed set, digests, sizes that fit ``slots``, an index that agrees; returns
    their total size."""
    dim = config["dim"]
    if not isinstance(files, dict):
        raise c.fail(f"{prefix}files", files, "is not a map")
    total = 0
    for name, meta in files.items():
        if name not in GENERATION_FILES:
            raise c.fail(f"{prefix}files key", name,
                         f"is not a file of a generation (allowed: {', '.join(GENERATION_FILES)})")
        if not isinstance(meta, dict):
            raise c.fail(f"{prefix}files[{name!r}]", meta, "is not a map")
        if not isinstance(meta.get("sha256"), str) or not SHA256.fullmatch(meta["sha256"]):
            raise c.fail(f"{prefix}files[{name!r}].sha256", meta.get("sha256"), "is not a sha256 in hex")
        total += c.int_in(f"{prefix}files[{name!r}].size", meta.get("size"), 0, max_bytes)
    for name in REQUIRED_FILES:
        if name not in files:
            raise c.fail(f"{prefix}files", sorted(files), f"lacks {name} (required)")
    vectors_size = files[disk.VECTORS]["size"]
    if not slots * dim * 4 < vectors_size <= slots * dim * 4 + MAX_NPY_HEADER_BYTES:
        raise c.fail(f"{prefix}files[{disk.VECTORS!r}].size", vectors_size, f"does not fit {slots} slots of dim {dim}")
    # a record holds at most an id, a document and a metadata map of the write limits
    per_record = limits.MAX_ID_BYTES + limits.MAX_DOCUMENT_BYTES + limits.MAX_METADATA_BYTES + 64
    records_size = files[disk.RECORDS]["size"]
    if records_size > slots * per_record + 1024:
        raise c.fail(f"{prefix}files[{disk.RECORDS!r}].size", records_size, f"is more than {slots} records can hold")
    if (index is None) != (disk.INDEX not in files):
        raise c.fail(f"{prefix}index", index,
                     f"disagrees with files (index.hnsw {'listed' if disk.INDEX in files else 'absent'})")
    if index is not None:
        if not isinstance(index, dict):
            raise c.fail(f"{prefix}index", index, "is not a map")
        for key in INDEX_INTS:
            c.int_in(f"{prefix}index.{key}", index.get(key), 0, 2**63 - 1)
        if index["dim"] != dim or index.get("space") != config["metric"]:
            raise c.fail(f"{prefix}index", index, "was built for another dim or metric than the config's")
    return total


def _check_config(c: _Checker, config: Any) -> None:
    """The config must be one CreateCollection would have accepted."""
    if not isinstance(config, dict):
        raise c.fail("config", config, "is not a map")
    for key in CONFIG_REQUIRED:
        if key not in config:
            raise c.fail(f"config.{key}", None, "is missing (required)")
    unknown = sorted(str(k) for k in set(config) - CONFIG_KEYS)
    if unknown:
        raise c.fail("config", unknown, f"has unknown keys (known: {', '.join(sorted(CONFIG_KEYS))})")
    if not isinstance(config["id"], str):
        raise c.fail("config.id", config["id"], "is not a string")
    try:
        validation.collection_name(config["name"])
        validation.dim(config["dim"])
        validation.metric(config["metric"])
        if not isinstance(config["hnsw"], dict) or validation.hnsw_params(config["hnsw"]) != config["hnsw"]:
            raise InvalidArgumentError(f"hnsw parameters {_show(config['hnsw'])} are incomplete")
        if config.get("metadata") is not None:
            check_metadata(config["metadata"], "config.metadata")
    except InvalidArgumentError as exc:
        raise c.error(f"{c.where}: MANIFEST config is invalid: {exc.message}") from None
    if "created_at_ms" in config and not _int(config["created_at_ms"]):
        raise c.fail("config.created_at_ms", config["created_at_ms"], "is not an integer")
    try:
        fulltext_config(config.get("fulltext"))
    except InvalidArgumentError as exc:
        raise c.fail("config.fulltext", config.get("fulltext"), f"is invalid: {exc.message}") from None
    encoder = config.get("encoder")
    if encoder is not None:
        if not isinstance(encoder, dict) or not isinstance(encoder.get("name"), str) or \
                not isinstance(encoder.get("sha256"), str) or encoder.get("dim") != config["dim"] or \
                not all(isinstance(k, str) and isinstance(v, (str, int)) for k, v in encoder.items()):
            raise c.fail("config.encoder", encoder, "must name a model (name, sha256, dim equal to config.dim)")


def check_metadata(value: Any, path: str) -> None:
    """A stored metadata map: the types and limits a write checks. Dotted keys pass (data
    written before filters refused them must restore as it was stored)."""
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{path}: expected a map, got {type(value).__name__}")
    validation._check_value(value, path, 1)
    size = len(framing.pack(value))
    if size > limits.MAX_METADATA_BYTES:
        raise InvalidArgumentError(f"{path}: {size} bytes encoded, the limit is {limits.MAX_METADATA_BYTES}")


def confined(root: Path, *parts: str, error: type[VectordError] = InvalidArgumentError) -> Path:
    """``root / parts``, refusing any path that would leave ``root``: absolute parts, ``..``,
    separators, NUL, and symlinks (the resolved path must be exactly the joined one)."""
    for part in parts:
        if not isinstance(part, str) or part in ("", ".", "..") or "/" in part or "\\" in part \
                or "\0" in part or os.path.isabs(part):
            raise error(f"path {_show(part)} is not a plain file name (inside {root.name})")
    base = root.resolve()
    path = base.joinpath(*parts)
    if path.resolve() != path:
        raise error(f"path {'/'.join(parts)!r} leaves {root.name} (a symlink on the way)")
    return path


def regular_file(path: Path, what: str, error: type[VectordError]) -> int:
    """The size of ``path``, which must be a regular file and not a symlink."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise error(f"{what} is missing") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{what} is not a regular file")
    return info.st_size
