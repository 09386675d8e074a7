"""Embedding throughput through the server (Embed rpc, batches of 64) vs in-process.

    python benchmarks/encoder_throughput.py [--texts 4000] [--threads 2]

Both sides run the same shipped model with the same onnxruntime thread count, in the same
run; the figure that matters is the ratio (target: server >= 0.8 x in-process). Short texts
(WordNet-like glosses of about 9 words) are generated from a fixed vocabulary, so the run
needs no downloaded data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORDS = ("a an the of to in small large red green old new quick slow animal plant tool city river "
         "person house water light music game book food tree stone metal paper cloth bird fish "
         "that which used for made from having without under over between often very").split()


def texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))) for _ in range(n)]


def rate(fn, batches) -> float:
    fn(batches[0])  # warm-up
    started = time.perf_counter()
    for batch in batches:
        fn(batch)
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    import vectord
    from vectord import encoder
    from vectord.testing import start_server

    data = texts(args.texts)
    batches = [data[i:i + args.batch] for i in range(0, len(data), args.batch)]
    model = encoder.load(threads=args.threads)
    in_process = rate(model.embed, batches)
    server = start_server(Path(tempfile.mkdtemp()) / "data", env={"VECTORD_ENCODER_THREADS": str(args.threads)})
    try:
        with vectord.Client(server.address) as client:
            remote = rate(client.embed, batches)
    finally:
        server.terminate()
    line = (f"| {dt.date.today()} | {model.name} {model.version} | {args.threads} | {args.batch} | "
            f"{in_process:,.0f} | {remote:,.0f} | {remote / in_process:.2f} |")
    print("| date | model | ORT threads | batch | in-process texts/s | server texts/s | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print(line)
    out = ROOT / "benchmarks" / "results" / f"encoder-throughput-{dt.date.today()}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"# Encoder throughput, {dt.date.today()}\n\nMachine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. Command: `python benchmarks/encoder_throughput.py "
        f"--texts {args.texts} --threads {args.threads}`.\n\n"
        "| date | model | ORT threads | batch | in-process texts/s | server texts/s | ratio |\n"
        "|---|---|---:|---:|---:|---:|---:|\n" + line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
