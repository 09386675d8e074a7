"""The client subcommands of `vectord` (server/cli.py dispatches here).

Each works against a running server (``--address``, ``--api-key``/``VECTORD_API_KEY``,
``--tls-ca``/``--tls-cert``/``--tls-key``) or, with ``--data-dir``, on a data directory
directly through the SDK's embedded mode (the server must then be stopped).
"""

from __future__ import annotations


def register_all(sub) -> None:
    from . import classify, collections, maintenance, snapshot, transfer

    for module in (collections, transfer, snapshot, maintenance, classify):
        module.register(sub)
