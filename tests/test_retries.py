"""The SDK retries idempotent calls on UNAVAILABLE with backoff, and never retries the others."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import vectord
from vectord.client import transport
from vectord.testing import start_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_idempotent_calls_wait_for_a_server_that_comes_back(tmp_path, monkeypatch):
    # 1 + 2 + 4 + 8 s: room for a slow start on a loaded 2-core machine (7.5 s was not always)
    monkeypatch.setattr(transport, "BACKOFF_S", 1.0)
    port = _free_port()
    started = {}

    def start_later():
        time.sleep(0.3)
        started["server"] = start_server(tmp_path / "d", "--port", str(port))

    thread = threading.Thread(target=start_later)
    thread.start()
    try:
        with vectord.Client(f"127.0.0.1:{port}", timeout=5) as client:
            assert client.list_collections() == []  # failed with UNAVAILABLE first, then retried
    finally:
        thread.join()
        started["server"].terminate()


def test_non_idempotent_calls_are_not_retried(monkeypatch):
    calls = []
    real = transport.error_from_rpc

    def counting(exc, *args):  # error_from_rpc(exc, address): the address names the server in the message
        calls.append(exc)
        return real(exc, *args)

    monkeypatch.setattr(transport, "error_from_rpc", counting)
    with vectord.Client(f"127.0.0.1:{_free_port()}", timeout=2) as client:
        with pytest.raises(vectord.UnavailableError) as err:
            client.create_collection("x", dim=3)
        assert err.value.retryable and len(calls) == 1
        calls.clear()
        monkeypatch.setattr(transport, "BACKOFF_S", 0.01)
        with pytest.raises(vectord.UnavailableError):
            client.list_collections()
        assert len(calls) == transport.RETRIES + 1
