"""How many OpenMP threads sklearn_lsh uses, and whether OpenMP is compiled in."""

import os

import numpy as np

from joblib import cpu_count


def _openmp_parallelism_enabled():
    """Return True if the extensions were compiled with OpenMP support."""
    return SKLEARN_LSH_OPENMP_PARALLELISM_ENABLED


cpdef int _openmp_effective_n_threads(n_threads=None, only_physical_cores=True):
    """Return the number of OpenMP threads to use.

    ``None`` follows the OpenMP runtime: ``omp_get_max_threads()`` when
    ``OMP_NUM_THREADS`` is set (or when threadpoolctl limits the pool), else
    that value capped at the number of cores. A negative value counts back from
    the maximum (``-1`` is all of them). Without OpenMP the answer is always 1.

    Parameters
    ----------
    n_threads : int or None, default=None
        The requested number of threads.
    only_physical_cores : bool, default=True
        Whether the cap for ``None`` counts physical cores only.

    Returns
    -------
    n_threads : int
        The number of threads, at least 1.
    """
    if n_threads == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, a positive or a negative int.")
    if not SKLEARN_LSH_OPENMP_PARALLELISM_ENABLED:
        return 1
    cdef int max_n_threads = omp_get_max_threads()
    if n_threads is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return max(max_n_threads, 1)
        return max(min(max_n_threads, cpu_count(only_physical_cores=only_physical_cores)), 1)
    if n_threads < 0:
        return max(1, max_n_threads + n_threads + 1)
    return n_threads


# Bytes that keep two threads' scratch rows off a shared cache line.
_CACHE_LINE = 64


def per_thread_rows(n_threads, n, dtype, fill=0):
    """Scratch rows, one per thread, that never share a cache line.

    Two threads writing to the ends of adjacent rows would bounce that line
    between their cores on every write (false sharing): a DWTA batch with 300
    hashes ran slower on 2 threads than on 1. Each row is followed by at least
    one cache line of padding, whatever the array's alignment.

    Parameters
    ----------
    n_threads : int
        Number of rows.
    n : int
        Usable entries per row.
    dtype : dtype
        Entry type.
    fill : scalar, default=0
        Initial value of every entry. Zero rows take memory only as they
        are written.

    Returns
    -------
    rows : ndarray of shape (n_threads, n + padding)
        C-contiguous; use ``rows[t, :n]``.
    """
    dtype = np.dtype(dtype)
    pad = -(-_CACHE_LINE // dtype.itemsize)
    if fill == 0:
        # Zero pages are mapped when first written: a row a query uses a
        # prefix of (candidates of a 670,091-wide layer: a few thousand)
        # holds no memory beyond it, where np.full would write it all.
        return np.zeros((n_threads, n + pad), dtype=dtype)
    return np.full((n_threads, n + pad), fill, dtype=dtype)
