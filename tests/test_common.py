"""scikit-learn's estimator checks, over several configurations."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_lsh import LSHMLPClassifier, LSHMLPRegressor

# The checks' data sets have 2 to 10 features and 2 or 3 classes: the hidden
# layer hashes (test_estimators and test_persistence cover wide hashed
# outputs).
COMMON = dict(hidden_layer_sizes=(256,), max_iter=50, lsh_layers=[0],
              active_fraction=0.25, random_state=0)

ESTIMATORS = [
    LSHMLPClassifier(),
    LSHMLPRegressor(),
    *[LSHMLPClassifier(hash_family=family, n_jobs=1, **COMMON)
      for family in ("dwta", "wta", "simhash", "minhash")],
    *[LSHMLPRegressor(hash_family=family, n_jobs=1, **COMMON)
      for family in ("dwta", "simhash")],
    LSHMLPClassifier(sampling="topk", n_jobs=2, **COMMON),
    LSHMLPRegressor(sampling="topk", n_jobs=2, **COMMON),
    LSHMLPClassifier(**{**COMMON, "active_fraction": 64}, n_jobs=1),
    LSHMLPRegressor(**{**COMMON, "active_fraction": 64}, n_jobs=2),
    # A hashed output layer too (multiclass and multilabel; a binary output is
    # one logistic unit and stays dense).
    LSHMLPClassifier(**{**COMMON, "lsh_layers": "all", "active_fraction": 0.5},
                     n_jobs=1),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
