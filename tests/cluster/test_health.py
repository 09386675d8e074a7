"""The gateway's health pass (cluster/health.py) on a local Ray, with replicas whose status()
answers, fails or hangs (calls to one threaded actor): hanging replicas cost the pass one timeout
together, not one each; each replica ends in the state its answer calls for."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no telemetry (docs/cluster.md)
ray = pytest.importorskip("ray")

from vectord.cluster.health import answers, sweep  # noqa: E402
from vectord.cluster.shards import IN_SYNC, STALE, Replica  # noqa: E402

pytestmark = pytest.mark.timeout(300)
TIMEOUT_S = 1.0
HANG_S = 20.0


@ray.remote(num_cpus=0, max_concurrency=32)
class Replicas:
    """Answers the status() of every fake replica, each call in its own thread (a real
    replica is an actor of its own, already running: its status() starts at once)."""

    def status(self, delay_s: float, applied: int, fail: bool = False) -> dict:
        time.sleep(delay_s)
        if fail:
            raise RuntimeError("the replica's engine is closed")
        return {"applied": applied, "endpoint": None}


@pytest.fixture(scope="module")
def actors():
    ray.init(num_cpus=1, logging_level="ERROR", log_to_driver=False, object_store_memory=80 * 1024 * 1024)
    shared = Replicas.remote()
    ray.get(shared.status.remote(0.0, 0))  # started
    yield shared
    ray.shutdown()


def replica(actors, name: str, delay_s: float = 0.0, applied: int = 7, fail: bool = False,
            state: str = IN_SYNC) -> Replica:
    handle = SimpleNamespace(status=SimpleNamespace(remote=lambda: actors.status.remote(delay_s, applied, fail)))
    return Replica(shard=0, index=0, node="n", name=name, actor=handle, state=state,
                   reason="" if state == IN_SYNC else "missed a write")


def collection(replicas: list[Replica]) -> SimpleNamespace:
    caught_up = []
    shards = SimpleNamespace(shards=[SimpleNamespace(replicas=replicas)], caught_up=caught_up,
                             catch_up=lambda r, timeout_s: caught_up.append(r.name))
    return SimpleNamespace(shards=shards)


def test_hanging_replicas_cost_one_timeout_together(actors):
    hanging = [replica(actors, f"hang-{i}", delay_s=HANG_S) for i in range(4)]
    healthy = [replica(actors, f"ok-{i}", applied=40 + i) for i in range(2)]
    col = collection(hanging + healthy)
    started = time.monotonic()
    sweep([col], TIMEOUT_S)
    elapsed = time.monotonic() - started
    # one call at a time this pass took 4 timeouts; together it takes one (plus Ray's overhead)
    assert elapsed < 3 * TIMEOUT_S, elapsed
    assert [r.state for r in hanging] == [STALE] * 4
    assert all(r.reason == "not answering: TimeoutError" for r in hanging)
    assert [(r.state, r.applied) for r in healthy] == [(IN_SYNC, 40), (IN_SYNC, 41)]
    assert col.shards.caught_up == []


def test_each_replica_ends_as_its_answer_says(actors):
    failing = replica(actors, "fails", fail=True)
    stale_answers = replica(actors, "stale-answers", state=STALE)
    stale_hangs = replica(actors, "stale-hangs", delay_s=HANG_S, state=STALE)
    gone = replica(actors, "no-actor")
    gone.actor = None
    col = collection([failing, stale_answers, stale_hangs, gone])
    sweep([col], TIMEOUT_S)
    assert (failing.state, failing.reason) == (STALE, "not answering: RayTaskError(RuntimeError)")
    assert col.shards.caught_up == ["stale-answers"]  # only a stale replica that answers
    assert (stale_hangs.state, stale_hangs.reason) == (STALE, "missed a write")  # its reason kept
    assert gone.state == IN_SYNC  # no actor yet (being created): left alone


def test_a_failing_catch_up_is_said(actors):
    stale = replica(actors, "stale", state=STALE)
    col = collection([stale])

    def catch_up(r, timeout_s):
        raise ConnectionError("peer went away")

    col.shards.catch_up = catch_up
    sweep([col], TIMEOUT_S)
    assert (stale.state, stale.reason) == (STALE, "catch-up failed: ConnectionError")


def test_answers_waits_for_all_together(actors):
    refs = {"ok": actors.status.remote(0.0, 3), "fails": actors.status.remote(0.0, 0, True),
            **{("hangs", i): actors.status.remote(HANG_S, 0) for i in range(3)}}
    started = time.monotonic()
    out = answers(refs, TIMEOUT_S)
    assert time.monotonic() - started < 2.5 * TIMEOUT_S  # one timeout, not three
    assert out["ok"] == {"applied": 3, "endpoint": None}
    assert "the replica's engine is closed" in str(out["fails"])
    assert all(isinstance(out[("hangs", i)], TimeoutError) for i in range(3))
    assert answers({}, TIMEOUT_S) == {}
