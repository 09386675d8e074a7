"""A 3-node Ray cluster on this machine (ray.cluster_utils: head plus two nodes, one per
module), a gateway (`vectord cluster up`) in a subprocess, and the SDK unchanged against it:
3 shards x 2 replicas, write level quorum (= both replicas of 2)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no telemetry (docs/cluster.md)
ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

import vectord  # noqa: E402
from vectord.errors import AlreadyExistsError, NotFoundError  # noqa: E402

pytestmark = pytest.mark.timeout(600)
NODE = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024}
DIM = 8


def start_gateway(cluster, *extra: str) -> None:
    """`vectord cluster up` on the test cluster, 3 shards x 2 replicas, write level quorum."""
    log = open(cluster.root / f"gateway-{time.monotonic_ns()}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vectord", "cluster", "up", "--address", cluster.address, "--port", "0",
         "--data-dir", str(cluster.root / "data"), "--shards", "3", "--replicas", "2", "--write-level", "quorum",
         *extra], stdout=subprocess.PIPE, stderr=log, text=True)
    line = ""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not line.startswith("vectord cluster gateway listening"):
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
    assert line.startswith("vectord cluster gateway listening"), open(log.name).read()
    cluster.gateway = line.rsplit(" ", 1)[1].strip()
    cluster.gateway_proc = proc


@contextlib.contextmanager
def three_node_cluster(root):
    """A head and two added nodes (``cluster.workers``), Ray connected, a gateway started
    (``cluster.gateway``); torn down on exit. Each test module makes one."""
    cluster = Cluster(initialize_head=True, head_node_args=NODE)
    cluster.workers = [cluster.add_node(**NODE) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="vectord", logging_level="ERROR", log_to_driver=False)
    cluster.root = root
    start_gateway(cluster)
    try:
        yield cluster
    finally:
        cluster.gateway_proc.terminate()
        cluster.gateway_proc.wait(30)
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with three_node_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def client(cluster):
    c = vectord.Client(cluster.gateway, timeout=60)
    yield c
    c.close()


def vectors(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def test_info_says_cluster_and_unsupported_rpcs_name_themselves(client):
    assert client.server_info()["version"].endswith("+cluster")
    col = client.create_collection("snap", dim=DIM)
    with pytest.raises(vectord.errors.VectordError, match="Admin.ReembedCollection"):
        client._call("Admin", "ReembedCollection", vectord.v1.admin_pb2.ReembedCollectionRequest(collection="snap"))
    # Admin.Checkpoint: the engine's checkpoint on every replica; compaction counted over the shards
    col.add(ids=[f"c{i}" for i in range(60)], embeddings=vectors(60, 3))
    col.delete(ids=[f"c{i}" for i in range(40)])
    done = client._call("Admin", "Checkpoint", vectord.v1.admin_pb2.CheckpointRequest(collection="snap", compact=True))
    assert done.checkpointed == 1 and done.compacted_slots == 40
    assert col.count() == 20 and sorted(col.get(include=[])["ids"]) == sorted(f"c{i}" for i in range(40, 60))
    client.delete_collection("snap")


def test_snapshots_are_consistent_per_cluster_and_restore_by_name(client, cluster):
    """A cluster snapshot (docs/cluster.md, 'Snapshots'): every shard at one point in time,
    copies on the replicas' nodes, a manifest at the controller; restored by name as a new
    collection (or replacing one) with the same records and answers; deleted by the CLI."""
    import grpc

    from vectord.v1 import admin_pb2, admin_pb2_grpc

    admin = vectord.v1.admin_pb2
    ids = [f"s{i}" for i in range(300)]
    col = client.create_collection("snapme", dim=DIM)
    col.add(ids=ids, embeddings=vectors(300, 11), metadatas=[{"n": i} for i in range(300)],
            documents=[f"doc {i}" for i in range(300)])
    queries, mine = vectors(4, 12), {"n": {"$gte": 0}}  # the writer's records have no "n"
    before = col.query(query_embeddings=queries, n_results=7, where=mine,
                       include=["distances", "metadatas", "documents"])
    # a writer whose every write spans shards (one value for six ids) runs during the snapshot
    spans, written, stop = [f"w{i}" for i in range(6)], threading.Event(), threading.Event()
    from vectord.cluster.routing import bucket_of

    assert len({bucket_of(i) % 3 for i in spans}) > 1  # buckets are dealt to shards round-robin

    def writer():
        v = 0
        while not stop.is_set():
            col.upsert(ids=spans, embeddings=vectors(6, 100 + v), metadatas=[{"v": v}] * 6)
            written.set()
            v += 1

    thread = threading.Thread(target=writer)
    thread.start()
    assert written.wait(60)
    try:
        info = client._call("Admin", "CreateSnapshot",
                            admin.CreateSnapshotRequest(collection="snapme", name="snap-1"))
    finally:
        stop.set()
        thread.join(60)
    assert (info.name, info.collection, info.record_count, info.dim) == ("snap-1", "snapme", 306, DIM)
    assert info.size_bytes > 0 and info.seq > 0
    with pytest.raises(AlreadyExistsError, match="snap-1"):
        client._call("Admin", "CreateSnapshot", admin.CreateSnapshotRequest(collection="snapme", name="snap-1"))
    col.delete(ids=ids[:50])  # after the snapshot: not in it
    col.upsert(ids=["late"], embeddings=vectors(1, 13))
    listed = client._call("Admin", "ListSnapshots", admin.ListSnapshotsRequest()).snapshots
    assert [s.name for s in listed] == ["snap-1"]
    stub = admin_pb2_grpc.AdminStub(grpc.insecure_channel(cluster.gateway))

    def restore(**kwargs):
        return stub.RestoreSnapshot(iter([admin_pb2.RestoreSnapshotRequest(**kwargs)]), timeout=300)

    reply = restore(snapshot="snap-1", collection="snapme-copy")
    assert (reply.collection, reply.record_count) == ("snapme-copy", 306)
    copy = client.get_collection("snapme-copy")
    assert (copy.shards, copy.replicas) == (3, 2)
    again = copy.query(query_embeddings=queries, n_results=7, where=mine,
                       include=["distances", "metadatas", "documents"])
    assert again["ids"] == before["ids"] and again["metadatas"] == before["metadatas"]
    assert again["documents"] == before["documents"]
    assert sorted(copy.get(include=[])["ids"]) == sorted(ids + spans)
    # one point in time over the shards: every write that spans them is in all of them or none
    values = {m["v"] for m in copy.get(ids=spans, include=["metadatas"])["metadatas"]}
    assert len(values) == 1, values
    assert copy.upsert(ids=["new"], embeddings=vectors(1, 14))["inserted"] == 1 and copy.count() == 307
    with pytest.raises(grpc.RpcError) as refused:
        restore(snapshot="snap-1")  # its own name: "snapme" exists
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert restore(snapshot="snap-1", replace=True).record_count == 306
    assert client.get_collection("snapme").count() == 306 and col.count() == 306
    with pytest.raises(grpc.RpcError) as missing:
        restore(snapshot="nope")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as download:
        list(stub.DownloadSnapshot(admin_pb2.DownloadSnapshotRequest(name="snap-1"), timeout=30))
    assert download.value.code() == grpc.StatusCode.UNIMPLEMENTED and "restore it by name" in download.value.details()
    copies = list((cluster.root / "data").glob("node-*/snapshots/snap-1/s*-r*"))
    assert len(copies) == 6  # every replica of every shard
    out = subprocess.run([sys.executable, "-m", "vectord", "cluster", "delete-snapshot", "snap-1", "--address",
                          cluster.address], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert not list((cluster.root / "data").glob("node-*/snapshots/snap-1"))
    assert client._call("Admin", "ListSnapshots", admin.ListSnapshotsRequest()).snapshots == []
    client.delete_collection("snapme")
    client.delete_collection("snapme-copy")


def test_core_api(client):
    col = client.create_collection("core", dim=DIM)
    ids = [f"r{i}" for i in range(60)]
    meta = [{"n": i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(60)]
    written = col.add(ids=ids, embeddings=vectors(60), metadatas=meta, documents=[f"doc {i}" for i in ids])
    assert written["inserted"] == 60
    assert col.count() == 60 and col.count(where={"kind": "even"}) == 30
    with pytest.raises(AlreadyExistsError, match="r5"):
        col.add(ids=["new", "r5"], embeddings=vectors(2, 1))
    assert col.count() == 60  # nothing of the refused add was written
    with pytest.raises(NotFoundError, match="nope"):
        col.update(ids=["r1", "nope"], metadatas=[{"n": 1}, {"n": 2}])
    col.update(ids=["r1"], metadatas=[{"kind": "changed"}])
    col.upsert(ids=["r2", "extra"], embeddings=vectors(2, 2), metadatas=[{"n": -2}, {"n": 99}])
    got = col.get(ids=["extra", "r1", "missing", "r2"], include=["metadatas", "documents"])
    assert got["ids"] == ["extra", "r1", "r2"]
    assert got["metadatas"][1] == {"n": 1, "kind": "changed"}
    assert got["metadatas"][2]["n"] == -2 and got["documents"][1] == "doc r1"
    assert col.count() == 61
    page = col.get(where={"n": {"$gte": 50}}, limit=5, offset=2)
    # id order across shards ("extra" has n 99)
    assert page["ids"] == sorted(["extra"] + [f"r{i}" for i in range(50, 60)])[2:7]
    paged, token = [], ""
    while token is not None:
        result = col.get(limit=7, page_token=token, include=[])
        paged += result["ids"]
        token = result["next_page_token"]
    assert paged == sorted(ids + ["extra"])
    hits = col.query(query_embeddings=vectors(2, 0)[:2], n_results=3, where={"kind": "even"},
                     include=["metadatas", "distances", "documents"])
    assert hits["ids"][0][0] == "r0" and all(m["kind"] == "even" for m in hits["metadatas"][0])
    assert hits["documents"][0][0] == "doc r0"
    assert col.delete(ids=["r0", "r3", "never"]) == 2
    assert col.delete(where={"kind": "odd"}) == 28  # r1 became "changed", r3 is gone
    assert col.count() == 61 - 2 - 28
    info = lambda: client._call("Collections", "GetCollection",  # noqa: E731
                                vectord.v1.collections_pb2.GetCollectionRequest(name="core"))
    assert info().count == 31  # the gateway's cached count is dropped by every write
    col.upsert(ids=["late"], embeddings=vectors(1, 5))
    assert info().count == 32 and info().seq > 0
    assert col.count(where_document={"$contains": "doc r4"}) == 6  # r4 and the even r40..r48 are left
    labels = col.classify(embeddings=vectors(1, 0)[:1], label_key="kind", k=5)
    assert labels[0]["label"] in ("even", "changed")
    col.modify(name="core2", metadata={"v": 2})  # the routing table follows the rename
    renamed = client.get_collection("core2")
    assert renamed.count() == 32 and renamed.metadata == {"v": 2}
    assert [c.name for c in client.list_collections()] == ["core2"]
    client.delete_collection("core2")
    assert client.list_collections() == []


def test_exact_results_equal_a_single_node(client, tmp_path):
    data, queries = vectors(500, 7), vectors(10, 8)
    ids = [f"id-{i}" for i in range(500)]
    meta = [{"g": i % 5} for i in range(500)]
    col = client.create_collection("exact", dim=DIM, metric="l2")
    col.add(ids=ids, embeddings=data, metadatas=meta)
    single = vectord.Client(path=str(tmp_path / "single"))
    ref = single.create_collection("exact", dim=DIM, metric="l2")
    ref.add(ids=ids, embeddings=data, metadatas=meta)
    for where in (None, {"g": 3}):
        a = col.query(query_embeddings=queries, n_results=10, where=where, include=["distances"])
        b = ref.query(query_embeddings=queries, n_results=10, where=where, include=["distances"])
        assert a["ids"] == b["ids"]
        np.testing.assert_allclose(a["distances"], b["distances"], rtol=1e-5, atol=1e-5)
    single.close()
    client.delete_collection("exact")


def test_a_packed_batch_comes_back_as_byte_columns_equal_to_the_repeated_fields(client, cluster):
    import grpc

    from vectord.client import requests as rq
    from vectord.v1 import records_pb2_grpc

    data, queries = vectors(300, 11), vectors(6, 12)
    col = client.create_collection("columns", dim=DIM, metric="l2")
    col.add(ids=[f"ünï-{i}" for i in range(300)], embeddings=data)  # ids beyond ASCII cross the wire as bytes
    stub = records_pb2_grpc.RecordsStub(grpc.insecure_channel(cluster.gateway))

    def ask(columns: bool, include=("distances",), **fields):
        request, _ = rq.query_request("columns", queries, 10, None, None, list(include), None, False)
        request.packed_results, request.packed_columns = True, columns
        for name, value in fields.items():
            setattr(request, name, value)
        return stub.Query(request, timeout=60)

    for fields in ({}, {"max_distance": 4.0}):
        packed, repeated = ask(True, **fields), ask(False, **fields)
        assert packed.packed.ids_joined and not packed.packed.ids, fields
        assert list(packed.packed.counts) == list(repeated.packed.counts), fields
        ids = packed.packed.ids_joined.decode("utf-8", "surrogateescape").split("\udcff")
        assert ids == list(repeated.packed.ids), fields
        distances = np.frombuffer(packed.packed.distances_f32le, "<f4")
        assert np.array_equal(distances, np.asarray(repeated.packed.distances, np.float32)), fields
    bare = ask(True, include=())  # without distances: the ids alone
    assert bare.packed.ids_joined and not bare.packed.distances_f32le
    assert not ask(True, include=("documents",)).HasField("packed")  # documents: never columns
    # the SDK reads the columns as a single server's batch
    got = col.query(query_embeddings=queries, n_results=10, include=["distances"])
    assert [len(row) for row in got["ids"]] == [10] * 6 and got["ids"][0][0].startswith("ünï-")
    client.delete_collection("columns")


def test_texts_are_embedded_once_at_the_gateway_as_one_node_would(client, tmp_path):
    docs = ["the cat sat on the mat", "stock markets fell sharply", "a kitten naps in the sun",
            "interest rates and inflation", "dogs chase balls in the park", "bond yields rose"]
    ids = [f"t{i}" for i in range(len(docs))]
    col = client.create_collection("texts")  # no dim: the built-in encoder, as on one server
    assert col.add(ids=ids, documents=docs)["inserted"] == len(docs)
    with pytest.raises(vectord.errors.InvalidArgumentError, match="takes no embeddings"):
        col.add(ids=["v"], embeddings=np.ones((1, 8), np.float32))
    single = vectord.Client(path=str(tmp_path / "single"))
    ref = single.create_collection("texts")
    ref.add(ids=ids, documents=docs)
    queries = ["a sleepy cat", "finance news"]
    a = col.query(query_texts=queries, n_results=3, include=["distances", "documents"])
    b = ref.query(query_texts=queries, n_results=3, include=["distances", "documents"])
    assert a["ids"] == b["ids"] and a["documents"] == b["documents"]
    np.testing.assert_allclose(a["distances"], b["distances"], rtol=1e-4, atol=1e-5)
    long = "many words " * 400  # past the encoder's window: counted, as one server counts it
    assert col.add(ids=["long"], documents=[long])["truncated"] == ref.add(ids=["long"], documents=[long])["truncated"] == 1
    single.close()
    client.delete_collection("texts")


def test_chunked_writes_equal_a_single_node(client, tmp_path):
    """Chunking through the gateway (docs/long-documents.md): the same chunks, write results,
    errors and (exact-mode) query results as one server; a source's chunks live on one shard,
    so re-chunking it leaves no old chunk behind."""
    words = ("whale ocean ship harpoon captain storm dough loaf oven yeast flour knead salt grey cold "
             "rise bake sail crew deck").split()
    rng = np.random.default_rng(3)  # distinct texts: no ties, whose order differs (by id here)
    sources = [f"book-{i}" for i in range(12)]
    texts = [" ".join(rng.choice(words, 160)) for _ in sources]
    meta = [{"kind": "novel" if i % 2 else "recipe", "n": i} for i in range(12)]
    col = client.create_collection("chunks")
    single = vectord.Client(path=str(tmp_path / "single"))
    ref = single.create_collection("chunks")
    results = []
    for target in (col, ref):
        target.upsert(ids=["book-3"], documents=["a plain record of a source id"], metadatas=[{"old": 1}])
        results.append(target.upsert(ids=sources, documents=texts, metadatas=meta,
                                     chunking={"tokens": 24, "overlap": 4}))
    counts = [{k: v for k, v in r.items() if k != "seq"} for r in results]  # seq: the cluster's sum
    assert counts[0] == counts[1] and counts[0]["inserted"] > 12 and counts[0]["deleted"] == 1
    got, want = col.get(where={"source_id": "book-5"}, include=["metadatas", "documents"]), \
        ref.get(where={"source_id": "book-5"}, include=["metadatas", "documents"])
    assert sorted(zip(got["ids"], got["documents"])) == sorted(zip(want["ids"], want["documents"]))
    assert got["metadatas"][0] == {"kind": "novel", "n": 5, "source_id": "book-5", "chunk": 0}
    assert col.count() == ref.count()
    queries = ["the whale in the ocean", "bake the loaf"]
    for kwargs in ({}, {"group_by": "source_id"}, {"where": {"kind": "recipe"}}):
        a = col.query(query_texts=queries, n_results=5, include=["distances", "metadatas"], **kwargs)
        b = ref.query(query_texts=queries, n_results=5, include=["distances", "metadatas"], **kwargs)
        assert a["ids"] == b["ids"] and a["metadatas"] == b["metadatas"], kwargs
        np.testing.assert_allclose(a["distances"], b["distances"], rtol=1e-4, atol=1e-5)
    # add refuses a source with chunks, as one server words it, and writes nothing
    for target in (col, ref):
        with pytest.raises(AlreadyExistsError, match="source 'book-1' has a record"):
            target.add(ids=["new-book", "book-1"], documents=["x y z", "again"], chunking=True)
    assert col.count(where={"source_id": "new-book"}) == 0
    # re-chunking replaces: fewer chunks, exactly the new metadata, no old chunk left over
    replaced = [t.upsert(ids=["book-1"], documents=["Call me Ishmael, the whale. " * 4], metadatas=[{"kind": "short"}],
                         chunking={"tokens": 24}) for t in (col, ref)]
    assert replaced[0]["deleted"] == replaced[1]["deleted"] > 0
    assert replaced[0]["updated"] == replaced[1]["updated"] and replaced[0]["inserted"] == replaced[1]["inserted"]
    assert col.get(where={"source_id": "book-1"}, include=["metadatas"]) == \
        ref.get(where={"source_id": "book-1"}, include=["metadatas"])
    assert col.get(ids=["book-1#0"], include=["metadatas"])["metadatas"] == [
        {"kind": "short", "source_id": "book-1", "chunk": 0}]
    # a source id deletes its chunks
    assert col.delete(ids=["book-2"]) == ref.delete(ids=["book-2"]) > 1
    assert col.count(where={"source_id": "book-2"}) == 0 and col.count() == ref.count()
    # the same refusals as one server
    plain = client.create_collection("plain-chunks", dim=DIM)
    with pytest.raises(vectord.errors.InvalidArgumentError, match="has no encoder"):
        plain.add(ids=["a"], documents=["text"], chunking=True)
    with pytest.raises(vectord.errors.InvalidArgumentError, match="chunking.overlap"):
        col.add(ids=["z"], documents=["text"], chunking={"tokens": 8, "overlap": 8})
    single.close()
    client.delete_collection("chunks")
    client.delete_collection("plain-chunks")


def test_bm25_hybrid_and_group_by_are_ranked_at_the_gateway(client, tmp_path):
    docs = ["apt install fails with unmet dependency errors", "configure the grub bootloader menu",
            "python packaging with pip and wheels", "kernel panic at boot after an upgrade",
            "wifi drops with network manager", "dependency hell when mixing apt repositories",
            "grub rescue prompt after disk change", "pip cannot find a wheel for this platform",
            "the kernel oops log explained", "network bonding of two interfaces"] * 3
    ids = [f"d{i:02d}" for i in range(len(docs))]
    docs = [f"{d} (copy {i // 10})" for i, d in enumerate(docs)]
    meta = [{"topic": i % 5, "n": i} for i in range(len(docs))]
    col = client.create_collection("ranked")
    col.add(ids=ids, documents=docs, metadatas=meta)
    single = vectord.Client(path=str(tmp_path / "single"))
    ref = single.create_collection("ranked")
    ref.add(ids=ids, documents=docs, metadatas=meta)
    texts = ["apt dependency errors", "grub boot menu"]
    # vector grouping: the same groups and hits as one server
    a = col.query(query_texts=texts, n_results=3, group_by="topic", group_size=2, include=["distances", "metadatas"])
    b = ref.query(query_texts=texts, n_results=3, group_by="topic", group_size=2, include=["distances", "metadatas"])
    assert a["ids"] == b["ids"] and a["groups"] == b["groups"]
    np.testing.assert_allclose(a["distances"], b["distances"], rtol=1e-4, atol=1e-5)
    for rank, extra in (("bm25", {}), ("hybrid", {}), ("hybrid", {"fusion": "weighted", "hybrid_alpha": 0.3})):
        a = col.query(query_texts=texts, n_results=4, rank=rank, include=["distances", "documents"], **extra)
        b = ref.query(query_texts=texts, n_results=4, rank=rank, include=["distances", "documents"], **extra)
        for q, want in enumerate(("apt", "grub")):
            assert want in a["documents"][q][0], (rank, a["documents"][q])
            assert set(a["ids"][q][:2]) <= set(b["ids"][q]), (rank, a["ids"][q], b["ids"][q])
            assert list(a["scores"][q]) == sorted(a["scores"][q], reverse=True)
            if rank == "bm25":  # per-shard statistics of a uniform sample: close to one server's
                assert np.all(np.isnan(a["distances"][q]))
                np.testing.assert_allclose(a["scores"][q][0], b["scores"][q][0], rtol=0.35)
            else:  # every hit's vector distance, as one server gives it
                full = ref.query(query_texts=[texts[q]], n_results=len(ids), include=["distances"])
                expect = dict(zip(full["ids"][0], full["distances"][0]))
                np.testing.assert_allclose(a["distances"][q], [expect[i] for i in a["ids"][q]], rtol=1e-4, atol=1e-5)
    grouped = col.query(query_texts=texts[:1], n_results=2, rank="hybrid", group_by="topic", include=["metadatas"])
    assert len(grouped["ids"][0]) == 2 and len({m["topic"] for m in grouped["metadatas"][0]}) == 2
    single.close()
    client.delete_collection("ranked")


def test_layout_from_metadata_and_status(client, cluster):
    col = client.create_collection("layout", dim=DIM, metadata={"vectord:shards": 2, "vectord:replicas": 1,
                                                                 "owner": "me"})
    assert col.metadata == {"owner": "me"} and (col.shards, col.replicas) == (2, 1)
    col.add(ids=["a", "b", "c"], embeddings=vectors(3))
    from vectord.cluster.cli import replica_health

    rows = [r for r in replica_health() if r["collection"] == "layout"]
    assert len(rows) == 2 and all(r["state"] == "in_sync" for r in rows)
    assert sum(r["count"] for r in rows) == 3
    shown = subprocess.run([sys.executable, "-m", "vectord", "cluster", "status", "--address", cluster.address],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "3 Ray node(s) alive" in shown.stdout
    assert sum(line.split()[:1] == ["layout"] and line.endswith("in_sync") for line in shown.stdout.splitlines()) == 2
    client.delete_collection("layout")


def test_layout_from_the_create_fields_and_status(client, cluster):
    """CreateCollectionRequest's shards/replicas (not the gateway's 3 x 2) make the layout:
    status shows 2 shards x 3 replicas, one per node; info reports them; get_or_create compares
    them; a field contradicting the older clients' metadata key is refused."""
    col = client.create_collection("fields", dim=DIM, shards=2, replicas=3, metadata={"owner": "me"})
    assert (col.shards, col.replicas, col.metadata) == (2, 3, {"owner": "me"})
    assert (client.get_collection("fields").shards, client.get_collection("fields").replicas) == (2, 3)
    assert client.get_or_create_collection("fields", shards=2, replicas=3).id == col.id
    with pytest.raises(AlreadyExistsError, match=r"shards 2 \(asked for 3\)"):
        client.get_or_create_collection("fields", shards=3)
    with pytest.raises(vectord.InvalidArgumentError, match="shards: 2 conflicts with metadata"):
        client.create_collection("clash", dim=DIM, shards=2, metadata={"vectord:shards": 1})
    with pytest.raises(vectord.InvalidArgumentError, match="replicas: 4 replicas of a shard need 4 distinct nodes"):
        client.create_collection("too-many", dim=DIM, replicas=4)
    with pytest.raises(vectord.InvalidArgumentError, match=r"shards: must be an integer in 1\.\.256, got 300"):
        client.create_collection("too-many", dim=DIM, shards=300)
    assert sorted(c.name for c in client.list_collections() if c.name in ("clash", "too-many", "fields")) == ["fields"]
    col.add(ids=[f"f{i}" for i in range(30)], embeddings=vectors(30, 7))
    shown = subprocess.run([sys.executable, "-m", "vectord", "cluster", "status", "--address", cluster.address],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines() if line.split()[:1] == ["fields"]]
    assert sorted((int(r[1]), int(r[2])) for r in rows) == [(s, r) for s in range(2) for r in range(3)]
    assert all(r[-1] == "in_sync" for r in rows)
    for s in range(2):  # the three replicas of a shard are on three distinct nodes, with the same records
        shard = [r for r in rows if r[1] == str(s)]
        assert len({r[3] for r in shard}) == 3 and len({r[5] for r in shard}) == 1
    assert sum(int(r[5]) for r in rows if r[2] == "0") == 30
    client.delete_collection("fields")


def _replicas(name):
    from vectord.cluster.cli import replica_health

    return [r for r in replica_health() if r["collection"] == name]


def test_killing_shard_actors_loses_no_acknowledged_write(client):
    from vectord.cluster.controller import NAMESPACE
    from vectord.cluster.replica import replica_name

    col = client.create_collection("kills", dim=DIM)
    table_id = col._client._call("Collections", "GetCollection",
                                 vectord.v1.collections_pb2.GetCollectionRequest(name="kills")).id
    acked, stop = [], threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            batch = [f"w{i}-{j}" for j in range(5)]
            try:
                col.upsert(ids=batch, embeddings=vectors(5, i))
                acked.extend(batch)
            except vectord.errors.VectordError:
                pass  # not acknowledged: may or may not be there
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for kill in range(3):
            time.sleep(1.5)
            actor = ray.get_actor(replica_name(table_id, kill % 3, kill % 2), namespace=NAMESPACE)
            ray.kill(actor, no_restart=False)  # a crash: Ray restarts it on its node
        time.sleep(1.5)
    finally:
        stop.set()
        thread.join(60)
    assert len(acked) > 0
    got = col.get(ids=acked, include=[])
    assert sorted(got["ids"]) == sorted(acked)
    deadline = time.monotonic() + 60  # the restarted replicas catch up
    while time.monotonic() < deadline:
        rows = _replicas("kills")
        if all(r["state"] == "in_sync" for r in rows):
            break
        time.sleep(1)
    assert all(r["state"] == "in_sync" for r in rows), rows
    for shard in range(3):
        counts = {r["count"] for r in rows if r["shard"] == shard}
        assert len(counts) == 1, rows  # both replicas hold the same records
    client.delete_collection("kills")


def test_vectord_import_and_export_run_against_the_gateway(client, cluster, tmp_path):
    import json

    source = tmp_path / "in.jsonl"
    rows = [{"id": f"j{i}", "document": f"text {i}", "metadata": {"i": i},
             "embedding": vectors(1, 100 + i)[0].tolist()} for i in range(50)]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = subprocess.run([sys.executable, "-m", "vectord", "import", str(source), "-c", "imported",
                           "--address", cluster.gateway, "--batch-size", "20", "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    col = client.get_collection("imported")
    assert col.count() == 50 and col.get(ids=["j7"])["metadatas"] == [{"i": 7}]
    out = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "-m", "vectord", "export", str(out), "-c", "imported",
                           "--address", cluster.gateway, "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == sorted(r["id"] for r in rows)
    client.delete_collection("imported")


def test_cluster_import_streams_jsonl_and_npy_through_ray_data(client, cluster, tmp_path):
    import json

    texts = ["the cat sat on the mat", "stock markets fell sharply", "a kitten naps in the sun",
             "interest rates and inflation", "dogs chase balls in the park", "bond yields rose"]
    rows = [{"id": f"d{i}", "document": f"{texts[i % 6]} {i}", "metadata": {"i": i} if i % 3 else {"i": i, "x": [1, 2]}}
            for i in range(120)]
    rows[5]["metadata"] = None
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    col = client.create_collection("bulk-text")  # the built-in encoder: the pool embeds, the gateway checks the model
    done = subprocess.run([sys.executable, "-m", "vectord", "cluster", "import", str(source), "-c", "bulk-text",
                           "--gateway", cluster.gateway, "--address", cluster.address, "--batch-size", "25",
                           "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "imported 120 records" in done.stderr
    assert col.count() == 120
    got = col.get(ids=["d1", "d3", "d5"], include=["metadatas", "documents"])
    assert got["metadatas"] == [{"i": 1}, {"i": 3, "x": [1, 2]}, None]  # JSON as written: no keys added
    assert got["documents"][0] == "stock markets fell sharply 1"
    hit = col.query(query_texts=["a kitten naps in the sun 8"], n_results=1, include=["distances"])
    assert hit["ids"] == [["d8"]] and hit["distances"][0][0] < 1e-5  # the same model as the gateway's
    with pytest.raises(vectord.errors.InvalidArgumentError, match="takes no embeddings"):
        col.add(ids=["v"], embeddings=np.ones((1, col.dim or 384), np.float32))  # others still may not

    data = vectors(200, 42)
    np.save(tmp_path / "vectors.npy", data)
    flat = client.create_collection("bulk-npy", dim=DIM, metric="l2")
    done = subprocess.run([sys.executable, "-m", "vectord", "cluster", "import", str(tmp_path / "vectors.npy"),
                           "-c", "bulk-npy", "--gateway", cluster.gateway, "--address", cluster.address,
                           "--batch-size", "30", "--id-prefix", "v"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert flat.count() == 200
    got = flat.get(ids=["v0", "v117", "v199"], include=["embeddings"])
    np.testing.assert_array_equal(np.asarray(got["embeddings"], np.float32), data[[0, 117, 199]])
    missing = subprocess.run([sys.executable, "-m", "vectord", "cluster", "import", str(source), "-c", "nope",
                              "--gateway", cluster.gateway, "--address", cluster.address],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "'nope' does not exist" in missing.stderr
    client.delete_collection("bulk-text")
    client.delete_collection("bulk-npy")


def test_a_new_gateway_adopts_the_collections_and_their_writes(cluster):
    first = vectord.Client(cluster.gateway, timeout=60)
    col = first.create_collection("adopted", dim=DIM)
    col.add(ids=[f"x{i}" for i in range(40)], embeddings=vectors(40, 11), metadatas=[{"i": i} for i in range(40)])
    before = col.query(query_embeddings=vectors(3, 12), n_results=4, include=["distances"])
    first.close()
    cluster.gateway_proc.terminate()  # the shard actors are detached: they stay
    assert cluster.gateway_proc.wait(60) == 0
    start_gateway(cluster)
    again = vectord.Client(cluster.gateway, timeout=60)
    col = again.get_collection("adopted")
    assert col.count() == 40 and col.count(where={"i": {"$lt": 10}}) == 10
    assert col.query(query_embeddings=vectors(3, 12), n_results=4, include=["distances"])["ids"] == before["ids"]
    col.add(ids=["after"], embeddings=vectors(1, 13))  # each shard's numbering resumes where it was
    assert col.count() == 41
    again.delete_collection("adopted")
    again.close()


def test_removing_a_node_keeps_reads_answering(client, cluster):
    col = client.create_collection("nodeloss", dim=DIM)
    data = vectors(300, 3)
    col.add(ids=[f"n{i}" for i in range(300)], embeddings=data)
    expected = col.query(query_embeddings=data[:5], n_results=5, include=[])["ids"]
    cluster.remove_node(cluster.workers[0])  # its replicas go with it, unannounced
    removed, failures, answered = time.monotonic(), [], 0
    while time.monotonic() - removed < 15:
        try:
            assert col.count() == 300
            assert col.query(query_embeddings=data[:5], n_results=5, include=[])["ids"] == expected
            answered += 1
        except vectord.errors.VectordError as exc:
            failures.append((time.monotonic() - removed, str(exc)))
        time.sleep(0.2)
    assert answered > 10
    # reads may fail while the lost replicas are found out; none after 5 s (the target)
    assert all(at <= 5 for at, _ in failures), failures


def test_level_all_refuses_writes_at_once_while_a_replica_is_down(cluster):
    """After the node loss above: a gateway at write level all refuses, before writing
    anything, a write that touches a shard with a replica on the lost node; reads answer."""
    cluster.gateway_proc.terminate()
    assert cluster.gateway_proc.wait(60) == 0
    start_gateway(cluster, "--write-level", "all")
    with vectord.Client(cluster.gateway, timeout=60) as c:
        col = c.get_collection("nodeloss")
        started = time.monotonic()
        with pytest.raises(vectord.errors.UnavailableError, match="write level 'all' needs 2; nothing was written"):
            col.upsert(ids=[f"n{i}" for i in range(30)], embeddings=vectors(30, 9))
        assert time.monotonic() - started < 5
        assert col.count() == 300
        assert np.array_equal(col.get(ids=["n0"], include=["embeddings"])["embeddings"][0], vectors(300, 3)[0])


def test_cluster_down_stops_every_replica_and_the_controller(cluster):
    run = lambda *args: subprocess.run([sys.executable, "-m", "vectord", "cluster", *args,  # noqa: E731
                                        "--address", cluster.address], capture_output=True, text=True, timeout=120)
    down = run("down")
    assert down.returncode == 0, down.stderr
    assert "and the controller" in down.stdout and int(down.stdout.split()[1]) >= 4  # nodeloss: 3 x 2, less the lost
    status = run("status")
    assert status.returncode == 1 and "no vectord cluster on this Ray cluster" in status.stderr
