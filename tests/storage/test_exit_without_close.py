"""A program that writes and exits without closing its database (issue: abort at exit).

Before the fix, a script that added vectors to an embedded database and simply ended died
with SIGABRT ("terminate called without an active exception"): the interpreter killed the
background indexer thread inside hnswlib's add_items, whose worker std::threads were still
joinable. Databases still open at interpreter exit are now closed by an atexit hook, so the
script exits 0, and what it wrote is there, with its graph saved, when it reopens.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

from vectord.storage import Database

N, DIM = 30_000, 32

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from vectord.storage import Database
    db = Database(sys.argv[1])
    docs = db.create_collection("docs", dim={dim}, metric="l2")
    rows = np.random.default_rng(0).standard_normal(({n}, {dim})).astype(np.float32)
    for start in range(0, {n}, 5_000):
        docs.add([str(i) for i in range(start, start + 5_000)], rows[start:start + 5_000])
    print("written", flush=True)
    # no db.close(): the program just ends, with the indexer still at work
""")


def test_a_program_that_ends_without_close_exits_cleanly_and_keeps_its_writes(tmp_path):
    data = tmp_path / "data"
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(n=N, dim=DIM), str(data)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "written" in done.stdout
    assert "terminate called" not in done.stderr
    with Database(data) as db:
        docs = db.get_collection("docs")
        assert docs.count() == N
        rows = np.random.default_rng(0).standard_normal((N, DIM)).astype(np.float32)
        hit = docs.query(rows[1234:1235], n_results=1)
        assert hit[0].ids == ["1234"]


def test_an_in_memory_database_left_open_at_exit_does_not_abort_the_program():
    script = SCRIPT.format(n=N, dim=DIM).replace("Database(sys.argv[1])", "Database(None)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "written" in done.stdout


def test_a_database_closed_by_the_program_is_not_closed_again_at_exit(tmp_path):
    script = textwrap.dedent("""
        import sys
        from vectord.storage import Database
        db = Database(sys.argv[1])
        db.create_collection("docs", dim=2).add(["a"], [[1.0, 0.0]])
        db.close()
        print("closed", flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "closed"


def test_a_forked_child_that_exits_leaves_its_parents_database_alone(tmp_path):
    script = textwrap.dedent("""
        import os, subprocess, sys
        from vectord.storage import Database
        db = Database(sys.argv[1])
        docs = db.create_collection("docs", dim=2)
        docs.add(["a"], [[1.0, 0.0]])
        collections = os.path.join(sys.argv[1], "collections")
        manifest = lambda: open(os.path.join(collections, os.listdir(collections)[0], "MANIFEST"), "rb").read()
        before = manifest()
        child = os.fork()
        if child == 0:
            sys.exit(0)  # a normal exit: atexit hooks run in the child
        os.waitpid(child, 0)
        # the child neither checkpointed nor let go of the directory's lock (flock is shared across fork)
        opener = "import sys; from vectord.storage import Database; Database(sys.argv[1])"
        other = subprocess.run([sys.executable, "-c", opener, sys.argv[1]], capture_output=True, text=True)
        print(manifest() == before, "DataDirectoryLockedError" in other.stderr, flush=True)
        docs.add(["b"], [[0.0, 1.0]])
        db.close()
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"]
    with Database(tmp_path / "data") as db:
        assert db.get_collection("docs").count() == 2
