"""A hypothesis state machine: the storage engine against a plain Python model.

The model is a dict ``id -> (vector, document, metadata)``. Every rule applies the same
operation to the engine (in-process, ``vectord.storage.Database``) and to the model, then
compares. The engine runs with tiny ``Tuning`` thresholds so that checkpoints (background
and explicit), compaction and the hnswlib path are all reached within a few steps.

``restart`` closes the database and checks what is on disk from a FRESH PROCESS (a Python
subprocess that opens the same directory with the same tuning and dumps every record as
JSON), then reopens it here. ``crash`` hands the directory to a subprocess that applies a
few writes and dies with ``os._exit`` without closing anything: every write it was told was
acknowledged must be there afterwards.

Profiles: ``ci`` (default, a couple of minutes on slow cores) and ``long``
(``VECTORD_HYPOTHESIS_PROFILE=long``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from vectord.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from vectord.storage import And, Database, Document, Field, Not, Or, Tuning
from vectord.storage.fsio import FileSystem

settings.register_profile(
    "ci", max_examples=25, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "long", max_examples=300, stateful_step_count=80, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("VECTORD_HYPOTHESIS_PROFILE", "ci")
pytestmark = pytest.mark.timeout(3600 if PROFILE == "long" else 600)

IDS = [f"r{i}" for i in range(36)]
MAX_DIM = 8
KEYS = ["n", "flag", "nested", "mix"]
WORDS = ["apple", "banana", "cherry", "apple pie", ""]
COLLECTION = "sm"

# ---------------------------------------------------------------------------- strategies

# Small pools so that values collide across types (1, 1.0, True): the engine must keep
# the type a caller wrote, and the filters must tell bools from numbers.
scalars = st.one_of(
    st.integers(-1, 2),
    st.sampled_from([0.0, 1.0, 2.5]),
    st.sampled_from(["x", "y", "z"]),
    st.booleans(),
)
nested_values = st.dictionaries(st.sampled_from(["a", "b"]), st.one_of(scalars, st.none()), max_size=2)
meta_value = st.one_of(scalars, nested_values)
#: Metadata as stored by add (None values are dropped by the merge anyway).
metadata_new = st.dictionaries(st.sampled_from(KEYS), meta_value, max_size=4)
#: Metadata for upsert/update: None removes a key.
metadata_patch = st.dictionaries(st.sampled_from(KEYS), st.one_of(meta_value, st.none()), max_size=3)
documents = st.one_of(st.none(), st.sampled_from(WORDS))
#: Components in [-1, 1] on a grid of 1/1000: cheap for hypothesis to generate and shrink
#: (raw floats exhaust its data buffer after a few steps); ties are allowed for in `query`.
raw_vector = st.lists(st.integers(-1000, 1000).map(lambda x: x / 1000.0),
                      min_size=MAX_DIM, max_size=MAX_DIM)


@st.composite
def batches(draw, metadata):
    """ids with one (raw vector, document, metadata) per id."""
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=6, unique=True))
    n = len(ids)
    raws = draw(st.lists(raw_vector, min_size=n, max_size=n))
    docs = draw(st.lists(documents, min_size=n, max_size=n))
    metas = draw(st.lists(metadata, min_size=n, max_size=n))
    return ids, raws, docs, metas

field_paths = st.sampled_from(["n", "flag", "mix", "nested.a", "nested.b", "missing"])


@st.composite
def field_conditions(draw):
    op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists"]))
    path = draw(field_paths)
    if op in ("eq", "ne"):
        value = draw(scalars)
    elif op in ("gt", "gte", "lt", "lte"):
        value = draw(st.one_of(st.integers(-1, 2), st.sampled_from([0.0, 1.0, 2.5])))
    elif op in ("in", "nin"):
        value = draw(st.lists(scalars, min_size=1, max_size=3))
    else:
        value = draw(st.booleans())
    return Field(path, op, value)


document_conditions = st.builds(Document, st.sampled_from(["contains", "not_contains"]),
                                st.sampled_from(["apple", "an", "pie"]))
filters = st.recursive(
    st.one_of(field_conditions(), document_conditions),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: Or(tuple(xs))),
        children.map(Not),
    ),
    max_leaves=4,
)

# ---------------------------------------------------------------------------- model helpers

_MISSING = object()


def strict_eq(a: Any, b: Any) -> bool:
    """Equality that tells bool from int from float (True != 1, 1 != 1.0), recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_eq(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_eq(x, y) for x, y in zip(a, b))
    return a == b


def merge(old: dict, patch: dict | None) -> dict:
    if patch is None:
        return dict(old)
    out = dict(old)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_num(a) and _is_num(b):
        return a == b
    return type(a) is type(b) and a == b


def _lookup(meta: dict, path: str) -> Any:
    value: Any = meta
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def matches(node, meta: dict, doc: str | None) -> bool:
    """The documented filter semantics, written independently of storage/filters.py."""
    if isinstance(node, And):
        return all(matches(f, meta, doc) for f in node.filters)
    if isinstance(node, Or):
        return any(matches(f, meta, doc) for f in node.filters)
    if isinstance(node, Not):
        return not matches(node.filter, meta, doc)
    if isinstance(node, Document):
        if node.op == "contains":
            return doc is not None and node.text in doc
        return doc is None or node.text not in doc
    v = _lookup(meta, node.path)
    op, x = node.op, node.value
    if op == "exists":
        return (v is not _MISSING) == x
    if op in ("eq", "ne"):
        eq = v is not _MISSING and _same(v, x)
        return eq if op == "eq" else not eq
    if op in ("in", "nin"):
        member = v is not _MISSING and any(_same(v, o) for o in x)
        return member if op == "in" else not member
    if not _is_num(v):
        return False
    return {"gt": v > x, "gte": v >= x, "lt": v < x, "lte": v <= x}[op]


def bm25_scores(documents: dict[str, str], query: str) -> dict[str, float]:
    """BM25 (Lucene's idf, k1 1.2, b 0.75) of each document holding a query term, by the
    formula; the terms come from the collection's default analyzer."""
    from collections import Counter
    from math import log

    from vectord.storage.analyzers import DEFAULT_FULLTEXT, analyzer

    analyze = analyzer(DEFAULT_FULLTEXT)
    terms = {i: analyze(d) for i, d in documents.items()}
    if not terms:
        return {}
    avgdl = sum(map(len, terms.values())) / len(terms)
    out = {}
    for i, ts in terms.items():
        counts, score = Counter(ts), 0.0
        for t in dict.fromkeys(analyze(query)):
            if counts[t]:
                df = sum(1 for other in terms.values() if t in other)
                idf = log(1 + (len(terms) - df + 0.5) / (df + 0.5))
                score += idf * counts[t] * 2.2 / (counts[t] + 1.2 * (0.25 + 0.75 * len(ts) / avgdl))
        if score > 0:
            out[i] = score
    return out


def cosine_distances(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    m = matrix.astype(np.float64)
    q = query.astype(np.float64)
    return 1.0 - (m @ q) / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))


# ---------------------------------------------------------------------------- fresh-process dump

# fsync is skipped (NoSync) to keep the run short on slow disks: it only matters for power
# loss, and every crash simulated here is a process death, after which the page cache (so
# everything written) survives. Every other file operation is the engine's real one.
DUMP_SCRIPT = r"""
import json, os, sys
from vectord.storage import Database, Tuning
from vectord.storage.fsio import FileSystem
class NoSync(FileSystem):
    def fsync(self, fd):
        pass
path, tuning, name = sys.argv[1], Tuning(**json.loads(sys.argv[2])), sys.argv[3]
db = Database(path, tuning=tuning, fs=NoSync(), checkpoint_interval_s=3600)
ops = json.loads(sys.stdin.read() or "[]")
col = db.get_collection(name)
acked = []
for op in ops:
    if op["op"] == "upsert":
        col.upsert(op["ids"], op["vectors"], op["documents"], op["metadatas"])
    elif op["op"] == "delete":
        col.delete(op["ids"])
    acked.append(op["n"])
if ops:
    # a crash: every write above returned (is acknowledged); nothing is closed or flushed
    sys.stdout.write(json.dumps({"acked": acked}))
    sys.stdout.flush()
    os._exit(0)
got = col.get(include=["embeddings", "documents", "metadatas"])
out = {"ids": got.ids, "documents": got.documents, "metadatas": got.metadatas,
       "embeddings": got.embeddings.tolist(), "count": col.count(),
       "damaged": db.damaged_collections()}
sys.stdout.write(json.dumps(out))
db.close()
"""


class NoSync(FileSystem):
    def fsync(self, fd: int) -> None:
        pass


NO_SYNC = NoSync()


def run_fresh(path: str, tuning: Tuning, stdin: str = "") -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", DUMP_SCRIPT, path, json.dumps(asdict(tuning)), COLLECTION],
        input=stdin, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------------- the machine


class VectordMachine(RuleBasedStateMachine):
    #: Knobs a variant adds (tests/test_state_machine_segments.py: sealed segments).
    EXTRA_KNOBS: dict[str, Any] = {}

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="vectord-sm-")
        self.path = os.path.join(self.dir, "data")
        self.model: dict[str, tuple[np.ndarray, str | None, dict]] = {}
        self.db: Database | None = None
        self.col = None
        self.found = 0
        self.expected = 0

    # -- lifecycle
    @initialize(dim=st.integers(4, MAX_DIM), compact_ratio=st.sampled_from([0.0, 0.1, 0.3]),
                exact_threshold=st.sampled_from([4, 8]))
    def start(self, dim, compact_ratio, exact_threshold):
        self.dim = dim
        knobs = dict(exact_threshold=exact_threshold, exact_filter_limit=4, graph_cost_per_ef=0,
                     checkpoint_min_bytes=1, checkpoint_ratio=0.0,
                     compact_min_dead=1, compact_ratio=compact_ratio, index_threads=1, **self.EXTRA_KNOBS)
        # knobs this version of the engine does not have are left out
        self.tuning = Tuning(**{k: v for k, v in knobs.items() if k in Tuning.__dataclass_fields__})
        self._open()
        self.col = self.db.create_collection(COLLECTION, dim=dim, metric="cosine",
                                             hnsw={"m": 8, "ef_construction": 64, "ef_search": 32})
        self._hold_indexer()

    def _open(self) -> None:
        self.db = Database(self.path, tuning=self.tuning, fs=NO_SYNC, checkpoint_interval_s=3600)
        if COLLECTION in {c.name for c in self.db.list_collections()}:
            self.col = self.db.get_collection(COLLECTION)
            self._hold_indexer()
        assert self.db.damaged_collections() == {}

    def _hold_indexer(self) -> None:
        """The background indexer (storage/indexer.py) is stopped: the index_step rule
        moves the exact tail into the graph, so that a run replays the same way."""
        indexer = getattr(self.col, "_indexer", None)
        if indexer is not None:
            indexer.stop()

    def teardown(self) -> None:
        try:
            if self.db is not None:
                self.db.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self.expected:
            recall = self.found / self.expected
            assert recall >= 0.95, f"recall@k {recall:.3f} over the run (< 0.95)"

    # -- helpers
    def vectors(self, raws: list[list[float]]) -> np.ndarray:
        out = np.asarray([r[: self.dim] for r in raws], np.float32).reshape(len(raws), self.dim)
        for row in out:
            if float(np.linalg.norm(row.astype(np.float64))) < 1e-3:
                row[:] = 0
                row[0] = 1.0
        return out

    def snapshot(self) -> dict:
        return {k: (v.copy(), d, dict(m)) for k, (v, d, m) in self.model.items()}

    def assert_model_equals(self, ids, documents, metadatas, embeddings) -> None:
        assert sorted(ids) == sorted(self.model), "ids differ from the model"
        assert len(set(ids)) == len(ids), "duplicate ids"
        for i, id_ in enumerate(ids):
            vector, document, metadata = self.model[id_]
            assert documents[i] == document, (id_, documents[i], document)
            assert strict_eq(metadatas[i], metadata), (id_, metadatas[i], metadata)
            assert np.array_equal(np.asarray(embeddings[i], np.float32), vector), id_

    def assert_engine_matches(self) -> None:
        got = self.col.get(include=["embeddings", "documents", "metadatas"])
        self.assert_model_equals(got.ids, got.documents, got.metadatas, got.embeddings)
        assert self.col.count() == len(self.model)

    # -- writes
    @rule(batch=batches(metadata_new),
          with_docs=st.booleans(), with_metas=st.booleans())
    def add(self, batch, with_docs, with_metas):
        ids, raws, docs, metas = batch
        n = len(ids)
        vectors = self.vectors(raws[:n])
        docs_arg = docs[:n] if with_docs else None
        metas_arg = metas[:n] if with_metas else None
        if any(i in self.model for i in ids):
            before = self.snapshot()
            with pytest.raises(AlreadyExistsError):
                self.col.add(ids, vectors, docs_arg, metas_arg)
            assert self.snapshot().keys() == before.keys()
            self.assert_engine_matches()
            return
        result = self.col.add(ids, vectors, docs_arg, metas_arg)
        assert result.inserted == n and result.updated == 0
        for j, id_ in enumerate(ids):
            self.model[id_] = (vectors[j], docs_arg[j] if docs_arg else None,
                               merge({}, metas_arg[j] if metas_arg else None))

    @rule(id_=st.sampled_from(IDS), raw=raw_vector, method=st.sampled_from(["add", "upsert"]))
    def write_duplicate_in_batch(self, id_, raw, method):
        vectors = self.vectors([raw, raw])
        with pytest.raises(InvalidArgumentError):
            getattr(self.col, method)([id_, id_], vectors)
        self.assert_engine_matches()

    @rule(batch=batches(metadata_patch),
          with_vectors=st.booleans(), with_docs=st.booleans(), with_metas=st.booleans())
    def upsert(self, batch, with_vectors, with_docs, with_metas):
        ids, raws, docs, metas = batch
        n = len(ids)
        vectors = self.vectors(raws[:n]) if with_vectors else None
        docs_arg = docs[:n] if with_docs else None
        metas_arg = metas[:n] if with_metas else None
        if vectors is None and any(i not in self.model for i in ids):
            with pytest.raises(InvalidArgumentError):
                self.col.upsert(ids, vectors, docs_arg, metas_arg)
            self.assert_engine_matches()
            return
        self.col.upsert(ids, vectors, docs_arg, metas_arg)
        self._apply_patch(ids, vectors, docs_arg, metas_arg)

    def _apply_patch(self, ids, vectors, docs_arg, metas_arg) -> None:
        for j, id_ in enumerate(ids):
            old = self.model.get(id_)
            vector = vectors[j] if vectors is not None else old[0]
            document = docs_arg[j] if docs_arg is not None else None
            metadata = metas_arg[j] if metas_arg is not None else None
            if old is None:
                self.model[id_] = (vector, document, merge({}, metadata))
            else:
                self.model[id_] = (vector, old[1] if document is None else document,
                                   merge(old[2], metadata))

    @rule(batch=batches(metadata_patch),
          with_vectors=st.booleans(), with_docs=st.booleans(), with_metas=st.booleans())
    def update(self, batch, with_vectors, with_docs, with_metas):
        ids, raws, docs, metas = batch
        n = len(ids)
        vectors = self.vectors(raws[:n]) if with_vectors else None
        docs_arg = docs[:n] if with_docs else None
        metas_arg = metas[:n] if with_metas else None
        if any(i not in self.model for i in ids):
            with pytest.raises(NotFoundError):
                self.col.update(ids, vectors, docs_arg, metas_arg)
            self.assert_engine_matches()
            return
        self.col.update(ids, vectors, docs_arg, metas_arg)
        self._apply_patch(ids, vectors, docs_arg, metas_arg)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), method=st.sampled_from(["update", "upsert"]))
    def retype_metadata(self, data, method):
        """Writes a value equal in Python but of another type (1 / 1.0 / True): a change."""
        id_ = data.draw(st.sampled_from(sorted(self.model)))
        metadata = self.model[id_][2]
        key = data.draw(st.sampled_from(KEYS))
        old = metadata.get(key)
        if isinstance(old, (bool, int, float)) and old in (0, 1):
            options = [v for v in (int(old), float(old), bool(old)) if type(v) is not type(old)]
        else:
            options = [1, 1.0, True]
        value = data.draw(st.sampled_from(options))
        getattr(self.col, method)([id_], metadatas=[{key: value}])
        self._apply_patch([id_], None, None, [{key: value}])
        got = self.col.get([id_]).metadatas[0]
        assert strict_eq(got, self.model[id_][2]), (got, self.model[id_][2])

    @rule(ids=st.lists(st.sampled_from(IDS), min_size=0, max_size=8, unique=True))
    def delete_ids(self, ids):
        expected = [i for i in ids if i in self.model]
        result = self.col.delete(ids)
        assert result.deleted == len(expected)
        for i in expected:
            del self.model[i]

    @rule(where=filters)
    def delete_where(self, where):
        expected = [i for i, (_, d, m) in self.model.items() if matches(where, m, d)]
        result = self.col.delete(where=where)
        assert result.deleted == len(expected), (where, expected)
        for i in expected:
            del self.model[i]

    # -- reads
    @rule(ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=10, unique=True))
    def get_ids(self, ids):
        got = self.col.get(ids, include=["embeddings", "documents", "metadatas"])
        expected = [i for i in ids if i in self.model]
        assert got.ids == expected, "get by ids: found records in the order asked"
        for j, id_ in enumerate(expected):
            vector, document, metadata = self.model[id_]
            assert got.documents[j] == document
            assert strict_eq(got.metadatas[j], metadata), (id_, got.metadatas[j], metadata)
            assert np.array_equal(got.embeddings[j], vector)

    @rule(where=filters, limit=st.integers(1, 6), offset=st.integers(0, 6))
    def get_where(self, where, limit, offset):
        got = self.col.get(where=where)
        expected = {i for i, (_, d, m) in self.model.items() if matches(where, m, d)}
        assert sorted(got.ids) == sorted(expected), where
        assert len(got.ids) == len(set(got.ids))
        for j, id_ in enumerate(got.ids):
            assert strict_eq(got.metadatas[j], self.model[id_][2])
            assert got.documents[j] == self.model[id_][1]
        page = self.col.get(where=where, limit=limit, offset=offset)
        assert page.ids == got.ids[offset:offset + limit], "pages follow the stable order"

    @rule(where=st.one_of(st.none(), filters))
    def count(self, where):
        expected = sum(1 for _, d, m in self.model.values() if where is None or matches(where, m, d))
        assert self.col.count(where) == expected

    @rule(raw=raw_vector, k=st.integers(1, 12), where=st.one_of(st.none(), st.none(), filters))
    def query(self, raw, k, where):
        q = self.vectors([raw])
        result = self.col.query(q, n_results=k, where=where,
                                include=["distances", "documents", "metadatas", "embeddings"])[0]
        candidates = [i for i, (_, d, m) in self.model.items() if where is None or matches(where, m, d)]
        assert len(result.ids) == min(k, len(candidates)), (len(result.ids), k, len(candidates))
        assert len(set(result.ids)) == len(result.ids)
        if not candidates:
            return
        matrix = np.stack([self.model[i][0] for i in candidates])
        true = dict(zip(candidates, cosine_distances(matrix, q[0])))
        kth = sorted(true.values())[len(result.ids) - 1]
        got_d = np.asarray(result.distances, np.float64)
        assert np.all(np.diff(got_d) >= -1e-5), "nearest first"
        hits = 0
        for j, id_ in enumerate(result.ids):
            assert id_ in true, f"{id_} does not match the filter or does not exist"
            assert abs(got_d[j] - true[id_]) < 1e-4, (id_, got_d[j], true[id_])
            assert np.array_equal(result.embeddings[j], self.model[id_][0])
            assert strict_eq(result.metadatas[j], self.model[id_][2])
            hits += true[id_] <= kth + 1e-5  # ties with the k-th distance count as hits
        if len(self.model) < self.tuning.exact_threshold:  # no graph: exact search
            assert hits == len(result.ids), "exact search must be exact"
        self.found += hits
        self.expected += len(result.ids)

    @rule(text=st.sampled_from(["apple", "banana pie", "cherry apple", "pie", "durian"]),
          k=st.integers(1, 12), where=st.one_of(st.none(), st.none(), filters))
    def query_bm25(self, text, k, where):
        """Keyword ranking: exactly the live matching records holding a query term, with the
        BM25 scores of a brute-force formula over the model's documents."""
        result = self.col.query(texts=[text], n_results=k, where=where, rank="bm25")[0]
        expected = bm25_scores({i: d for i, (_, d, _) in self.model.items() if d is not None}, text)
        expected = {i: v for i, v in expected.items()
                    if where is None or matches(where, self.model[i][2], self.model[i][1])}
        assert len(result.ids) == min(k, len(expected)), (result.ids, expected)
        scores = np.asarray(result.scores, np.float64)
        assert np.all(np.diff(scores) <= 1e-6), "best first"
        for id_, score in zip(result.ids, scores):
            assert id_ in expected, f"{id_} holds no query term, or does not match the filter"
            assert abs(score - expected[id_]) < 1e-4 * max(1.0, expected[id_]), (id_, score, expected[id_])
        if result.ids:  # nothing left out scores above the last result (ties may go either way)
            assert sorted(expected.values(), reverse=True)[len(result.ids) - 1] <= scores[-1] + 1e-4

    # -- durability
    @rule(force=st.booleans())
    def checkpoint(self, force):
        if force:
            self.col.checkpoint(force=True)
        else:
            self.db.checkpoint(COLLECTION)
        self.assert_engine_matches()

    @rule(through_db=st.booleans())
    def compact(self, through_db):
        """Every deleted slot compacted away now (the new structures are built beside the
        old ones and swapped in: storage/compaction.py); the answers do not change."""
        if through_db:
            self.db.checkpoint(COLLECTION, compact=True)
        else:
            self.col.checkpoint(compact=True)
        assert self.col.stats()["deleted_slots"] == 0
        self.assert_engine_matches()

    @rule(rows=st.integers(1, 6))
    def index_step(self, rows):
        """The indexer moves part of the exact tail into the graph; the answers do not change."""
        indexer = getattr(self.col, "_indexer", None)
        if indexer is not None:
            indexer.step(rows)
        self.assert_engine_matches()

    @rule()
    def restart(self):
        self.db.close()
        self.db, self.col = None, None
        dump = run_fresh(self.path, self.tuning)
        assert dump["damaged"] == {}
        assert dump["count"] == len(self.model)
        self.assert_model_equals(dump["ids"], dump["documents"], dump["metadatas"], dump["embeddings"])
        self._open()
        self.assert_engine_matches()

    @rule(ops=st.lists(st.tuples(st.booleans(), batches(metadata_patch)), min_size=1, max_size=4))
    def crash(self, ops):
        """A process applies writes and dies without closing; acknowledged writes survive."""
        self.db.close()
        self.db, self.col = None, None
        payload = []
        for n, (is_delete, (ids, raws, docs, metas)) in enumerate(ops):
            if is_delete:
                payload.append({"op": "delete", "ids": ids, "n": n})
                for i in ids:
                    self.model.pop(i, None)
            else:
                vectors = self.vectors(raws[: len(ids)])
                payload.append({"op": "upsert", "ids": ids, "vectors": vectors.tolist(),
                                "documents": docs[: len(ids)], "metadatas": metas[: len(ids)], "n": n})
                self._apply_patch(ids, vectors, docs[: len(ids)], metas[: len(ids)])
        out = run_fresh(self.path, self.tuning, json.dumps(payload))
        assert out["acked"] == list(range(len(ops)))
        self._open()
        self.assert_engine_matches()

    @invariant()
    def count_matches(self):
        if self.col is not None:
            assert self.col.count() == len(self.model)


VectordMachine.TestCase.settings = settings.get_profile(PROFILE)
TestVectordStateMachine = VectordMachine.TestCase
