"""Parameter validation: the constraints of sklearn_lsh._params and check_params.

The estimators are validated here as _mlp.py validates them once wired:
BaseEstimator._validate_params on the constraints, then check_params.
"""

import re
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import (
    InvalidParameterError,
    validate_parameter_constraints,
)
from sklearn.utils.estimator_checks import check_param_validation

from sklearn_lsh import LSHMLPClassifier, LSHMLPRegressor
from sklearn_lsh._params import (
    PARAMETER_CONSTRAINTS,
    REGRESSOR_PARAMETER_CONSTRAINTS,
    check_params,
)

CONSTRAINTS = {
    LSHMLPClassifier: PARAMETER_CONSTRAINTS,
    LSHMLPRegressor: REGRESSOR_PARAMETER_CONSTRAINTS,
}


def _validate(cls, **params):
    """Validate cls(**params) as the estimators do."""
    est = cls(**params)
    validate_parameter_constraints(
        CONSTRAINTS[cls], est.get_params(deep=False), caller_name=cls.__name__
    )
    check_params(est)
    return est


# Every parameter, with values it must refuse. A bool is not a number.
BAD = {
    "hidden_layer_sizes": [0, -5, (10, 0), [10, 2.5], (10, True), "wide", None,
                           np.array(5)],
    "activation": ["softmax", None],
    "solver": ["rmsprop", "LBFGS", 1],
    "alpha": [-1.0, np.inf, np.nan, "0.1", True],
    "batch_size": [0, 2.5, "big", True],
    "learning_rate": ["cyclic"],
    "learning_rate_init": [0.0, -0.1, np.inf, True],
    "power_t": [-0.5, None],
    "max_iter": [0, 2.5, True, None],
    "shuffle": [1, "yes", None],
    "random_state": ["seed", -1, 1.5, np.random.default_rng(0)],
    "tol": [-1e-4, np.nan],
    "verbose": [-1, "yes", 0.5],
    "warm_start": [0, "no"],
    "momentum": [1.5, -0.1, False],
    "nesterovs_momentum": [None, 1],
    "early_stopping": [0, "yes"],
    "validation_fraction": [1.0, -0.1],
    "beta_1": [1.0, -0.1],
    "beta_2": [1.0, -0.1],
    "epsilon": [0.0, -1e-8],
    "n_iter_no_change": [0, 2.5, -np.inf, True],
    "max_fun": [0, 1.5],
    "weight_init": ["he", None],
    "hash_family": ["e2lsh", "DWTA"],
    "n_hash_bits": [0, "many", 2.0, True],
    "n_tables": [0, "many", 2.0],
    "active_fraction": [0.0, 1.5, 0, -3, True, "half", np.float32(1.5), np.nan],
    "sampling": ["all"],
    "sampling_threshold": [0, 1.5],
    "candidate_factor": [0.5, np.inf, True],
    "min_active": [-1, "some", 1.5],
    "lsh_layers": ["some", None, [0.5], [True], 3],
    "selection": ["tables", None, 1],
    "rebuild_schedule": ["linear"],
    "rebuild_interval": [0, 1.5],
    "rebuild_decay": [-0.1, np.nan],
    "rehash_interval": [0, 2.5, "never"],
    "inference": ["sparse"],
    "n_jobs": [0, 1.5, "all", True],
}
REGRESSOR_BAD = {"loss": ["huber", "log_loss", None]}

# Values each parameter must take (the defaults are checked separately).
GOOD = {
    "hidden_layer_sizes": [50, (50, 20), [7], np.array([10, 3]), (), np.int64(4)],
    "activation": ["identity", "logistic", "tanh", "relu"],
    "solver": ["adam", "sgd", "lbfgs"],
    "alpha": [0, 0.0, 1e3, np.float32(0.1)],
    "batch_size": ["auto", 1, np.int32(64)],
    "learning_rate": ["constant", "invscaling", "adaptive"],
    "learning_rate_init": [1e-6, 1],
    "power_t": [0, 0.25],
    "max_iter": [1, np.int64(3)],
    "shuffle": [True, False, np.bool_(False)],
    "random_state": [None, 0, 2**32 - 1, np.random.RandomState(0)],
    "tol": [0, 1e-2],
    "verbose": [True, False, 0, 2],
    "warm_start": [True, False],
    "momentum": [0, 1, 0.5],
    "nesterovs_momentum": [True, False],
    "early_stopping": [True, False],
    "validation_fraction": [0, 0.5],
    "beta_1": [0, 0.5],
    "beta_2": [0, 0.9999],
    "epsilon": [1e-12],
    "n_iter_no_change": [1, np.inf, float("inf")],
    "max_fun": [1],
    "weight_init": ["auto", "glorot", "fan_in"],
    "hash_family": ["dwta", "wta", "simhash", "minhash"],
    "n_hash_bits": ["auto", 1, 8],
    "n_tables": ["auto", 1, 100],
    "active_fraction": [1, 64, np.int64(3), 1.0, 0.05, np.float32(0.5),
                        np.float64(0.25)],
    "sampling": ["topk", "union", "threshold"],
    "sampling_threshold": [1, 3],
    "candidate_factor": [1, 1.0, 4.5],
    "min_active": ["auto", 0, 10],
    # Layer indices are checked against the network at fit time.
    "lsh_layers": ["auto", "all", "none", [0], (0, 1), np.array([1]), [], [7]],
    "selection": ["auto", "lsh", "exact"],
    "rebuild_schedule": ["exponential", "fixed"],
    "rebuild_interval": ["auto", 1, 500],
    "rebuild_decay": [0, 0.5],
    "rehash_interval": [None, 1, 10],
    "inference": ["auto", "dense", "lsh"],
    "n_jobs": [None, 1, 2, -1, -2],
}
REGRESSOR_GOOD = {"loss": ["squared_error", "poisson"]}


def _cases(table, regressor_table):
    return [
        pytest.param(cls, name, value, id=f"{cls.__name__}-{name}-{value!r}")
        for cls, extra in ((LSHMLPClassifier, {}),
                           (LSHMLPRegressor, regressor_table))
        for name, values in {**table, **extra}.items()
        for value in values
    ]


@pytest.mark.parametrize("cls", [LSHMLPClassifier, LSHMLPRegressor])
def test_constraints_cover_exactly_the_parameters(cls):
    params = set(cls().get_params(deep=False))
    assert set(CONSTRAINTS[cls]) == params
    # And the tables here cover every parameter too.
    extra = set(REGRESSOR_BAD) if cls is LSHMLPRegressor else set()
    assert set(BAD) | extra == params
    assert set(GOOD) | extra == params


@pytest.mark.parametrize("cls", [LSHMLPClassifier, LSHMLPRegressor])
def test_defaults_pass(cls):
    _validate(cls)


@pytest.mark.parametrize("cls, name, value", _cases(BAD, REGRESSOR_BAD))
def test_bad_value_is_refused_naming_parameter_and_value(cls, name, value):
    pattern = (rf"^The '{name}' parameter of {cls.__name__} must be .+\. "
               rf"Got {re.escape(repr(value))} instead\.$")
    with pytest.raises(InvalidParameterError, match=pattern):
        _validate(cls, **{name: value})


@pytest.mark.parametrize("cls, name, value", _cases(GOOD, REGRESSOR_GOOD))
def test_good_value_passes(cls, name, value):
    _validate(cls, **{name: value})


MESSAGES = [
    ("active_fraction", 1.5,
     "The 'active_fraction' parameter of LSHMLPClassifier must be an int in the "
     "range [1, inf) or a float in the range (0.0, 1.0]. Got 1.5 instead."),
    ("hash_family", "e2lsh",
     "The 'hash_family' parameter of LSHMLPClassifier must be a str among "
     "{'auto', 'dwta', 'minhash', 'simhash', 'wta'}. Got 'e2lsh' instead."),
    ("n_jobs", 0,
     "The 'n_jobs' parameter of LSHMLPClassifier must be None, an int in the "
     "range (-inf, -1] or an int in the range [1, inf). Got 0 instead."),
    ("solver", "rmsprop",
     "The 'solver' parameter of LSHMLPClassifier must be a str among "
     "{'adam', 'lbfgs', 'sgd'}. Got 'rmsprop' instead."),
    ("max_iter", True,
     "The 'max_iter' parameter of LSHMLPClassifier must be an int in the range "
     "[1, inf). Got True instead."),
    ("hidden_layer_sizes", (10, 0),
     "The 'hidden_layer_sizes' parameter of LSHMLPClassifier must be an int in "
     "the range [1, inf) or an array-like of them (one width per hidden layer). "
     "Got (10, 0) instead."),
    ("n_hash_bits", 40,
     "The 'n_hash_bits' parameter of LSHMLPClassifier must be 'auto' or an int in "
     "the range [1, 24] with hash_family='auto': a key holds at most 24 bits "
     "(1 a code). Got 40 instead."),
    ("lsh_layers", [0.5],
     "The 'lsh_layers' parameter of LSHMLPClassifier must be a str among "
     "{'all', 'auto', 'none'} or an array-like of ints (weight-layer indices, "
     "0 the first hidden layer). Got [0.5] instead."),
]


@pytest.mark.parametrize("name, value, message", MESSAGES)
def test_message_in_full(name, value, message):
    """A few messages word for word (string options sorted, not in set order)."""
    with pytest.raises(InvalidParameterError) as exc:
        _validate(LSHMLPClassifier, **{name: value})
    assert str(exc.value) == message


def test_key_length_limit_follows_the_family():
    # One bit a SimHash code: 24 codes fill a key.
    _validate(LSHMLPClassifier, hash_family="simhash", n_hash_bits=24)
    with pytest.raises(InvalidParameterError, match=r"\[1, 24\] with "
                       r"hash_family='simhash'.*Got 25 instead"):
        _validate(LSHMLPClassifier, hash_family="simhash", n_hash_bits=25)
    with pytest.raises(InvalidParameterError, match=r"\[1, 8\] with "
                       r"hash_family='wta'.*Got 9 instead"):
        _validate(LSHMLPRegressor, hash_family="wta", n_hash_bits=9)
    # 'auto' allows SimHash's keys (and then chooses SimHash).
    _validate(LSHMLPClassifier, hash_family="auto", n_hash_bits=24)


# ----------------------------------------------------------------------------
# Wired into the estimators as _mlp.py will wire it
# ----------------------------------------------------------------------------

class _WiredClassifier(LSHMLPClassifier):
    _parameter_constraints = PARAMETER_CONSTRAINTS

    def _validate_params(self):
        BaseEstimator._validate_params(self)
        check_params(self)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        # Parameters first, before "classes must be passed on the first call".
        self._validate_params()
        return super().partial_fit(X, y, sample_weight=sample_weight,
                                   classes=classes)


class _WiredRegressor(LSHMLPRegressor):
    _parameter_constraints = REGRESSOR_PARAMETER_CONSTRAINTS

    def _validate_params(self):
        BaseEstimator._validate_params(self)
        check_params(self)


@pytest.mark.parametrize("cls", [_WiredClassifier, _WiredRegressor])
def test_scikit_learn_check_param_validation(cls):
    """scikit-learn's own check: fit and partial_fit refuse a value of a bad
    type and each constraint's generated bad value, with its message."""
    check_param_validation(cls.__name__, cls())


def test_wired_estimator_fits_and_refuses():
    X, y = load_digits(return_X_y=True)
    clf = _WiredClassifier(hidden_layer_sizes=np.array([300]), max_iter=1,
                           active_fraction=np.float32(0.1), lsh_layers=[0],
                           random_state=0)
    with pytest.warns(Warning):  # ConvergenceWarning after one epoch
        clf.fit(X[:300] / 16, y[:300])
    assert clf.lsh_layers_ == [True, False]
    with pytest.raises(InvalidParameterError, match="'n_jobs' parameter"):
        clf.set_params(n_jobs=0).fit(X[:300] / 16, y[:300])


@pytest.mark.parametrize("params, match", [
    (dict(active_fraction=500), "active_fraction=500 asks for more neurons than "
                                "the 300 of layer 0: all 300 are active"),
    (dict(active_fraction=30, min_active=40),
     "min_active=40 exceeds the active budget 30 of hashed layer 0: at most 30"),
])
def test_a_budget_that_cannot_be_met_warns(params, match):
    X, y = make_classification(n_samples=60, random_state=0)
    clf = LSHMLPClassifier(hidden_layer_sizes=(300,), max_iter=1, **params)
    with pytest.warns(UserWarning, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.active_budget_[0] == min(300, params["active_fraction"])
