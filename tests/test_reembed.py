"""Re-embedding a collection with another model, online and resumable (issue 10, item 6):
Admin.ReembedCollection, `vectord collections reembed`, storage/reembed.py.

Two real models: the shipped default model and a tiny ONNX model the test builds
(tests/tiny_model.py)."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import vectord  # noqa: E402
import tiny_model  # noqa: E402
from serverproc import start_server  # noqa: E402
from vectord.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError  # noqa: E402
from vectord.server.encoders import BuiltinEncoders  # noqa: E402
from vectord.storage import Database, reembed  # noqa: E402
from vectord.storage.types import Tuning  # noqa: E402

WORDS = tiny_model.WORDS
DEFAULT = vectord.encoder.DEFAULT_MODEL  # the model new collections take


def docs(n: int, seed: int = 0) -> list[str]:
    rng = np.random.RandomState(seed)
    return [" ".join(WORDS[j] for j in rng.randint(0, len(WORDS), size=rng.randint(2, 7))) for _ in range(n)]


@pytest.fixture
def models_dir(tmp_path):
    tiny_model.build(tmp_path / "models" / "tiny")
    return tmp_path / "models"


def _expect_all_of(collection, tiny):
    """Every live record's vector is exactly the model's vector of its document."""
    got = collection.get(include=["embeddings", "documents"])
    assert got.embeddings.shape[1] == tiny.dim
    assert np.array_equal(got.embeddings, tiny.embed(got.documents))
    return got


def test_reembed_resumes_after_restart_and_keeps_concurrent_writes(models_dir, tmp_path):
    tuning = Tuning(exact_threshold=8)  # a graph exists before and after the switch
    texts = docs(30)
    with Database(tmp_path / "d", tuning=tuning, encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.create_collection("docs")  # the default model
        col.add(ids=[str(i) for i in range(30)], documents=texts, metadatas=[{"i": i} for i in range(30)])
        first = reembed.step(col, db.encoders, "tiny-test", batch=10)
        assert (first.done, first.total, first.switched) == (10, 30, False)
        # the collection is untouched until the switch: old model, old dim, queries work
        assert col.config.encoder["name"] == DEFAULT and col.config.dim == 384
        assert col.query(texts=[texts[3]], n_results=1)[0].ids[0] == "3"
        # writes meanwhile, with the old model: a done record changed, one added, one deleted
        col.upsert(ids=["0"], documents=["cat dog cat dog"])
        col.add(ids=["new"], documents=["river water stone"])
        col.delete(ids=["5"])
        col.update(ids=["1"], metadatas=[{"touched": True}])  # metadata only: its vector stays valid
    # a restart: the progress on disk is reloaded, not recomputed
    with Database(tmp_path / "d", tuning=tuning, encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.get_collection("docs")
        assert reembed.progress_dir(col).is_dir()
        second = reembed.step(col, db.encoders, "tiny-test", batch=10)
        # done counts the live records walked in label order: "2"-"4" and "6"-"9" kept their
        # vectors ("0" changed, "5" deleted, "1" moved to a new label by its update), then
        # "10"-"19" now: 17 of 30 ("1", still current, is passed later, without embedding)
        assert (second.done, second.total, second.switched) == (17, 30, False)
        last = reembed.step(col, db.encoders, "tiny-test", batch=20)  # 12 left <= 20: the switch
        assert last.switched and last.done == last.total == 30
        tiny = db.encoders.get("tiny-test")
        assert col.config.encoder == tiny.identity() and col.config.dim == 8
        got = _expect_all_of(col, tiny)
        assert "5" not in got.ids and "new" in got.ids
        assert col.get(ids=["0"]).documents == ["cat dog cat dog"]
        assert col.get(ids=["1"]).metadatas == [{"i": 1, "touched": True}]
        assert not reembed.progress_dir(col).exists()
        assert col._index is not None and col._index.dim == 8
        assert col.query(texts=["river water stone"], n_results=1)[0].ids[0] == "new"
        col.add(ids=["after"], documents=["apple pear"])  # new writes embed with the new model
    # the switch is durable: a restart serves the new model, vectors and graph
    with Database(tmp_path / "d", tuning=tuning, encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.get_collection("docs")
        assert col.config.encoder["name"] == "tiny-test" and col.config.dim == 8 and col.count() == 31
        _expect_all_of(col, db.encoders.get("tiny-test"))
        again = reembed.step(col, db.encoders, "tiny-test")
        assert again.switched and again.done == 31  # already on that model: nothing to do


def test_a_collection_with_sealed_segments_is_reembedded_whole(models_dir, tmp_path):
    """Every live record of every sealed segment and of the tail gets the new model's vector
    (docs/segments.md): the walk covers the segments and the tail, starts over (skipping
    done records) after a seal, and the switch leaves one generation and no segment; the
    collection seals again from there, with the new model."""
    tuning = Tuning(seal_rows=20, merge_factor=8, exact_threshold=8)
    texts = docs(110, seed=11)
    expected = {f"s{i}": texts[i] for i in range(90)}
    with Database(tmp_path / "d", tuning=tuning, encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.create_collection("docs", encoder="tiny-test")
        for start in range(0, 70, 20):
            ids = [f"s{i}" for i in range(start, min(start + 20, 70))]
            col.add(ids=ids, documents=[expected[i] for i in ids], metadatas=[{"i": int(i[1:])} for i in ids])
            col.checkpoint()
        assert len(col.sealed) == 3 and col.count() == 70  # and 10 in the tail
        first = reembed.step(col, db.encoders, DEFAULT, batch=25)
        assert (first.done, first.total, first.switched) == (25, 70, False)
        # writes meanwhile: a done sealed record changed (it moves to the tail), one deleted,
        # one updated (metadata only: its vector stays valid), then a seal of the tail
        col.upsert(ids=["s0"], documents=["cat dog cat dog"])
        expected["s0"] = "cat dog cat dog"
        col.delete(ids=["s30"])
        del expected["s30"]
        col.update(ids=["s1"], metadatas=[{"touched": True}])
        ids = [f"s{i}" for i in range(70, 90)]
        col.add(ids=ids, documents=[expected[i] for i in ids])
        col.checkpoint()
        assert len(col.sealed) == 4
    with Database(tmp_path / "d", tuning=tuning, encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.get_collection("docs")
        while not (progress := reembed.step(col, db.encoders, DEFAULT, batch=30)).switched:
            assert progress.total == 89
        assert progress.done == progress.total == 89
        gru = db.encoders.get(DEFAULT)
        got = _expect_all_of(col, gru)
        assert dict(zip(got.ids, got.documents)) == expected
        assert col.get(ids=["s1"]).metadatas == [{"i": 1, "touched": True}]
        assert not col.sealed and not list(col.path.glob("seg-*")) and col._index is not None
        for k in (0, 40, 80):
            found = col.query(got.embeddings[k:k + 1], n_results=1)[0]
            assert found.distances[0] < 1e-5
        ids = [f"n{i}" for i in range(20)]
        col.add(ids=ids, documents=texts[90:110])  # with the new model; seals again
        col.checkpoint()
        assert col.sealed
    with Database(tmp_path / "d", tuning=tuning, encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.get_collection("docs")
        assert col.config.encoder["name"] == DEFAULT and col.count() == 109 and col.sealed
        _expect_all_of(col, db.encoders.get(DEFAULT))


def test_writes_during_the_reembed_are_neither_lost_nor_mixed(models_dir, tmp_path):
    with Database(tmp_path / "d", encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.create_collection("docs", encoder="tiny-test")
        col.add(ids=[f"r{i}" for i in range(200)], documents=docs(200))
        stop = threading.Event()
        written: dict[str, str] = {}
        errors: list[BaseException] = []

        def writer():
            i = 0
            while not stop.is_set():
                try:
                    text = docs(1, seed=1000 + i)[0]
                    col.upsert(ids=[f"w{i % 50}"], documents=[text])
                    written[f"w{i % 50}"] = text
                    i += 1
                except FailedPreconditionError:
                    # a write between the switch's MANIFEST and ... never happens: writes are
                    # held, not refused; any refusal is a bug
                    raise
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    return

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            while not reembed.step(col, db.encoders, DEFAULT, batch=40).switched:
                pass
        finally:
            stop.set()
            thread.join()
        assert not errors
        gru = db.encoders.get(DEFAULT)
        assert col.config.encoder == gru.identity()
        got = col.get(include=["embeddings", "documents"])
        assert len(got.ids) == 200 + len(written)
        by_id = dict(zip(got.ids, got.documents))
        assert all(by_id[k] == v for k, v in written.items())  # the last acknowledged value of each
        # every vector is the new model's vector of the stored document (none left from the old)
        assert np.array_equal(got.embeddings, gru.embed(got.documents))


def test_errors(models_dir, tmp_path):
    with Database(tmp_path / "d", encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        plain = db.create_collection("plain", dim=4)
        with pytest.raises(FailedPreconditionError, match="has no encoder"):
            reembed.step(plain, db.encoders, "tiny-test")
        col = db.create_collection("docs", encoder="tiny-test")
        col.add(ids=["a"], documents=["cat"])
        with pytest.raises(NotFoundError, match="nope"):
            reembed.step(col, db.encoders, "nope")
        with pytest.raises(InvalidArgumentError, match="batch"):
            reembed.step(col, db.encoders, DEFAULT, batch=100_001)
        # cancel discards the progress; the collection is unchanged
        reembed.step(col, db.encoders, DEFAULT, batch=0)  # 1 record: switches at once
        assert col.config.encoder["name"] == DEFAULT
        col.add(ids=[f"x{i}" for i in range(5)], documents=docs(5))
        assert not reembed.step(col, db.encoders, "tiny-test", batch=2).switched
        assert reembed.progress_dir(col).is_dir()
        cancelled = reembed.step(col, db.encoders, "tiny-test", cancel=True)
        assert not cancelled.switched and not reembed.progress_dir(col).exists()
        assert col.config.encoder["name"] == DEFAULT


def test_rpc_and_cli_with_kill9_in_between(models_dir, tmp_path):
    data = tmp_path / "data"
    texts = docs(40, seed=3)
    server = start_server(data, "--models-dir", str(models_dir))
    try:
        with vectord.Client(server.address) as client:
            col = client.create_collection("docs")
            col.add(ids=[str(i) for i in range(40)], documents=texts)
            step = client.reembed_step("docs", "tiny-test", batch=15)
            assert (step["done"], step["total"], step["switched"]) == (15, 40, False)
            assert step["model"]["name"] == "tiny-test" and step["model"]["dim"] == 8
            with pytest.raises(vectord.NotFoundError):
                client.reembed_step("missing", "tiny-test")
    finally:
        server.kill()  # kill -9: the progress written so far is on disk
    server = start_server(data, "--models-dir", str(models_dir))
    try:
        proc = subprocess.run([sys.executable, "-m", "vectord", "collections", "reembed", "docs", "--encoder",
                               "tiny-test", "--batch", "10", "--address", server.address],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "now embeds with tiny-test" in proc.stdout and "40 records" in proc.stdout
        assert "reembed docs" in proc.stderr  # the tqdm bar
        with vectord.Client(server.address) as client:
            col = client.get_collection("docs")
            assert col.encoder == "tiny-test" and col.dim == 8
            got = col.get(include=["embeddings", "documents"])
            tiny = client.embed(got["documents"], model="tiny-test")
            assert np.array_equal(np.asarray(got["embeddings"], np.float32), tiny)
            back = client.reembed_collection("docs", "default")  # back to the shipped model
            assert back["switched"] and back["model"]["name"] == DEFAULT
            assert client.get_collection("docs").dim == 384
    finally:
        server.terminate()


def test_in_memory_collection(models_dir):
    with Database(None, encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.create_collection("docs", encoder="tiny-test")
        col.add(ids=[str(i) for i in range(12)], documents=docs(12, seed=9))
        assert not reembed.step(col, db.encoders, DEFAULT, batch=5).switched
        assert reembed.progress_dir(col) is None
        col.delete(ids=["0"])
        while not (progress := reembed.step(col, db.encoders, DEFAULT, batch=5)).switched:
            pass
        assert progress.done == progress.total == 11
        gru = db.encoders.get(DEFAULT)
        assert col.config.encoder == gru.identity() and col.config.dim == 384
        _expect_all_of(col, gru)
        assert col.query(texts=[col.get(ids=["3"]).documents[0]], n_results=1)[0].ids[0] == "3"


@pytest.mark.parametrize("sealing", [False, True], ids=["one-state", "sealed-segments"])
@pytest.mark.parametrize("fail_at", ["generation", "manifest"])
def test_a_failed_switch_leaves_the_old_collection_and_the_progress(models_dir, tmp_path, fail_at, sealing):
    """An I/O error in the switch: before the MANIFEST rename nothing changed (and writes go
    on); at the MANIFEST the collection refuses writes until a restart, which serves the old
    (consistent) state; the progress survives and the next call completes the switch. With
    sealed segments (docs/segments.md) the old state is the segments and the tail, and the
    completed switch leaves one generation and no segment directory."""
    from vectord.storage.fsio import FileSystem

    class Failing(FileSystem):
        armed = False

        def create(self, path):
            if self.armed and fail_at == "generation" and path.name == "vectors.npy":
                raise OSError(5, "injected EIO")
            return super().create(path)

        def rename(self, src, dst):
            if self.armed and fail_at == "manifest" and dst.name == "MANIFEST":
                raise OSError(5, "injected EIO")
            return super().rename(src, dst)

    fs = Failing()
    texts = docs(12, seed=4)
    tuning = Tuning(seal_rows=5, merge_factor=8, exact_threshold=4) if sealing else Tuning()
    with Database(tmp_path / "d", fs=fs, tuning=tuning, encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.create_collection("docs", encoder="tiny-test")
        for start in (0, 5, 10):
            col.add(ids=[str(i) for i in range(start, min(start + 5, 12))], documents=texts[start:start + 5])
            col.checkpoint()
        if sealing:
            assert len(col.sealed) == 2
            col.upsert(ids=["1"], documents=["moved to the tail"])  # a sealed record's upsert
            col.delete(ids=["6"])
            texts[1] = "moved to the tail"
        assert not reembed.step(col, db.encoders, DEFAULT, batch=8).switched
        fs.armed = True
        with pytest.raises(FailedPreconditionError, match="I/O error"):
            reembed.step(col, db.encoders, DEFAULT, batch=8)
        assert col.config.encoder["name"] == "tiny-test" and col.config.dim == 8  # unchanged in memory
        if fail_at == "generation":
            col.add(ids=["more"], documents=["cat"])  # writes go on with the old model
        else:
            with pytest.raises(FailedPreconditionError, match="refuses writes"):
                col.add(ids=["more"], documents=["cat"])
        fs.armed = False
    with Database(tmp_path / "d", fs=fs, tuning=tuning, encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.get_collection("docs")
        assert col.config.encoder["name"] == "tiny-test" and col.config.dim == 8
        assert bool(col.sealed) == sealing
        assert reembed.progress_dir(col).is_dir()
        progress = reembed.step(col, db.encoders, DEFAULT, batch=8)
        assert progress.switched and col.config.dim == 384
        got = _expect_all_of(col, db.encoders.get(DEFAULT))
        kept = {str(i): texts[i] for i in range(12) if not (sealing and i == 6)}
        if fail_at == "generation":
            kept["more"] = "cat"
        assert dict(zip(got.ids, got.documents)) == kept
        assert not col.sealed and not list(col.path.glob("seg-*"))


def test_a_query_whose_texts_straddle_the_switch_is_refused_retryably(models_dir, tmp_path):
    """Query texts embedded with the old model must not be searched among the new vectors:
    UNAVAILABLE (the SDK retries idempotent calls), never a mixed or dimension-error answer."""
    from vectord.errors import UnavailableError

    with Database(tmp_path / "d", encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.create_collection("docs", encoder="tiny-test")
        col.add(ids=["a", "b"], documents=["cat dog", "river water"])
        original = col._embed

        def embed_then_switch(texts, field, *args):
            vectors = original(texts, field, *args)
            if field == "query_texts":
                assert reembed.step(col, db.encoders, DEFAULT).switched
            return vectors

        col._embed = embed_then_switch
        with pytest.raises(UnavailableError, match=f"switched to model '{DEFAULT}'.*retry"):
            col.query(texts=["cat dog"], n_results=1)
        col._embed = original
        assert col.query(texts=["cat dog"], n_results=1)[0].ids == ["a"]  # the retry


def test_async_client_reembed():
    import asyncio

    async def main():
        async with vectord.AsyncClient() as client:
            col = await client.create_collection("docs")
            await col.add(ids=["a"], documents=["cat"])
            seen = []
            done = await client.reembed_collection("docs", "default", on_progress=seen.append)
            return done, seen

    done, seen = asyncio.run(main())
    assert done["switched"] and done["model"]["name"] == DEFAULT and seen == [done]


@pytest.mark.parametrize("kwargs, match", [
    ({"batch": -1}, r"batch must be an integer in 0\.\.100000, got -1"),
    ({"batch": "10"}, "batch must be an integer"),
    ({"batch": 100_001}, "batch must be an integer"),
    ({"cancel": "yes"}, "cancel must be True or False"),
])
def test_sdk_arguments_are_checked(kwargs, match):
    with vectord.Client() as client:
        client.create_collection("docs")
        with pytest.raises(InvalidArgumentError, match=match):
            client.reembed_step("docs", **kwargs)
        with pytest.raises(InvalidArgumentError, match="on_progress"):
            client.reembed_collection("docs", on_progress=5)
        with pytest.raises(InvalidArgumentError, match="name"):
            client.reembed_step(None)


def test_a_step_reads_only_its_batch(models_dir, tmp_path, monkeypatch):
    """Steps walk on from a cursor (labels only grow): a step's cost is its batch, not the
    collection, so a large re-embed is not quadratic. A compaction resets the walk."""
    # seal_rows=0: re-embed refuses a collection with sealed segments (docs/segments.md), and
    # the compaction here is the tail's
    with Database(tmp_path / "d", tuning=Tuning(seal_rows=0),
                  encoders=BuiltinEncoders(models_dir=models_dir)) as db:
        col = db.create_collection("docs", encoder="tiny-test")
        col.add(ids=[str(i) for i in range(300)], documents=docs(300, seed=7))
        hashed = []
        real = reembed._digest
        monkeypatch.setattr(reembed, "_digest", lambda document: hashed.append(1) or real(document))
        for expected_done in (10, 20, 30):
            hashed.clear()
            assert reembed.step(col, db.encoders, DEFAULT, batch=10).done == expected_done
            assert len(hashed) == 10
        col.delete(ids=[str(i) for i in range(0, 300, 2)])
        col.checkpoint(compact=True)  # relabels every record: the walk starts over, skipping done ones
        hashed.clear()
        progress = reembed.step(col, db.encoders, DEFAULT, batch=10)
        assert len(hashed) == 25 and progress.done == 25 and progress.total == 150  # 15 done + 10 new
        while not reembed.step(col, db.encoders, DEFAULT, batch=50).switched:
            pass
        _expect_all_of(col, db.encoders.get(DEFAULT))


def test_a_collection_of_the_old_default_keeps_its_model_and_moves_to_the_new_one(tmp_path):
    """Upgrading vectord: collections made when vectord-gru-mini was the default keep it (pinned by
    name and sha256) until `collections reembed` moves them; new collections take the new default."""
    assert DEFAULT != "vectord-gru-mini" and "vectord-gru-mini" in vectord.encoder.available_models()
    texts = docs(12, seed=3)
    with Database(tmp_path / "d", encoders=BuiltinEncoders()) as db:
        old = db.create_collection("old", encoder="vectord-gru-mini")
        old.add(ids=[str(i) for i in range(12)], documents=texts)
        assert db.create_collection("new").config.encoder["name"] == DEFAULT
    with Database(tmp_path / "d", encoders=BuiltinEncoders()) as db:
        old = db.get_collection("old")
        mini = db.encoders.get("vectord-gru-mini")
        assert old.config.encoder["name"] == "vectord-gru-mini"
        assert old.config.encoder["sha256"] == mini.identity()["sha256"]
        assert old.query(texts=[texts[4]], n_results=1)[0].ids[0] == "4"  # queries embed with mini
        while not reembed.step(old, db.encoders, DEFAULT, batch=5).switched:
            pass
        assert old.config.encoder["name"] == DEFAULT
        _expect_all_of(old, db.encoders.get(DEFAULT))
        assert old.query(texts=[texts[7]], n_results=1)[0].ids[0] == "7"
