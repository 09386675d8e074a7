"""Single queries from many threads sent as batches (client/coalesce.py): each thread gets the
answer to its own query, a bad query fails alone, a queued query keeps its deadline, and a real
server answers batched queries exactly as it answers them one by one."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import vectord
from vectord.client import coalesce
from vectord.client.coalesce import QueryCoalescer
from vectord.errors import DeadlineExceededError, InvalidArgumentError
from vectord.testing import start_server
from vectord.v1 import records_pb2 as rpb

DIM = 4


def _request(value: float, n_results: int = 3, collection: str = "c") -> rpb.QueryRequest:
    request = rpb.QueryRequest(collection=collection, n_results=n_results)
    request.queries.dim, request.queries.count = DIM, 1
    request.queries.data_f32le = np.full(DIM, value, "<f4").tobytes()
    return request


class FakeServer:
    """Answers each vector with an id naming its first component; slow, so that calls pile up.
    A vector of NaN is refused (INVALID_ARGUMENT), as the server refuses it, whole batch and all."""

    def __init__(self, delay_s: float = 0.005) -> None:
        self.delay_s, self.batches, self.lock = delay_s, [], threading.Lock()

    def send(self, request: rpb.QueryRequest, timeout_s):
        vectors = np.frombuffer(request.queries.data_f32le, "<f4").reshape(request.queries.count, DIM)
        with self.lock:
            self.batches.append(len(vectors))
        time.sleep(self.delay_s)
        if np.isnan(vectors).any():
            raise InvalidArgumentError("query_embeddings: NaN")
        return rpb.QueryResponse(results=[rpb.QueryResult(ids=[f"{v[0]:g}:{request.n_results}"]) for v in vectors])


def _run_threads(target, count: int) -> list[BaseException]:
    failures: list[BaseException] = []

    def run(i):
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def test_each_thread_gets_its_own_answer_and_queries_are_batched():
    server = FakeServer()
    coalescer = QueryCoalescer(server.send)

    def worker(i):
        for j in range(20):
            value = i * 100 + j
            assert list(coalescer.query(_request(value), 5).results[0].ids) == [f"{value:g}:3"]

    assert _run_threads(worker, 8) == []
    assert max(server.batches) > 1  # queries that queued up went together
    assert sum(server.batches) == 160  # and every query went exactly once


def test_a_single_thread_never_waits_for_a_batch():
    server = FakeServer(delay_s=0)
    coalescer = QueryCoalescer(server.send)
    for i in range(50):
        coalescer.query(_request(i), 5)
    assert server.batches == [1] * 50


def test_only_identical_queries_are_joined():
    server = FakeServer()
    coalescer = QueryCoalescer(server.send)

    def worker(i):
        for j in range(10):  # half the threads ask for 3 results, half for 7
            n = 3 if i % 2 else 7
            assert list(coalescer.query(_request(i * 100 + j, n_results=n), 5).results[0].ids) == \
                [f"{i * 100 + j:g}:{n}"]

    assert _run_threads(worker, 8) == []


def test_a_bad_query_in_a_batch_fails_alone():
    server = FakeServer(delay_s=0.02)
    coalescer = QueryCoalescer(server.send)
    errors: dict[int, str] = {}

    def worker(i):
        try:
            answer = coalescer.query(_request(float("nan") if i == 5 else i), 5)
            assert list(answer.results[0].ids) == [f"{i:g}:3"]
        except InvalidArgumentError as exc:
            errors[i] = str(exc)

    assert _run_threads(worker, 8) == []
    assert errors == {5: "query_embeddings: NaN"}
    assert max(server.batches) > 1  # the bad vector did go in a batch, then alone


def test_a_queued_query_keeps_its_deadline(monkeypatch):
    monkeypatch.setattr(coalesce, "MAX_IN_FLIGHT", 1)
    release = threading.Event()

    def send(request, timeout_s):
        release.wait(5)
        return rpb.QueryResponse(results=[rpb.QueryResult(ids=["x"])] * request.queries.count)

    coalescer = QueryCoalescer(send)
    first = threading.Thread(target=coalescer.query, args=(_request(1), 5))
    first.start()
    time.sleep(0.05)  # the first query is out; the next one queues
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        coalescer.query(_request(2), 0.1)
    assert time.monotonic() - started < 1
    release.set()
    first.join()
    assert list(coalescer.query(_request(3), 5).results[0].ids) == ["x"]  # nothing left queued


def test_a_real_server_answers_batched_queries_as_single_ones(tmp_path):
    proc = start_server(tmp_path / "d")
    try:
        rng = np.random.default_rng(3)
        with vectord.Client(proc.address) as client, vectord.Client(proc.address) as plain:
            plain._transport.coalesce_queries = False
            col = client.create_collection("docs", dim=16)
            col.add(ids=[f"r{i}" for i in range(2000)], embeddings=rng.random((2000, 16)),
                    metadatas=[{"bucket": i % 10} for i in range(2000)])
            queries = rng.random((200, 16))
            where = {"bucket": {"$lt": 3}}
            expected = {(i, w is None): plain.get_collection("docs").query(
                query_embeddings=queries[i:i + 1], n_results=5, where=w, include=["distances", "metadatas"])
                for i in range(len(queries)) for w in (None, where)}
            sizes: list[int] = []
            send = client._transport._coalescer._send

            def counting(request, timeout_s):
                sizes.append(request.queries.count)
                return send(request, timeout_s)

            client._transport._coalescer._send = counting

            def worker(t):
                for i in range(t, len(queries), 8):
                    for w in (None, where):
                        got = col.query(query_embeddings=queries[i:i + 1], n_results=5, where=w,
                                        include=["distances", "metadatas"])
                        assert got["ids"] == expected[(i, w is None)]["ids"]
                        assert got["metadatas"] == expected[(i, w is None)]["metadatas"]
                        np.testing.assert_allclose(got["distances"], expected[(i, w is None)]["distances"],
                                                   rtol=1e-6, atol=1e-6)

            assert _run_threads(worker, 8) == []
            assert sum(sizes) == 400 and max(sizes) > 1
    finally:
        proc.terminate()
