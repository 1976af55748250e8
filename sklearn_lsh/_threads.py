"""How many OpenMP threads one call of an estimator may use.

The OpenMP runtime knows about ``OMP_NUM_THREADS`` and threadpoolctl, and
joblib's loky workers get ``OMP_NUM_THREADS`` set to their share of the cores.
A Dask worker is different: it runs ``nthreads`` tasks at once, and the runtime
inside it knows nothing of that number. Its Nanny sets ``OMP_NUM_THREADS=1``
by default, but an ``OMP_NUM_THREADS`` exported in the shell that starts the
workers (common on HPC nodes) replaces that value, and workers started without
a Nanny (``LocalCluster(processes=False)``, ``dask worker --no-nanny``) do not
get it at all; a task would then start as many threads as the machine has
cores, however few threads its worker was given. So, inside a Dask task, the
default is also capped at the worker's thread count.
"""

import sys

from ._openmp_helpers import _openmp_effective_n_threads

__all__ = []


def _dask_worker_nthreads():
    """The thread count of the Dask worker running this task, or None.

    ``distributed`` is never imported here: if it is not loaded, this process
    is not a Dask worker.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        worker = distributed.get_worker()
    except (ValueError, AttributeError):  # not inside a task
        return None
    # ``worker.state.nthreads`` since distributed 2022.8, ``worker.nthreads``
    # before.
    state = getattr(worker, "state", worker)
    nthreads = getattr(state, "nthreads", None)
    return int(nthreads) if nthreads else None


def effective_n_threads(n_jobs=None):
    """Return the number of OpenMP threads an estimator call uses.

    Parameters
    ----------
    n_jobs : int or None, default=None
        The estimator's ``n_jobs``. An int is used as given (a negative one
        counts back from the OpenMP maximum, ``-1`` being all of it). None
        follows the OpenMP runtime, so ``OMP_NUM_THREADS`` and threadpoolctl's
        ``threadpool_limits`` are honoured (capped at the number of physical
        cores when ``OMP_NUM_THREADS`` is unset), and inside a Dask task it is
        further capped at the thread count of the worker running the task.

    Returns
    -------
    n_threads : int
        At least 1; always 1 when the extensions were built without OpenMP.
    """
    n_threads = _openmp_effective_n_threads(n_jobs)
    if n_jobs is None:
        worker_nthreads = _dask_worker_nthreads()
        if worker_nthreads is not None:
            n_threads = max(1, min(n_threads, worker_nthreads))
    return n_threads
