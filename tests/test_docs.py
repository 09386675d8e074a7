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
    collection, 'docs', a write, then SIGTERM (a final checkpoint); same messages, ignoring
    times, ids, paths and numbers."""
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
    with vectord.Client(server.address) as client:
        client.get_collection("docs").add(ids=["new"], embeddings=[[0.5] * 8])  # the stop checkpoints it
    assert server.terminate() == 0
    log = server.log()
    if "built-in encoder unavailable" in log:
        pytest.skip("the built-in encoder is not installed here; the guide shows a start with it")
    printed = [_log_shape(line) for line in log.splitlines() if LOG_LINE.match(line)]
    assert sorted(documented) == sorted(printed), (
        "docs/running-as-a-service.md's sample log differs from the server's; copy a real run's lines in.\n"
        f"only in the guide: {sorted(set(documented) - set(printed))}\n"
        f"only in the log: {sorted(set(printed) - set(documented))}")


# ---------------------------------------------------------------------- README claims vs code
CITED_TEST = re.compile(r"tests/[\w/]+\.py(?:::\w+)?")


def _defined_names(path: Path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_test_exists(page):
    """`tests/x.py` and `tests/x.py::name` in the docs name a real file and a real test."""
    missing = []
    for cited in sorted(set(CITED_TEST.findall(page.read_text()))):
        file, _, name = cited.partition("::")
        if not (ROOT / file).is_file():
            missing.append(cited)
        elif name and name not in _defined_names(ROOT / file):
            missing.append(cited)
    assert not missing, f"{page.name} cites tests that do not exist: {missing}"


def test_every_guarantee_names_a_test():
    section = (ROOT / "README.md").read_text().split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| promise")]
    assert len(rows) >= 10, rows
    for row in rows:
        promise, tests = row.strip("| \n").rsplit(" | ", 1)
        assert CITED_TEST.search(tests), f"README guarantee without a test: {promise}"


def test_readme_read_only_role_list_is_the_servers():
    """The rpcs the README says a read-only key may call are exactly server/auth.py's."""
    from vectord.server.auth import READ_METHODS

    text = (ROOT / "README.md").read_text()
    listed = text.split("- `ro` (read-only): only calls that change nothing:", 1)[1].split("Anything else", 1)[0]
    assert set(re.findall(r"`(\w+)`", listed)) == {m.rsplit("/", 1)[1] for m in READ_METHODS}


def _limit_as_written(name: str, value: int) -> str:
    if name.endswith("_BYTES"):
        for unit, size in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
            if value % size == 0:
                return f"{value // size} {unit}"
        return f"{value:,} bytes"
    return f"{value:,}"


def test_readme_limits_section_states_every_limit():
    from vectord import limits

    section = (ROOT / "README.md").read_text().split("### Limits", 1)[1].split("\n### ", 1)[0]
    section = " ".join(section.split())
    missing = {name: _limit_as_written(name, value) for name, value in vars(limits).items()
               if name.startswith("MAX_") and _limit_as_written(name, value) not in section}
    assert not missing, f"README's Limits section does not state {missing}"


def test_install_commands_do_not_point_at_pypi():
    """vectord is not on PyPI: `pip install vectord` finds nothing (or someone else's package)."""
    pages = [*PAGES, *sorted((ROOT / "examples").glob("*.py")), ROOT / "examples" / "systemd" / "vectord.service"]
    wrong = [f"{page.relative_to(ROOT)}: {m.group(0)}" for page in pages
             for m in re.finditer(r"pip install (?:-U |--upgrade )?\"?vectord\b", page.read_text())]
    assert not wrong, wrong


def test_systemd_unit_documentation_is_installed_by_its_own_steps():
    """Documentation= takes http(s)://, file:, info: or man: URIs; a file: one must name a
    file that the unit's install steps put there, from a file of the repository."""
    unit = (ROOT / "examples" / "systemd" / "vectord.service").read_text()
    uris = [u for line in unit.splitlines() if line.startswith("Documentation=") for u in line.split("=", 1)[1].split()]
    assert uris
    for uri in uris:
        assert re.match(r"(https?://|file:|info:|man:)", uri), uri
        if uri.startswith("file:"):
            target = re.sub(r"^file:(//)?", "", uri)
            step = re.search(rf"install .*?(\S+) {re.escape(target)}\s*$", unit, re.M)
            assert step and (ROOT / step.group(1)).is_file(), f"nothing in the unit's steps installs {target}"


def _comments_and_docstrings(path: Path) -> str:
    import ast
    import io
    import tokenize

    text = path.read_text()
    parts = [tok.string for tok in tokenize.generate_tokens(io.StringIO(text).readline) if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node) or ""  # its >>> examples are code, their strings data
            parts.append("\n".join(line for line in docstring.splitlines()
                                   if not line.lstrip().startswith((">>>", "..."))))
    return "\n".join(parts)


def test_code_comments_cite_only_documents_in_the_repository():
    """A comment or docstring naming a .md file names one the repository holds (design notes
    kept outside it cannot be read by whoever reads the code)."""
    import subprocess

    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    held = {Path(f).name for f in files}
    wrong = []
    for name in files:
        if name.endswith(".py") and "node_modules" not in name and (ROOT / name).is_file():
            for doc in re.findall(r"(?<![\w.<>*{}-])([\w-]+\.md)\b", _comments_and_docstrings(ROOT / name)):
                if doc not in held:
                    wrong.append(f"{name}: {doc}")
    assert not wrong, wrong


def test_readme_layout_names_every_folder_of_the_package():
    """Each folder that pyproject.toml maps into the `vectord` package has its line in Layout."""
    import tomllib

    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = {line.split()[0].rstrip("/") for line in layout.splitlines() if line[:1].isalpha()}
    tops = {folder if folder.startswith(("src/", "proto/")) else folder.split("/")[0] for folder in package_dirs.values()}
    missing = {top for top in tops if not any(top == entry or top.startswith(entry + "/") for entry in listed)}
    assert not missing, f"README's Layout does not name {sorted(missing)}"


def test_readme_engine_numbers_are_the_defaults():
    """The thresholds "How it stores data" states are storage's defaults (storage/types.py,
    storage/planner.py, storage/validation.py)."""
    from vectord.storage.planner import GRAPH_COST_PER_EF
    from vectord.storage.types import Tuning
    from vectord.storage.validation import HNSW_PARAMS

    text = " ".join((ROOT / "README.md").read_text().split())
    tuning, ef_search = Tuning(), HNSW_PARAMS["ef_search"][0]
    assert tuning.graph_cost_per_ef == GRAPH_COST_PER_EF
    for claim in [f"fewer than {tuning.exact_threshold:,} live records have no HNSW graph",
                  f"about {GRAPH_COST_PER_EF} comparisons per unit of `ef`",
                  f"{GRAPH_COST_PER_EF} x `ef_search` records ({GRAPH_COST_PER_EF * ef_search:,} at the default "
                  f"`ef_search` of {ef_search}",
                  f"outgrows both {tuning.checkpoint_min_bytes // 2**20} MiB and half the collection's data",
                  f"deleted slots reach both {tuning.compact_min_dead:,} and {round(tuning.compact_ratio * 100)} %"]:
        assert claim in text, claim
    assert tuning.checkpoint_ratio == 0.5


def test_readme_create_collection_row_is_the_signature():
    import inspect

    row = re.search(r"\| `create_collection\((.*?)\)` \|", (ROOT / "README.md").read_text()).group(1)
    params = inspect.signature(vectord.Client.create_collection).parameters
    expected = []
    for p in list(params.values())[1:]:
        if p.name == "get_or_create":  # the SDK's flag behind get_or_create_collection
            continue
        if p.kind is p.KEYWORD_ONLY and "*" not in expected:
            expected.append("*")
        expected.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    assert row == ", ".join(expected), (row, expected)

