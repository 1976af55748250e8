"""Report the build and the environment of sklearn_lsh."""

import platform
import sys
from importlib.metadata import PackageNotFoundError, version


def _build_info():
    from ._openmp_helpers import (
        _openmp_effective_n_threads,
        _openmp_parallelism_enabled,
    )

    return {
        "openmp": _openmp_parallelism_enabled(),
        "n_threads": _openmp_effective_n_threads(),
    }


def show_versions():
    """Print the versions of sklearn_lsh, its dependencies and its build.

    The build section says whether OpenMP was compiled in and how many threads
    the estimators use by default (``n_jobs=None``).

    See Also
    --------
    sklearn.show_versions : The report of scikit-learn on its own build.

    Examples
    --------
    >>> import sklearn_lsh
    >>> sklearn_lsh.show_versions()  # doctest: +SKIP
    """
    from . import __version__

    print("\nSystem:")
    print(f"    python: {sys.version.splitlines()[0]}")
    print(f"  machine: {platform.platform()}")
    print("\nPython dependencies:")
    print(f"  sklearn_lsh: {__version__}")
    for name in ["numpy", "scipy", "scikit-learn", "joblib", "threadpoolctl", "Cython"]:
        try:
            v = version(name)
        except PackageNotFoundError:
            v = None
        print(f"  {name}: {v}")
    info = _build_info()
    print("\nBuilt with OpenMP: %s" % info["openmp"])
    print("Threads used by default: %d" % info["n_threads"])
