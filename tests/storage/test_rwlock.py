"""The collection's read/write lock (storage/rwlock.py): who waits for whom, and who wakes them.

The release of a read lock notifies only when a writer waits (the common query has nobody to
wake), so these pin that every waiter is still woken: a writer when the last reader leaves,
readers that queued behind a waiting writer when that writer is done.
"""

from __future__ import annotations

import threading
import time

from vectord.storage.rwlock import RWLock


def _started(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return condition()


def test_a_waiting_writer_is_woken_by_the_last_reader_to_leave():
    lock, events = RWLock(), []
    first, second = lock.read(), lock.read()
    first.__enter__()
    second.__enter__()

    def write():
        with lock.write():
            events.append("wrote")

    writer = _started(write)
    assert _wait_until(lambda: lock._writers_waiting == 1)
    first.__exit__(None, None, None)
    time.sleep(0.05)
    assert events == []  # one reader still holds it
    second.__exit__(None, None, None)
    writer.join(5)
    assert events == ["wrote"]


def test_readers_that_queue_behind_a_waiting_writer_go_after_it():
    lock, events = RWLock(), []
    reading = lock.read()
    reading.__enter__()

    def write():
        with lock.write():
            events.append("writer")
            time.sleep(0.05)

    def read():
        with lock.read():
            events.append("reader")

    writer = _started(write)
    assert _wait_until(lambda: lock._writers_waiting == 1)
    readers = [_started(read) for _ in range(3)]
    assert _wait_until(lambda: lock.readers_waiting == 3)  # writers are preferred: they wait
    reading.__exit__(None, None, None)
    for thread in [writer, *readers]:
        thread.join(5)
    assert events == ["writer", "reader", "reader", "reader"]


def test_many_threads_reading_and_writing_never_overlap_a_writer():
    lock, state = RWLock(), {"readers": 0, "writer": False, "bad": 0}
    guard = threading.Lock()

    def reader():
        for _ in range(300):
            with lock.read():
                with guard:
                    state["readers"] += 1
                    state["bad"] += state["writer"]
                with guard:
                    state["readers"] -= 1

    def writer():
        for _ in range(100):
            with lock.write():
                with guard:
                    state["bad"] += state["readers"] > 0 or state["writer"]
                    state["writer"] = True
                with guard:
                    state["writer"] = False

    threads = [_started(reader) for _ in range(4)] + [_started(writer) for _ in range(2)]
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)  # nobody left waiting, unwoken
    assert state["bad"] == 0
