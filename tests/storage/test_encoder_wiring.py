"""How the engine uses an encoder: identity recorded, documents and query texts embedded,
vectors of another model refused. A fake encoder keeps these fast."""

from __future__ import annotations

import numpy as np
import pytest

from fake_encoder import FakeEncoder, FakeRegistry
from vectord.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from vectord.storage import Database


def test_collection_takes_dim_and_identity_from_its_encoder(tmp_path):
    registry = FakeRegistry(FakeEncoder(dim=16))
    with Database(tmp_path / "d", encoders=registry) as db:
        col = db.create_collection("t", encoder="default")
        assert col.config.dim == 16
        assert col.config.encoder == registry.get("fake").identity()
        with pytest.raises(InvalidArgumentError, match="makes 16-d vectors"):
            db.create_collection("u", dim=8, encoder="fake")
        with pytest.raises(NotFoundError, match="'nope'"):
            db.create_collection("v", encoder="nope")


def test_documents_and_query_texts_are_embedded(tmp_path):
    registry = FakeRegistry(FakeEncoder(dim=32))
    with Database(tmp_path / "d", encoders=registry) as db:
        col = db.create_collection("t", encoder="fake")
        col.add(["a", "b"], documents=["red apple", "blue sky"])
        result = col.query(texts=["apple"], n_results=1)
        assert result[0].ids == ["a"]
        col.update(["a"], documents=["green sea"])  # a new document moves the vector
        vector = col.get(["a"], include=["embeddings"]).embeddings[0]
        np.testing.assert_allclose(vector, registry.get("fake").embed(["green sea"])[0])
        with pytest.raises(InvalidArgumentError, match="a text is needed"):
            col.add(["c"], documents=[None])


def test_without_an_encoder_texts_are_refused(tmp_path):
    with Database(tmp_path / "d", encoders=FakeRegistry(FakeEncoder())) as db:
        col = db.create_collection("plain", dim=4)
        with pytest.raises(InvalidArgumentError, match="has no encoder"):
            col.add(["a"], documents=["text"])
        with pytest.raises(InvalidArgumentError, match="has no encoder"):
            col.query(texts=["text"])


def test_a_different_model_under_the_same_name_is_refused(tmp_path):
    with Database(tmp_path / "d", encoders=FakeRegistry(FakeEncoder(salt="v1"))) as db:
        db.create_collection("t", encoder="fake").add(["a"], documents=["hello world"])
    with Database(tmp_path / "d", encoders=FakeRegistry(FakeEncoder(salt="v2"))) as db:
        col = db.get_collection("t")
        with pytest.raises(FailedPreconditionError, match="refusing to mix vectors"):
            col.add(["b"], documents=["more text"])
        with pytest.raises(FailedPreconditionError, match="refusing to mix vectors"):
            col.query(texts=["hello"])
        assert col.count() == 1  # reads by vector and by id go on
        assert col.query(np.ones((1, 16), np.float32), n_results=1)[0].ids == ["a"]
