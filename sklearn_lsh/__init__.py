"""sklearn_lsh: wide neural networks trained with locality-sensitive hashing.

The method of Spring & Shrivastava (KDD 2017) and SLIDE (MLSys 2020): each wide
layer keeps its neurons in LSH tables, and each sample computes only the
neurons its input retrieves, forward and backward.
"""

from ._base import InconsistentLSHVersionWarning
from ._classifier import LSHMLPClassifier
from ._regressor import LSHMLPRegressor
from ._show_versions import show_versions
from ._version import __version__

__all__ = [
    "InconsistentLSHVersionWarning",
    "LSHMLPClassifier",
    "LSHMLPRegressor",
    "__version__",
    "show_versions",
]
