"""Fuzzing with hypothesis.

(a) The storage decoders: arbitrary and mutated bytes through ``framing.scan_frames``,
    ``framing.decode_single``, the MANIFEST reader and a collection's recovery: only
    ``DataLossError`` (or success), never another exception, never a hang.
(b) The server: random bytes to every rpc through a raw channel (streams of random
    messages for the streaming rpcs), and structurally valid messages with random field
    values, snapshot uploads with hostile MANIFESTs (valid frames) and chunks included: only
    proper status codes (never UNKNOWN or INTERNAL), the server healthy afterwards, a
    refused call changes nothing, and nothing is written outside the data directory.
    ``test_every_rpc_is_fuzzed`` fails when an rpc of the proto is missing from METHODS.

CI runs a few hundred examples of each; ``VECTORD_LONG=1`` runs thousands.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import pkgutil
import random

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vectord
from faults_helpers import LONG
from faults_helpers import healthy
from serverproc import start_server
from vectord.errors import DataLossError
from vectord.storage import Database, framing
from vectord.storage.checkpoint import read_manifest
from vectord.storage.collection import Collection
from vectord.storage.fsio import REAL
from vectord.storage.types import Tuning
import vectord.v1
from vectord.v1 import (admin_pb2, collections_pb2 as cpb, encoder_pb2, records_pb2 as rpb,
                        types_pb2 as pb)

EXAMPLES = {"decoders": 10_000 if LONG else 1000, "rpc": 5000 if LONG else 400, "snapshot": 2000 if LONG else 150}
RUN = {"framing": 0, "manifest": 0, "recovery": 0, "raw_rpc": 0, "typed_rpc": 0, "snapshot_rpc": 0}
FUZZ = settings(max_examples=EXAMPLES["decoders"], deadline=None, derandomize=not LONG,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


# ---------------------------------------------------------------- (a) decoders
def _valid_log() -> bytes:
    frames = [framing.encode_frame({"op": "put", "ids": [f"r{i}"], "seq": i + 1,
                                    "vectors": np.ones(2, np.float32).tobytes(),
                                    "documents": [None], "metadatas": [{}]}) for i in range(4)]
    return b"".join(frames)


VALID_LOG = _valid_log()


@st.composite
def mutated(draw, base: bytes):
    """``base`` cut, zeroed, bit-flipped or spliced with random bytes."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "flip", "zero", "insert", "random"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "cut":
            data = data[:at]
        elif kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "zero":
            data[at:at + draw(st.integers(1, 64))] = b"\0" * len(data[at:at + 64])
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        else:
            data[at:at + 8] = draw(st.binary(min_size=8, max_size=8))
    return bytes(data)


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


def _framed_payload(draw_obj) -> bytes:
    return framing.encode_frame(draw_obj)


@FUZZ
@given(data=st.one_of(st.binary(max_size=2048), mutated(VALID_LOG),
                      st.builds(_framed_payload, msgpack_values)))
def test_frame_decoders_raise_only_data_loss(data):
    RUN["framing"] += 1
    for decode in (framing.scan_frames, framing.decode_single):
        try:
            decode(data, "fuzz")
        except DataLossError:
            pass


def _manifest_like():
    good = {"format": 1, "config": {"id": "x", "name": "n", "dim": 2, "metric": "l2",
                                    "hnsw": {"m": 16, "ef_construction": 100, "ef_search": 100},
                                    "metadata": {}, "created_at_ms": 0, "encoder": None},
            "generation": None, "applied_seq": 0, "slots": 0, "files": {}, "index": None}

    def tweak(key_value):
        key, value = key_value
        out = {**good, "config": dict(good["config"])}
        if key.startswith("config."):
            out["config"][key[7:]] = value
        else:
            out[key] = value
        return out

    keys = st.sampled_from(["format", "generation", "applied_seq", "slots", "files", "index", "config",
                            "config.dim", "config.metric", "config.hnsw", "config.name", "config.id",
                            "config.bogus"])
    return st.one_of(msgpack_values, st.tuples(keys, msgpack_values).map(tweak))


@FUZZ
@given(data=st.one_of(st.binary(max_size=1024),
                      mutated(framing.encode_frame({"format": 1, "config": {}, "generation": None})),
                      st.builds(_framed_payload, _manifest_like())),
       log=st.one_of(st.just(b""), mutated(VALID_LOG), st.builds(_framed_payload, msgpack_values)))
def test_manifest_reader_and_recovery_raise_only_data_loss(tmp_path_factory, data, log):
    """The MANIFEST reader, then a whole recovery (manifest + log replay) of the directory."""
    directory = tmp_path_factory.mktemp("m")
    (directory / "MANIFEST").write_bytes(data)
    (directory / "wal.log").write_bytes(log)
    RUN["manifest"] += 1
    try:
        read_manifest(directory)
    except DataLossError:
        return
    RUN["recovery"] += 1
    try:
        Collection.open(REAL, directory, Tuning(index_threads=1)).close(checkpoint=False)
    except DataLossError:
        pass


# ---------------------------------------------------------------- (b) rpcs
METHODS = {
    "/vectord.v1.Records/Add": rpb.WriteRequest, "/vectord.v1.Records/Upsert": rpb.WriteRequest,
    "/vectord.v1.Records/Update": rpb.WriteRequest, "/vectord.v1.Records/Delete": rpb.DeleteRequest,
    "/vectord.v1.Records/Get": rpb.GetRequest, "/vectord.v1.Records/Query": rpb.QueryRequest,
    "/vectord.v1.Records/QueryStream": rpb.QueryStreamRequest,
    "/vectord.v1.Records/Count": rpb.CountRequest, "/vectord.v1.Records/Classify": rpb.ClassifyRequest,
    "/vectord.v1.Collections/CreateCollection": cpb.CreateCollectionRequest,
    "/vectord.v1.Collections/GetCollection": cpb.GetCollectionRequest,
    "/vectord.v1.Collections/ListCollections": cpb.ListCollectionsRequest,
    "/vectord.v1.Collections/DeleteCollection": cpb.DeleteCollectionRequest,
    "/vectord.v1.Collections/ModifyCollection": cpb.ModifyCollectionRequest,
    "/vectord.v1.Admin/Reset": admin_pb2.ResetRequest,
    "/vectord.v1.Admin/GetServerInfo": admin_pb2.GetServerInfoRequest,
    "/vectord.v1.Admin/Checkpoint": admin_pb2.CheckpointRequest,
    "/vectord.v1.Admin/CreateSnapshot": admin_pb2.CreateSnapshotRequest,
    "/vectord.v1.Admin/ListSnapshots": admin_pb2.ListSnapshotsRequest,
    "/vectord.v1.Admin/DownloadSnapshot": admin_pb2.DownloadSnapshotRequest,
    "/vectord.v1.Admin/RestoreSnapshot": admin_pb2.RestoreSnapshotRequest,
    "/vectord.v1.Admin/ReembedCollection": admin_pb2.ReembedCollectionRequest,
    "/vectord.v1.Encoder/Embed": encoder_pb2.EmbedRequest,
    "/vectord.v1.Encoder/ListModels": encoder_pb2.ListModelsRequest,
}
# rpcs being added to the proto by a concurrent change: fuzzed as soon as their messages exist
for _method, (_module, _message) in {"/vectord.v1.Collections/ModifyCollection": (cpb, "ModifyCollectionRequest"),
                                     "/vectord.v1.Admin/Reset": (admin_pb2, "ResetRequest")}.items():
    if hasattr(_module, _message):
        METHODS[_method] = getattr(_module, _message)
BAD = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE}
CODES: dict[str, int] = {}


def proto_rpcs() -> dict[str, object]:
    """Every rpc of vectord's services, from the generated descriptors: path -> descriptor."""
    out = {}
    for info in pkgutil.iter_modules(vectord.v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"vectord.v1.{info.name}")
            for service in module.DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    out[f"/{service.full_name}/{method.name}"] = method
    return out


RPCS = proto_rpcs()


def test_every_rpc_is_fuzzed():
    """A new rpc must join METHODS (with its request type), so the fuzzers reach it."""
    missing = sorted(set(RPCS) - set(METHODS))
    assert not missing, f"rpcs of the proto not in test_fuzz.METHODS: {missing}"
    assert not set(METHODS) - set(RPCS), sorted(set(METHODS) - set(RPCS))
    for path, cls in METHODS.items():
        assert cls.DESCRIPTOR.full_name == RPCS[path].input_type.full_name, path
    assert RPCS["/vectord.v1.Admin/RestoreSnapshot"].client_streaming  # streams are fuzzed as streams


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = start_server(tmp_path_factory.mktemp("fuzz") / "data")
    client = vectord.Client(proc.address, timeout=30)
    client.create_collection("h", dim=4, metric="l2").add(
        ids=["keep"], embeddings=[[1, 2, 3, 4]], metadatas=[{"k": 1}])
    client.create_collection("guard", dim=2, metric="l2").add(ids=["g"], embeddings=[[1, 1]])
    client.close()
    outside = sorted(p.name for p in proc.data_dir.parent.iterdir())
    channel = grpc.insecure_channel(proc.address)
    yield proc, channel
    channel.close()
    assert proc.terminate() == 0, proc.log()
    assert "Traceback" not in proc.log() or "unexpected error" not in proc.log(), proc.log()[-3000:]
    # nothing escaped the data directory, and no upload or restore left anything behind
    assert sorted(p.name for p in proc.data_dir.parent.iterdir()) == outside
    for folder in ("snapshots", "collections"):
        if (proc.data_dir / folder).exists():
            assert not [p.name for p in (proc.data_dir / folder).iterdir() if p.name.startswith(".")]


def _state(channel):
    lst = channel.unary_unary("/vectord.v1.Collections/ListCollections",
                              response_deserializer=cpb.ListCollectionsResponse.FromString)
    get = channel.unary_unary("/vectord.v1.Records/Get", request_serializer=rpb.GetRequest.SerializeToString,
                              response_deserializer=rpb.GetResponse.FromString)
    snaps = channel.unary_unary("/vectord.v1.Admin/ListSnapshots",
                                response_deserializer=admin_pb2.ListSnapshotsResponse.FromString)
    infos = lst(b"", timeout=30).collections
    records = {c.name: get(rpb.GetRequest(collection=c.name, include=pb.Include(
        embeddings=True, documents=True, metadatas=True)), timeout=30).SerializeToString(deterministic=True)
        for c in infos}
    return sorted((c.name, c.count, c.seq) for c in infos), records, [s.name for s in snaps(b"", timeout=30).snapshots]


_CODE_NAMES = {code.value[0]: code for code in grpc.StatusCode}


def _invoke(channel, method, payload):
    """Calls ``method`` with raw bytes (identity serializers: they go out as they are);
    a client-streaming rpc takes a list of messages, a server-streaming one is read out."""
    rpc = RPCS[method]
    if rpc.client_streaming and rpc.server_streaming:  # QueryStream: failures are answered in-band
        for answer in channel.stream_stream(method)(iter(payload), timeout=30):
            code = rpb.QueryStreamResponse.FromString(answer).status_code
            assert _CODE_NAMES[code] not in BAD, (method, payload, _CODE_NAMES[code])
    elif rpc.client_streaming:
        channel.stream_unary(method)(iter(payload), timeout=30)
    elif rpc.server_streaming:
        for _ in channel.unary_stream(method)(payload, timeout=30):
            pass
    else:
        channel.unary_unary(method)(payload, timeout=30)


def _check_call(channel, method, payload, kind):
    before = _state(channel)
    try:
        _invoke(channel, method, payload)
        code = grpc.StatusCode.OK
    except grpc.RpcError as exc:
        code = exc.code()
        assert code not in BAD, (method, payload[:200], code, exc.details())
        assert _state(channel) == before, (method, "a refused call changed the state")
    CODES[code.name] = CODES.get(code.name, 0) + 1
    RUN[kind] += 1


RPC_FUZZ = settings(max_examples=EXAMPLES["rpc"], deadline=None, derandomize=not LONG,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@RPC_FUZZ
@given(method=st.sampled_from(sorted(METHODS)), payload=st.binary(max_size=512),
       stream=st.lists(st.binary(max_size=512), max_size=4))
def test_random_bytes_to_every_rpc(server, method, payload, stream):
    _check_call(server[1], method, [payload, *stream] if RPCS[method].client_streaming else payload, "raw_rpc")


# structurally valid messages with random field values
names = st.sampled_from(["h", "guard", "missing", "", "../x", "é" * 3, "h" * 200])
texts = st.text(max_size=12)
values = st.recursive(
    st.builds(pb.Value, null_value=st.just(0)) | st.builds(pb.Value, string_value=texts)
    | st.builds(pb.Value, int_value=st.integers(-2**63, 2**63 - 1))
    | st.builds(pb.Value, double_value=st.floats()) | st.builds(pb.Value, bool_value=st.booleans())
    | st.just(pb.Value()),
    lambda children: st.builds(lambda xs: pb.Value(list_value=pb.ListValue(values=xs)), st.lists(children, max_size=3))
    | st.builds(lambda d: pb.Value(map_value=pb.Metadata(fields=d)), st.dictionaries(texts, children, max_size=3)),
    max_leaves=10)
metadatas = st.builds(lambda d: pb.Metadata(fields=d), st.dictionaries(texts, values, max_size=3))
enum_op = st.integers(-3, 12)
filters = st.recursive(
    st.builds(lambda p, o, v: pb.Filter(field=pb.FieldCondition(path=p, op=o, value=v)),
              st.sampled_from(["k", "a.b", "", "$x", "k..", "é"]) | texts, enum_op, values)
    | st.builds(lambda o, t: pb.Filter(document=pb.DocumentCondition(op=o, text=t)), enum_op, texts)
    | st.just(pb.Filter()),
    lambda children: st.builds(lambda xs: pb.Filter(all_of=pb.FilterList(filters=xs)), st.lists(children, max_size=3))
    | st.builds(lambda xs: pb.Filter(any_of=pb.FilterList(filters=xs)), st.lists(children, max_size=3))
    | st.builds(lambda x: pb.Filter(negation=x), children),
    max_leaves=8)


@st.composite
def vectors_msg(draw):
    dim = draw(st.sampled_from([0, 1, 2, 4, 5, 70000]))
    count = draw(st.integers(0, 3))
    size = draw(st.sampled_from([count * min(dim, 8) * 4, count * dim * 4 if dim < 100 else 0, 3]))
    floats = draw(st.lists(st.floats(width=32), min_size=size // 4, max_size=size // 4))
    data = np.asarray(floats, "<f4").tobytes() + b"\0" * (size % 4)
    return pb.Vectors(dim=dim, count=count, data_f32le=data)


ids = st.lists(st.sampled_from(["keep", "g", "x", "y", "", "é"]) | texts, max_size=4)
docs = st.builds(lambda xs: rpb.DocumentList(values=xs), st.lists(
    st.just(pb.OptionalString()) | st.builds(lambda t: pb.OptionalString(value=t), texts), max_size=4))
include = st.builds(pb.Include, embeddings=st.booleans(), documents=st.booleans(),
                    metadatas=st.booleans(), distances=st.booleans())


def _opt(strategy):
    return st.none() | strategy


def _build(cls, **fields):
    return cls(**{k: v for k, v in fields.items() if v is not None})


messages = st.one_of(
    st.tuples(st.sampled_from(["/vectord.v1.Records/Add", "/vectord.v1.Records/Upsert", "/vectord.v1.Records/Update"]),
              st.builds(_build, st.just(rpb.WriteRequest), collection=names, ids=ids,
                        embeddings=_opt(vectors_msg()), documents=_opt(docs),
                        metadatas=_opt(st.builds(lambda xs: rpb.MetadataList(values=xs), st.lists(metadatas, max_size=4))))),
    st.tuples(st.just("/vectord.v1.Records/Delete"),
              st.builds(_build, st.just(rpb.DeleteRequest), collection=names, ids=ids, where=_opt(filters))),
    st.tuples(st.just("/vectord.v1.Records/Get"),
              st.builds(_build, st.just(rpb.GetRequest), collection=names, ids=ids, where=_opt(filters),
                        limit=st.integers(0, 2**32 - 1), offset=st.integers(0, 2**32 - 1), include=_opt(include))),
    st.tuples(st.just("/vectord.v1.Records/Query"),
              st.builds(_build, st.just(rpb.QueryRequest), collection=names, queries=_opt(vectors_msg()),
                        n_results=st.integers(0, 2**32 - 1), where=_opt(filters), include=_opt(include),
                        query_texts=st.lists(texts, max_size=2), max_distance=_opt(st.floats()),
                        group_by=st.sampled_from(["", "g", "a.b", "$x", "a..b"]),
                        group_size=st.integers(0, 2**32 - 1))),
    st.tuples(st.just("/vectord.v1.Records/Count"),
              st.builds(_build, st.just(rpb.CountRequest), collection=names, where=_opt(filters))),
    st.tuples(st.just("/vectord.v1.Records/Classify"),
              st.builds(_build, st.just(rpb.ClassifyRequest), collection=names, vectors=_opt(vectors_msg()),
                        texts=st.lists(texts, max_size=2), label_key=st.sampled_from(["", "label", "a.b", "$x"]),
                        k=st.integers(0, 2**32 - 1), where=_opt(filters))),
    st.tuples(st.just("/vectord.v1.Collections/CreateCollection"),
              st.builds(_build, st.just(cpb.CreateCollectionRequest), name=names | texts,
                        dim=st.integers(0, 2**32 - 1), metric=st.integers(-1, 5),
                        hnsw=_opt(st.builds(cpb.HnswParams, m=st.integers(0, 2**32 - 1),
                                            ef_construction=st.integers(0, 5000), ef_search=st.integers(0, 5000))),
                        metadata=_opt(metadatas), get_or_create=st.booleans(),
                        encoder=st.sampled_from(["", "default", "nope"]))),
    st.tuples(st.just("/vectord.v1.Encoder/Embed"),
              st.builds(_build, st.just(encoder_pb2.EmbedRequest), texts=st.lists(texts, max_size=3),
                        model=st.sampled_from(["", "default", "nope"]))),
    st.tuples(st.just("/vectord.v1.Admin/CreateSnapshot"),
              st.builds(_build, st.just(admin_pb2.CreateSnapshotRequest), collection=names,
                        name=st.sampled_from(["", "base", "../x", "/etc", "a/b", ".upload-x", "s" * 200]) | texts)),
    st.tuples(st.just("/vectord.v1.Admin/DownloadSnapshot"),
              st.builds(_build, st.just(admin_pb2.DownloadSnapshotRequest),
                        name=st.sampled_from(["", "base", "missing", "../base", "/etc", ".upload-x"]) | texts)),
    *([st.tuples(st.just("/vectord.v1.Collections/ModifyCollection"),  # never 'guard': the last test counts it
                 st.builds(_build, st.just(cpb.ModifyCollectionRequest), name=st.sampled_from(["h", "missing", "", "../x"]),
                           new_name=_opt(names | texts), metadata=_opt(metadatas)))]
      if "/vectord.v1.Collections/ModifyCollection" in METHODS else []),
)


@RPC_FUZZ
@given(message=messages)
def test_structurally_valid_messages_with_random_values(server, message):
    method, request = message
    _check_call(server[1], method, request.SerializeToString(), "typed_rpc")


# ---------------------------------------------------------------- (c) snapshot streams
SNAPSHOT_FUZZ = settings(max_examples=EXAMPLES["snapshot"], deadline=None, derandomize=not LONG,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                HealthCheck.data_too_large])


#: The good snapshot the stream fuzzer mutates: a name the rpc fuzzer's strategies never draw, so
#: a CreateSnapshot it sent earlier in the module (more of them in long mode) cannot take it.
BASE = "stream-fuzz-base"


@pytest.fixture(scope="module")
def base_snapshot(server):
    """The files of a good snapshot (BASE, of collection 'h'), as DownloadSnapshot gives them."""
    channel = server[1]
    channel.unary_unary("/vectord.v1.Admin/CreateSnapshot", request_serializer=admin_pb2.CreateSnapshotRequest.SerializeToString,
                        response_deserializer=admin_pb2.SnapshotInfo.FromString)(
        admin_pb2.CreateSnapshotRequest(collection="h", name=BASE), timeout=30)
    download = channel.unary_stream("/vectord.v1.Admin/DownloadSnapshot",
                                    request_serializer=admin_pb2.DownloadSnapshotRequest.SerializeToString,
                                    response_deserializer=admin_pb2.SnapshotChunk.FromString)
    files: dict[str, bytes] = {}
    for chunk in download(admin_pb2.DownloadSnapshotRequest(name=BASE), timeout=30):
        files[chunk.path] = files.get(chunk.path, b"") + chunk.data
    return files


#: MANIFEST fields a mutation reaches (a path of keys), and values no MANIFEST should hold.
MANIFEST_PATHS = [("format",), ("generation",), ("applied_seq",), ("slots",), ("files",), ("index",), ("config",),
                  ("config", "dim"), ("config", "metric"), ("config", "hnsw"), ("config", "name"), ("config", "id"),
                  ("config", "encoder"), ("config", "metadata"), ("config", "bogus"), ("files", "vectors.npy"),
                  ("files", "records.msgpack"), ("files", "index.hnsw"), ("files", "vectors.npy", "size"),
                  ("files", "vectors.npy", "sha256"), ("files", "../../x/vectors.npy"), ("files", "/etc/passwd"),
                  ("index", "dim"), ("index", "space"), ("index", "deleted")]
HOSTILE = st.sampled_from([
    None, "", "../../../escaped", "/etc/passwd", "gen-00000000000000000001/../..", "gen-1", "..", ".", "/",
    "gen-00000000000000000001", -1, 2**63, 2**64 - 1, 0, True, 1.5, float("nan"), [], {}, "x" * 300,
    {"../../x/vectors.npy": {"sha256": "0" * 64, "size": 8}}, {"/etc/passwd": {"sha256": "0" * 64, "size": 8}},
    {"vectors.npy": {"sha256": "zz", "size": -1}}, {"sha256": "0" * 64, "size": 2**62},
]) | msgpack_values
CHUNK_PATHS = ["MANIFEST", "SNAPSHOT", "{gen}/vectors.npy", "{gen}/records.msgpack", "{gen}/index.hnsw",
               "gen-00000000000000000099/vectors.npy", "../x", "/etc/passwd", "", "{gen}/../../x", "MANIFEST/../x",
               "{gen}/vectors.npy/", "gen-1/vectors.npy", "{gen}/wal.log"]


def _mutate_manifest(manifest: dict, path: tuple, delete: bool, value) -> None:
    target = manifest
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    if delete:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value


@SNAPSHOT_FUZZ
@given(data=st.data())
def test_hostile_snapshot_streams(server, base_snapshot, data):
    """RestoreSnapshot with hostile streams: named restores of odd names, uploads whose
    MANIFEST is mutated (and re-framed, so its checksum holds), files cut or flipped (with
    or without a matching sha256), files left out, and extra chunks at hostile paths."""
    draw = data.draw
    first = admin_pb2.RestoreSnapshotRequest(collection=draw(names | st.sampled_from(["fz", "fz2"])),
                                             replace=draw(st.booleans()))
    if draw(st.booleans()) and draw(st.booleans()):  # a restore by name (sometimes with a chunk: refused)
        first.snapshot = draw(st.sampled_from([BASE, "missing", "../" + BASE, ".upload-x", "/etc"]) | texts)
        if draw(st.booleans()):
            first.chunk.CopyFrom(admin_pb2.SnapshotChunk(path="MANIFEST", data=b"x"))
        stream = [first]
    else:
        files = dict(base_snapshot)
        manifest = framing.decode_single(files["MANIFEST"], BASE)
        gen = manifest["generation"]
        for name in draw(st.lists(st.sampled_from(["vectors.npy", "records.msgpack", "index.hnsw"]), max_size=2)):
            path = f"{gen}/{name}"
            if path in files:
                files[path] = draw(mutated(files[path]))
                if draw(st.booleans()):  # the MANIFEST agrees with the damaged file
                    manifest["files"][name] = {"sha256": hashlib.sha256(files[path]).hexdigest(), "size": len(files[path])}
        for path, delete, value in draw(st.lists(st.tuples(st.sampled_from(MANIFEST_PATHS), st.booleans(), HOSTILE),
                                                 max_size=3)):
            _mutate_manifest(manifest, path, delete, value)
        try:
            files["MANIFEST"] = framing.encode_frame(manifest)
        except Exception:  # a value msgpack cannot hold: the frame of the untouched MANIFEST
            pass
        if draw(st.booleans()):
            files["MANIFEST"] = draw(mutated(files["MANIFEST"]))
        for path in draw(st.lists(st.sampled_from(sorted(files)), max_size=2)):
            files.pop(path, None)
        stream = [first] + [admin_pb2.RestoreSnapshotRequest(chunk=admin_pb2.SnapshotChunk(
            path=path, data=content, file_size_bytes=len(content))) for path, content in files.items()]
        for _ in range(draw(st.integers(0, 2))):
            chunk = admin_pb2.SnapshotChunk(path=draw(st.sampled_from(CHUNK_PATHS)).format(gen=gen),
                                            offset_bytes=draw(st.sampled_from([0, 1, 2**63])),
                                            data=draw(st.binary(max_size=64)))
            stream.insert(draw(st.integers(1, len(stream))), admin_pb2.RestoreSnapshotRequest(chunk=chunk))
    _check_call(server[1], "/vectord.v1.Admin/RestoreSnapshot", [m.SerializeToString() for m in stream], "snapshot_rpc")


def test_zz_server_healthy_after_fuzzing(server):
    proc, channel = server
    assert proc.proc.poll() is None and healthy(proc.address)
    guard = channel.unary_unary("/vectord.v1.Records/Count", request_serializer=rpb.CountRequest.SerializeToString,
                                response_deserializer=rpb.CountResponse.FromString)
    assert guard(rpb.CountRequest(collection="guard"), timeout=30).count >= 0
    assert "unexpected error" not in proc.log(), proc.log()[-3000:]
    print(f"\nfuzz examples run: {RUN}; status codes seen: {CODES}")

