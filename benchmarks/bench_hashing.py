"""Hashing throughput and table build cost, with 1 and 2 threads.

- rows hashed per second for each family (K=6, L=50, bin 8) on dense 128-d and
  1000-d float32 rows and on CSR rows with 75 non-zeros out of 135,909
  features (SLIDE's Amazon-670K input shape);
- time and peak memory to build 50 tables over 670,091 neurons of dimension 128
  (DWTA, K=6, bin 8: 2^18 buckets per table), each build in a fresh process so
  that its peak resident memory is its own.

Run: ``python benchmarks/bench_hashing.py [--quick] [--json FILE]``.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp
from sklearn_lsh._hashing import HashFunctions
from sklearn_lsh._openmp_helpers import _openmp_parallelism_enabled

FAMILIES = ("dwta", "wta", "simhash", "minhash")


def _peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _rows_per_second(hf, X, n_threads, repeats=3):
    hf.hash(X[:100], n_threads=n_threads)  # warm up
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        hf.hash(X, n_threads=n_threads)
        best = min(best, time.perf_counter() - start)
    return X.shape[0] / best


def _sparse_rows(rng, n_rows, n_features, nnz):
    indices = np.sort(np.stack([rng.choice(n_features, nnz, replace=False)
                                for _ in range(n_rows)]), axis=1)
    data = rng.random(n_rows * nnz, dtype=np.float32) + 0.01
    return sp.csr_matrix((data, indices.ravel(), np.arange(0, n_rows * nnz + 1, nnz)),
                         shape=(n_rows, n_features))


def bench_families(n_rows, thread_counts):
    rng = np.random.default_rng(0)
    inputs = {
        "dense 128-d": rng.standard_normal((n_rows, 128)).astype(np.float32),
        "dense 1000-d": rng.standard_normal((n_rows // 4, 1000)).astype(np.float32),
        "CSR 75 of 135,909": _sparse_rows(rng, n_rows // 4, 135_909, 75),
    }
    results = []
    for family in FAMILIES:
        for name, X in inputs.items():
            hf = HashFunctions(family, 6, 50, X.shape[1], bin_size=8, seed=0)
            for n_threads in thread_counts:
                rate = _rows_per_second(hf, X, n_threads)
                results.append({"family": family, "input": name,
                                "n_threads": n_threads, "rows_per_second": rate})
                print(f"  {family:<8} {name:<18} {n_threads} thread(s): "
                      f"{rate:>12,.0f} rows/s", flush=True)
    return results


def _build_child(n_neurons, n_threads):
    """Run in a fresh process: build the tables, print JSON."""
    from sklearn_lsh._tables import HashTables

    rng = np.random.default_rng(0)
    W = rng.standard_normal((n_neurons, 128), dtype=np.float32)
    hf = HashFunctions("dwta", 6, 50, 128, bin_size=8, seed=0)
    tables = HashTables(50, hf.n_buckets, n_neurons, seed=0)
    base = _peak_rss_mb()
    start = time.perf_counter()
    tables.build_from_rows(hf, W, n_threads=n_threads)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_rss_mb() - base,
                      "tables_mb": tables.nbytes / 2**20}))


def bench_build(n_neurons, thread_counts):
    results = []
    for n_threads in thread_counts:
        out = subprocess.run(
            [sys.executable, __file__, "--build-child", str(n_neurons),
             str(n_threads)], check=True, capture_output=True, text=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row.update(n_neurons=n_neurons, n_threads=n_threads)
        results.append(row)
        print(f"  50 tables over {n_neurons:,} neurons, {n_threads} thread(s): "
              f"{row['seconds']:.2f} s, peak +{row['peak_mb']:.0f} MB "
              f"(tables {row['tables_mb']:.0f} MB)", flush=True)
    return results


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--build-child":
        _build_child(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    thread_counts = (1, 2) if _openmp_parallelism_enabled() else (1,)
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; OpenMP: {_openmp_parallelism_enabled()}")
    print("rows hashed per second (K=6, L=50, bin 8):")
    families = bench_families(20_000 if args.quick else 100_000, thread_counts)
    print("table build:")
    build = bench_build(67_009 if args.quick else 670_091, thread_counts)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"families": families, "build": build}, f, indent=1)


if __name__ == "__main__":
    main()
