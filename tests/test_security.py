"""Security (issue 5, item 4): API keys and roles, TLS and mutual TLS, the exposed-bind
warning, no outbound connections, and collection names that cannot leave the data directory.

Every test runs against real `vectord serve` processes (tests/serverproc.py); the
certificates are generated here, with the `cryptography` package.
"""

from __future__ import annotations

import datetime
import importlib
import ipaddress
import os
import pkgutil
import re
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import vectord
from serverproc import start_server
from vectord.server import auth

RW_KEY = "rw-3f9c2b7e1d4a6c8e0b2d4f6a8c0e2b4d"
RO_KEY = "ro-8a6c4e2b0d9f7a5c3e1b9d7f5a3c1e9b"
ENV_RW_KEY = "env-rw-5d7f9b1c3e5a7c9e1b3d5f7a9c1e3b5d"
ENV_RO_KEY = "env-ro-2c4e6a8c0e2a4c6e8a0c2e4a6c8e0a2c"

pytestmark = pytest.mark.timeout(120)


def _write_keys_file(path: Path) -> Path:
    path.write_text(
        "# vectord API keys: one '<role>:<key>' a line, role rw (read-write) or ro (read-only)\n"
        "\n"
        f"rw:{RW_KEY}\n"
        f"   RO : {RO_KEY}   \n"
        "# ro:commented-out-key\n")
    path.chmod(0o600)
    return path


def _loopback(address: str) -> str:
    return "127.0.0.1:" + address.rsplit(":", 1)[1]


def _metadata(key: str | None):
    return (("authorization", f"Bearer {key}"),) if key is not None else None


# ----------------------------------------------------------------------------- generic calls
def _descriptors():
    """(full method, request class, response class) for every rpc of every vectord.v1 service."""
    import vectord.v1 as package

    out = []
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.endswith("_pb2"):
            file = importlib.import_module(f"{package.__name__}.{module.name}").DESCRIPTOR
            for service in file.services_by_name.values():
                for method in service.methods:
                    out.append((f"/{service.full_name}/{method.name}",
                                message_factory.GetMessageClass(method.input_type),
                                message_factory.GetMessageClass(method.output_type)))
    return out


def _status(channel, full_method, request_cls=None, response_cls=None, key=None, raw_auth=None):
    """Calls ``full_method`` with an empty request; returns (status code, details)."""
    if request_cls is None:
        rpc = channel.unary_unary(full_method)
        request = b""
    else:
        rpc = channel.unary_unary(full_method, request_serializer=request_cls.SerializeToString,
                                  response_deserializer=response_cls.FromString)
        request = request_cls()
    metadata = (("authorization", raw_auth),) if raw_auth is not None else _metadata(key)
    try:
        rpc(request, metadata=metadata, timeout=20)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as exc:
        return exc.code(), exc.details()


# ----------------------------------------------------------------------------- method table
def test_every_rpc_of_every_vectord_service_is_classified():
    """A new rpc cannot slip through unclassified: the table is derived from the descriptors,
    everything not explicitly read-only needs a read-write key, and READ_METHODS names only
    real rpcs that by their name change nothing."""
    roles = auth.method_roles()
    methods = {name for name, _, _ in _descriptors()}
    assert methods and set(roles) == methods
    assert set(roles.values()) <= {auth.READ_ONLY, auth.READ_WRITE}
    read = {m for m, role in roles.items() if role == auth.READ_ONLY}
    assert {m.lstrip("/") for m in read} == set(auth.READ_METHODS), "READ_METHODS names a missing rpc"
    for name in read:
        assert name.rsplit("/", 1)[1].startswith(("Get", "List", "Query", "Count", "Classify", "Embed", "Download")), name
    # the services the server registers are exactly the ones the table covers
    from vectord.server.app import SERVICE_NAMES

    assert {m.lstrip("/").split("/")[0] for m in methods} >= set(SERVICE_NAMES)
    # writes named in the issue are read-write
    for name in ("Records/Add", "Records/Upsert", "Records/Update", "Records/Delete",
                 "Collections/CreateCollection", "Collections/DeleteCollection", "Admin/Checkpoint"):
        assert roles[f"/vectord.v1.{name}"] == auth.READ_WRITE
    # unknown methods are closed: they need a read-write key
    interceptor = auth.AuthInterceptor(auth.ApiKeys())
    assert interceptor._role_needed("/vectord.v1.Records/SomethingNew") == auth.READ_WRITE
    assert interceptor._role_needed("/grpc.health.v1.Health/Check") is None


def test_key_comparison_is_constant_time_over_all_keys(monkeypatch):
    """compare_digest runs once per configured key whichever key matches (no early exit)."""
    keys = auth.ApiKeys()
    for i in range(5):
        keys.add(f"key-number-{i}-xxxxxxxx", auth.READ_WRITE if i % 2 else auth.READ_ONLY, "test")
    calls = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    for presented, role in [("key-number-0-xxxxxxxx", "ro"), ("key-number-3-xxxxxxxx", "rw"),
                            ("nope", None), ("", None), ("key-number-4-xxxxxxx", None)]:
        calls.clear()
        assert keys.role_of(presented) == role
        assert len(calls) == 5


def test_keys_file_format(tmp_path):
    keys = auth.ApiKeys.parse_file(_write_keys_file(tmp_path / "keys"))
    assert len(keys) == 2
    assert keys.role_of(RW_KEY) == "rw" and keys.role_of(RO_KEY) == "ro"
    assert keys.role_of("commented-out-key") is None
    for bad, why in [("rw\n", ":2: expected"), ("admin:abc\n", "role must be"), ("rw:\n", "empty API key"),
                     ("rw:a b\n", "without spaces"), ("rw:same\nro:same\n", "both 'rw' and 'ro'")]:
        path = tmp_path / "bad"
        path.write_text("# header\n" + bad)
        with pytest.raises(vectord.InvalidArgumentError, match=why.replace("(", r"\(")):
            auth.ApiKeys.parse_file(path)


def test_bad_keys_file_stops_the_server_without_echoing_keys(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("rw:secret-key-that-must-not-be-logged\nsecret-key-without-role:and-a-colon\n")
    with pytest.raises(RuntimeError) as info:
        start_server(tmp_path / "data", "--api-keys-file", str(keys))
    message = str(info.value)
    assert f"{keys}:2" in message and "role must be" in message
    assert "secret-key" not in message
    with pytest.raises(RuntimeError, match="cannot read API keys file"):
        start_server(tmp_path / "data", "--api-keys-file", str(tmp_path / "missing"))


# ----------------------------------------------------------------------------- API keys
@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    """Bound to 0.0.0.0 (all interfaces) with keys from a file and from the environment."""
    root = tmp_path_factory.mktemp("keyed")
    proc = start_server(root / "data", "--host", "0.0.0.0", "--api-keys-file", str(_write_keys_file(root / "keys")),
                        env={"VECTORD_API_KEY": ENV_RW_KEY, "VECTORD_READONLY_API_KEY": ENV_RO_KEY})
    yield proc
    assert proc.terminate() == 0, proc.log()


def test_keys_bound_to_all_interfaces_give_no_open_server_warning(keyed_server):
    log = keyed_server.log()
    assert "API keys: 4 configured" in log
    assert "WITHOUT API KEYS" not in log
    for key in (RW_KEY, RO_KEY, ENV_RW_KEY, ENV_RO_KEY):
        assert key not in log


def test_missing_or_wrong_key_is_unauthenticated_on_every_rpc(keyed_server):
    with grpc.insecure_channel(_loopback(keyed_server.address)) as channel:
        for method, req, resp in _descriptors():
            for kwargs in ({}, {"key": "wrong-key"}, {"key": ""}, {"raw_auth": RW_KEY},
                           {"raw_auth": f"Basic {RW_KEY}"}):
                code, details = _status(channel, method, req, resp, **kwargs)
                assert code == grpc.StatusCode.UNAUTHENTICATED, (method, kwargs, code, details)
        # an rpc that does not exist is refused the same way, not reported UNIMPLEMENTED
        assert _status(channel, "/vectord.v1.Records/Nope")[0] == grpc.StatusCode.UNAUTHENTICATED
        assert _status(channel, "/vectord.v1.Records/Nope", key=RO_KEY)[0] == grpc.StatusCode.PERMISSION_DENIED
        assert _status(channel, "/vectord.v1.Records/Nope", key=RW_KEY)[0] == grpc.StatusCode.UNIMPLEMENTED
    with vectord.Client(_loopback(keyed_server.address), timeout=10) as client:
        with pytest.raises(vectord.UnauthenticatedError, match="missing API key"):
            client.list_collections()
    with vectord.Client(_loopback(keyed_server.address), api_key="wrong", timeout=10) as client:
        with pytest.raises(vectord.UnauthenticatedError, match="invalid API key"):
            client.server_info()


@pytest.mark.parametrize("ro_key", [RO_KEY, ENV_RO_KEY])
def test_read_only_key_reads_and_cannot_change_anything(keyed_server, ro_key):
    """Each rpc with a read-only key: read rpcs pass auth (their own validation may refuse the
    empty request), every other rpc is PERMISSION_DENIED naming the method."""
    roles = auth.method_roles()
    with grpc.insecure_channel(_loopback(keyed_server.address)) as channel:
        for method, req, resp in _descriptors():
            code, details = _status(channel, method, req, resp, key=ro_key)
            if roles[method] == auth.READ_ONLY:
                assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), method
            else:
                assert code == grpc.StatusCode.PERMISSION_DENIED, (method, code, details)
                assert method in details and "read-only" in details


@pytest.mark.parametrize("rw_key", [RW_KEY, ENV_RW_KEY])
def test_read_write_and_read_only_keys_through_the_sdk(keyed_server, rw_key):
    address = _loopback(keyed_server.address)
    name = f"keys-{rw_key[:6]}"
    with vectord.Client(address, api_key=rw_key, timeout=20) as rw, \
            vectord.Client(address, api_key=RO_KEY, timeout=20) as ro:
        docs = rw.create_collection(name, dim=3)
        docs.add(ids=["a", "b"], embeddings=[[1, 0, 0], [0, 1, 0]], documents=["x", "y"])
        ro_docs = ro.get_collection(name)
        assert ro_docs.count() == 2
        assert ro_docs.get(ids=["a"])["ids"] == ["a"]
        assert ro_docs.query(query_embeddings=[[1, 0, 0]], n_results=1)["ids"] == [["a"]]
        assert name in [c.name for c in ro.list_collections()]
        assert ro.server_info()["collection_count"] >= 1
        ro.list_models()
        for attempt, method in [
            (lambda: ro_docs.add(ids=["c"], embeddings=[[0, 0, 1]]), "Records/Add"),
            (lambda: ro_docs.upsert(ids=["a"], embeddings=[[0, 0, 1]]), "Records/Upsert"),
            (lambda: ro_docs.update(ids=["a"], documents=["changed"]), "Records/Update"),
            (lambda: ro_docs.delete(ids=["a"]), "Records/Delete"),
            (lambda: ro.create_collection(name + "-2", dim=3), "Collections/CreateCollection"),
            (lambda: ro.delete_collection(name), "Collections/DeleteCollection"),
            (lambda: ro.checkpoint(name), "Admin/Checkpoint"),
        ]:
            with pytest.raises(vectord.PermissionDeniedError, match=method):
                attempt()
        # nothing changed
        assert docs.get(ids=["a", "b"])["documents"] == ["x", "y"]
        assert [c.name for c in rw.list_collections()].count(name) == 1
        assert name + "-2" not in [c.name for c in rw.list_collections()]
        rw.checkpoint(name)
        rw.delete_collection(name)


def test_health_is_open_and_reflection_needs_a_key(keyed_server):
    with grpc.insecure_channel(_loopback(keyed_server.address)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        def list_services(key):
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            responses = stub.ServerReflectionInfo(iter([request]), metadata=_metadata(key), timeout=10)
            return [s.name for r in responses for s in r.list_services_response.service]

        with pytest.raises(grpc.RpcError) as info:
            list_services(None)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "vectord.v1.Records" in list_services(RO_KEY)


# ----------------------------------------------------------------------------- bind warning
def test_open_server_on_all_interfaces_warns_loudly(tmp_path):
    proc = start_server(tmp_path / "data", "--host", "0.0.0.0")
    try:
        log = proc.log()
        warning = [line for line in log.splitlines() if "WITHOUT API KEYS" in line]
        assert warning and " WARNING " in warning[0] and "0.0.0.0" in warning[0], log
    finally:
        assert proc.terminate() == 0
    # still on stderr when the log level hides warnings
    proc = start_server(tmp_path / "data2", "--host", "0.0.0.0", "--log-level", "ERROR")
    try:
        assert "WITHOUT API KEYS" in proc.log()
    finally:
        assert proc.terminate() == 0


def test_loopback_detection():
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        assert auth.is_loopback(host), host
    for host in ("0.0.0.0", "::", "[::]", "10.0.0.5", "example.com", ""):
        assert not auth.is_loopback(host), host


# ----------------------------------------------------------------------------- TLS
def _name(common_name):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, key, issuer, issuer_key, *, ca=False, sans=(), client=False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA; a server certificate for 127.0.0.1 / ::1 / localhost; a client certificate;
    and a second, untrusted CA with its own client certificate."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    root = tmp_path_factory.mktemp("certs")
    paths = {}

    def save(name, cert, key=None):
        paths[name] = root / f"{name}.pem"
        paths[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            paths[name + "_key"] = root / f"{name}.key"
            paths[name + "_key"].write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    new_key = lambda: ec.generate_private_key(ec.SECP256R1())  # noqa: E731 - fast to generate
    ca_key, other_ca_key = new_key(), new_key()
    ca = _certificate("vectord test CA", ca_key, "vectord test CA", ca_key, ca=True)
    other_ca = _certificate("someone else's CA", other_ca_key, "someone else's CA", other_ca_key, ca=True)
    save("ca", ca)
    save("other_ca", other_ca)
    server_key = new_key()
    save("server", _certificate("localhost", server_key, "vectord test CA", ca_key, sans=[
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1"))]), server_key)
    client_key, rogue_key = new_key(), new_key()
    save("client", _certificate("app", client_key, "vectord test CA", ca_key, client=True), client_key)
    save("rogue", _certificate("app", rogue_key, "someone else's CA", other_ca_key, client=True), rogue_key)
    return paths


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certs):
    proc = start_server(tmp_path_factory.mktemp("tls") / "data",
                        "--tls-cert", str(certs["server"]), "--tls-key", str(certs["server_key"]))
    yield proc
    assert proc.terminate() == 0, proc.log()


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory, certs):
    """Mutual TLS, configured through the environment this time."""
    proc = start_server(tmp_path_factory.mktemp("mtls") / "data", env={
        "VECTORD_TLS_CERT": str(certs["server"]), "VECTORD_TLS_KEY": str(certs["server_key"]),
        "VECTORD_TLS_CLIENT_CA": str(certs["ca"])})
    yield proc
    assert proc.terminate() == 0, proc.log()


def _works(client):
    name = f"tls-{time.monotonic_ns()}"
    docs = client.create_collection(name, dim=2)
    docs.add(ids=["a"], embeddings=[[1, 0]])
    assert docs.query(query_embeddings=[[1, 0]], n_results=1)["ids"] == [["a"]]
    client.delete_collection(name)


def test_tls(tls_server, certs):
    assert "TLS: on" in tls_server.log()
    port = tls_server.address.rsplit(":", 1)[1]
    with vectord.Client(tls_server.address, tls_ca=certs["ca"], timeout=10) as client:
        _works(client)
    with vectord.Client(f"localhost:{port}", tls_ca=certs["ca"].read_bytes(), timeout=10) as client:
        assert client.list_collections() == []
    with vectord.Client(tls_server.address, timeout=5) as plaintext:  # plaintext to a TLS server
        with pytest.raises(vectord.UnavailableError):
            plaintext.list_collections()
    with vectord.Client(tls_server.address, tls_ca=certs["other_ca"], timeout=5) as untrusting:
        with pytest.raises(vectord.UnavailableError):  # server certificate not signed by that CA
            untrusting.list_collections()


def test_mutual_tls(mtls_server, certs):
    assert "TLS: mutual" in mtls_server.log()
    address = mtls_server.address
    with vectord.Client(address, tls_ca=certs["ca"], tls_cert=certs["client"], tls_key=certs["client_key"],
                        timeout=10) as client:
        _works(client)
    for kwargs in ({"tls_ca": certs["ca"]},  # no client certificate
                   {"tls_ca": certs["ca"], "tls_cert": certs["rogue"], "tls_key": certs["rogue_key"]},
                   {}):  # plaintext
        with vectord.Client(address, timeout=5, **kwargs) as client:
            with pytest.raises(vectord.UnavailableError):
                client.list_collections()


def test_tls_arguments_are_checked(tmp_path, certs):
    with pytest.raises(vectord.InvalidArgumentError, match="both tls_cert and tls_key"):
        vectord.Client("127.0.0.1:1", tls_cert=certs["client"])
    with pytest.raises(vectord.InvalidArgumentError, match="not to path"):
        vectord.Client(path=str(tmp_path / "x"), tls=True)
    with pytest.raises(vectord.InvalidArgumentError, match="cannot read the TLS CA"):
        vectord.Client("127.0.0.1:1", tls_ca=tmp_path / "missing.pem")
    with pytest.raises(RuntimeError, match="needs both tls_cert and tls_key|TLS needs both"):
        start_server(tmp_path / "data", "--tls-cert", str(certs["server"]))


# ----------------------------------------------------------------------------- no outbound
def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _inet_sockets(pid: int) -> list[tuple[str, int, int, str]]:
    """(protocol, local port, remote port, state) of the process's own TCP/UDP sockets."""
    inodes = _socket_inodes(pid)
    out = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/{pid}/net/{proto}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                out.append((proto, int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16),
                            fields[3]))
    return out


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    proc = start_server(tmp_path_factory.mktemp("plain") / "data")
    yield proc
    assert proc.terminate() == 0, proc.log()


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_server_opens_no_outbound_connection(plain_server):
    """While the server boots, embeds, writes, checkpoints and queries, every one of its
    sockets is the listening one or a connection accepted on it: nothing outbound, no UDP
    (so no DNS lookups either)."""
    pid, port = plain_server.proc.pid, int(plain_server.address.rsplit(":", 1)[1])
    seen, stop = set(), threading.Event()

    def sample():
        while not stop.is_set():
            try:
                seen.update(_inet_sockets(pid))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with vectord.Client(plain_server.address, timeout=60) as client:
            if client.list_models():  # the built-in encoder runs too
                notes = client.create_collection("outbound-notes")
                notes.add(ids=[str(i) for i in range(20)], documents=[f"note number {i}" for i in range(20)])
                assert notes.query(query_texts=["note number 3"], n_results=3)["ids"][0]
                client.embed(["hello"])
            else:
                notes = client.create_collection("outbound-notes", dim=2)
                notes.add(ids=["a", "b"], embeddings=[[1, 0], [0, 1]])
                assert notes.query(query_embeddings=[[1, 0]], n_results=1)["ids"] == [["a"]]
            client.server_info()
            client.checkpoint()
            client.delete_collection("outbound-notes")
    finally:
        stop.set()
        sampler.join()
    seen.update(_inet_sockets(pid))
    assert any(state == "0A" and local == port for _, local, _, state in seen), seen  # it was seen listening
    outbound = [s for s in seen if s[0].startswith("udp") or s[1] != port]
    assert not outbound, f"sockets not on the server port {port}: {outbound}"


def test_package_source_has_no_network_client_code():
    """A second, static line of defence: nothing in the served code imports an HTTP client or
    opens a socket itself (the encoder's offline training pipeline is not served)."""
    root = Path(__file__).resolve().parents[1]   # the repository: the package's sources
    network_modules = r"(urllib|urllib3|requests|httpx|aiohttp|http\.client|smtplib|ftplib|socket)"
    patterns = [re.compile(rf"^\s*(import|from)\s+{network_modules}\b", re.M),  # not `from . import requests`
                re.compile(r"create_connection\(|\.connect\(\(|urlopen\(")]
    offenders = []
    for folder in ("src/vectord", "server", "storage", "client", "encoder", "proto"):
        for path in (root / folder).rglob("*.py") if (root / folder).exists() else ():
            if "training" in path.parts:
                continue
            text = path.read_text(errors="replace")
            offenders += [f"{path.relative_to(root)}: {m.group(0).strip()}" for p in patterns for m in p.finditer(text)]
    assert not offenders, offenders


# ----------------------------------------------------------------------------- names and paths
HOSTILE_NAMES = ["../x", "/etc", "..", ".", "a/../../b", "%2e%2e", "..%2f..%2fetc", "x/..", "..\\x",
                 "C:\\windows", "a\x00b", "a\nb", "~", "~root", "$HOME", "", " ", "x" * 129, "/",
                 "\u2025", "\uff0e\uff0e"]


def _tree(root: Path, skip: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if skip not in p.parents and p != skip
            and not p.name.endswith(".log")}


def test_collection_names_cannot_leave_the_data_directory(plain_server):
    data_dir = plain_server.data_dir
    outside = data_dir.parent
    before = _tree(outside, data_dir)
    data_before = {p.name for p in data_dir.rglob("*")}
    with vectord.Client(plain_server.address, timeout=10) as client:
        for name in HOSTILE_NAMES:
            with pytest.raises(vectord.InvalidArgumentError):
                client.create_collection(name, dim=2)
            with pytest.raises((vectord.InvalidArgumentError, vectord.NotFoundError)):
                client.get_collection(name)
            with pytest.raises((vectord.InvalidArgumentError, vectord.NotFoundError)):
                client.delete_collection(name)
        # names that are allowed but look path-like are stored under an internal id
        for name in ("a..b", "x-..-y", "dots...", "_..", "-"):
            docs = client.create_collection(name, dim=2)
            docs.add(ids=["../../etc/passwd"], embeddings=[[1, 0]])  # record ids are data, never paths
            assert docs.get(ids=["../../etc/passwd"])["ids"] == ["../../etc/passwd"]
            client.checkpoint(name)
        names = {c.name for c in client.list_collections()}
        assert {"a..b", "x-..-y", "dots...", "_..", "-"} <= names
        created = {p.name for p in data_dir.rglob("*")} - data_before
        for name in names | {"passwd", "etc", ".."}:
            assert name not in created, f"a user string became a file name: {name}"
        for name in ("a..b", "x-..-y", "dots...", "_..", "-"):
            client.delete_collection(name)
    assert _tree(outside, data_dir) == before, "a file appeared outside the data directory"
    assert not (outside / "x").exists() and not (outside / "b").exists()
