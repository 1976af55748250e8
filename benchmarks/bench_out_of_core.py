"""Train on a text file larger than the memory it is trained in.

1. Writes a file of at least ``--size-gb`` GB in the Extreme Classification
   Repository's text format: ``make_extreme_classification`` (135,909 sparse
   features, 75 non-zeros a row, ``--n-classes`` classes) in one call, in a
   child process of its own, written ``--write-rows`` rows at a time with
   ``sklearn_lsh.io.dump_xc_file``; a held-out file of ``--n-test`` rows
   from the same call.
2. Trains one epoch by streaming blocks of ``--block-rows`` rows from
   ``iter_xc_blocks`` into ``LSHMLPClassifier.partial_fit``, in a fresh
   process (the time spent reading and parsing and the time in
   ``partial_fit`` are measured apart), then measures precision@1 on the
   held-out rows.

Each step's peak resident memory is that process's own (``ru_maxrss``, and
the largest RSS psutil saw, sampled every 0.2 s). The files are deleted at the
end unless ``--keep``.

Run: ``python benchmarks/bench_out_of_core.py [--size-gb 2] [--dir DIR]``
(``--size-gb 0.05`` checks the script in a minute).
"""

import argparse
import io
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

N_FEATURES = 135_909
NNZ_PER_ROW = 75


class _PeakRSS:
    """The largest RSS of this process, sampled in a thread (psutil)."""

    def __init__(self, interval=0.2):
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.stop.wait(self.interval)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def _maxrss_mb():
    # Linux reports kB, macOS bytes.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def generate(args):
    from sklearn_lsh.datasets import make_extreme_classification
    from sklearn_lsh.io import dump_xc_file

    t0 = time.perf_counter()
    with _PeakRSS() as rss:
        # Bytes per row, from a sample of the same distribution.
        Xs, ys = make_extreme_classification(
            2000, N_FEATURES, args.n_classes, nnz_per_row=NNZ_PER_ROW,
            random_state=args.seed + 1)
        buf = io.BytesIO()
        dump_xc_file(Xs, ys, buf, n_labels=args.n_classes, header=False)
        per_row = len(buf.getvalue()) / 2000
        n_train = math.ceil(args.size_gb * 1e9 / per_row * 1.01)
        X, y = make_extreme_classification(
            n_train + args.n_test, N_FEATURES, args.n_classes,
            nnz_per_row=NNZ_PER_ROW, random_state=args.seed)
        t_gen = time.perf_counter() - t0
        with open(args.train, "wb") as f:
            for start in range(0, n_train, args.write_rows):
                stop = min(start + args.write_rows, n_train)
                dump_xc_file(X[start:stop], y[start:stop], f,
                             n_labels=args.n_classes, header=start == 0,
                             n_rows=n_train)
        dump_xc_file(X[n_train:], y[n_train:], args.test, n_labels=args.n_classes)
    return {"n_train": n_train, "bytes": os.path.getsize(args.train),
            "generate_s": t_gen, "total_s": time.perf_counter() - t0,
            "peak_rss_mb": rss.peak / 2**20, "maxrss_mb": _maxrss_mb()}


def train(args):
    import scipy.sparse as sp

    from sklearn_lsh import LSHMLPClassifier
    from sklearn_lsh.io import iter_xc_blocks, read_xc_header
    from sklearn_lsh.metrics import precision_at_k

    _, _, n_labels = read_xc_header(args.train)
    classes = np.arange(n_labels)
    # The 'scale' suite's settings (benchmarks/README.md) but a narrower
    # hidden layer and active budget (--hidden, --budget), so that one epoch
    # over 2 GB fits in minutes on 2 cores.
    est = LSHMLPClassifier(hidden_layer_sizes=(args.hidden,), batch_size=256,
                           active_fraction=args.budget, weight_init="fan_in",
                           n_tables=50, random_state=0)
    t0 = time.perf_counter()
    rows = 0
    t_read = t_fit = 0.0
    with _PeakRSS() as rss:
        blocks = iter_xc_blocks(args.train, args.block_rows, multilabel=False,
                                verbose=args.verbose)
        while True:
            t1 = time.perf_counter()
            block = next(blocks, None)
            t2 = time.perf_counter()
            t_read += t2 - t1
            if block is None:
                break
            X, y = block
            est.partial_fit(X, y, classes=classes)
            t_fit += time.perf_counter() - t2
            rows += X.shape[0]
        elapsed = time.perf_counter() - t0
        X_test, y_test = zip(*iter_xc_blocks(args.test, multilabel=False))
        top, _ = est.predict_topk(sp.vstack(X_test, format="csr"), k=1)
        p_at_1 = precision_at_k(np.concatenate(y_test), top, k=1)
    size = os.path.getsize(args.train)
    return {"rows": rows, "seconds": elapsed, "read_s": t_read, "fit_s": t_fit,
            "read_mb_per_s": size / 1e6 / t_read,
            "s_per_10k_rows": elapsed / rows * 1e4, "p_at_1": float(p_at_1),
            "n_threads": est._n_threads(),
            "peak_rss_mb": rss.peak / 2**20, "maxrss_mb": _maxrss_mb()}


def _child(step, args):
    cmd = [sys.executable, __file__, "--_step", step, "--_train", args.train,
           "--_test", args.test]
    for key in ("size_gb", "n_classes", "n_test", "block_rows", "write_rows",
                "seed", "verbose", "hidden", "budget"):
        cmd += ["--" + key.replace("_", "-"), str(getattr(args, key))]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        if not line.startswith("RESULT "):
            print(line, flush=True)
    return json.loads(out.splitlines()[-1][len("RESULT "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--n-classes", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=5_000)
    parser.add_argument("--block-rows", type=int, default=20_000)
    parser.add_argument("--write-rows", type=int, default=50_000)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--budget", type=int, default=200,
                        help="active outputs per sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where the files go")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--_step", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_train", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_test", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._step:
        args.train, args.test = args._train, args._test
        result = {"generate": generate, "train": train}[
            args._step](args)
        print("RESULT " + json.dumps(result), flush=True)
        return

    tmp = tempfile.mkdtemp(prefix="sklearn_lsh_ooc_", dir=args.dir)
    args.train = os.path.join(tmp, "train.txt")
    args.test = os.path.join(tmp, "test.txt")
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                          f"Python {platform.python_version()}",
               "settings": {k: getattr(args, k) for k in (
                   "size_gb", "n_classes", "n_test", "block_rows", "hidden",
                   "budget", "seed")}}
    try:
        for step in ("generate", "train"):
            print(f"== {step}", flush=True)
            results[step] = _child(step, args)
            print(json.dumps(results[step]), flush=True)
    finally:
        if not args.keep:
            for path in (args.train, args.test):
                if os.path.exists(path):
                    os.remove(path)
            os.rmdir(tmp)
    g, t = results["generate"], results["train"]
    print(f"\nfile: {g['bytes'] / 1e9:.2f} GB, {g['n_train']:,} rows, "
          f"{N_FEATURES:,} features, {args.n_classes:,} classes; written in "
          f"{g['total_s']:.0f} s, generator peak RSS "
          f"{max(g['peak_rss_mb'], g['maxrss_mb']):.0f} MB")
    print(f"train one epoch: {t['seconds']:.0f} s = {t['read_s']:.0f} s reading "
          f"({t['read_mb_per_s']:.0f} MB/s) + {t['fit_s']:.0f} s in partial_fit "
          f"({t['n_threads']} threads); peak RSS "
          f"{max(t['peak_rss_mb'], t['maxrss_mb']):.0f} MB; "
          f"P@1 {t['p_at_1']:.3f} on {args.n_test:,} held-out rows")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
