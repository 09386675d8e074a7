"""The fixtures vectord ships for users' tests work (they come from the pytest11 plugin)."""


def test_vectord_client_fixture(vectord_client, vectord_server):
    docs = vectord_client.create_collection("docs", dim=3)
    docs.add(ids=["a"], embeddings=[[1, 0, 0]])
    assert docs.count() == 1
    assert vectord_server.address.startswith("127.0.0.1:")
