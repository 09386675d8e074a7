"""Question -> passage sets and a large paragraph corpus from installed Debian documentation
(benchmarks/hybrid.py uses them; the shared data notes list these packages under
"Technical and question-answer text").

    apt-get update && apt-get install -y perl-doc debian-faq debian-reference-en git-doc manpages

Nothing here is downloaded or committed: the texts are read from /usr/share at run time.

- perlfaq: each ``=head2`` question of perlfaq1-9.pod -> its answer; distractors: =head2 /
  =item sections of Perl's other manuals.
- debian-faq: each numbered question of the Debian FAQ -> its answer; distractors: sections
  of the Debian Reference.
- gitfaq: each question of gitfaq.txt -> its answer; distractors: sections of git's manuals.
- corpus(n): paragraphs of the installed man pages (groff source with the markup stripped),
  then Perl manual paragraphs if more are needed.
"""

from __future__ import annotations

import gzip
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

PERL_POD = next(iter(sorted(Path("/usr/share/perl").glob("5*/pod"))), Path("/usr/share/perl/5/pod"))
DEBIAN_FAQ = Path("/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz")
DEBIAN_REFERENCE = Path("/usr/share/debian-reference/debian-reference.en.txt.gz")
GIT_DOC = Path("/usr/share/doc/git-doc")
MAN = Path("/usr/share/man")


@dataclass
class QASet:
    name: str
    #: passage id -> text (answers and distractors)
    passages: dict[str, str] = field(default_factory=dict)
    #: (question, id of its answer passage)
    questions: list[tuple[str, str]] = field(default_factory=list)


def _words(text: str) -> int:
    return len(text.split())


def _pod_text(text: str) -> str:
    for _ in range(3):  # nested formatting codes: B<C<x>>
        text = re.sub(r"[A-Z]<<+\s(.*?)\s>>+", r"\1", text, flags=re.S)
        text = re.sub(r"[A-Z]<([^<>]*)>", lambda m: m.group(1).split("|")[0], text)
    text = re.sub(r"^=\w+.*$", "", text, flags=re.M)
    return " ".join(text.split())


def _pod_sections(path: Path, marker: str = r"^=(?:head2|item)\s+(.*)$") -> list[tuple[str, str]]:
    text = path.read_text(errors="replace")
    parts = re.split(marker, text, flags=re.M)
    return [(_pod_text(parts[i]), _pod_text(parts[i + 1])) for i in range(1, len(parts) - 1, 2)]


def _distract(qa: QASet, sections: list[str], n: int, seed: int) -> QASet:
    rng = random.Random(seed)
    sections = [s for s in sections if _words(s) >= 30]
    rng.shuffle(sections)
    for i, text in enumerate(sections[:n]):
        qa.passages[f"{qa.name}-d{i}"] = text
    return qa


def perlfaq(distractors: int = 1500, seed: int = 0) -> QASet:
    qa = QASet("perlfaq")
    for path in sorted(PERL_POD.glob("perlfaq[1-9].pod")):
        for n, (question, answer) in enumerate(_pod_sections(path, r"^=head2\s+(.*)$")):
            if _words(answer) >= 10 and question.endswith("?"):
                pid = f"{path.stem}-{n}"
                qa.passages[pid] = answer
                qa.questions.append((question, pid))
    others = [body for path in sorted(PERL_POD.glob("*.pod")) if not path.stem.startswith("perlfaq")
              and "delta" not in path.stem for _, body in _pod_sections(path)]
    return _distract(qa, others, distractors, seed)


_HEADING = re.compile(r"^(\d+(?:\.\d+)+)\.\s(.+)$")  # "1.2.<nbsp>What is Debian?" (\s takes the nbsp)


def _numbered_sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of a text whose sections start with "1.2. Title" lines (the title
    may wrap onto the next lines, up to a blank line). The table of contents is indented,
    so only unindented headings count."""
    lines = text.splitlines()
    sections, title, body, in_title = [], None, [], False
    for line in lines:
        match = _HEADING.match(line)
        if match:
            if title is not None:
                sections.append((title, " ".join(" ".join(body).split())))
            title, body, in_title = match.group(2).strip(), [], True
        elif in_title and line.strip():
            title += " " + line.strip()
        else:
            in_title = False
            if title is not None:
                body.append(line)
    if title is not None:
        sections.append((title, " ".join(" ".join(body).split())))
    return sections


def debian_faq(distractors: int = 1500, seed: int = 0) -> QASet:
    qa = QASet("debian-faq")
    text = gzip.open(DEBIAN_FAQ, "rt", errors="replace").read()
    for n, (question, answer) in enumerate(_numbered_sections(text)):
        if question.endswith("?") and _words(answer) >= 10:
            pid = f"dfaq-{n}"
            qa.passages[pid] = answer
            qa.questions.append((question, pid))
    reference = gzip.open(DEBIAN_REFERENCE, "rt", errors="replace").read()
    return _distract(qa, [body for _, body in _numbered_sections(reference)], distractors, seed)


def gitfaq(distractors: int = 1500, seed: int = 0) -> QASet:
    qa = QASet("gitfaq")
    text = (GIT_DOC / "gitfaq.txt").read_text(errors="replace")
    for n, block in enumerate(re.split(r"^\[\[[^\]]+\]\]\s*$", text, flags=re.M)[1:]):
        match = re.match(r"\s*(.+?)::\s*\n(.*)", block, flags=re.S)
        if match:
            body = re.split(r"^\S.*\n-{3,}\s*$", match.group(2), flags=re.M)[0]  # stop at the next heading
            pid = f"gitfaq-{n}"
            qa.passages[pid] = " ".join(body.replace("\n+\n", "\n").split())
            qa.questions.append((match.group(1).strip(), pid))
    sections = []
    for path in sorted(GIT_DOC.glob("git-*.txt")):
        parts = re.split(r"^\S.*\n-{3,}\s*$", path.read_text(errors="replace"), flags=re.M)
        sections.extend(" ".join(p.split()) for p in parts)
    return _distract(qa, sections, distractors, seed)


# ---------------------------------------------------------------------- a large corpus
_BREAK = re.compile(r"^\.(?:SH|SS|PP|P|LP|TP|IP|HP|sp|br|Sh|Pp|It)\b")


def _man_paragraphs(path: Path) -> list[str]:
    try:
        text = gzip.open(path, "rt", errors="replace").read()
    except (OSError, EOFError):
        return []
    out, current = [], []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            if _BREAK.match(line) and current:
                out.append(" ".join(current))
                current = []
            if line.startswith((".B ", ".I ", ".BR ", ".IR ", ".BI ", ".RB ", ".IB ", ".RI ")):
                current.append(line.split(" ", 1)[1].replace('"', ""))
            continue
        line = re.sub(r"\\f[A-Z(\[][A-Z]?\]?|\\\(..|\\[&e-]|\\s[-+]?\d", lambda m: "-" if m.group() == "\\-" else "",
                      line)
        current.append(line)
    if current:
        out.append(" ".join(current))
    return [" ".join(p.split()) for p in out if _words(p) >= 8]


def corpus(n: int, seed: int = 0) -> tuple[list[str], str]:
    """``n`` paragraphs of real text, and a sentence saying where they came from."""
    paragraphs: list[str] = []
    pages = sorted(p for d in sorted(MAN.glob("man[1-8]")) for p in d.glob("*.gz"))
    for page in pages:
        paragraphs.extend(_man_paragraphs(page))
        if len(paragraphs) >= n:
            break
    source = f"{len(paragraphs):,} paragraphs of {len(pages):,} man pages"
    if len(paragraphs) < n:
        for path in sorted(PERL_POD.glob("*.pod")):
            text = path.read_text(errors="replace")
            paragraphs.extend(p for p in (_pod_text(b) for b in text.split("\n\n")) if _words(p) >= 8)
        source += " + Perl manual paragraphs"
    random.Random(seed).shuffle(paragraphs)
    if len(paragraphs) < n:
        raise SystemExit(f"only {len(paragraphs)} paragraphs of text installed; install manpages and perl-doc")
    return paragraphs[:n], source
