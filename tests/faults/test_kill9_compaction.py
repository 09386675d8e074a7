"""kill -9 of a real `vectord serve` while it compacts under concurrent writes.

The rounds of tests/test_crash_kill9.py (8 writer threads, SIGKILL after a random delay,
recovery checked against every acknowledged write, recall after recovery), with the
maintenance thread compacting: every other call is Admin.Checkpoint with compact=True,
the rpc of `vectord compact` (whether one finishes before the kill depends on the
machine's speed; the kill may land in any of its steps). Every update leaves a deleted slot, so each compaction has
slots to drop and builds a new graph beside the old one (storage/compaction.py) while the
writers go on: the kill lands during builds, swaps and the checkpoints after them.
"""

from __future__ import annotations

import threading

import pytest

import test_crash_kill9 as kill9
import vectord
from vectord.v1 import admin_pb2

COMPACTIONS = [0]  # finished with slots dropped
STARTED = [0]  # compactions asked for (those not finished were cut by a kill or are running)


def run_compactions(client: vectord.Client, killed: threading.Event, stop: threading.Event,
                    errors: list[str], done: list[int]) -> None:
    turn = 0
    while not stop.is_set():
        turn += 1
        try:
            if turn % 2 == 0:  # a plain checkpoint first: a round shorter than a compaction ends one
                STARTED[0] += 1
                reply = client._call("Admin", "Checkpoint",
                                     admin_pb2.CheckpointRequest(collection=kill9.NAME, compact=True))
                done[0] += reply.checkpointed
                COMPACTIONS[0] += reply.compacted_slots > 0
            else:
                done[0] += client.checkpoint(kill9.NAME)
        except Exception as exc:
            if not killed.is_set():
                errors.append(f"checkpoint: {type(exc).__name__}: {exc}")
            return


def test_kill9_during_compactions_under_concurrent_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(kill9, "run_checkpoints", run_compactions)
    kill9.crash_rounds(tmp_path, 4, seed=5, checkpoint_base=kill9.SEALS_BY_DEFAULT)
    assert STARTED[0] >= 1, "no compaction was asked for during a load"
    print(f"{STARTED[0]} compactions started during the loads, {COMPACTIONS[0]} finished")


def test_kill9_during_compactions_of_sealed_segments(tmp_path, monkeypatch):
    """The same on a server that seals every 200 live records: the compactions asked for
    compact the sealed segments that hold deleted records (one at a time, each rewritten
    into a new segment directory), while the writers go on."""
    monkeypatch.setattr(kill9, "run_checkpoints", run_compactions)
    STARTED[0] = 0
    kill9.crash_rounds(tmp_path, 2, seed=7, server_args=("--seal-rows", "200"),
                       checkpoint_base=True)
    assert STARTED[0] >= 1, "no compaction was asked for during a load"


@pytest.mark.slow
def test_kill9_during_compactions_many_rounds(tmp_path, monkeypatch):
    monkeypatch.setattr(kill9, "run_checkpoints", run_compactions)
    kill9.crash_rounds(tmp_path, 16, seed=6, checkpoint_base=kill9.SEALS_BY_DEFAULT)
