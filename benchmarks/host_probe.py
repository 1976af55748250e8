"""How much a second busy core slows the first on this host.

Two-thread figures (T4, and every suite run with 2 threads) assume that two
threads get two cores' worth of the machine. On a shared virtual machine they
sometimes do not: the cores share a last-level cache and memory with other
tenants, and in some spells two memory-bound processes each run about 1.6x
slower side by side than alone, while a compute-bound kernel keeps its speed.
Our step is memory-bound (rows gathered by id), so such a spell slows it on 2
threads and not on one.

The probe times two kernels in one process, then in two processes started
together (each single-threaded): a random gather over a 32 MB float32 array
(memory-bound) and a 1024 x 1024 float32 matmul (compute-bound). A slowdown
near 1.0 means the cores did not slow each other during the probe; it does
not see everything a threaded fit meets (cache lines moving between the
cores, the host moving a core), so a slow thread benchmark beside a quiet
probe is not proof of the code. Run it before and after a thread benchmark.

Run: ``python benchmarks/host_probe.py [--repeats N]``.
"""

import argparse
import multiprocessing as mp
import os
import time

# Each process runs one thread: the probe compares processes, not BLAS pools.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import numpy as np  # noqa: E402


def kernel_seconds(repeats):
    """Seconds of the gather and of the matmul kernels, in this process.

    Parameters
    ----------
    repeats : int
        How many times each kernel runs.

    Returns
    -------
    gather, matmul : float
        Wall seconds of each kernel's repeats.
    """
    rng = np.random.default_rng(0)
    values = rng.random(1 << 23, dtype=np.float32)  # 32 MB
    ids = rng.integers(0, values.size, size=1 << 22)
    a = rng.random((1024, 1024), dtype=np.float32)
    values[ids].sum()
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        values[ids].sum()
    gather = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(4 * repeats):
        a @ a
    return gather, time.perf_counter() - start


def _worker(repeats, barrier, results):
    barrier.wait()
    results.put(kernel_seconds(repeats))


def side_by_side(repeats):
    """The kernels' seconds in two processes started together.

    Parameters
    ----------
    repeats : int
        How many times each kernel runs in each process.

    Returns
    -------
    list of tuple of float
        Each process's (gather, matmul) seconds.
    """
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(repeats, barrier, results))
               for _ in range(2)]
    for w in workers:
        w.start()
    times = [results.get() for _ in workers]
    for w in workers:
        w.join()
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    alone = kernel_seconds(args.repeats)
    together = side_by_side(args.repeats)
    for i, name in enumerate(("gather (memory-bound)", "matmul (compute-bound)")):
        both = max(t[i] for t in together)
        print(f"{name}: alone {alone[i]:.3f} s, two at once {both:.3f} s, "
              f"slowdown {both / alone[i]:.2f}x")


if __name__ == "__main__":
    main()
