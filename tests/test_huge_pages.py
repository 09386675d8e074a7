"""`vectord serve` runs with glibc's huge-page tunable (server/huge_pages.py).

Real servers: the process that answers is the one started (same pid), its environment names
the tunable, a user's own GLIBC_TUNABLES is kept, the opt-out works, and the large blocks
(hnswlib's graph and vectors) are marked for huge pages (``hg`` in /proc/PID/smaps).
(/proc/PID/environ shows only the first tunable of several: glibc rewrites the string in
place as it parses it, so a user's own tunables are checked from inside the process.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vectord
from vectord.server import huge_pages
from vectord.testing import start_server

SUPPORTED = huge_pages.wanted({k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"})
needs_support = pytest.mark.skipif(not SUPPORTED, reason="needs Linux, glibc >= 2.35 and THP not 'never'")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _huge_page_marked_bytes(pid: int, min_bytes: int = 4 << 20) -> int:
    """Bytes of the mappings of at least ``min_bytes`` that asked for huge pages (``hg``)."""
    total = size = 0
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            start, end = line.split()[0].split("-")
            size = int(end, 16) - int(start, 16)
        elif line.startswith("VmFlags:") and " hg" in line and size >= min_bytes:
            total += size
    return total


def _load(address: str) -> None:
    """A collection whose graph block (20k x 50-d, ~7 MB) is past glibc's mmap threshold."""
    rows = np.random.default_rng(0).standard_normal((20_000, 50)).astype(np.float32)
    with vectord.Client(address) as client:
        col = client.create_collection("big", dim=50)
        for start in range(0, len(rows), 5_000):
            col.add(ids=[str(i) for i in range(start, start + 5_000)], embeddings=rows[start:start + 5_000])


def test_the_tunable_is_added_to_what_is_there_and_named_only_once():
    assert huge_pages.tunables_with_huge_pages("") == "glibc.malloc.hugetlb=1"
    assert huge_pages.tunables_with_huge_pages("glibc.malloc.arena_max=2") == \
        "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert not huge_pages.wanted({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})  # the user's choice wins


@needs_support
def test_the_server_runs_with_huge_pages_under_its_graph_and_the_setting_turns_them_off(tmp_path):
    with_pages = start_server(tmp_path / "on")
    without = start_server(tmp_path / "off", env={"VECTORD_HUGE_PAGES": "0"})
    try:
        # the pid started is the pid that answers: the re-run replaced the process in place
        assert "glibc.malloc.hugetlb=1" in _environ(with_pages.proc.pid)["GLIBC_TUNABLES"]
        assert "GLIBC_TUNABLES" not in _environ(without.proc.pid)
        _load(with_pages.address)
        _load(without.address)
        on, off = _huge_page_marked_bytes(with_pages.proc.pid), _huge_page_marked_bytes(without.proc.pid)
        assert on >= off + (4 << 20), (on, off)
    finally:
        with_pages.terminate()
        without.terminate()


@needs_support
def test_the_flag_turns_them_off_too(tmp_path):
    server = start_server(tmp_path / "d", "--no-huge-pages")
    try:
        assert "GLIBC_TUNABLES" not in _environ(server.proc.pid)
    finally:
        assert server.terminate() == 0


@needs_support
def test_a_config_file_that_says_no_is_obeyed_and_the_users_tunables_come_back_as_they_were(tmp_path):
    # the early re-run (before the settings are read) cannot know the file: settle() undoes it
    config = tmp_path / "vectord.toml"
    config.write_text("huge_pages = false\n")
    server = start_server(tmp_path / "d", "--config", str(config), env={"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    try:
        environ = _environ(server.proc.pid)
        assert environ["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"
        assert huge_pages.BEFORE not in environ
        with vectord.Client(server.address) as client:
            assert client.list_collections() == []
    finally:
        assert server.terminate() == 0


@needs_support
def test_the_flag_wins_over_the_variable(tmp_path):
    server = start_server(tmp_path / "d", "--huge-pages", env={"VECTORD_HUGE_PAGES": "0"})
    try:
        assert "glibc.malloc.hugetlb=1" in _environ(server.proc.pid)["GLIBC_TUNABLES"]
    finally:
        assert server.terminate() == 0


@needs_support
def test_a_users_own_tunables_are_kept_and_the_process_runs_again_once():
    code = ("import os; from vectord.server import huge_pages; "
            "print(os.getpid(), os.environ['GLIBC_TUNABLES'], flush=True); huge_pages.reexec_with_huge_pages()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert done.returncode == 0, done.stderr
    first, second = [line.split() for line in done.stdout.splitlines()]  # two runs, no more
    assert first[0] == second[0]  # the same process
    assert first[1] == "glibc.malloc.arena_max=2"
    assert second[1] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"


@needs_support
def test_a_server_with_tunables_of_its_own_still_gets_huge_pages(tmp_path):
    server = start_server(tmp_path / "d", env={"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    try:
        _load(server.address)
        assert _huge_page_marked_bytes(server.proc.pid) >= 4 << 20
    finally:
        assert server.terminate() == 0


@needs_support
def test_the_console_script_runs_itself_again_too(tmp_path):
    script = Path(sys.executable).parent / "vectord"
    if not script.exists():
        pytest.skip("the vectord console script is not installed next to this python")
    proc = subprocess.Popen([str(script), "serve", "--data-dir", str(tmp_path / "d"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("vectord listening on "), line
        assert "glibc.malloc.hugetlb=1" in _environ(proc.pid)["GLIBC_TUNABLES"]
        with vectord.Client(line.rsplit(" ", 1)[1].strip()) as client:
            assert client.list_collections() == []
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
