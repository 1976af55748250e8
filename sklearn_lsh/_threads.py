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


# Under n_jobs=None, the fewest multiply-adds a call hands each thread. Every
# parallel region ends at a barrier where threads spin waiting for each other;
# on a machine whose cores are busy with other work a waiting thread may wait
# a whole scheduler slice. A tiny network (200 rows of 10 features, 100
# hidden units, batches of 200) then trained 20x slower on 2 threads than on
# 1 while another process ran a matrix product; on an idle machine 2 threads
# saved 20% of its time.
MIN_WORK_PER_THREAD = 1 << 20


def effective_n_threads(n_jobs=None, work=None):
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
    work : int or None, default=None
        With ``n_jobs=None``, about how many multiply-adds each parallel
        region of the call does (a batch of a training step): at least
        ``MIN_WORK_PER_THREAD`` per thread, so that a network too small to
        share runs on one thread. Results do not depend on the thread count.

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
        if work is not None:
            n_threads = max(1, min(n_threads, int(work) // MIN_WORK_PER_THREAD))
    return n_threads


_BLAS_CONTROLLER = None


def one_blas_thread():
    """A context in which BLAS runs on one thread.

    Our kernels call BLAS from inside their OpenMP loops (one call per block
    of rows per thread): a threaded BLAS there would start threads of its own
    on cores the loop already uses. The controller is made once per process.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")
