"""The suite's rounds (benchmarks/suite/rounds.py) alternate the systems, forwards then
backwards, and drop a system that fails without stopping the others; an ingest chunk of a
system that defers work lasts until that work is done (benchmarks/suite/measure.py)."""

from __future__ import annotations

import os
import threading
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
    """An adapter whose writes return at once and whose work goes on in a thread for 0.4 s."""

    def __init__(self) -> None:
        self.thread = None

    def ingest(self, ids, vectors, metadatas):
        def burn():
            end = time.perf_counter() + 0.4
            while time.perf_counter() < end:
                pass
        self.thread = threading.Thread(target=burn)
        self.thread.start()


def test_an_ingest_chunk_lasts_until_the_work_it_deferred_is_done():
    data = np.zeros((10, 4), np.float32)
    session = measure.Session(_Deferring(), data, data, np.zeros((10, 1), int), {}, {"batch": 10, "k": 1},
                              [os.getpid()], lambda line: None)
    r = session.call("ingest", {"start": 0, "end": 10})
    session.adapter.thread.join()
    assert r["acked_s"] < 0.1 and r["seconds"] >= 0.3, r
    assert r["records"] == 10 and abs(r["rps"] - 10 / r["seconds"]) < 1e-9
