"""The worked examples in examples/ run as documented and find what they should.

Each runs embedded (a fresh data directory) twice: as a user would (text in, when the built-in
encoder is installed) and with --vectors (bring-your-own vectors); semantic search also runs
against a real server. Their output is checked line by line.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import vectord
from vectord.testing import start_server

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _has_builtin_encoder(tmp_path: Path) -> bool:
    with vectord.Client(path=str(tmp_path / "probe")) as client:
        try:
            return any(m["is_default"] for m in client.list_models())
        except (vectord.FailedPreconditionError, vectord.NotFoundError):
            return False


@pytest.fixture(scope="module")
def encoder_installed(tmp_path_factory) -> bool:
    return _has_builtin_encoder(tmp_path_factory.mktemp("probe"))


def run_example(script: str, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess | str:
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    if not expect_ok:
        return result
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _check_mode(out: str, vectors: bool, encoder_installed: bool) -> None:
    first = out.splitlines()[0]
    if encoder_installed and not vectors:
        assert first.startswith("mode: text, built-in encoder "), first
    else:
        assert first.startswith("mode: bring-your-own vectors"), first


def _query_blocks(out: str) -> list[tuple[str, list[tuple[str, str, int]]]]:
    """(query line, [(id, topic, year), ...]) for each query the script printed."""
    blocks = []
    for block in out.split("\nquery: ")[1:]:
        lines = block.strip().splitlines()
        hits = [re.match(r"\s+\d+\. (\S+)\s+[\d.]+\s+\[(\w+), (\d+)\]", line) for line in lines[1:]]
        blocks.append((lines[0], [(m.group(1), m.group(2), int(m.group(3))) for m in hits if m]))
    return blocks


def _check_semantic_search(out: str) -> None:
    assert "indexed 14 passages" in out
    blocks = _query_blocks(out)
    assert len(blocks) == 5 and all(len(hits) == 3 for _, hits in blocks)
    assert [hits[0][0] for _, hits in blocks[:4]] == ["cook-1", "astro-1", "money-1", "code-1"]
    assert all(topic == "programming" for _, topic, _ in blocks[3][1])  # where={"topic": ...}
    assert all(year >= 2022 and topic != "cooking" for _, topic, year in blocks[4][1])  # $and, $gte, $ne


@pytest.mark.parametrize("vectors", [False, True], ids=["as-installed", "own-vectors"])
def test_semantic_search(tmp_path, vectors, encoder_installed):
    out = run_example("semantic_search.py", "--path", str(tmp_path / "data"), *(["--vectors"] if vectors else []))
    _check_mode(out, vectors, encoder_installed)
    _check_semantic_search(out)


def test_semantic_search_against_a_server(tmp_path):
    server = start_server(tmp_path / "data")
    try:
        out = run_example("semantic_search.py", "--address", server.address)
        _check_semantic_search(out)
    finally:
        assert server.terminate() == 0, server.log()


@pytest.mark.parametrize("vectors", [False, True], ids=["as-installed", "own-vectors"])
def test_knn_classification(tmp_path, vectors, encoder_installed):
    out = run_example("knn_classification.py", "--path", str(tmp_path / "data"), *(["--vectors"] if vectors else []))
    _check_mode(out, vectors, encoder_installed)
    assert "labelled examples: {'sports': 6, 'weather': 6, 'cooking': 6, 'technology': 6}" in out
    predictions = re.findall(r"^(\w+)\s+<- (.+)  \((.+)\)$", out, re.M)
    assert len(predictions) == 8
    correct, total = map(int, re.search(r"^accuracy: (\d+)/(\d+)$", out, re.M).groups())
    assert total == 8 and correct == sum(mark == "ok" for _, _, mark in predictions)
    assert correct >= 7, out


@pytest.mark.parametrize("vectors", [False, True], ids=["as-installed", "own-vectors"])
def test_rag_retrieval(tmp_path, vectors, encoder_installed):
    out = run_example("rag_retrieval.py", "--path", str(tmp_path / "data"), *(["--vectors"] if vectors else []))
    _check_mode(out, vectors, encoder_installed)
    assert "indexed 9 chunks from 3 documents" in out
    sections = out.split("=" * 72)[1:]
    assert len(sections) == 3
    retrieved = [re.search(r"retrieved: (.+)", s).group(1).split(", ") for s in sections]
    # The chunk that holds the answer is in the context of each prompt.
    assert "vacation.md#0" in retrieved[0] and "New employees get 25 vacation days" in sections[0]
    assert {"expenses.md#1", "expenses.md#2"} & set(retrieved[1]) and "150 euros per night" in sections[1]
    assert all(r.startswith("security.md#") for r in retrieved[2])  # where={"source": {"$in": [...]}}
    assert "Report a lost laptop" in sections[2]
    for section, question in zip(sections, ["How many vacation days", "What is the hotel limit", "What should I do"]):
        assert "Context:\n[" in section and f"Question: {question}" in section and section.rstrip().endswith("Answer:")


EXAMPLE_COLLECTIONS = {"semantic_search.py": "example-semantic-search",
                       "knn_classification.py": "example-knn-classification",
                       "rag_retrieval.py": "example-rag-retrieval",
                       "langchain_rag.py": "example-langchain-rag",
                       "llamaindex_rag.py": "example-llamaindex-rag"}
#: The framework each integration example needs (an optional extra).
FRAMEWORKS = {"langchain_rag.py": "langchain_core", "llamaindex_rag.py": "llama_index.core"}


def _example_flags(script: str) -> list[str]:
    """--vectors where the example has it (the integrations use the built-in encoder only)."""
    if script in FRAMEWORKS:
        pytest.importorskip(FRAMEWORKS[script])
        return []
    return ["--vectors"]


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("examples") / "data")
    yield server
    assert server.terminate() == 0, server.log()


@pytest.mark.parametrize("script", sorted(EXAMPLE_COLLECTIONS))
def test_example_leaves_a_same_named_collection_it_did_not_create_alone(shared_server, script):
    """Pointed at a server where someone's collection has the example's name, the example
    stops with a message naming it, and that collection keeps every record."""
    name = EXAMPLE_COLLECTIONS[script]
    with vectord.Client(shared_server.address) as client:
        theirs = client.create_collection(name, dim=2, metadata={"owner": "someone else"})
        theirs.add(ids=["keep-me"], embeddings=[[1, 0]], documents=["not the example's"])
        try:
            result = run_example(script, "--address", shared_server.address, *_example_flags(script),
                                 expect_ok=False)
            assert result.returncode != 0, result.stdout
            assert f"collection {name!r} already exists and was not created by examples/{script}" in result.stderr
            assert "Traceback" not in result.stderr, result.stderr
            kept = client.get_collection(name)
            assert (kept.dim, kept.metadata) == (2, {"owner": "someone else"})
            assert kept.get()["documents"] == ["not the example's"]
        finally:
            client.delete_collection(name)


@pytest.mark.parametrize("script", sorted(EXAMPLE_COLLECTIONS))
def test_example_touches_only_its_own_collection(shared_server, script):
    """Other collections (the old example names included) survive a run; the example's own
    collection, left by an interrupted earlier run, is replaced, and is gone afterwards."""
    name = EXAMPLE_COLLECTIONS[script]
    with vectord.Client(shared_server.address) as client:
        for other in ("passages", "labelled", "handbook"):
            client.create_collection(other, dim=2).add(ids=["x"], embeddings=[[0, 1]])
        client.create_collection(name, dim=2, metadata={"created_by": f"examples/{script}"})  # a stale run's
        try:
            run_example(script, "--address", shared_server.address, *_example_flags(script))
            names = {c.name for c in client.list_collections()}
            assert names == {"passages", "labelled", "handbook"}, names
            assert all(client.get_collection(n).count() == 1 for n in names)
        finally:
            for other in ("passages", "labelled", "handbook"):
                client.delete_collection(other)


def test_example_collection_name_can_be_chosen(shared_server):
    out = run_example("semantic_search.py", "--address", shared_server.address, "--vectors",
                      "--collection", "my-own-try")
    _check_semantic_search(out)
    with vectord.Client(shared_server.address) as client:
        assert client.list_collections() == []
