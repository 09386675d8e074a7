"""Embedding throughput through the server (Embed rpc, batches of 64) vs in-process.

    python benchmarks/encoder_throughput.py [--texts 4000] [--threads 2]

Both sides run the same shipped model with the same onnxruntime thread count, in the same
run; the figure that matters is the ratio (target: server >= 0.8 x in-process). Short texts
(WordNet-like glosses of about 9 words) are generated from a fixed vocabulary, so the run
needs no downloaded data.

A second case runs passages that fill the model's whole window (``--passages N`` of them,
each ``window - 2`` word pieces, e.g. 254 for a 256-token window): the cost of a long text,
which grows with its length (a GRU step per token).
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


def passages(n: int, pieces: int, seed: int = 1) -> list[str]:
    """Texts of exactly ``pieces`` word pieces (every word of WORDS is one piece)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(pieces)) for _ in range(n)]


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
    parser.add_argument("--passages", type=int, default=256, help="full-window passages (0: skip that case)")
    args = parser.parse_args()

    import vectord
    from vectord import encoder
    from vectord.testing import start_server

    model = encoder.load(threads=args.threads)
    cases = [("short (6-12 words)", texts(args.texts))]
    if args.passages:
        cases.append((f"passage ({model.max_tokens} tokens)", passages(args.passages, model.max_tokens - 2)))
    split = [(label, [data[i:i + args.batch] for i in range(0, len(data), args.batch)]) for label, data in cases]
    in_process = [rate(model.embed, batches) for _, batches in split]
    server = start_server(Path(tempfile.mkdtemp()) / "data", env={"VECTORD_ENCODER_THREADS": str(args.threads)})
    try:
        with vectord.Client(server.address) as client:
            remote = [rate(client.embed, batches) for _, batches in split]
    finally:
        server.terminate()
    lines = [f"| {dt.date.today()} | {model.name} {model.version} | {label} | {args.threads} | {args.batch} | "
             f"{local:,.0f} | {far:,.0f} | {far / local:.2f} |"
             for (label, _), local, far in zip(split, in_process, remote)]
    header = ("| date | model | texts | ORT threads | batch | in-process texts/s | server texts/s | ratio |\n"
              "|---|---|---|---:|---:|---:|---:|---:|")
    print(header)
    print("\n".join(lines))
    out = ROOT / "benchmarks" / "results" / f"encoder-throughput-{dt.date.today()}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"# Encoder throughput, {dt.date.today()}\n\nMachine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. Command: `python benchmarks/encoder_throughput.py "
        f"--texts {args.texts} --threads {args.threads} --passages {args.passages}`.\n\n"
        + header + "\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
