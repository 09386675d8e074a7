"""The README's quick start runs as written (against a real server and embedded)."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _quick_start_blocks():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_quick_start_runs(server, tmp_path, capsys, monkeypatch):
    server_block, embedded_block = _quick_start_blocks()[:2]
    namespace: dict = {}
    exec(server_block.replace("localhost:50051", server.address), namespace)
    out = capsys.readouterr().out
    assert "[['a', 'c']]" in out
    namespace["client"].delete_collection("docs")
    namespace["client"].close()
    monkeypatch.chdir(tmp_path)
    exec(embedded_block, {"vectord": namespace["vectord"]})
    assert capsys.readouterr().out.strip() == "0"


def test_encoder_quick_start_runs(tmp_path, capsys, monkeypatch):
    import vectord

    encoder_block = _quick_start_blocks()[2]
    monkeypatch.chdir(tmp_path)
    exec(encoder_block, {"vectord": vectord})
    assert capsys.readouterr().out.split("\n")[:2] == ["[['cat']]", "(1, 384)"]
