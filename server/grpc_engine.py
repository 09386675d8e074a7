"""Which I/O engine gRPC runs on in a vectord server process: chosen once, as grpc is imported.

grpcio 1.80 made gRPC's EventEngine the default I/O layer for Python. On an open stream of
small messages (how the SDK sends single queries: server/query_stream.py) it hands each read
and each write to a pool thread: three ``event_engine`` threads wake for every message. The
I/O manager every grpcio before 1.80 used (iomgr) does that work on the thread that polls.
grpcio up to at least 1.85 still has it behind three experiments, read from
``GRPC_EXPERIMENTS`` once, when grpc is imported.

Measured on this project's 2-core machines (benchmarks/grpc_engine_ab.py,
results/grpc-engine-2026-12-01.md): a vectord single query from one SDK thread took 0.84 x
and 0.95 x the time in two runs with the server on iomgr (8 threads and batches of 100,
whose calls are fewer and fuller, ~1 x); a bare bidi-stream echo with an hnswlib search,
both sides on it, 0.78 x and 0.90 x.

So the server processes import grpc through ``import_grpc()``: ``vectord serve``
(server/cli.py) and the cluster's gateway (cluster/cli.py). The SDK does not: it runs in the
user's process, and there iomgr has no fork support (a child of ``multiprocessing``'s fork
hangs in its first call; tests/test_grpc_engine.py), while a server never forks once started.
``import_grpc()`` turns the three experiments off for that import only (the variable is
restored at once, so the processes a server starts inherit nothing), and only where it can
work and nobody chose otherwise:

- grpc is not imported yet (afterwards the choice is made: nothing to do);
- ``GRPC_EXPERIMENTS`` is not set (a user's own value, even empty, is left as it is: that
  is also how to keep gRPC's default engine: ``GRPC_EXPERIMENTS= vectord serve``);
- the installed grpcio is one tested here (``TESTED``): a release that drops the old I/O
  manager would log "Unknown experiment" at every start, so newer ones keep their default
  until measured.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from types import ModuleType

#: The EventEngine experiments that move a connection's reads and writes to pool threads.
POLLING_IO = "-event_engine_client,-event_engine_listener,-event_engine_for_all_other_endpoints"
#: grpcio releases [from, to) where those experiments exist and default on (1.80: the
#: EventEngine made Python's default; 1.85: the newest measured).
TESTED = ((1, 80), (1, 86))


def grpcio_version() -> tuple[int, int] | None:
    """The installed grpcio's (major, minor), read without importing it; None if unknown."""
    try:
        major, minor = metadata.version("grpcio").split(".")[:2]
        return int(major), int(minor)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def tested(version: tuple[int, int] | None) -> bool:
    """Whether a grpcio (major, minor) is one that the engine choice was measured on."""
    return version is not None and TESTED[0] <= version < TESTED[1]


def applies(environ=os.environ, version: tuple[int, int] | None = None) -> bool:
    """Whether ``import_grpc`` would choose the engine in this process now."""
    if "grpc" in sys.modules or "GRPC_EXPERIMENTS" in environ:
        return False
    return tested(version or grpcio_version())


def import_grpc() -> ModuleType:
    """``import grpc``, on the polling I/O manager where ``applies()`` (see the module's doc)."""
    if not applies():
        import grpc

        return grpc
    os.environ["GRPC_EXPERIMENTS"] = POLLING_IO
    try:
        import grpc
    finally:
        del os.environ["GRPC_EXPERIMENTS"]
    return grpc
