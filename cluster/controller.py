"""The controller: a detached, named Ray actor that keeps the cluster's routing tables.

It owns a small durable store on its node's disk: one JSON file per collection, written
atomically (temp file, fsync, rename, fsync of the directory), so a table the controller
acknowledged survives a crash of the controller, of the gateway or of the machine. It holds
topology only: records never pass through it (Qdrant keeps Raft for the same role).

The controller is pinned to the node it was first created on (the head node, where
`vectord cluster up` runs); restarted by Ray after a crash, it reads its files again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

NAMESPACE = "vectord"
CONTROLLER_NAME = "vectord-controller"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TableStore:
    """Routing tables as JSON files in ``root/tables`` (plain code: tested without Ray)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.tables = self.root / "tables"
        self.tables.mkdir(parents=True, exist_ok=True)
        for stray in self.tables.glob("*.tmp"):  # a crash between write and rename
            stray.unlink()

    def _path(self, collection_id: str) -> Path:
        if not collection_id.isalnum():  # ids are uuid hex: never a user string in a path
            raise ValueError(f"bad collection id {collection_id!r}")
        return self.tables / f"{collection_id}.json"

    def put(self, table: dict[str, Any]) -> None:
        _write_atomic(self._path(table["config"]["id"]), json.dumps(table, sort_keys=True).encode())

    def delete(self, collection_id: str) -> None:
        path = self._path(collection_id)
        if path.exists():
            path.unlink()
            _fsync_dir(self.tables)

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.tables.glob("*.json"))]

    # cluster snapshots' manifests (cluster/snapshots.py): <root>/snapshots/<name>.json
    def _snapshot_path(self, name: str) -> Path:
        from vectord.storage import validation

        return self.root / "snapshots" / f"{validation.collection_name(name)}.json"  # [A-Za-z0-9._-], no "."

    def put_snapshot(self, manifest: dict[str, Any]) -> None:
        path = self._snapshot_path(manifest["name"])
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps(manifest, sort_keys=True).encode())

    def snapshot(self, name: str) -> dict[str, Any] | None:
        path = self._snapshot_path(name)
        return json.loads(path.read_text()) if path.exists() else None

    def snapshots(self) -> list[dict[str, Any]]:
        folder = self.root / "snapshots"
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []

    def delete_snapshot(self, name: str) -> None:
        path = self._snapshot_path(name)
        if path.exists():
            path.unlink()
            _fsync_dir(path.parent)

    def settings(self) -> dict[str, Any]:
        path = self.root / "cluster.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def put_settings(self, settings: dict[str, Any]) -> None:
        _write_atomic(self.root / "cluster.json", json.dumps(settings, sort_keys=True).encode())


class Controller:
    """The actor's body (wrapped by ``ray.remote`` in ``controller_actor``)."""

    def __init__(self, root: str) -> None:
        self.store = TableStore(root)

    def tables(self) -> list[dict[str, Any]]:
        return self.store.all()

    def put_table(self, table: dict[str, Any]) -> None:
        self.store.put(table)

    def delete_table(self, collection_id: str) -> None:
        self.store.delete(collection_id)

    def settings(self) -> dict[str, Any]:
        return self.store.settings()

    def put_snapshot(self, manifest: dict[str, Any]) -> None:
        self.store.put_snapshot(manifest)

    def snapshot(self, name: str) -> dict[str, Any] | None:
        return self.store.snapshot(name)

    def snapshots(self) -> list[dict[str, Any]]:
        return self.store.snapshots()

    def delete_snapshot(self, name: str) -> None:
        self.store.delete_snapshot(name)

    def put_settings(self, settings: dict[str, Any]) -> None:
        self.store.put_settings(settings)

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()


def controller_actor(root: str | None = None, create: bool = True):
    """The cluster's controller actor: the existing one, or (``create``) a new one on this
    node storing its tables under ``root``."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        return ray.get_actor(CONTROLLER_NAME, namespace=NAMESPACE)
    except ValueError:
        if not create:
            raise
    if root is None:
        raise ValueError("the controller does not exist yet: give the directory for its tables")
    here = ray.get_runtime_context().get_node_id()
    actor = ray.remote(Controller).options(
        name=CONTROLLER_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        num_cpus=0, max_restarts=-1,
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
    return actor.remote(str(root))
