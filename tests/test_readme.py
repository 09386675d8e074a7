"""A newcomer's first hour, as the README tells it, in a fresh virtualenv.

The module builds a new virtualenv and installs the clone into it the way "Install" says
(`pip install .`, not editable, dependencies included), starts `vectord serve` as "Run it"
says (that virtualenv's command, in the clone's root, on a free port instead of 50051), and
runs every "Quick start" program and the "Coming from Chroma" rows twice in a row with that
virtualenv's `python -c` in the clone's root, where `./` is on `sys.path` first, so a
package folder at the root that shadowed the installed one would fail here. Each run must
print what the README's comments say and no traceback. The clone is left as it was found:
the data directories the snippets make are in .gitignore and removed at the end.
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from readme_snippets import (README_ADDRESS, ROOT, chroma_program, chroma_rows, expected_output,
                             output_matches, quick_start_programs, section_programs,
                             serve_command)

#: What the snippets may create in the clone's root (each must be ignored by .gitignore).
DATA_DIRS = ("vectord-data", "embedded-data")
#: CPU seconds (user + sys) that the fresh virtualenv and `pip install .` may take: about 40
#: on the 2-core machine (wall time is about the same when the machine is otherwise idle, and
#: several times more on a busy one, hence CPU time). Far more means the install built
#: something from source or went looking for packages it should not need.
INSTALL_CPU_BUDGET_S = 120


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _new_at_root() -> set[str]:
    """Untracked, not ignored entries at the clone's root, where the snippets' relative paths
    point (deeper entries and modified files are left to people working in the same tree)."""
    out = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return {line for line in out.splitlines() if line.startswith("?? ") and "/" not in line[3:].rstrip("/")}


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A new virtualenv with the clone installed by `pip install <copy of the clone>`.

    The copy holds the files a clone has (tracked and untracked-but-not-ignored), so the
    build does not write build/ or *.egg-info into the working tree."""
    base = tmp_path_factory.mktemp("readme")
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    source = base / "clone"
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    started, cpu = time.monotonic(), _children_cpu_s()
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=120)
    bin_dir = base / "venv" / "bin"
    # --no-compile: modules are byte-compiled when first imported, as without it
    install = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-compile", str(source)],
                             capture_output=True, text=True, timeout=600, env=_env(bin_dir))
    elapsed, cpu = time.monotonic() - started, _children_cpu_s() - cpu
    assert install.returncode == 0, install.stdout + install.stderr
    print(f"\nfresh virtualenv + pip install .: {elapsed:.0f} s wall, {cpu:.0f} s CPU")
    assert cpu < INSTALL_CPU_BUDGET_S, f"the fresh install took {cpu:.0f} CPU seconds ({elapsed:.0f} s wall)"
    return bin_dir


def _env(bin_dir: Path) -> dict[str, str]:
    """The environment of a shell where that virtualenv is activated (and nothing of ours)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    return env


@pytest.fixture(scope="module")
def readme_server(venv):
    """`vectord serve` as "Run it" says, from the clone's root, on a free port."""
    existing = [d for d in DATA_DIRS if (ROOT / d).exists()]
    if existing:
        pytest.skip(f"{existing} already exist in the clone's root: the README's snippets would use "
                    "(and this test would remove) them; move them away to run this test")
    for name in DATA_DIRS:  # made and removed here, never committed
        (ROOT / name).mkdir()
        ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT).returncode == 0
        (ROOT / name).rmdir()
        assert ignored, f"./{name}, which the README's snippets create, is not in .gitignore"
    before = _new_at_root()
    command = serve_command()
    assert command.endswith(" --port 50051"), command
    argv = shlex.split(command.replace("--port 50051", "--port 0"))
    argv[0] = str(venv / argv[0])  # `vectord` on the PATH of the activated virtualenv
    stderr = open(venv.parent / "server.log", "wb")
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, env=_env(venv))
    stderr.close()
    try:
        line = proc.stdout.readline()
        assert line.startswith("vectord listening on "), (line, (venv.parent / "server.log").read_text())
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        for name in DATA_DIRS:
            shutil.rmtree(ROOT / name, ignore_errors=True)
    assert code == 0, (venv.parent / "server.log").read_text()
    new = _new_at_root() - before
    assert not new, f"the README's snippets left files in the clone: {sorted(new)}"


def run_python(venv: Path, code: str, timeout: float = 180) -> str:
    """`python -c code` with the virtualenv's python, in the clone's root; returns stdout."""
    result = subprocess.run([str(venv / "python"), "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout, env=_env(venv))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stdout + result.stderr
    return result.stdout


def test_python_m_vectord_help_from_the_clone_root(venv):
    result = subprocess.run([str(venv / "python"), "-m", "vectord", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=_env(venv))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "serve" in result.stdout
    # From the root, `import vectord` finds the installed package, not a folder of the clone.
    where = run_python(venv, "import vectord, vectord.client; print(vectord.__file__)").strip()
    assert Path(where).is_relative_to(venv.parent), where


@pytest.mark.parametrize("name", ["server", "embedded", "encoder"])
def test_quick_start_runs_twice_as_printed(venv, readme_server, name):
    program = quick_start_programs()[name]
    assert name != "server" or README_ADDRESS in program
    code = program.replace(README_ADDRESS, readme_server)
    expected = expected_output(program)
    assert expected, f"the {name} quick start prints nothing to check"
    for run in (1, 2):
        lines = run_python(venv, code).splitlines()
        assert len(lines) == len(expected) and all(map(output_matches, expected, lines)), (
            f"{name} quick start, run {run}: printed\n" + "\n".join(lines) + "\nREADME says\n" + "\n".join(expected))


@pytest.mark.parametrize("name", ["hybrid"])
def test_section_programs_run_twice_as_printed(venv, name):
    program = section_programs()[name]
    expected = expected_output(program)
    assert expected, f"the {name} program prints nothing to check"
    for run in (1, 2):
        lines = run_python(venv, program).splitlines()
        assert len(lines) == len(expected) and all(map(output_matches, expected, lines)), (name, run, lines)


def test_coming_from_chroma_rows_run_twice(venv, readme_server):
    program = chroma_program(readme_server)
    for run in (1, 2):
        out = run_python(venv, program)
        assert out.splitlines() == [f"row {n} ok" for n in range(1, len(chroma_rows()) + 1)], f"run {run}: {out}"
