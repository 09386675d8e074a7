"""The docs hold together: links resolve, the README links every doc, code samples run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import vectord

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", ROOT / "examples" / "README.md", ROOT / "examples" / "node" / "README.md", *DOCS]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http(s):, mailto:
        if not (page.parent / target).exists():
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_readme_links_every_doc():
    section = (ROOT / "README.md").read_text().split("## Documentation", 1)[1].split("\n## ", 1)[0]
    for doc in DOCS:
        assert f"(docs/{doc.name})" in section, f"README's Documentation section does not link docs/{doc.name}"
    assert "(examples/)" in section


def test_migration_guide_vectord_sample_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "docs" / "migrating-from-chroma.md").read_text()
    sample = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if block.startswith("# vectord"))
    monkeypatch.chdir(tmp_path)
    with vectord.Client(path=str(tmp_path / "probe")) as probe:
        try:
            installed = any(m["is_default"] for m in probe.list_models())
        except (vectord.FailedPreconditionError, vectord.NotFoundError):
            installed = False
    if not installed:
        # Without the built-in encoder, a collection without dim says why it cannot be made.
        with pytest.raises(vectord.FailedPreconditionError, match="encoder"):
            exec(sample, {})
        return
    exec(sample, {})
    assert "[['a']]" in capsys.readouterr().out


def test_migration_guide_filters_behave_as_described(tmp_path):
    """$ne / $nin match records without the field; $exists restores Chroma's behaviour;
    several keys in one dict are ANDed."""
    with vectord.Client(path=str(tmp_path / "data")) as client:
        books = client.create_collection("books", dim=2)
        books.add(ids=["dune", "gone", "plain"], embeddings=[[1, 0], [0, 1], [1, 1]],
                  metadatas=[{"genre": "scifi", "year": 1965}, {"genre": "thriller", "year": 2012}, None])
        assert books.get(where={"genre": {"$ne": "scifi"}})["ids"] == ["gone", "plain"]
        assert books.get(where={"genre": {"$nin": ["scifi"]}})["ids"] == ["gone", "plain"]
        assert books.get(where={"$and": [{"genre": {"$exists": True}}, {"genre": {"$ne": "scifi"}}]})["ids"] == ["gone"]
        assert books.get(where={"genre": "scifi", "year": 1965})["ids"] == ["dune"]
        assert books.get(where={"genre": "scifi", "year": 2012})["ids"] == []
        with pytest.raises(vectord.AlreadyExistsError):
            books.add(ids=["dune"], embeddings=[[1, 0]])
        with pytest.raises(vectord.NotFoundError):
            books.update(ids=["nope"], embeddings=[[1, 0]])
        with pytest.raises(vectord.InvalidArgumentError, match="no encoder"):
            books.query(query_texts=["x"])
        assert books.delete(ids=["plain", "missing"]) == 1


#: A log line in the server's text format: "2026-11-29 16:25:47,104 INFO vectord: ...".
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")


def _log_shape(line: str) -> str:
    """A log line without what differs from run to run: the time, ids, digests, paths, numbers."""
    line = line.split(" ", 2)[2]  # drop the date and time
    line = re.sub(r"\b[0-9a-f]{32}\b", "<id>", line)  # collection directory ids
    line = re.sub(r"\b[0-9a-f]{12}\.\.\.", "<sha256>...", line)
    line = re.sub(r"(?<![\w.])/[^\s)]*", "<path>", line)
    return re.sub(r"\d+(?:\.\d+)*", "<n>", line)  # counts, seconds, versions, addresses


def test_service_guide_sample_logs_are_what_the_server_prints(tmp_path):
    """docs/running-as-a-service.md's sample log lines (start-up and stop) are the lines a
    real server prints in that situation: a restart on a data directory holding one
    collection, 'docs', then SIGTERM; same messages, ignoring times, paths and numbers."""
    import numpy as np

    from serverproc import start_server

    text = (ROOT / "docs" / "running-as-a-service.md").read_text()
    documented = [_log_shape(line) for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)
                  for line in block.splitlines() if LOG_LINE.match(line)]
    server = start_server(tmp_path / "data")
    with vectord.Client(server.address) as client:
        client.create_collection("docs", dim=8).add(ids=[str(i) for i in range(20)],
                                                    embeddings=np.random.default_rng(0).random((20, 8)))
    assert server.terminate() == 0
    server = start_server(tmp_path / "data")  # the start the guide shows: with a collection to recover
    assert server.terminate() == 0
    log = server.log()
    if "built-in encoder unavailable" in log:
        pytest.skip("the built-in encoder is not installed here; the guide shows a start with it")
    printed = [_log_shape(line) for line in log.splitlines() if LOG_LINE.match(line)]
    assert sorted(documented) == sorted(printed), (
        "docs/running-as-a-service.md's sample log differs from the server's; copy a real run's lines in.\n"
        f"only in the guide: {sorted(set(documented) - set(printed))}\n"
        f"only in the log: {sorted(set(printed) - set(documented))}")
