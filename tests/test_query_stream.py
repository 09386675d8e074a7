"""Records.QueryStream against a real server: the SDK's queries go over it and answer as Query
does; failures are in-band and keep the stream; the cap, idle cancellation, deadlines, auth and
shutdown keep the guarantees of Query calls (server/query_stream.py, client/transport.py)."""

from __future__ import annotations

import os
import signal
import threading
import time

import grpc
import numpy as np
import pytest

import vectord
from vectord.testing import start_server
from vectord.v1 import records_pb2 as rpb
from vectord.v1 import records_pb2_grpc

DIM = 8


def _fill(client: vectord.Client, n: int = 300) -> vectord.Collection:
    col = client.create_collection("docs", dim=DIM)
    rng = np.random.default_rng(7)
    col.add(ids=[f"r{i}" for i in range(n)], embeddings=rng.random((n, DIM)),
            metadatas=[{"bucket": i % 5} for i in range(n)])
    return col


def _stub(address: str):
    channel = grpc.insecure_channel(address)
    return channel, records_pb2_grpc.RecordsStub(channel)


def _request(i: int = 0, collection: str = "docs", timeout_ms: float = 0) -> rpb.QueryStreamRequest:
    query = rpb.QueryRequest(collection=collection, n_results=3)
    query.queries.dim, query.queries.count = DIM, 1
    query.queries.data_f32le = np.full(DIM, 0.5, "<f4").tobytes()
    return rpb.QueryStreamRequest(request_id=i, timeout_ms=timeout_ms, query=query)


@pytest.fixture()
def server(tmp_path):
    proc = start_server(tmp_path / "d", "--query-stream-idle-s", "0.5", "--max-query-streams", "2")
    yield proc
    proc.terminate()


def test_sdk_queries_answer_as_query_calls_do(server):
    queries = np.random.default_rng(1).random((20, DIM))
    with vectord.Client(server.address) as streaming, vectord.Client(server.address) as calls:
        calls._transport.stream_queries = False
        col = _fill(streaming)
        for where in (None, {"bucket": 3}):
            for q in queries:
                a = col.query(query_embeddings=[q], n_results=5, where=where, include=["distances", "metadatas"])
                b = calls.get_collection("docs").query(query_embeddings=[q], n_results=5, where=where,
                                                       include=["distances", "metadatas"])
                assert a == b
        assert col.query(query_embeddings=queries[:1], explain=True)["plan"]["strategy"] in ("exact", "hnsw")
        assert streaming._transport._local.stream is not None  # the answers came over a stream


def test_a_failed_query_is_answered_in_band_and_the_stream_stays_open(server):
    with vectord.Client(server.address) as client:
        col = _fill(client)
        col.query(query_embeddings=[[0.1] * DIM])
        stream = client._transport._local.stream
        with pytest.raises(vectord.NotFoundError, match="nope"):
            client._call("Records", "Query", rpb.QueryRequest(collection="nope", query_texts=["x"]))
        with pytest.raises(vectord.InvalidArgumentError, match="dim"):
            client._call("Records", "Query", rpb.QueryRequest(collection="docs", queries=_bad_dim_vectors()))
        assert col.query(query_embeddings=[[0.1] * DIM], n_results=2)["ids"][0]
        assert client._transport._local.stream is stream  # the same stream throughout


def _bad_dim_vectors():
    from vectord.v1 import types_pb2
    return types_pb2.Vectors(dim=DIM + 1, count=1, data_f32le=np.zeros(DIM + 1, "<f4").tobytes())


def test_raw_stream_answers_in_order_with_request_ids(server):
    with vectord.Client(server.address) as client:
        _fill(client)
    channel, stub = _stub(server.address)
    with channel:
        answers = list(stub.QueryStream(iter([_request(7), _request(8, collection="nope"), _request(9)])))
    assert [a.request_id for a in answers] == [7, 8, 9]
    assert answers[0].status_code == 0 and len(answers[0].response.results[0].ids) == 3
    assert answers[1].status_code == grpc.StatusCode.NOT_FOUND.value[0] and "nope" in answers[1].status_message
    assert not answers[1].HasField("response")
    assert answers[2].response == answers[0].response


def test_a_message_whose_time_ran_out_fails_deadline_exceeded(server):
    with vectord.Client(server.address) as client:
        _fill(client)
    channel, stub = _stub(server.address)
    with channel:
        (answer,) = stub.QueryStream(iter([_request(timeout_ms=1e-6)]))
    assert answer.status_code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


def test_a_negative_or_nan_time_limit_is_refused_in_band(server):
    with vectord.Client(server.address) as client:
        _fill(client)
    channel, stub = _stub(server.address)
    with channel:
        answers = list(stub.QueryStream(iter([_request(1, timeout_ms=-5), _request(2, timeout_ms=float("nan")),
                                              _request(3)])))
    assert [a.status_code for a in answers[:2]] == [grpc.StatusCode.INVALID_ARGUMENT.value[0]] * 2
    assert "timeout_ms must be >= 0" in answers[0].status_message and "-5" in answers[0].status_message
    assert answers[2].status_code == 0  # and the stream goes on


def test_streams_past_the_cap_are_refused_and_the_sdk_falls_back(server):
    with vectord.Client(server.address) as client:
        _fill(client)
    channel, stub = _stub(server.address)
    with channel:
        held = [_Held(stub) for _ in range(2)]  # the server's cap (--max-query-streams 2)
        third = stub.QueryStream(iter([_request()]))
        with pytest.raises(grpc.RpcError) as refused:
            list(third)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_query_streams 2" in refused.value.details()
        with vectord.Client(server.address) as client:  # no stream to be had: Query calls
            results = [client.get_collection("docs").query(query_embeddings=[[0.2] * DIM], n_results=4)
                       for _ in range(3)]
            assert all(len(r["ids"][0]) == 4 for r in results)
            assert client._transport._local.stream is None
        for h in held:
            h.close()


class _Held:
    """An open stream that has answered one query and waits for more."""

    def __init__(self, stub) -> None:
        import queue
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self.requests.put(_request())
        self.answers = stub.QueryStream(iter(self.requests.get, None))
        assert next(self.answers).status_code == 0

    def close(self) -> None:
        self.requests.put(None)


def test_idle_streams_are_cancelled_and_the_sdk_opens_a_new_one(server):
    channel, stub = _stub(server.address)
    with vectord.Client(server.address) as client, channel:
        col = _fill(client)
        col.query(query_embeddings=[[0.3] * DIM])
        first = client._transport._local.stream
        held = _Held(stub)
        time.sleep(1.5)  # three times --query-stream-idle-s
        with pytest.raises(grpc.RpcError) as ended:
            held.requests.put(_request())
            next(held.answers)
        assert ended.value.code() == grpc.StatusCode.CANCELLED
        assert len(col.query(query_embeddings=[[0.3] * DIM], n_results=2)["ids"][0]) == 2  # answered by a Query call
        assert len(col.query(query_embeddings=[[0.3] * DIM], n_results=2)["ids"][0]) == 2
        assert client._transport._local.stream not in (None, first)  # and a fresh stream after it


def test_many_threads_share_the_server_fairly(server):
    """Eight threads, a cap of two streams: every query answered, none lost to the cap."""
    with vectord.Client(server.address) as client:
        col = _fill(client)
        expected = col.query(query_embeddings=[[0.4] * DIM], n_results=5)["ids"]
        failures: list[BaseException] = []

        def worker():
            try:
                for _ in range(25):
                    assert col.query(query_embeddings=[[0.4] * DIM], n_results=5)["ids"] == expected
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []


def test_a_stalled_server_times_out_the_query(tmp_path):
    proc = start_server(tmp_path / "d")
    try:
        with vectord.Client(proc.address, timeout=30) as client:
            col = _fill(client, 50)
            col.query(query_embeddings=[[0.1] * DIM])  # the stream is open
            os.kill(proc.proc.pid, signal.SIGSTOP)
            try:
                client.timeout = 0.5
                started = time.monotonic()
                with pytest.raises(vectord.DeadlineExceededError):
                    col.query(query_embeddings=[[0.1] * DIM])
                assert time.monotonic() - started < 3  # the deadline, not forever
            finally:
                os.kill(proc.proc.pid, signal.SIGCONT)
                client.timeout = 30  # the resumed server may be slow on a loaded machine
            assert col.query(query_embeddings=[[0.1] * DIM], n_results=1)["ids"][0]
    finally:
        proc.terminate()


def test_keys_apply_to_streams(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("rw:rw-key\nro:ro-key\n")
    keys.chmod(0o600)
    proc = start_server(tmp_path / "d", "--api-keys-file", str(keys))
    try:
        with vectord.Client(proc.address, api_key="rw-key") as writer:
            _fill(writer, 50)
        with vectord.Client(proc.address, api_key="ro-key") as reader:
            assert reader.get_collection("docs").query(query_embeddings=[[0.1] * DIM], n_results=2)["ids"][0]
            assert reader._transport._local.stream is not None
        channel, stub = _stub(proc.address)
        with channel, pytest.raises(grpc.RpcError) as refused:
            list(stub.QueryStream(iter([_request()])))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with vectord.Client(proc.address, api_key="wrong") as stranger, pytest.raises(vectord.UnauthenticatedError):
            stranger._call("Records", "Query", _request().query)
    finally:
        proc.terminate()


def test_undecodable_message_ends_the_stream_invalid_argument(server):
    channel = grpc.insecure_channel(server.address)
    raw = channel.stream_stream("/vectord.v1.Records/QueryStream")
    with channel, pytest.raises(grpc.RpcError) as refused:
        list(raw(iter([b"\xff\xff\xff"])))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf message" in refused.value.details()


def test_an_open_idle_stream_does_not_hold_up_shutdown(tmp_path):
    proc = start_server(tmp_path / "d", "--grace-period-s", "20")
    with vectord.Client(proc.address) as client:
        _fill(client, 50).query(query_embeddings=[[0.1] * DIM])  # a stream open and idle
        started = time.monotonic()
        assert proc.terminate() == 0
        assert time.monotonic() - started < 10  # not the 20 s grace period


def test_a_client_dropped_without_close_ends_its_streams(server):
    import gc
    import weakref

    client = vectord.Client(server.address)
    _fill(client).query(query_embeddings=[[0.1] * DIM])
    transport = weakref.ref(client._transport)
    del client
    gc.collect()
    assert transport() is None  # nothing (the watchdog thread included) keeps the transport alive
    deadline = time.monotonic() + 5
    while any(t.name == "vectord-query-watchdog" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "vectord-query-watchdog" for t in threading.enumerate())
