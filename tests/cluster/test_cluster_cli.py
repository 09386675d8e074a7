"""`vectord cluster` without a cluster: its commands parse, and every Ray process it starts
has Ray's usage statistics off (vectord promises no telemetry)."""

from __future__ import annotations

import os

from vectord.cluster import cli as cluster_cli
from vectord.server import cli


def test_cluster_commands_parse():
    args = cli._parser().parse_args(["cluster", "up", "--address", "auto", "--shards", "4", "--write-level", "all"])
    assert (args.func, args.shards, args.replicas, args.write_level) == (cluster_cli.up_command, 4, 2, "all")
    assert cli._parser().parse_args(["cluster", "join", "--address", "h:6379"]).func is cluster_cli.join_command
    assert cli._parser().parse_args(["cluster", "status"]).address == "auto"
    args = cli._parser().parse_args(["cluster", "delete-snapshot", "snap-1"])
    assert (args.func, args.name) == (cluster_cli.delete_snapshot_command, "snap-1")


def test_ray_start_runs_without_usage_stats_and_with_workers_at_nice_0(monkeypatch):
    calls = []
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    monkeypatch.delenv("RAY_worker_niceness", raising=False)
    monkeypatch.setattr(cluster_cli.subprocess, "call", lambda argv, env: calls.append((argv, env)) or 0)
    assert cli.main(["cluster", "join", "--address", "head:6379"]) == 0
    (argv, env), = calls
    assert argv[-3:] == ["start", "--address=head:6379", "--disable-usage-stats"]
    # the replicas are Ray workers: at an ordinary priority, not Ray's default nice 15
    assert env["RAY_USAGE_STATS_ENABLED"] == "0" and env["RAY_worker_niceness"] == "0"
    monkeypatch.setenv("RAY_worker_niceness", "5")  # a value the operator chose is kept
    assert cli.main(["cluster", "join", "--address", "head:6379"]) == 0
    assert calls[-1][1]["RAY_worker_niceness"] == "5"


def test_every_rpc_the_gateway_does_not_support_answers_unimplemented_naming_it():
    """Including rpcs added to the .proto after the gateway was written (ReembedCollection)."""
    import pytest

    from vectord.cluster import gateway
    from vectord.errors import UnimplementedError
    from vectord.server import servicers

    bases = {"Collections": servicers.CollectionsServicer, "Records": servicers.RecordsServicer,
             "Encoder": servicers.EncoderServicer}
    refused = []
    for service, proto in gateway._PROTO.items():
        cls = gateway.ClusterAdminServicer if service == "Admin" else gateway.gateway_servicer(bases[service], service)
        servicer = cls.__new__(cls)  # no database: a refusal never reaches one
        for name in proto.DESCRIPTOR.services_by_name[service].methods_by_name:
            if name in gateway.SUPPORTED[service]:
                continue
            with pytest.raises(UnimplementedError, match=f"{service}.{name} is not supported"):
                getattr(servicer, name)(None, None)
            refused.append(f"{service}.{name}")
    assert {"Admin.ReembedCollection", "Admin.DownloadSnapshot"} <= set(refused)
