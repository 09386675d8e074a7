"""API keys: who may call what, checked by one gRPC server interceptor.

Clients send ``authorization: Bearer <key>`` metadata (the SDK does it from
``Client(..., api_key=...)``). Each key has a role:

- ``rw`` (read-write): every rpc;
- ``ro`` (read-only): the rpcs in :data:`READ_METHODS` only (they change nothing); any other
  rpc gets PERMISSION_DENIED naming the method.

A missing or unknown key gets UNAUTHENTICATED. Keys are required on every service except
``grpc.health.v1.Health`` (load balancers and orchestrators probe it without credentials).
Server reflection requires a key of either role (it reveals the API's shape, not data). With
no keys configured the server is open: the default, meant for loopback only (the CLI warns
loudly when bound elsewhere without keys).

Keys come from a file (``--api-keys-file`` / ``VECTORD_API_KEYS_FILE``) and from the
environment (``VECTORD_API_KEY``: one read-write key; ``VECTORD_READONLY_API_KEY``: one
read-only key). The file holds one key per line with its role::

    # comments and blank lines are ignored
    rw:8c4f0b6e2d0a4e0f9d1a7b3c5e6f7a8b
    ro:1b2c3d4e5f60718293a4b5c6d7e8f901

A presented key is hashed (sha256) and compared with ``hmac.compare_digest`` against every
configured key, always all of them, so the time taken does not tell which key (or which
prefix, or which length) came close.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import ipaddress
import logging
import os
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from vectord.errors import InvalidArgumentError

log = logging.getLogger(__name__)

READ_WRITE = "rw"
READ_ONLY = "ro"
ROLES = (READ_WRITE, READ_ONLY)

#: The vectord rpcs that change nothing: a read-only key may call these and nothing else.
#: Every other rpc of every ``vectord.v1`` service needs a read-write key, so a new rpc is
#: closed to read-only keys until someone adds it here on purpose (tests/test_security.py
#: checks that every rpc is classified and that this set names only real rpcs). Writes on
#: purpose: Collections/ModifyCollection (renames), Admin/Reset (deletes everything),
#: Admin/ReembedCollection (replaces a collection's vectors and model).
READ_METHODS = frozenset({
    "vectord.v1.Collections/GetCollection",
    "vectord.v1.Collections/ListCollections",
    "vectord.v1.Records/Get",
    "vectord.v1.Records/Query",
    "vectord.v1.Records/QueryStream",
    "vectord.v1.Records/Count",
    "vectord.v1.Records/Classify",  # a vote over stored labels: reads, writes nothing
    "vectord.v1.Admin/GetServerInfo",
    "vectord.v1.Admin/ListSnapshots",
    "vectord.v1.Admin/DownloadSnapshot",  # reads a snapshot's files; CreateSnapshot and RestoreSnapshot write
    "vectord.v1.Encoder/Embed",
    "vectord.v1.Encoder/ListModels",
})

#: How to send a key, in the words of the tools people use (UNAUTHENTICATED messages).
KEY_HINT = ("Python SDK: vectord.Client(address, api_key=\"<key>\"); vectord CLI: --api-key <key> or "
            "VECTORD_API_KEY=<key>; other gRPC clients: metadata 'authorization: Bearer <key>'")

#: Services open to everyone, key or not.
OPEN_SERVICES = frozenset({"grpc.health.v1.Health"})

#: Services outside vectord.v1 that any valid key (either role) may call.
READ_SERVICES = frozenset({
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
})


def vectord_services() -> dict[str, list[str]]:
    """Every service declared in the ``vectord.v1`` protos: full name -> its rpc names.

    Read from the generated descriptors, so a new proto file or rpc is seen without any
    list to update here.
    """
    import vectord.v1 as package

    services: dict[str, list[str]] = {}
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.endswith("_pb2"):
            continue
        descriptor = importlib.import_module(f"{package.__name__}.{module.name}").DESCRIPTOR
        for service in descriptor.services_by_name.values():
            services[service.full_name] = [method.name for method in service.methods]
    return services


def method_roles() -> dict[str, str]:
    """The role each vectord rpc needs, as ``"/package.Service/Method" -> "ro" | "rw"``.

    The one table of who may call what: :data:`READ_METHODS` are ``ro``, every other rpc of
    the proto services is ``rw``.
    """
    return {
        f"/{service}/{method}": READ_ONLY if f"{service}/{method}" in READ_METHODS else READ_WRITE
        for service, methods in vectord_services().items()
        for method in methods
    }


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _check_key(key: str, where: str) -> str:
    if not key:
        raise InvalidArgumentError(f"{where}: empty API key")
    if any(ch.isspace() for ch in key) or not key.isascii() or not key.isprintable():
        raise InvalidArgumentError(f"{where}: an API key must be printable ASCII without spaces")
    return key


@dataclass
class ApiKeys:
    """The configured keys (only their sha256 digests are kept) and their roles."""

    _keys: list[tuple[bytes, str]] = field(default_factory=list)

    def add(self, key: str, role: str, where: str) -> None:
        if role not in ROLES:
            # the bad role is not echoed: on a line without a role it would be part of a key
            raise InvalidArgumentError(f"{where}: role must be 'rw' or 'ro' (expected 'rw:<key>' or 'ro:<key>')")
        digest = _digest(_check_key(key, where))
        for known, known_role in self._keys:
            if hmac.compare_digest(known, digest):
                if known_role != role:
                    raise InvalidArgumentError(f"{where}: the same key is configured as both 'rw' and 'ro'")
                return
        self._keys.append((digest, role))

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def role_of(self, presented: str) -> str | None:
        """The role of ``presented``, or None. Compares against every key, no early exit."""
        digest = _digest(presented)
        role = None
        for known, known_role in self._keys:
            if hmac.compare_digest(known, digest):
                role = known_role
        return role

    @classmethod
    def parse_file(cls, path: str | os.PathLike, into: "ApiKeys | None" = None) -> "ApiKeys":
        """Reads a keys file: ``rw:<key>`` or ``ro:<key>`` per line, ``#`` comments."""
        keys = into if into is not None else cls()
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read API keys file {path}: {exc.strerror or exc}") from None
        if os.name == "posix" and path.stat().st_mode & 0o077:
            log.warning("API keys file %s is readable by other users (mode %o); chmod 600 it",
                        path, path.stat().st_mode & 0o777)
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{path}:{number}"
            role, sep, key = line.partition(":")
            if not sep:
                raise InvalidArgumentError(f"{where}: expected 'rw:<key>' or 'ro:<key>'")
            keys.add(key.strip(), role.strip().lower(), where)
        return keys


def load_api_keys(settings) -> ApiKeys:
    """The keys of ``settings``: its keys file plus ``api_key`` (rw) and ``readonly_api_key`` (ro)."""
    keys = ApiKeys()
    if getattr(settings, "api_keys_file", None):
        ApiKeys.parse_file(settings.api_keys_file, into=keys)
    for name, role in (("api_key", READ_WRITE), ("readonly_api_key", READ_ONLY)):
        value = getattr(settings, name, None)
        if value is None:
            continue
        value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        if not value:
            continue  # VECTORD_API_KEY= (empty) is the same as unset
        keys.add(value, role, f"VECTORD_{name.upper()}")
    return keys


def _deny_like(handler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that aborts the call with ``code``."""

    def unary(request, context):
        context.abort(code, message)

    def streaming(request_iterator, context):
        context.abort(code, message)

    if handler is None or handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(unary)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(streaming)
    return grpc.stream_stream_rpc_method_handler(streaming)


class AuthInterceptor(grpc.ServerInterceptor):
    """Checks the caller's key and its role before any servicer runs.

    Auth failures abort directly (UNAUTHENTICATED, PERMISSION_DENIED); engine errors stay
    the business of the error interceptor. A permitted call gets the handler unchanged.
    """

    def __init__(self, keys: ApiKeys) -> None:
        self.keys = keys
        self.roles = method_roles()

    def _role_needed(self, method: str) -> str | None:
        """``None`` for open rpcs; unknown methods need ``rw`` (closed by default)."""
        service = method.lstrip("/").split("/", 1)[0]
        if service in OPEN_SERVICES:
            return None
        if service in READ_SERVICES:
            return READ_ONLY
        return self.roles.get(method, READ_WRITE)

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        needed = self._role_needed(method)
        if needed is None or not self.keys:
            return continuation(handler_call_details)
        presented = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                presented = value if isinstance(value, str) else value.decode("utf-8", "replace")
                break
        if presented is None:
            return _deny_like(continuation(handler_call_details), grpc.StatusCode.UNAUTHENTICATED,
                              f"missing API key: this server requires one. {KEY_HINT}")
        scheme, _, token = presented.strip().partition(" ")
        role = self.keys.role_of(token.strip()) if scheme.lower() == "bearer" else None
        if role is None:
            return _deny_like(continuation(handler_call_details), grpc.StatusCode.UNAUTHENTICATED,
                              f"invalid API key: the server knows no such key. {KEY_HINT}")
        if needed == READ_WRITE and role != READ_WRITE:
            return _deny_like(continuation(handler_call_details), grpc.StatusCode.PERMISSION_DENIED,
                              f"a read-only API key cannot call {method}")
        return continuation(handler_call_details)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name to listen on) is reachable from this machine only."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def warn_if_exposed(host: str, keys: ApiKeys, tls: bool) -> list[str]:
    """Warns (log WARNING, and stderr even when logging hides warnings) about exposed binds.

    Returns the warnings given, for tests.
    """
    if is_loopback(host):
        return []
    warnings = []
    if not keys:
        warnings.append(
            f"SECURITY WARNING: listening on {host}, a non-loopback address, WITHOUT API KEYS: "
            "anyone who can reach this port can read, change and delete every collection. "
            "Set --api-keys-file or VECTORD_API_KEY, or listen on 127.0.0.1.")
    elif not tls:
        warnings.append(
            f"SECURITY WARNING: listening on {host} without TLS: API keys and data cross the "
            "network in clear text. Set --tls-cert and --tls-key.")
    for message in warnings:
        log.warning("%s", message)
        if not log.isEnabledFor(logging.WARNING) or not logging.getLogger().handlers:
            print(message, file=sys.stderr, flush=True)
    return warnings
