"""The suite's rounds (benchmarks/suite/rounds.py) alternate the systems, forwards then
backwards, and drop a system that fails without stopping the others; an ingest chunk of a
system that defers work lasts until that work is done (benchmarks/suite/measure.py)."""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.suite import measure, rounds


class _Fake:
    def __init__(self, name: str, calls: list, fail_at: int | None = None) -> None:
        self.name, self.calls, self.fail_at = name, calls, fail_at

    def call(self, op, **params):
        if self.fail_at is not None and params["r"] >= self.fail_at:
            raise RuntimeError("worker died")
        self.calls.append((self.name, params["r"]))
        return {"qps": 100.0 + params["r"], "seconds": 1.0, "queries": 100}


def test_rounds_alternate_the_order_and_drop_a_failed_system():
    calls: list = []
    systems = {"a": _Fake("a", calls), "b": _Fake("b", calls, fail_at=2), "c": _Fake("c", calls)}
    errors: dict = {}
    out = rounds.run_rounds([(n, n, "single", lambda r: {"r": r}) for n in "abc"], 4, systems, errors,
                            lambda line: None, "test")
    assert calls == [("a", 0), ("b", 0), ("c", 0), ("c", 1), ("b", 1), ("a", 1), ("a", 2), ("c", 2), ("c", 3), ("a", 3)]
    assert errors == {"b": "RuntimeError: worker died"}
    assert [r["qps"] for r in out["a"]] == [100.0, 101.0, 102.0, 103.0] and len(out["b"]) == 2
    assert all("load" in r for r in out["a"])


class _Deferring:
    """An adapter whose writes return at once; ``wait_indexed`` (as vectord's adapter has it)
    returns when its deferred work is done, 0.25 s later."""

    def ingest(self, ids, vectors, metadatas):
        self.done_at = time.perf_counter() + 0.25

    def wait_indexed(self):
        time.sleep(max(0.0, self.done_at - time.perf_counter()))


def _session(adapter) -> measure.Session:
    data = np.zeros((10, 4), np.float32)
    return measure.Session(adapter, data, data, np.zeros((10, 1), int), {}, {"batch": 10, "k": 1},
                           [os.getpid()], lambda line: None)


def test_an_ingest_chunk_lasts_until_the_work_it_deferred_is_done(monkeypatch):
    r = _session(_Deferring()).call("ingest", {"start": 0, "end": 10})
    assert r["acked_s"] < 0.1 and r["seconds"] >= 0.25, r
    assert r["records"] == 10 and abs(r["rps"] - 10 / r["seconds"]) < 1e-9

    # a system that says nothing: its processes' CPU decides (measure.wait_idle). Here they
    # work for 0.4 s after the write (a whole core), then go idle: the chunk ends with that work
    class Silent:
        def ingest(self, ids, vectors, metadatas):
            start = time.perf_counter()
            monkeypatch.setattr(measure, "cpu_seconds", lambda pids: min(time.perf_counter() - start, 0.4))

    r = _session(Silent()).call("ingest", {"start": 0, "end": 10})
    # the end of the last window (0.1 s) in which they used more than a fifth of a core
    assert r["acked_s"] < 0.1 and 0.35 <= r["seconds"] < 0.8, r

    monkeypatch.setattr(measure, "cpu_seconds", lambda pids: 1.0)  # idle all along: the acknowledgement
    r = _session(_Idle()).call("ingest", {"start": 0, "end": 10})
    assert r["seconds"] - r["acked_s"] < 0.01, r


class _Idle:
    def ingest(self, ids, vectors, metadatas):
        pass
