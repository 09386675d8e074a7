"""The documentation extractors and the passage splitter of issue 10, on small inline samples."""
import random
from pathlib import Path

import pytest

try:
    from vectord.encoder.training import corpus2, docsources as ds, passages
except ImportError:
    from encoder.training import corpus2, docsources as ds, passages


def words(texts):
    return [len(t.split()) for t in texts]


def test_pod_sections_questions_and_inline_codes():
    pod = """=head1 NAME

perlfaq4 - Data Manipulation

=head2 How do I round a number?

Use C<sprintf()> or B<printf>, see L<perlfunc/sprintf> and E<lt>tagsE<gt>.

    printf("%.3f", 3.1415926535);   # prints 3.142

=over 4

=item int

=back

=head2 Why am I getting long decimals?

Internally, computers represent floating-point numbers in binary.

=cut
"""
    name, secs = ds.parse_pod(pod)
    assert name == "perlfaq4 - Data Manipulation"
    assert [s.heading for s in secs] == ["NAME", "How do I round a number?", "Why am I getting long decimals?"]
    body = secs[1].paragraphs
    assert body[0] == "Use sprintf() or printf, see perlfunc sprintf and <tags>."
    assert body[1].startswith('printf("%.3f", 3.1415926535);')
    assert body[2] == "int"


def test_man_name_description_and_fonts():
    man = r""".\" comment
.TH OPEN 2 2023-03-30 "Linux man-pages 6.03"
.SH NAME
open, openat, creat \- open and possibly create a file
.SH SYNOPSIS
.nf
.B #include <fcntl.h>
.fi
.SH DESCRIPTION
The
.BR open ()
system call opens the file specified by
.IR pathname .
If the specified file does not exist, it may optionally be created by \fBopen\fP().
.PP
A second paragraph with a \(em dash.
.TS
allbox;
l l.
a	b
.TE
.SS Flags
Text of a subsection.
"""
    name, secs = ds.parse_man(man)
    assert name == "open, openat, creat - open and possibly create a file"
    heads = [s.heading for s in secs]
    assert heads == ["NAME", "SYNOPSIS", "DESCRIPTION", "Flags"]
    desc = secs[2].paragraphs
    assert desc[0] == ("The open() system call opens the file specified by pathname. If the specified file "
                       "does not exist, it may optionally be created by open().")
    assert desc[1] == "A second paragraph with a - dash."
    assert len(desc) == 2  # the table is dropped
    assert secs[3].paragraphs == ["Text of a subsection."]


def test_numbered_text_skips_toc_and_marks_questions():
    text = """Table of Contents
    1.1. What is this FAQ?
    1.2. What is Debian
    GNU/Linux?

Chapter 1. Definitions and overview

1.1. What is this FAQ?

    This document gives frequently asked questions (with their
    answers!) about the Debian distribution.

1.2. What is Debian
GNU/Linux?

    Debian is a free operating system.

    Second paragraph.

1.3. Mailing lists

    Lists.
"""
    secs = ds.parse_numbered_text(text)
    assert [s.heading for s in secs] == ["Definitions and overview", "What is this FAQ?",
                                         "What is Debian GNU/Linux?", "Mailing lists"]
    assert [s.question for s in secs] == [False, True, True, False]
    assert secs[1].paragraphs == ["This document gives frequently asked questions (with their answers!) about "
                                  "the Debian distribution."]
    assert secs[2].paragraphs == ["Debian is a free operating system.", "Second paragraph."]


def test_gitfaq_entries():
    text = """gitfaq(7)
=========

Configuration
-------------

[[user-name]]
What should I put in `user.name`?::
	You should put your personal name, generally a form using a given name
	and family name.
+
It is not a username.

[[http-postbuffer]]
What does `http.postBuffer` really do?::
	This option changes the size of the buffer.
"""
    secs = ds.parse_gitfaq(text)
    assert [s.heading for s in secs] == ["What should I put in user.name?", "What does http.postBuffer really do?"]
    assert all(s.question for s in secs)
    assert secs[0].paragraphs == ["You should put your personal name, generally a form using a given name and "
                                  "family name.", "It is not a username."]


def test_asciidoc_name_and_listing_blocks():
    text = """git-add(1)
==========

NAME
----
git-add - Add file contents to the index

DESCRIPTION
-----------
This command updates the index using the current content found in
the working tree.

------------
$ git add Documentation/\\*.txt
------------

-v::
--verbose::
	Be verbose.
"""
    name, secs = ds.parse_asciidoc(text)
    assert name == "git-add - Add file contents to the index"
    assert [s.heading for s in secs] == ["git-add(1)", "NAME", "DESCRIPTION"]
    assert secs[2].paragraphs[0] == ("This command updates the index using the current content found in the "
                                     "working tree.")
    assert any("git add" in p for p in secs[2].paragraphs)


def test_rst_titles_directives_and_roles():
    text = """.. SPDX-License-Identifier: GPL-2.0

==========
PCI Guide
==========

.. toctree::
   :maxdepth: 1

   pci

Overview
--------

Use :c:func:`pci_enable_device` and ``lspci``, see `the docs <https://x>`_.

.. note::
   A note that stays.
"""
    secs = ds.parse_rst(text)
    assert [s.heading for s in secs] == ["PCI Guide", "Overview"]
    assert secs[0].paragraphs == []
    assert secs[1].paragraphs[0] == "Use pci_enable_device and lspci, see the docs."
    assert "A note that stays." in " ".join(secs[1].paragraphs)


def test_markdown_headings_fences_comments():
    text = """# File system

<!--introduced_in=v0.10.0-->

> Stability: 2 - Stable

The `node:fs` module enables interacting with the [file system][].

```js
import * as fs from 'node:fs';
```

## Promise example

Operations return a **promise**.
"""
    secs = ds.parse_markdown(text)
    assert [s.heading for s in secs] == ["File system", "Promise example"]
    assert secs[0].paragraphs[0] == "The node:fs module enables interacting with the file system."
    assert "import * as fs from 'node:fs';" in secs[0].paragraphs
    assert secs[1].paragraphs == ["Operations return a promise."]


def test_html_sections_skip_navigation():
    text = """<html><head><title>CREATE TABLE</title><style>p{}</style></head><body>
<div class="navheader"><a href="x">Prev</a> Next</div>
<h1>5.1. Table Basics</h1>
<p>A table in a relational database is much like a table
on paper.</p><pre>CREATE TABLE t (a int);</pre>
<h2 class="title">Default Values &amp; more</h2><ul><li>One</li><li>Two</li></ul>
<div class="navfooter">Home</div></body></html>"""
    title, secs = ds.parse_html(text)
    assert title == "CREATE TABLE"
    assert [s.heading for s in secs] == ["Table Basics", "Default Values & more"]
    assert secs[0].paragraphs == ["A table in a relational database is much like a table on paper.",
                                  "CREATE TABLE t (a int);"]
    assert secs[1].paragraphs == ["One", "Two"]


def test_jargon_entries():
    text = """   :cruft: /kruhft/
   n. [very common] 1. An unpleasant substance. The dust that gathers
   under your bed is cruft.

   2. Excess; superfluous junk.

   :crufty: adj. Poorly built, possibly over-complex. See {cruft}.
"""
    secs = ds.parse_jargon(text)
    assert [s.heading for s in secs] == ["cruft", "crufty"]
    assert secs[0].paragraphs[0].endswith("under your bed is cruft.")
    assert secs[1].paragraphs == ["Poorly built, possibly over-complex. See cruft."]


def test_reserved_paths_are_refused(tmp_path):
    p = tmp_path / "python3.11-doc" / "faq.txt"
    p.parent.mkdir()
    p.write_text("x")
    with pytest.raises(ValueError, match="reserved for evaluation"):
        ds._read(p)
    assert ds._reserved(Path("/usr/share/games/fortunes/fortunes"))
    assert not ds._reserved(Path("/usr/share/perl/5.36/pod/perlfaq1.pod"))


def test_split_sentences():
    s = "First one. Second (with e.g. a note)? Third: yes! lower case stays. 4 is a digit."
    assert passages.split_sentences(s) == ["First one.", "Second (with e.g. a note)?",
                                           "Third: yes! lower case stays.", "4 is a digit."]


def test_pack_respects_bounds_with_word_counter():
    rng = random.Random(1)
    az = "abcdefghijklmnopqrstuvwxyz"
    paras = [" ".join(f"w{az[i]}{az[j // 26]}{az[j % 26]}" for j in range(n))
             for i, n in enumerate([30, 50, 400, 20, 5, 70, 3])]
    out = passages.passages(paras, rng, count=words)
    assert all(passages.MIN_KEEP <= n <= passages.MAX_PASSAGE for _, n in out)
    assert all(len(t.split()) == n for t, n in out)  # counts are additive over whitespace
    joined = " ".join(t for t, _ in out).split()
    assert joined == " ".join(paras).split()  # nothing lost, order kept


def test_pack_tail_joins_previous_when_it_fits():
    rng = random.Random(0)
    out = passages.pack([("a " * 100, 100), ("b " * 10, 10)], rng, lo=64, hi=254)
    assert len(out) == 1 and out[0][1] == 110


def test_real_tokenizer_counts_fit_the_window():
    text = ("The postmaster process listens for connections and forks a backend for each one. " * 40).strip()
    out = passages.passages([text, "Short tail sentence about sockets and ports."], random.Random(3))
    assert out
    real = passages.count_tokens([t for t, _ in out])
    assert [n for _, n in out] == real
    assert all(n <= passages.MAX_PASSAGE for n in real)


def test_held_out_rules_are_stable():
    assert corpus2.stable_hash("perl/perlfunc.pod") == corpus2.stable_hash("perl/perlfunc.pod")
    qs = [f"How do I do thing number {i}?" for i in range(3000)]
    frac = sum(corpus2.held_question(q) for q in qs) / len(qs)
    assert 0.30 < frac < 0.37
    assert corpus2.held_question("How do I X?") == corpus2.held_question("  how do I   x? ")
    gitfaq = ds.Doc("git", "git/gitfaq", "gitfaq", [ds.Section("Why?", ["Because."], True)])
    assert corpus2.held_doc(gitfaq)


def test_heading_anchor_prefixes_short_headings_and_skips_generic():
    doc = ds.Doc("kernel", "kernel/x.rst", "x.rst", [ds.Section("PCI Express Port Bus Driver", ["x"])])
    assert corpus2.heading_anchor(doc, "Overview") is None
    assert corpus2.heading_anchor(doc, "Error handling") == "PCI Express Port Bus Driver: Error handling"
    assert corpus2.heading_anchor(doc, "How interrupts are routed") == "How interrupts are routed"
