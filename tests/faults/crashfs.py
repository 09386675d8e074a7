"""A FileSystem that simulates power loss (a test double, not part of the product).

It performs every operation on the real files, so the engine runs normally, and keeps a
model of what stable storage holds:

* file contents as of their last fsync (per file identity, so renames and removals do not
  lose track of them);
* the entries of each directory as of its last ``fsync_dir`` (creations, renames and
  removals not followed by an fsync of their parent directory are undone by a crash).

``crash_at=k`` makes operation number ``k`` (0-based, counting every call through the seam,
nested calls included) raise ``PowerLoss`` before it runs, after freezing the durable
image; every later call raises too. ``image`` then describes the disk as power loss leaves
it, and ``materialise`` writes it out in one of several variants for unsynced file data:

* ``drop``:  unsynced bytes are lost;
* ``torn``:  half of the unsynced bytes survive;
* ``zeros``: the unsynced region reads back as zeros (the file size was persisted, its
  data blocks were not);
* ``full``:  every unsynced byte happened to reach the disk.
"""

from __future__ import annotations

import itertools
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from vectord.storage.fsio import FileSystem

VARIANTS = ("drop", "torn", "zeros", "full")


class PowerLoss(BaseException):
    """Raised by the seam at the crash point. BaseException, so that no ``except
    Exception`` in the engine swallows it (a real power loss is not catchable either)."""


@dataclass
class _Node:
    kind: str  # "file" or "dir"
    synced: bytes | None = None  # file: content at the last fsync (None: never fsynced)
    last: bytes = b""  # file: last content seen (kept after the file is removed)
    entries: dict[str, int] | None = None  # dir: durable entries (name -> node id)


@dataclass
class ImageFile:
    synced: bytes | None
    current: bytes

    def content(self, variant: str) -> bytes:
        base = self.synced or b""
        cur = self.current
        if not cur.startswith(base):
            # rewritten in place without fsync (the engine never does this): keep the synced
            # bytes only, which is what the model promises
            return base
        pending = cur[len(base):]
        if variant == "drop":
            return base
        if variant == "torn":
            return base + pending[: len(pending) // 2]
        if variant == "zeros":
            return base + b"\0" * len(pending)
        return cur


@dataclass
class Image:
    """The durable state at the crash: relative path -> ImageFile, and the directories."""

    files: dict[str, ImageFile] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)

    def unsynced_bytes(self) -> int:
        return sum(len(f.current) - len(f.synced or b"") for f in self.files.values()
                   if f.current.startswith(f.synced or b""))

    def materialise(self, target: Path, variant: str) -> None:
        target.mkdir(parents=True)
        for rel in sorted(self.dirs, key=len):
            (target / rel).mkdir(parents=True, exist_ok=True)
        for rel, image in self.files.items():
            (target / rel).write_bytes(image.content(variant))


class PowerLossFS(FileSystem):
    def __init__(self, root: Path, crash_at: int | None = None) -> None:
        self.root = Path(root).resolve()
        self.crash_at = crash_at
        self.ops = 0
        self.log: list[str] = []
        self.crashed = False
        self.image: Image | None = None
        self._ids = itertools.count()
        self._nodes: dict[int, _Node] = {}
        self._by_ino: dict[int, int] = {}
        self._root_id = self._register_tree(self.root)

    # ---------------------------------------------------------------- the model
    def _new(self, ino: int, node: _Node) -> int:
        node_id = next(self._ids)
        self._nodes[node_id] = node
        self._by_ino[ino] = node_id
        return node_id

    def _register_tree(self, path: Path) -> int:
        """Everything present when the test starts is taken as durable."""
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            node_id = self._new(st.st_ino, _Node("dir", entries={}))
            for child in sorted(path.iterdir()):
                self._nodes[node_id].entries[child.name] = self._register_tree(child)
            return node_id
        data = path.read_bytes()
        return self._new(st.st_ino, _Node("file", synced=data, last=data))

    def _id_of(self, path: Path, fresh: bool = False) -> int:
        st = os.stat(path)
        node_id = None if fresh else self._by_ino.get(st.st_ino)
        if node_id is None:
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
            node_id = self._new(st.st_ino, _Node(kind, entries={} if kind == "dir" else None))
        return node_id

    def _refresh(self, path: Path) -> None:
        """Remembers the current content of files about to disappear from the real tree."""
        if path.is_dir():
            for child in path.rglob("*"):
                if child.is_file():
                    self._nodes[self._id_of(child)].last = child.read_bytes()
        elif path.is_file():
            self._nodes[self._id_of(path)].last = path.read_bytes()

    def _freeze(self) -> Image:
        # current content of every file still in the real tree
        for path in self.root.rglob("*"):
            if path.is_file():
                self._nodes[self._id_of(path)].last = path.read_bytes()
        image = Image()

        def walk(node_id: int, rel: str) -> None:
            node = self._nodes[node_id]
            for name, child_id in (node.entries or {}).items():
                child = self._nodes[child_id]
                child_rel = f"{rel}/{name}" if rel else name
                if child.kind == "dir":
                    image.dirs.append(child_rel)
                    walk(child_id, child_rel)
                else:
                    image.files[child_rel] = ImageFile(child.synced, child.last)

        walk(self._root_id, "")
        return image

    def _op(self, name: str, *args) -> None:
        if self.crashed:
            raise PowerLoss(f"after the crash: {name}")
        if self.crash_at is not None and self.ops == self.crash_at:
            self.image = self._freeze()
            self.crashed = True
            raise PowerLoss(f"power lost before op {self.ops} ({name} {args})")
        self.log.append(f"{name} {' '.join(str(a) for a in args)}")
        self.ops += 1

    # ---------------------------------------------------------------- the seam
    def create(self, path: Path):
        self._op("create", path.name)
        handle = super().create(path)
        self._id_of(path, fresh=True)
        return handle

    def finish(self, handle) -> None:
        self._op("finish")
        super().finish(handle)

    def write_file(self, path: Path, data: bytes) -> None:
        self._op("write_file", path.name)
        super().write_file(path, data)

    def fsync_path(self, path: Path) -> None:
        self._op("fsync_path", path.name)
        self._id_of(path, fresh=True)  # written outside the seam (hnswlib): a new file
        super().fsync_path(path)

    def open_log(self, path: Path) -> int:
        self._op("open_log", path.name)
        existed = path.exists()
        fd = super().open_log(path)
        if not existed:
            self._id_of(path, fresh=True)
        return fd

    def append(self, fd: int, data: bytes) -> None:
        self._op("append", len(data))
        super().append(fd, data)

    def truncate(self, fd: int, size: int) -> None:
        self._op("truncate", size)
        super().truncate(fd, size)

    def fsync(self, fd: int) -> None:
        self._op("fsync")
        st = os.fstat(fd)
        super().fsync(fd)
        if stat.S_ISREG(st.st_mode):
            node_id = self._by_ino.get(st.st_ino)
            if node_id is None:
                node_id = self._new(st.st_ino, _Node("file"))
            with open(f"/proc/self/fd/{fd}", "rb") as handle:
                data = handle.read()
            self._nodes[node_id].synced = data
            self._nodes[node_id].last = data

    def close(self, fd: int) -> None:
        # closing releases nothing durable; not a crash point, and allowed after a crash
        os.close(fd)

    def mkdir(self, path: Path) -> None:
        self._op("mkdir", path.name)
        super().mkdir(path)
        self._id_of(path, fresh=True)

    def rename(self, src: Path, dst: Path) -> None:
        self._op("rename", src.name, dst.name)
        self._refresh(dst)
        super().rename(src, dst)

    def fsync_dir(self, path: Path) -> None:
        self._op("fsync_dir", path.name)
        super().fsync_dir(path)
        node = self._nodes[self._id_of(path)]
        node.entries = {child.name: self._id_of(child) for child in sorted(Path(path).iterdir())}

    def remove_tree(self, path: Path) -> None:
        self._op("remove_tree", path.name)
        self._refresh(path)
        super().remove_tree(path)

    def remove(self, path: Path) -> None:
        self._op("remove", path.name)
        self._refresh(path)
        super().remove(path)
