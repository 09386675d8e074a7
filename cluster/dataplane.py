"""The read path between the gateway and the shard replicas: framed msgpack over TCP.

Ray stays the control plane (placement, restarts, names, writes with their sequence
numbers); reads take this direct path because a Ray actor call costs 1-2 ms of scheduling
on a loaded machine (benchmarks/results/cluster-2026-11-29.md), several times the shard's
own search. Each replica listens on its node's address (port chosen by the OS) and tells
the gateway where through its ``status()``, over Ray, with a random token that every new
connection must present first: the listener then answers only callers that Ray's own
channel has told (the same trust as Ray, no weaker).

Frames are ``[4-byte big-endian length][msgpack]``. Arrays travel as raw float32 bytes
with their shape; a batch's bare hits as the engine's HitColumns (every id's UTF-8 in one
byte string, 0xFF between two: one split in C at the gateway, no string per hit in
msgpack); a filter (``where``, a tree of storage.filters dataclasses) as a pickle, which
the replica unpickles only on a connection that presented the token (replies are msgpack
only: the gateway never unpickles what a socket sends it). A request is ``[method, kwargs]``; a reply is ``["ok", value]`` or
``["error", class name, message]`` for the engine's own errors (raised again at the
gateway as the same class). Any other failure (refused connection, timeout, closed
socket, a bad token) is the replica's failure: the gateway marks it out of sync and asks
another replica, as for a failed Ray call.
"""

from __future__ import annotations

import logging
import pickle
import secrets
import socket
import struct
import threading
import time
from collections import deque
from typing import Any, Callable

import msgpack
import numpy as np

from vectord import errors as vectord_errors
from vectord.errors import VectordError
from vectord.storage import Records
from vectord.storage.types import HitColumns, split_joined

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
#: A frame above this is refused (a broken or foreign peer, not a reply budget): the
#: gateway's own budgets keep real replies far below it.
MAX_FRAME = 1 << 30
#: The methods a replica answers on this path: reads only.
READS = ("query", "get", "count", "ranked")


class ReplicaDown(Exception):
    """The replica did not answer properly: fail over to another one."""


def pack_array(array: np.ndarray | None) -> list | None:
    if array is None:
        return None
    array = np.ascontiguousarray(array, dtype=np.float32)
    return [list(array.shape), array.tobytes()]


def unpack_array(packed: list | None) -> np.ndarray | None:
    if packed is None:
        return None
    shape, data = packed
    return np.frombuffer(data, np.float32).reshape(shape)


def pack_records(records: Records) -> dict[str, Any]:
    return {"ids": records.ids, "embeddings": pack_array(records.embeddings), "documents": records.documents,
            "metadatas": records.metadatas, "distances": pack_array(records.distances),
            "scores": pack_array(records.scores), "groups": records.groups, "next_after": records.next_after}


def unpack_records(packed: dict[str, Any]) -> Records:
    return Records(ids=packed["ids"], embeddings=unpack_array(packed["embeddings"]), documents=packed["documents"],
                   metadatas=packed["metadatas"], distances=unpack_array(packed["distances"]),
                   scores=unpack_array(packed["scores"]), groups=packed["groups"], next_after=packed["next_after"])


def encode(method: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A read's arguments as they travel (the gateway's side)."""
    kwargs = dict(kwargs)
    if kwargs.get("where") is not None:
        kwargs["where"] = pickle.dumps(kwargs["where"], protocol=5)
    if method in ("query", "ranked"):
        kwargs["vectors"] = pack_array(kwargs.get("vectors"))
    return kwargs


def _where(kwargs: dict[str, Any]) -> dict[str, Any]:
    if kwargs.get("where") is not None:
        kwargs["where"] = pickle.loads(kwargs["where"])  # noqa: S301 (a token-checked caller: see above)
    return kwargs


class FlatHits:
    """A shard's ``query`` reply without columns, as it travels: every query's ids in one
    list, their distances in one float32 array, and each query's count. Indexing gives a
    query's ``(ids, distances)`` as the Ray path's list does; cluster/ranked.py merges a
    batch straight from the flat arrays (a reply per query costs the gateway and the
    replica a few microseconds each in Python, milliseconds for a batch of 100)."""

    __slots__ = ("lengths", "ids", "distances", "offsets")

    def __init__(self, lengths: list[int], ids: list[str], distances: np.ndarray) -> None:
        self.lengths, self.ids, self.distances = lengths, ids, distances
        self.offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).tolist()

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, q: int) -> tuple[list[str], np.ndarray]:
        lo, hi = self.offsets[q], self.offsets[q + 1]
        return self.ids[lo:hi], self.distances[lo:hi]

    def __iter__(self):
        return (self[q] for q in range(len(self.lengths)))

    def width(self) -> int | None:
        """The one count of hits every query has, or None when they differ."""
        first = self.lengths[0] if self.lengths else 0
        return first if all(n == first for n in self.lengths) else None


def pack_hits(hits: list) -> Any:
    """A replica's ``query`` result with columns for the wire: per query [ids, distances,
    records] (bare hits travel as ``pack_hit_columns``)."""
    return [[hit[0], pack_array(hit[1]), pack_records(hit[2])] for hit in hits]


def pack_hit_columns(hits: HitColumns) -> dict[str, Any]:
    """Bare hits as the engine's columns (a replica's ``query`` without columns): the ids
    as one byte string (0xFF between two), read back as FlatHits by ``decode``."""
    return {"lengths": hits.counts, "joined": hits.ids_joined, "distances": pack_array(hits.distances)}


def _query(replica, vectors: np.ndarray, columns=None, **kw) -> Any:
    if columns:  # a small k's hits with their documents or metadata: one round (cluster/engine.py)
        return pack_hits(replica.query(vectors, columns=columns, **kw))
    return pack_hit_columns(replica.query_columns(vectors, **kw))


def decode(method: str, value: Any) -> Any:
    """A read's reply as the Ray path returns it (the gateway's side)."""
    if method == "query":
        if isinstance(value, dict):
            distances = unpack_array(value["distances"])
            return FlatHits(value["lengths"], split_joined(value["joined"]),
                            np.empty(0, np.float32) if distances is None else distances)
        return [(hit[0], unpack_array(hit[1]), unpack_records(hit[2])) for hit in value]
    if method == "get":
        return unpack_records(value)
    if method == "ranked":
        return [[ids, unpack_array(scores), unpack_array(dist), near, unpack_array(near_dist)]
                for ids, scores, dist, near, near_dist in value]
    return value


def replica_handlers(replica) -> dict[str, Callable[..., Any]]:
    """The ReadServer's handlers of a ShardReplica: its read methods, in and out of the wire format."""
    return {
        "query": lambda vectors, **kw: _query(replica, unpack_array(vectors), **_where(kw)),
        "get": lambda **kw: pack_records(replica.get(**_where(kw))),
        "count": lambda **kw: replica.count(**_where(kw)),
        "ranked": lambda vectors, **kw: [
            [ids, pack_array(scores), pack_array(dist), near, pack_array(near_dist)]
            for ids, scores, dist, near, near_dist in replica.ranked(vectors=unpack_array(vectors), **_where(kw))],
    }


def frame(obj: Any) -> bytes:
    """``obj`` as one frame: its length, then its msgpack."""
    data = msgpack.packb(obj, use_bin_type=True)
    return _LENGTH.pack(len(data)) + data


def request(method: str, kwargs: dict[str, Any]) -> bytes:
    """A read request's frame (the gateway's side): built once for every shard that is
    asked the same (a query's vectors and filter are the same for all of them)."""
    return frame([method, encode(method, kwargs)])


def _send(sock: socket.socket, obj: Any) -> None:
    sock.sendall(frame(obj))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise ConnectionError("connection closed by the peer")
        got += k
    return bytes(buf)


def _recv(sock: socket.socket) -> Any:
    (length,) = _LENGTH.unpack(_recv_exact(sock, _LENGTH.size))
    if length > MAX_FRAME:
        raise ConnectionError(f"frame of {length} bytes, the limit is {MAX_FRAME}")
    return msgpack.unpackb(_recv_exact(sock, length), raw=False, strict_map_key=False)


# ---------------------------------------------------------------------- the replica's side
class ReadServer:
    """Serves ``handlers`` (method -> callable(**kwargs) returning msgpack-able values) on
    ``host``, one thread per connection (the gateway keeps a few open per replica)."""

    def __init__(self, host: str, handlers: dict[str, Callable[..., Any]]) -> None:
        self.handlers = handlers
        self.token = secrets.token_hex(16)
        self._sock = socket.create_server((host, 0), backlog=64)
        self.address = (host, self._sock.getsockname()[1])
        self._closed = False
        self._conns: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True, name="vectord-read-accept").start()

    def endpoint(self) -> list:
        return [self.address[0], self.address[1], self.token]

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="vectord-read").start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(10.0)  # the token comes first, at once
                if _recv(conn) != self.token:
                    return
                _send(conn, "ok")
                conn.settimeout(None)
                while not self._closed:
                    method, kwargs = _recv(conn)
                    reply = self._call(method, kwargs)
                    try:
                        data = msgpack.packb(reply, use_bin_type=True)
                    except (TypeError, ValueError) as exc:  # a value msgpack cannot carry: said, not hung
                        data = msgpack.packb(["fail", f"reply of {method}: {exc}"[:500]], use_bin_type=True)
                    conn.sendall(_LENGTH.pack(len(data)) + data)
            except (OSError, ConnectionError, ValueError, msgpack.UnpackException):
                return
            finally:
                self._conns.discard(conn)

    def _call(self, method: str, kwargs: dict[str, Any]) -> list:
        handler = self.handlers.get(method)
        if handler is None:
            return ["error", "InternalError", f"unknown read method {method!r}"]
        try:
            return ["ok", handler(**kwargs)]
        except VectordError as exc:
            return ["error", exc.__class__.__name__, exc.message]
        except Exception as exc:  # an engine bug: the gateway fails over, the log says why
            log.exception("read %s failed", method)
            return ["fail", f"{exc.__class__.__name__}: {exc}"[:500]]

    def close(self) -> None:
        """Stops listening and ends every open connection (the engine is closing)."""
        self._closed = True
        for sock in [self._sock, *list(self._conns)]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


# ---------------------------------------------------------------------- the gateway's side
class ReadClient:
    """Connections to one replica's ReadServer, reused across calls (a call takes one from
    the pool, or opens one, and gives it back after a whole reply)."""

    def __init__(self, endpoint: list, connect_timeout_s: float = 2.0) -> None:
        host, port, self.token = endpoint
        self.address = (host, int(port))
        self.connect_timeout_s = connect_timeout_s
        self._idle: deque[socket.socket] = deque()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=self.connect_timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _send(sock, self.token)
        if _recv(sock) != "ok":
            sock.close()
            raise ReplicaDown("the replica refused the token")
        return sock

    def send(self, method: str, kwargs: dict[str, Any]) -> socket.socket:
        """Sends a request (its arguments as ``encode`` gives them); returns the connection
        to ``receive`` its reply on."""
        return self.send_frame(frame([method, kwargs]))

    def send_frame(self, data: bytes) -> socket.socket:
        """Sends a request framed by ``request``; returns the connection to ``receive`` on."""
        try:
            sock = self._idle.popleft()
        except IndexError:
            sock = None
        try:
            if sock is not None:
                try:
                    sock.sendall(data)
                    return sock
                except OSError:  # an idle connection the replica closed (it restarted): a new one
                    sock.close()
            sock = self._connect()
            sock.sendall(data)
            return sock
        except (OSError, ConnectionError) as exc:
            if sock is not None:
                sock.close()
            raise ReplicaDown(f"{exc.__class__.__name__}: {exc}") from None

    def receive(self, sock: socket.socket, deadline: float) -> Any:
        """The reply on ``sock`` by ``deadline`` (time.monotonic()); the engine's errors are
        raised as themselves, anything else as ReplicaDown."""
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            reply = _recv(sock)
        except (OSError, ConnectionError, ValueError, msgpack.UnpackException) as exc:
            sock.close()
            raise ReplicaDown(f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__) from None
        self._idle.append(sock)
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "error":
            cls = getattr(vectord_errors, reply[1], None)
            if isinstance(cls, type) and issubclass(cls, VectordError):
                raise cls(reply[2])
            raise vectord_errors.InternalError(reply[2])
        raise ReplicaDown(reply[1])

    def close(self) -> None:
        while self._idle:
            self._idle.popleft().close()
