"""The benchmark suite of issue 4: vectord (remote, embedded) against raw hnswlib and Chroma.

    python -m benchmarks.suite            # setup if needed, then the default run (~20-25 min on 2 cores)
    python -m benchmarks.suite --smoke    # tiny, one data set (tests/test_benchmark_smoke.py)
    python -m benchmarks.suite --large    # adds the restart/memory run on 1M x 384

See benchmarks/README.md.
"""
