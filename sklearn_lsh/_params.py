"""The parameters of LSHMLPClassifier and LSHMLPRegressor: what values they take.

``PARAMETER_CONSTRAINTS`` (the classifier's) and ``REGRESSOR_PARAMETER_CONSTRAINTS``
are the estimators' ``_parameter_constraints``, checked by
:meth:`sklearn.base.BaseEstimator._validate_params` with scikit-learn's
constraint machinery (:mod:`sklearn.utils._param_validation`). The parameters
shared with scikit-learn's MLP take its constraints
(``BaseMultilayerPerceptron._parameter_constraints``), except that a bool is
not a number here (``_Interval``) and that messages list string options
sorted (``_StrOptions``). :func:`check_params` checks what a constraint cannot
say; the estimators call it after ``_validate_params``.

What depends on the data (``lsh_layers`` naming a layer the network does not
have) is checked at fit time, in ``_mlp.py``.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    RealNotInt,
    StrOptions,
)

__all__ = [
    "PARAMETER_CONSTRAINTS",
    "REGRESSOR_PARAMETER_CONSTRAINTS",
    "check_params",
]


class _Interval(Interval):
    """An :class:`~sklearn.utils._param_validation.Interval` no bool satisfies.

    ``True`` is an ``Integral`` (and a ``Real``), so scikit-learn's Interval
    takes ``max_iter=True`` for 1 and ``alpha=False`` for 0. The estimators have
    always refused bools for their numeric parameters; they still do, and the
    message is the Interval's own. An interval of ``RealNotInt`` takes every
    real that is not an int: scikit-learn's ``RealNotInt`` knows only
    ``float`` (and ``np.float64``), not ``np.float32``.
    """

    def is_satisfied_by(self, val):
        if isinstance(val, (bool, np.bool_)):
            return False
        if self.type is RealNotInt:
            return (isinstance(val, Real) and not isinstance(val, Integral)
                    and val in self)
        return super().is_satisfied_by(val)


class _StrOptions(StrOptions):
    """A :class:`~sklearn.utils._param_validation.StrOptions` listed sorted.

    StrOptions lists its options in the set's order, which changes from one
    process to the next (string hashing is salted): the message would too.
    """

    def __str__(self):
        return "a str among {" + ", ".join(map(repr, sorted(self.options))) + "}"


def _at_least(low, kind=Integral):
    return _Interval(kind, low, None, closed="left")


PARAMETER_CONSTRAINTS = {
    # ------------------------------------------------ as scikit-learn's MLP
    # The elements of an array-like are checked by check_params.
    "hidden_layer_sizes": ["array-like", _at_least(1)],
    "activation": [_StrOptions({"identity", "logistic", "tanh", "relu"})],
    "solver": [_StrOptions({"lbfgs", "sgd", "adam"})],
    "alpha": [_at_least(0, Real)],
    "batch_size": [_StrOptions({"auto"}), _at_least(1)],
    "learning_rate": [_StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [_Interval(Real, 0, None, closed="neither")],
    "power_t": [_at_least(0, Real)],
    "max_iter": [_at_least(1)],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [_at_least(0, Real)],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [_Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [_Interval(Real, 0, 1, closed="left")],
    "beta_1": [_Interval(Real, 0, 1, closed="left")],
    "beta_2": [_Interval(Real, 0, 1, closed="left")],
    "epsilon": [_Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [_at_least(1), Options(Real, {np.inf})],
    "max_fun": [_at_least(1)],
    # ---------------------------------------------------------- our own
    "weight_init": [_StrOptions({"auto", "glorot", "fan_in"})],
    "hash_family": [_StrOptions({"auto", "dwta", "wta", "simhash", "minhash"})],
    "n_hash_bits": [_StrOptions({"auto"}), _at_least(1)],
    "n_tables": [_StrOptions({"auto"}), _at_least(1)],
    # An int is a count of neurons, a float a share of the layer: 1 is one
    # neuron, 1.0 all of them.
    "active_fraction": [_at_least(1), _Interval(RealNotInt, 0, 1, closed="right")],
    "sampling": [_StrOptions({"topk", "union", "threshold"})],
    "sampling_threshold": [_at_least(1)],
    "candidate_factor": [_at_least(1, Real)],
    "min_active": [_StrOptions({"auto"}), _at_least(0)],
    # A list's elements are checked by check_params, its range at fit time.
    "lsh_layers": [_StrOptions({"auto", "all", "none"}), "array-like"],
    "selection": [_StrOptions({"auto", "lsh", "exact"})],
    "rebuild_schedule": [_StrOptions({"exponential", "fixed"})],
    "rebuild_interval": [_StrOptions({"auto"}), _at_least(1)],
    "rebuild_decay": [_at_least(0, Real)],
    "rehash_interval": [_at_least(1), None],
    "inference": [_StrOptions({"auto", "dense", "lsh"})],
    # 0 threads is meaningless; -1 is all of them, -2 all but one, ...
    "n_jobs": [
        None,
        _Interval(Integral, None, -1, closed="right"),
        _at_least(1),
    ],
}

REGRESSOR_PARAMETER_CONSTRAINTS = {
    **PARAMETER_CONSTRAINTS,
    "loss": [_StrOptions({"squared_error", "poisson"})],
}


def _is_int(value, low=None):
    return (isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))
            and (low is None or value >= low))


def _all_ints(values, low=None):
    try:
        return all(_is_int(v, low) for v in values)
    except TypeError:  # not iterable after all (a 0-d array)
        return False


def check_params(estimator):
    """Check what the constraints cannot say; call after ``_validate_params``.

    Parameters
    ----------
    estimator : LSHMLPClassifier or LSHMLPRegressor
        Its parameters already satisfy its ``_parameter_constraints``.

    Raises
    ------
    InvalidParameterError
        A ValueError naming the parameter and its value: a
        ``hidden_layer_sizes`` array-like with an element that is not an int
        >= 1, an ``n_hash_bits`` whose keys would exceed 24 bits
        (K > 24 for SimHash, K > 8 for the other families), an ``lsh_layers``
        list with an element that is not an int.
    """
    name = type(estimator).__name__
    sizes = estimator.hidden_layer_sizes
    if not _is_int(sizes) and not _all_ints(sizes, low=1):
        raise InvalidParameterError(
            f"The 'hidden_layer_sizes' parameter of {name} must be an int in the "
            "range [1, inf) or an array-like of them (one width per hidden "
            f"layer). Got {sizes!r} instead."
        )
    k = estimator.n_hash_bits
    # SimHash codes are 1 bit; WTA, DWTA and MinHash codes 3 (bins of 8, for
    # inputs of 8 or more features). Longer keys are mixed down to 24 bits:
    # every neuron in a bucket of its own, queries that find nothing.
    max_k = 24 if estimator.hash_family in ("simhash", "auto") else 8
    if k != "auto" and k > max_k:
        raise InvalidParameterError(
            f"The 'n_hash_bits' parameter of {name} must be 'auto' or an int in "
            f"the range [1, {max_k}] with hash_family="
            f"{estimator.hash_family!r}: a key holds at most 24 bits "
            f"({24 // max_k} a code). Got {k!r} instead."
        )
    layers = estimator.lsh_layers
    if not isinstance(layers, str) and not _all_ints(layers):
        raise InvalidParameterError(
            f"The 'lsh_layers' parameter of {name} must be a str among "
            "{'all', 'auto', 'none'} or an array-like of ints (weight-layer "
            f"indices, 0 the first hidden layer). Got {layers!r} instead."
        )
