"""Every row of the README's "Coming from Chroma" table runs as written and does what its
row says (the same program runs again, twice, in a fresh install: tests/test_readme.py)."""

from __future__ import annotations

import subprocess
import sys

from readme_snippets import CHROMA_CHECKS, chroma_program, chroma_rows, serve_command


def test_every_row_has_a_check_and_every_check_a_row():
    rows = [chroma for chroma, _, _ in chroma_rows()]
    assert len(rows) == len(set(rows)), "two rows with the same Chroma cell"
    assert set(rows) == set(CHROMA_CHECKS), (
        f"rows without a check: {set(rows) - set(CHROMA_CHECKS)}; "
        f"checks without a row: {set(CHROMA_CHECKS) - set(rows)} (tests/readme_snippets.py)")


def test_every_row_but_the_command_line_has_code_to_run():
    for chroma, spans, _ in chroma_rows():
        if CHROMA_CHECKS[chroma] is not None:
            assert spans, f"row {chroma}: no code in the vectord cell"


def test_the_serve_row_is_the_command_of_run_it():
    [(spans, _)] = [(spans, d) for chroma, spans, d in chroma_rows() if chroma.startswith("`chroma run")]
    assert serve_command().startswith(spans[0] + " "), (spans, serve_command())


def test_rows_run_in_order_twice_against_a_server(server, tmp_path):
    program = chroma_program(server.address)
    for run in (1, 2):  # the rows leave nothing behind that makes them fail a second time
        result = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0 and "Traceback" not in result.stderr, f"run {run}:\n{result.stderr}"
        assert result.stdout.splitlines() == [f"row {n} ok" for n in range(1, len(chroma_rows()) + 1)]
