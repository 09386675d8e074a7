"""The shipped encoder end to end: text in, vectors out, inside the server and embedded."""

from __future__ import annotations

import numpy as np
import pytest

import vectord
from vectord.testing import start_server

DOCUMENTS = {
    "cat": "The cat sat quietly on the mat by the fire.",
    "stocks": "Stock markets fell sharply after the interest rate announcement.",
    "bread": "Knead the dough, let it rise overnight, then bake the sourdough loaf.",
    "rocket": "The rocket lifted off and carried the satellite into orbit.",
    "rain": "Heavy rain flooded the streets of the city this morning.",
}
PARAPHRASES = {
    "cat": "a kitten resting on a rug",
    "stocks": "share prices dropped when the central bank raised rates",
    "bread": "how to make homemade bread",
    "rocket": "a spacecraft was launched into space",
    "rain": "a storm caused flooding in town",
}


@pytest.fixture(params=["remote", "embedded"])
def client(request, tmp_path):
    if request.param == "remote":
        server = request.getfixturevalue("server")
        c = vectord.Client(server.address)
    else:
        c = vectord.Client(path=str(tmp_path / "embedded"))
    yield c
    for collection in c.list_collections():
        c.delete_collection(collection.name)
    c.close()


def test_documents_added_as_text_are_found_by_a_paraphrase(client):
    notes = client.create_collection("notes")  # no dim: the default built-in encoder
    model = next(m for m in client.list_models() if m["is_default"])
    assert notes.encoder == model["name"] and notes.dim == model["dim"]
    notes.add(ids=list(DOCUMENTS), documents=list(DOCUMENTS.values()))
    hits = notes.query(query_texts=list(PARAPHRASES.values()), n_results=1)
    assert [row[0] for row in hits["ids"]] == list(PARAPHRASES)


def test_updating_a_document_re_embeds_it(client):
    notes = client.create_collection("notes")
    notes.add(ids=list(DOCUMENTS), documents=list(DOCUMENTS.values()))
    notes.update(ids=["rain"], documents=["A chef roasted vegetables in the oven."])
    assert notes.query(query_texts=["cooking food in an oven"], n_results=1)["ids"] == [["rain"]]


def test_embed_rpc_matches_the_in_process_model(client):
    from vectord import encoder

    texts = ["", "emoji 🚀🔥", "中文文本", "plain words", "x" * 5000]
    remote = client.embed(texts)
    local = encoder.load().embed(texts)
    assert remote.shape == (len(texts), encoder.load().dim) and remote.dtype == np.float32
    np.testing.assert_array_equal(remote, local)
    np.testing.assert_allclose(np.linalg.norm(remote, axis=1), 1.0, atol=1e-5)


def test_a_collection_refuses_another_models_vectors(tmp_path):
    from vectord.storage.checkpoint import read_manifest, write_manifest
    from vectord.storage.fsio import REAL

    proc = start_server(tmp_path / "d")
    with vectord.Client(proc.address) as c:
        c.create_collection("notes").add(ids=["a"], documents=["hello world"])
    assert proc.terminate() == 0
    directory = next((tmp_path / "d" / "collections").iterdir())
    manifest = read_manifest(directory)
    manifest["config"]["encoder"]["sha256"] = "0" * 64  # as if built by another model
    write_manifest(REAL, directory, manifest)
    proc = start_server(tmp_path / "d")
    try:
        with vectord.Client(proc.address) as c:
            notes = c.get_collection("notes")
            with pytest.raises(vectord.FailedPreconditionError, match="refusing to mix"):
                notes.add(ids=["b"], documents=["more text"])
            with pytest.raises(vectord.FailedPreconditionError, match="refusing to mix"):
                notes.query(query_texts=["hello"])
            assert notes.count() == 1
    finally:
        proc.terminate()


def test_texts_without_an_encoder_are_refused(client):
    plain = client.create_collection("plain", dim=4)
    with pytest.raises(vectord.InvalidArgumentError, match="has no encoder"):
        plain.add(ids=["a"], documents=["text only"])
    with pytest.raises(vectord.InvalidArgumentError, match="has no encoder"):
        plain.query(query_texts=["text"])


def _maps_onnxruntime(pid: int) -> bool:
    return "onnxruntime" in open(f"/proc/{pid}/maps").read()


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/maps"), reason="reads Linux's /proc")
def test_a_server_sent_only_vectors_never_loads_onnxruntime(tmp_path):
    """The built-in model is verified at start but its session is made at the first text: a
    vectors-only server saves the ~60 MiB (issue 13, memory at steady state)."""
    server = start_server(tmp_path / "data")
    try:
        with vectord.Client(server.address) as client:
            col = client.create_collection("vectors_only", dim=4)
            col.add(ids=["a"], embeddings=[[1.0, 0.0, 0.0, 0.0]])
            col.query(query_embeddings=[[1.0, 0.0, 0.0, 0.0]], n_results=1)
            assert not _maps_onnxruntime(server.proc.pid)
            vectors = client.embed(["the first text loads the model"])
            assert np.allclose(np.linalg.norm(np.asarray(vectors), axis=1), 1.0, atol=1e-5)
            assert _maps_onnxruntime(server.proc.pid)
    finally:
        assert server.terminate() == 0, server.log()
