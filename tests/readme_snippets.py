"""The README's runnable parts, read from README.md itself, for tests/test_readme.py and
tests/test_coming_from_chroma.py.

- the `vectord serve` command of "Run it";
- the Python programs of "Quick start", each `print(...)` line ending in a comment that is
  what it prints (``...`` stands for any text, as in doctest);
- the "Coming from Chroma" table: each row's vectord cell is run, in table order, by one
  generated program (:func:`chroma_program`), and checked by the expression of the same row
  in :data:`CHROMA_CHECKS`; a row without a check, or a check without a row, fails the tests.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

#: The address the README's snippets use; tests swap in their server's.
README_ADDRESS = "localhost:50051"


def section(title: str, text: str = README) -> str:
    """The text under a heading (``"## Quick start"``) up to the next heading of its level or above."""
    level = title.split(" ", 1)[0]
    body = text.split(f"\n{title}\n", 1)[1]
    stop = re.search(rf"\n#{{1,{len(level)}}} ", body)
    return body[:stop.start()] if stop else body


def serve_command() -> str:
    """The one `vectord serve` line of "Run it"."""
    [block] = re.findall(r"```bash\n(.*?)```", section("## Run it"), flags=re.S)
    [line] = [line for line in block.splitlines() if line.startswith("vectord serve ")]
    return line.strip()


def quick_start_programs() -> dict[str, str]:
    """The "Quick start" programs: server, embedded, encoder (in that order in the README)."""
    quick = section("## Quick start").split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", quick, flags=re.S)
    assert len(blocks) == 3, f"Quick start has {len(blocks)} Python blocks, expected server, embedded, encoder"
    return dict(zip(["server", "embedded", "encoder"], blocks))


def section_programs() -> dict[str, str]:
    """The runnable programs of other sections, by section: each is self-contained (in memory)."""
    return {"hybrid": re.findall(r"```python\n(.*?)```", section("## Keyword and hybrid search"), flags=re.S)[0]}


def expected_output(program: str) -> list[str]:
    """What a program prints, from the comment ending each of its ``print(`` lines."""
    expected = []
    for line in program.splitlines():
        if line.strip().startswith("print("):
            assert "  # " in line, f"README: a print without its output in a comment: {line.strip()}"
            expected.append(line.rsplit("  # ", 1)[1].strip())
    return expected


def output_matches(pattern: str, line: str) -> bool:
    """``pattern`` with ``...`` matching any text (doctest's ELLIPSIS), against a whole line."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("..."))), line.strip()) is not None


# ---------------------------------------------------------------------- Coming from Chroma
def chroma_rows() -> list[tuple[str, list[str], str]]:
    """(Chroma cell, the code spans of the vectord cell, what differs) for each table row."""
    table = section("### Coming from Chroma")
    rows = []
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        chroma, ours, differs = (cell.strip() for cell in line.strip().strip("|").split(" | "))
        rows.append((chroma, re.findall(r"`([^`]+)`", ours), differs))
    return rows


#: For each row (by its Chroma cell): a Python expression that must be true after the row's
#: code ran. ``result`` is the value of the row's last expression (None for an assignment).
#: Rows run in table order in one namespace holding ``vectord``, ``np`` and ``time``.
CHROMA_CHECKS = {
    "`chroma run --path ./chroma`": None,  # a shell command: tests/test_readme.py starts the server with it
    '`client = chromadb.HttpClient(host="localhost", port=8000)`':
        "isinstance(client, vectord.Client) and isinstance(client.list_collections(), list)",
    '`chromadb.PersistentClient(path="./chroma")`':
        "isinstance(result, vectord.Client) and isinstance(result.list_collections(), list)",
    "`chromadb.EphemeralClient()`": "isinstance(scratch, vectord.Client) and isinstance(scratch.list_collections(), list)",
    '`client.create_collection("books", metadata={"hnsw:space": "l2"})`':
        '(books.name, books.dim, books.metric, books.hnsw["m"]) == ("books", 3, "l2", 16)',
    '`client.get_collection("books")`': '(books.name, books.dim, books.metric) == ("books", 3, "l2")',
    '`client.get_or_create_collection("books")`': '(books.name, books.dim, books.metric) == ("books", 3, "l2")',
    '`client.get_or_create_collection("notes")` (default embedding function)':
        'notes.dim == 384 and notes.encoder != ""',
    "`client.list_collections()`":
        '{"books", "notes"} <= {c.name for c in result} and [c.name for c in result] == sorted(c.name for c in result)',
    "`col.add(ids=..., embeddings=..., documents=..., metadatas=...)`":
        'result["inserted"] == 2 and books.count() == 2',
    "`col.upsert(ids=..., documents=...)`":
        'result["inserted"] + result["updated"] + result["unchanged"] == 1',
    "`col.update(ids=..., documents=...)`":
        'result["updated"] == 1 and books.get(ids=["dune"])["documents"] == ["spice and sandworms on Arrakis"]',
    '`col.get(ids=..., include=["embeddings"])`':
        'isinstance(result["embeddings"], np.ndarray) and result["embeddings"].tolist() == [[1, 0, 0]]',
    "`col.get()` (everything)": 'sorted(result["ids"]) == ["dune", "emma"] and result["embeddings"] is None',
    "`col.query(query_embeddings=..., n_results=...)`":
        'result["ids"] == [["dune", "emma"]] and [round(float(d), 5) for d in result["distances"][0]] == [0.0, 2.0]',
    "`col.query(query_texts=..., n_results=...)`": 'result["ids"] == [["cat"]]',
    '`col.get(where={"genre": {"$ne": "scifi"}})`': 'result["ids"] == ["emma"]',
    '`col.get(where_document={"$contains": "Arrakis"})`': 'result["ids"] == ["dune"]',
    '`col.get(where={"tags": {"$contains": "classic"}})`': 'result["ids"] == ["dune"]',
    '`col.modify(metadata={"shelf": "classics"})`':
        'result is None and client.get_collection("books").metadata == {"shelf": "classics"}',
    "`col.count()`": "result == 2",
    "`col.peek()`": 'sorted(result["ids"]) == ["dune", "emma"]',
    "`col.delete(ids=...)`": 'result == 1 and books.get()["ids"] == ["dune"]',
    "`client.heartbeat()`": "isinstance(result, int) and abs(result - time.time_ns()) < 60e9",
    "`client.reset()` (with `allow_reset=True` in its settings)":
        "isinstance(result, int) and scratch.list_collections() == []",
    '`client.delete_collection("books")`': '"books" not in {c.name for c in client.list_collections()}',
}


def chroma_program(address: str) -> str:
    """One program that runs every row's vectord code in table order against ``address``,
    checks it, and prints ``row N ok`` per row (an exception stops it with a traceback)."""
    lines = ["import time", "import numpy as np", "import vectord", "", "def _value(code, ns):",
             "    try:",
             "        compiled = compile(code, '<README row>', 'eval')",
             "    except SyntaxError:",
             "        exec(compile(code, '<README row>', 'exec'), ns)",
             "        return None",
             "    return eval(compiled, ns)",
             "", "ns = {'vectord': vectord, 'np': np, 'time': time}"]
    for number, (chroma, spans, _) in enumerate(chroma_rows(), 1):
        check = CHROMA_CHECKS[chroma]
        if check is None:
            lines.append(f"print('row {number} ok')")
            continue
        for span in spans:
            lines.append(f"ns['result'] = _value({span.replace(README_ADDRESS, address)!r}, ns)")
        lines.append(f"if not eval({check!r}, ns):")
        lines.append(f"    raise AssertionError(f'README row {number} ({chroma}): check failed, result {{ns[\"result\"]!r}}')")
        lines.append("if isinstance(ns['result'], vectord.Client) and ns['result'] is not ns.get('client'):")
        lines.append("    ns['result'].close()  # an embedded client: release its directory")
        lines.append(f"print('row {number} ok')")
    lines.append("for value in list(ns.values()):  # close every client the rows opened")
    lines.append("    if isinstance(value, vectord.Client):")
    lines.append("        value.close()")
    return "\n".join(lines) + "\n"
