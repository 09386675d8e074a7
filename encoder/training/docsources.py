"""Readers for the technical documentation packages (issue 10): text -> headed sections.

Every parser takes the text of one file and returns plain structures (no disk writes), so the unit
tests run on small inline samples; ``iter_docs`` walks the installed packages (paths below,
installed by ``apt-get install``, never committed; encoder/README.md lists the packages and
``iter_docs`` the paths it reads in each).

Reserved for evaluation outside the project and never read here: Python's own documentation
(``python3.x-doc``) and the fortune files; ``_reserved`` refuses any path that names them.
"""
from __future__ import annotations

import gzip
import html
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

ROOT = Path(os.environ.get("VECTORD_DOC_ROOT", "/"))


@dataclass
class Section:
    heading: str
    paragraphs: list[str] = field(default_factory=list)
    question: bool = False  # the heading is an FAQ question and the body its answer


@dataclass
class Doc:
    domain: str  # perl, debian-faq, debian-ref, git, man, jargon, postgres, node, go, kernel
    doc_id: str  # stable id (relative path), the unit of the held-out-documents rule
    title: str
    sections: list[Section]
    name_line: str = ""  # man pages: "open, openat - open and possibly create a file"


def _flat(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def _reserved(path: Path) -> bool:
    s = str(path).lower()
    return bool(re.search(r"python3(\.\d+)?-doc|/python3?(\.\d+)?/|fortune", s))


def _read(path: Path) -> str:
    if _reserved(path):
        raise ValueError(f"path {path} is reserved for evaluation outside the project (DATA.md)")
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    return raw.decode("utf-8", "replace")


def _paras(lines: list[str]) -> list[str]:
    """Blank-line separated paragraphs, whitespace flattened."""
    out, cur = [], []
    for ln in lines:
        if ln.strip():
            cur.append(ln.strip())
        elif cur:
            out.append(" ".join(cur))
            cur = []
    if cur:
        out.append(" ".join(cur))
    return [p for p in out if p]


# --------------------------------------------------------------------------- POD (perl)
_POD_CODE = re.compile(r"[BCFIJLSXZE]<(?:<+\s(.*?)\s>+|([^<>]*))>", re.S)
_POD_ENT = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&"}


def _pod_inline(s: str) -> str:
    def rep(m: re.Match) -> str:
        code, body = m.group(0)[0], m.group(1) if m.group(1) is not None else m.group(2)
        if code == "E":
            return _POD_ENT.get(body, html.unescape(f"&{body};") if not body.isdigit() else chr(int(body)))
        if code in "XZ":
            return ""
        if code == "L":
            text, bar, _ = body.partition("|")
            body = text if bar else body
            body = body.replace('"', "").replace("/", " ") if not bar else body
        return body

    for _ in range(4):  # nested codes, innermost first
        s2 = _POD_CODE.sub(rep, s)
        if s2 == s:
            break
        s = s2
    return s


def parse_pod(text: str) -> tuple[str, list[Section]]:
    """POD -> (NAME line, sections at =head1/=head2/=head3/=item granularity of head1-3)."""
    sections: list[Section] = []
    cur: Section | None = None
    name_line = ""
    in_begin = False
    for block in re.split(r"\n[ \t]*\n", text.replace("\r", "")):
        if not block.strip():
            continue
        if block.startswith("=begin"):
            in_begin = True
        if in_begin:
            if re.search(r"^=end", block, re.M):
                in_begin = False
            continue
        m = re.match(r"=(head[1-4])\s+(.*)", block, re.S)
        if m:
            heading = _flat(_pod_inline(m.group(2)))
            cur = Section(heading)
            sections.append(cur)
            continue
        if block.startswith("=item"):
            item = _flat(_pod_inline(block[5:]))
            if item and item not in ("*", "-") and cur is not None:
                cur.paragraphs.append(item)
            continue
        if block.startswith("="):
            continue  # =pod =cut =over =back =for
        if cur is None:
            continue
        if block[:1] in " \t":  # verbatim (code): kept, whitespace flattened
            p = _flat(block)
        else:
            p = _flat(_pod_inline(block))
        if p:
            cur.paragraphs.append(p)
            if cur.heading.upper() == "NAME" and not name_line:
                name_line = p
    return name_line, sections


# --------------------------------------------------------------------------- roff (man pages)
_ROFF_SPECIAL = {"em": "-", "en": "-", "hy": "-", "lq": '"', "rq": '"', "oq": "'", "cq": "'", "aq": "'",
                 "dq": '"', "bu": "*", "co": "(c)", "rg": "(R)", "tm": "(TM)", "mu": "x", "<=": "<=",
                 ">=": ">=", "!=": "!=", "->": "->", "<-": "<-", "ti": "~", "ha": "^", "rs": "\\", "ga": "`",
                 "aa": "'", "pl": "+", "mi": "-", "eq": "=", "sl": "/", "ba": "|", "at": "@", "sh": "#"}


def _roff_inline(s: str) -> str:
    s = re.sub(r"\\f(?:\[[^\]]*\]|\(..|.)", "", s)  # font changes
    s = re.sub(r"\\s[+-]?\d+", "", s)
    s = re.sub(r"\\\[([^\]]+)\]", lambda m: _ROFF_SPECIAL.get(m.group(1), ""), s)
    s = re.sub(r"\\\((..)", lambda m: _ROFF_SPECIAL.get(m.group(1), ""), s)
    s = re.sub(r"\\\*(?:\[[^\]]*\]|\(..|.)", "", s)  # strings
    s = re.sub(r"\\[nk](?:\[[^\]]*\]|\(..|.)", "", s)
    s = s.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "").replace("\\ ", " ").replace("\\~", " ")
    s = re.sub(r"\\[|^,/%:c0]", "", s)
    s = s.replace("\\\\", "\\")
    return s


_TEXT_MACROS = {"B", "I", "BR", "RB", "IR", "RI", "BI", "IB", "SM", "SB", "UR", "MT", "Nm", "Nd", "Ar", "Fl", "Cm",
                "Pa", "Va", "Fn", "Fa", "Ft", "Xr", "Sy", "Em", "Dv", "Er", "Ev", "Li", "Ql", "Dq", "Sq", "Op", "Ic"}


def parse_man(text: str) -> tuple[str, list[Section]]:
    """man(7)/mdoc source -> (NAME line, sections at .SH/.SS). Tables (.TS/.TE) are dropped."""
    sections: list[Section] = []
    cur: Section | None = None
    lines: list[str] = []
    in_table = False

    def flush():
        if cur is not None:
            cur.paragraphs.extend(p for p in (_flat(x) for x in _paras(lines)) if p)
        lines.clear()

    for raw in text.replace("\r", "").split("\n"):
        if raw.startswith((".\\\"", "'\\\"", '.\\"')) or raw.strip() in (".", "'"):
            continue
        if raw.startswith(".TS"):
            in_table = True
        if in_table:
            if raw.startswith(".TE"):
                in_table = False
            continue
        if raw.startswith((".", "'")):
            m = re.match(r"[.'](\S+)\s*(.*)", raw)
            if not m:
                continue
            mac, arg = m.group(1), m.group(2)
            if mac in ("SH", "Sh", "SS", "Ss"):
                flush()
                cur = Section(_flat(_roff_inline(arg.replace('"', ""))))
                sections.append(cur)
            elif mac in ("PP", "P", "LP", "Pp", "sp", "br", "IP", "TP", "HP", "RS", "RE", "EX", "EE", "nf", "fi",
                         "Bl", "El", "Bd", "Ed", "It"):
                lines.append("")
                if mac in ("IP", "It") and arg:
                    lines.append(_roff_inline(arg.replace('"', "")))
            elif mac in _TEXT_MACROS:
                words = re.findall(r'"[^"]*"|\S+', arg)
                words = [w.strip('"') for w in words]
                joiner = " " if mac in ("B", "I", "SM", "SB") or len(mac) == 2 and mac[0].isupper() and mac[1].islower() else ""
                lines.append(_roff_inline(joiner.join(words)))
            continue
        lines.append(_roff_inline(raw))
    flush()
    name_line = ""
    for s in sections:
        if s.heading.upper() == "NAME" and s.paragraphs:
            name_line = " ".join(s.paragraphs)
            break
    return name_line, sections


# --------------------------------------------------------------------------- DocBook text (Debian FAQ / reference)
_NUM_HEAD = re.compile(r"^(?:Chapter |Appendix )?((?:\d+|[A-Z])(?:\.\d+)*)\.\s+(\S.*)$")


def parse_numbered_text(text: str) -> list[Section]:
    """Plain text rendered from DocBook: "1.2. Heading" at column 0 (wrapping onto further column-0
    lines), bodies indented. The table of contents (indented headings) is skipped by the column rule."""
    sections: list[Section] = []
    cur: Section | None = None
    body: list[str] = []
    lines = text.replace("\r", "").split("\n")
    i = 0

    def flush():
        if cur is not None:
            cur.paragraphs.extend(_paras(body))
        body.clear()

    while i < len(lines):
        ln = lines[i]
        m = _NUM_HEAD.match(ln)
        if m and not ln[:1].isspace():
            flush()
            head = [m.group(2)]
            while i + 1 < len(lines) and lines[i + 1].strip() and not lines[i + 1][:1].isspace():
                i += 1
                head.append(lines[i].strip())
            h = _flat(" ".join(head))
            cur = Section(h, question=h.endswith("?"))
            sections.append(cur)
        elif cur is not None:
            body.append(ln)
        i += 1
    flush()
    return sections


# --------------------------------------------------------------------------- AsciiDoc (git) and gitfaq
def parse_asciidoc(text: str) -> tuple[str, list[Section]]:
    """AsciiDoc with underlined ("----"/"~~~~") or "==" headings -> (NAME line, sections)."""
    lines = text.replace("\r", "").split("\n")
    sections: list[Section] = []
    cur: Section | None = None
    body: list[str] = []
    in_block = False

    def flush():
        if cur is not None:
            cur.paragraphs.extend(p for p in (_adoc_inline(x) for x in _paras(body)) if p)
        body.clear()

    i = 0
    while i < len(lines):
        ln = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if re.fullmatch(r"(-{4,}|\.{4,}|={4,}|\+{4,}|\*{4,}|_{4,})", ln.strip()):
            in_block = not in_block  # delimited listing/literal block: kept as text
            body.append("")
            i += 1
            continue
        if (not in_block and ln.strip() and re.fullmatch(r"([-~=^])\1{2,}", nxt.strip())
                and abs(len(nxt.strip()) - len(ln.strip())) <= 2):
            flush()
            cur = Section(_flat(ln))
            sections.append(cur)
            i += 2
            continue
        m = re.match(r"(={1,4})\s+(\S.*)$", ln)
        if m and not in_block:
            flush()
            cur = Section(_flat(m.group(2)))
            sections.append(cur)
        elif re.match(r"\[\[.*\]\]$|\[[a-z]+[^\]]*\]$|^:[a-z-]+:|^include::|^ifdef::|^endif::", ln.strip()):
            pass
        else:
            if re.match(r".*::$", ln.strip()):
                body.append("")
            body.append(ln)
            if re.match(r".*::$", ln.strip()):
                body.append("")
        i += 1
    flush()
    name_line = ""
    for s in sections:
        if s.heading.upper() == "NAME" and s.paragraphs:
            name_line = s.paragraphs[0]
    return name_line, sections


def _adoc_inline(s: str) -> str:
    s = re.sub(r"link(?:git)?:([^\[\s]+)\[([^\]]*)\]", lambda m: m.group(2) or m.group(1), s)
    s = re.sub(r"<<[^,>]*,\s*([^>]*)>>|<<([^>]*)>>", lambda m: m.group(1) or m.group(2), s)
    s = re.sub(r"(?<!\w)[`'*_]{1,2}([^`'*_\n]+?)[`'*_]{1,2}(?!\w)", r"\1", s)
    s = re.sub(r"\{[a-z-]+\}", "", s)
    s = s.replace(" +", "").replace("::", ":")
    return _flat(s).strip("+ ")


def parse_gitfaq(text: str) -> list[Section]:
    """gitfaq: "[[anchor]]" then "Question?::" then the answer, up to the next anchor or heading."""
    sections: list[Section] = []
    cur: Section | None = None
    body: list[str] = []
    lines = text.replace("\r", "").split("\n")

    def flush():
        if cur is not None:
            cur.paragraphs.extend(p for p in (_adoc_inline(x) for x in _paras(body)) if p)
        body.clear()

    for i, ln in enumerate(lines):
        if re.fullmatch(r"\[\[[^\]]+\]\]", ln.strip()) or (i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip())):
            flush()
            cur = None
            continue
        m = re.fullmatch(r"(\S.*\?)::", ln.strip())
        if m and not ln[:1].isspace():
            flush()
            cur = Section(_adoc_inline(m.group(1)), question=True)
            sections.append(cur)
        elif cur is not None:
            body.append("" if ln.strip() == "+" or re.fullmatch(r"-{4,}", ln.strip()) else ln)
    flush()
    return [s for s in sections if s.paragraphs]


# --------------------------------------------------------------------------- reStructuredText / Markdown
def parse_rst(text: str) -> list[Section]:
    """reStructuredText (kernel): underlined (optionally overlined) titles; directives dropped."""
    lines = text.replace("\r", "").split("\n")
    sections: list[Section] = [Section("")]
    body: list[str] = []
    skip_indent = None

    def flush():
        sections[-1].paragraphs.extend(p for p in (_rst_inline(x) for x in _paras(body)) if p)
        body.clear()

    i = 0
    while i < len(lines):
        ln = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if skip_indent is not None:
            if ln.strip() and not ln[:1].isspace():
                skip_indent = None
            else:
                i += 1
                continue
        if re.fullmatch(r"([=\-~^\"'`#*+.])\1{2,}", ln.strip()) and not ln[:1].isspace():
            i += 1  # overline or stray rule
            continue
        if (ln.strip() and not ln[:1].isspace() and re.fullmatch(r"([=\-~^\"'`#*+])\1{2,}", nxt.strip())
                and len(nxt.strip()) >= len(ln.strip()) - 1):
            flush()
            sections.append(Section(_rst_inline(ln)))
            i += 2
            continue
        if re.match(r"\.\. (toctree|include|kernel-doc|only|raw|image|figure|table|csv-table|SPDX|c:|_|\|)", ln) or \
                re.match(r"\.\. [a-z-]+::", ln) and not re.match(r"\.\. (note|warning|attention|important|tip|hint)::", ln):
            flush()
            skip_indent = True
            i += 1
            continue
        if re.match(r"\.\.(\s|$)", ln) and not re.match(r"\.\. (note|warning|attention|important|tip|hint)::", ln):
            skip_indent = True  # comment
            i += 1
            continue
        body.append(re.sub(r"^\.\. [a-z]+::", "", ln))
        i += 1
    flush()
    return [s for s in sections if s.heading or s.paragraphs]


def _rst_inline(s: str) -> str:
    s = re.sub(r":[a-z:]+:`([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", s)
    s = re.sub(r"`([^`<]*?)\s*<[^>]*>`_+", r"\1", s)
    s = re.sub(r"``([^`]*)``", r"\1", s)
    s = re.sub(r"`([^`]*)`_*", r"\1", s)
    s = re.sub(r"(?<=\s)\*\*?([^*\s][^*]*)\*\*?", r"\1", " " + s)[1:]
    s = s.replace("::", ":")
    return _flat(s)


def parse_markdown(text: str) -> list[Section]:
    """Markdown (node's API docs): '#' headings; HTML comments, fences' markers and tables' rules dropped."""
    text = re.sub(r"<!--.*?-->", "", text.replace("\r", ""), flags=re.S)
    sections: list[Section] = [Section("")]
    body: list[str] = []
    in_fence = False

    def flush():
        sections[-1].paragraphs.extend(p for p in (_md_inline(x) for x in _paras(body)) if p)
        body.clear()

    for ln in text.split("\n"):
        if ln.strip().startswith("```"):
            in_fence = not in_fence
            body.append("")
            continue
        m = re.match(r"(#{1,6})\s+(.*)", ln)
        if m and not in_fence:
            flush()
            sections.append(Section(_md_inline(m.group(2))))
            continue
        if re.fullmatch(r"\|?[\s:|-]+\|?", ln.strip()) and "-" in ln:
            continue
        if ln.startswith("> Stability:"):
            continue
        body.append(ln)
    flush()
    return [s for s in sections if s.heading or s.paragraphs]


def _md_inline(s: str) -> str:
    s = re.sub(r"!?\[([^\]]*)\]\[[^\]]*\]|!?\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or m.group(2) or "", s)
    s = re.sub(r"`([^`]*)`", r"\1", s)
    s = re.sub(r"\*\*([^*]+)\*\*|__([^_]+)__", lambda m: m.group(1) or m.group(2), s)
    s = re.sub(r"^\s*>\s?", "", s)
    s = re.sub(r"^\[[^\]]+\]:\s*\S+$", "", s.strip())
    return _flat(s)


# --------------------------------------------------------------------------- HTML (postgres, go)
class _HtmlSections(HTMLParser):
    BLOCK = {"p", "li", "dt", "dd", "pre", "td", "th", "blockquote", "div", "tr", "table", "ul", "ol", "dl", "br",
             "section", "article", "figcaption", "caption"}
    SKIP = {"script", "style", "head", "nav", "noscript"}
    SKIP_CLASS = re.compile(r"\b(navheader|navfooter|toc|navbar|breadcrumb|footer|header|sidebar)\b")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = [Section("")]
        self.buf: list[str] = []
        self.head: list[str] | None = None
        self.stack: list[tuple[str, bool]] = []  # (tag, skipping)
        self.title = ""
        self._in_title = False

    def _skipping(self) -> bool:
        return any(s for _, s in self.stack)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        skip = tag in self.SKIP or bool(self.SKIP_CLASS.search(a.get("class") or "")) or a.get("id") in ("nav", "toc")
        if tag not in ("br", "img", "hr", "meta", "link", "input", "wbr", "col", "area"):
            self.stack.append((tag, skip))
        if tag == "title":
            self._in_title = True
        if self._skipping():
            return
        if re.fullmatch(r"h[1-6]", tag):
            self._para()
            self.head = []
        elif tag in self.BLOCK:
            self._para()

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        skipping_before = self._skipping()
        for j in range(len(self.stack) - 1, -1, -1):
            if self.stack[j][0] == tag:
                del self.stack[j:]
                break
        if skipping_before and self._skipping():
            return
        if re.fullmatch(r"h[1-6]", tag) and self.head is not None:
            h = _flat("".join(self.head))
            h = re.sub(r"^(?:Chapter |Appendix )?[\dA-Z]+(?:\.\d+)*\.\s+", "", h).strip(" #¶")
            self.sections.append(Section(h))
            self.head = None
        elif tag in self.BLOCK:
            self._para()

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._skipping():
            return
        if self.head is not None:
            self.head.append(data)
        else:
            self.buf.append(data)

    def _para(self):
        p = _flat("".join(self.buf))
        self.buf = []
        if p:
            self.sections[-1].paragraphs.append(p)


def parse_html(text: str) -> tuple[str, list[Section]]:
    """HTML -> (title, sections at h1-h6); navigation, tables of contents, scripts dropped."""
    p = _HtmlSections()
    p.feed(text)
    p.close()
    p._para()
    return _flat(p.title), [s for s in p.sections if s.heading or s.paragraphs]


# --------------------------------------------------------------------------- Jargon File
def parse_jargon(text: str) -> list[Section]:
    """Entries ":headword: pos. [etym]" then definition paragraphs, up to the next entry."""
    sections: list[Section] = []
    cur: Section | None = None
    body: list[str] = []

    def flush():
        if cur is not None:
            cur.paragraphs.extend(p for p in (_flat(x.replace("{", "").replace("}", "")) for x in _paras(body)) if p)
        body.clear()

    for ln in text.replace("\r", "").split("\n"):
        m = re.match(r"\s{0,4}:([^:]+):\s*(.*)$", ln)
        if m:
            flush()
            cur = Section(m.group(1).strip())
            rest = m.group(2).strip()
            # the part of speech / pronunciation stays out of the definition
            rest = re.sub(r"^(?:/[^/]*/\s*,?\s*)?(?:(?:n|v|adj|adv|vt|vi|interj|pl|prep|conj|abbrev)\.\s*,?\s*)+", "", rest)
            rest = re.sub(r"^\[[^\]]*\]\s*", "", rest)
            body.append(rest)
            sections.append(cur)
        elif re.match(r"\s*(Node:|Next:|Previous:|Up:)", ln):
            continue
        elif cur is not None:
            body.append(ln)
    flush()
    return [s for s in sections if s.paragraphs]


# --------------------------------------------------------------------------- installed packages
_MAN_ELSEWHERE = re.compile(r"^(git|perl|pg_|psql|postgres|initdb|pgbench|ecpg|createdb|dropdb|createuser|dropuser|"
                            r"vacuumdb|reindexdb|clusterdb|node\b)|\.3pm$|\.3perl$|^[A-Z][A-Z_]+\.7$")


def man_page_wanted(base: str) -> bool:
    """False for man pages that repeat another domain's text (git, Perl and PostgreSQL manuals are read
    from their own packages, and a held-out document there must not come back as a man page) and for
    all but a stable 1 in 16 of gcloud's generated pages."""
    if _MAN_ELSEWHERE.search(base):
        return False
    if base.startswith("gcloud"):
        import hashlib

        return hashlib.sha1(base.encode()).digest()[0] < 16
    return True


def _files(base: Path, pattern: str) -> list[Path]:
    return sorted(p for p in base.glob(pattern) if p.is_file() and not _reserved(p))


def iter_docs(domains: set[str] | None = None) -> Iterator[Doc]:
    """Every document of the installed packages, in a fixed order; missing packages are skipped."""
    want = (lambda d: True) if domains is None else (lambda d: d in domains)
    r = ROOT
    if want("perl"):
        for p in _files(r / "usr/share/perl", "*/pod/*.pod"):
            if re.search(r"perl\d+delta|perltoc", p.name):
                continue  # change logs and the table of contents: lists, not prose
            name, secs = parse_pod(_read(p))
            if p.name.startswith("perlfaq") and p.stem[-1].isdigit():
                for s in secs:
                    s.question = s.heading.endswith("?")
            yield Doc("perl", f"perl/{p.name}", p.stem, secs, name)
    if want("debian-faq"):
        p = r / "usr/share/doc/debian/FAQ/debian-faq.en.txt.gz"
        if p.exists():
            yield Doc("debian-faq", "debian-faq", "Debian FAQ", parse_numbered_text(_read(p)))
    if want("debian-ref"):
        p = r / "usr/share/debian-reference/debian-reference.en.txt.gz"
        if p.exists():
            secs = parse_numbered_text(_read(p))
            for s in secs:
                s.question = False
            # one manual, many chapters: each chapter is a document for the held-out rule
            for k in range(0, len(secs), 12):  # 12 sections per document for the held-out rule
                yield Doc("debian-ref", f"debian-ref/{k // 12}", "Debian Reference", secs[k:k + 12])
    if want("git"):
        for p in _files(r / "usr/share/doc/git-doc", "*.txt"):
            t = _read(p)
            if p.name == "gitfaq.txt":
                yield Doc("git", "git/gitfaq", "gitfaq", parse_gitfaq(t))
                continue
            name, secs = parse_asciidoc(t)
            yield Doc("git", f"git/{p.name}", p.stem, secs, name)
    if want("man"):
        seen: set[str] = set()
        for p in _files(r / "usr/share/man", "man[1-8]/*"):
            base = re.sub(r"\.gz$", "", p.name)
            if base in seen:
                continue
            seen.add(base)
            if not man_page_wanted(base):
                continue
            t = _read(p)
            if re.match(r"\s*\.so\s", t) or len(t) < 200:
                continue  # alias page
            name, secs = parse_man(t)
            yield Doc("man", f"man/{p.parent.name}/{base}", base, secs, name)
    if want("jargon"):
        p = r / "usr/share/doc/jargon-text/jargon.txt.gz"
        if p.exists():
            entries = parse_jargon(_read(p))
            for k in range(0, len(entries), 50):  # 50 entries per document for the held-out rule
                yield Doc("jargon", f"jargon/{k // 50}", "Jargon File", entries[k:k + 50])
    if want("postgres"):
        for p in _files(r / "usr/share/doc", "postgresql-doc-*/html/*.html"):
            title, secs = parse_html(_read(p))
            yield Doc("postgres", f"postgres/{p.name}", title, secs)
    if want("node"):
        for p in _files(r / "usr/share/doc/nodejs/api", "*.md*"):
            if p.name.startswith(("all.", "index.")):
                continue
            yield Doc("node", f"node/{p.name}", p.name.split(".")[0], parse_markdown(_read(p)))
    if want("go"):
        for p in _files(r / "usr/share/doc", "golang-*-doc/html/*.html"):
            if re.match(r"go1\.\d+_spec", p.name):
                continue  # an older copy of the spec
            title, secs = parse_html(_read(p))
            yield Doc("go", f"go/{p.name}", title, secs)
    if want("kernel"):
        docs = sorted({q for q in (r / "usr/share/doc").glob("linux-doc-*/Documentation/**/*.rst*")})
        for p in docs:
            if _reserved(p) or "/translations/" in str(p) or "/ABI/" in str(p):
                continue  # translations are not English; ABI files are lists
            rel = str(p).split("/Documentation/", 1)[1]
            yield Doc("kernel", f"kernel/{rel}", rel, parse_rst(_read(p)))
