"""numpydoc validation of every public docstring.

The public objects are those the API reference documents (doc/api.rst): the
two estimators and their own public methods, the version warning,
show_versions, make_extreme_classification and precision_at_k. Methods that the
estimators inherit from scikit-learn (get_params, score, set_*_request, ...)
are scikit-learn's docstrings and are validated there.

Checks that are not applied, following scikit-learn's own docstring test
(sklearn/tests/test_docstrings.py):

- GL01, GL02 (where the summary starts, blank lines around it): formatting
  conventions that scikit-learn does not follow either;
- RT02 (the first line of a Returns entry holds only the type): the returned
  value is named (``self : object``) so that the text can refer to it, as in
  scikit-learn;
- ES01, SA01, EX01 (extended summary, See Also, Examples) for methods only: a
  method is documented within its class, whose docstring has all three.
"""

import inspect

import pytest

from sklearn_lsh import (
    InconsistentLSHVersionWarning,
    LSHMLPClassifier,
    LSHMLPRegressor,
    show_versions,
)
from sklearn_lsh.datasets import make_extreme_classification
from sklearn_lsh.metrics import precision_at_k

validate = pytest.importorskip(
    "numpydoc.validate",
    reason="numpydoc is needed (pip install -e '.[docs]')").validate

PUBLIC_OBJECTS = [
    LSHMLPClassifier,
    LSHMLPRegressor,
    InconsistentLSHVersionWarning,
    show_versions,
    make_extreme_classification,
    precision_at_k,
]
ALWAYS_IGNORED = {"GL01", "GL02", "RT02"}
IGNORED_FOR_METHODS = {"ES01", "SA01", "EX01"}


def _public_name(obj):
    """The import path users write (sklearn_lsh.X, not sklearn_lsh._classifier.X)."""
    module = obj.__module__
    if module.startswith("sklearn_lsh._"):
        module = "sklearn_lsh"
    return f"{module}.{obj.__qualname__}"


def _own_public_methods(cls):
    """Public methods defined by sklearn_lsh, not inherited from scikit-learn."""
    for name, member in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("_"):
            continue
        if member.__module__.startswith("sklearn_lsh"):
            yield f"{_public_name(cls)}.{name}"


def _docstring_names():
    for obj in PUBLIC_OBJECTS:
        yield _public_name(obj)
        if inspect.isclass(obj) and not issubclass(obj, Warning):
            yield from _own_public_methods(obj)


DOCSTRINGS = sorted(_docstring_names())


def test_the_public_objects_are_those_of_the_api_reference():
    import sklearn_lsh

    names = {name for name in sklearn_lsh.__all__ if name != "__version__"}
    assert names == {obj.__name__ for obj in PUBLIC_OBJECTS[:4]}
    assert "sklearn_lsh.LSHMLPClassifier.predict_topk" in DOCSTRINGS


@pytest.mark.parametrize("name", DOCSTRINGS)
def test_docstring(name):
    result = validate(name)
    is_method = name.count(".") > 1 and name.rsplit(".", 1)[0] in {
        _public_name(obj) for obj in PUBLIC_OBJECTS if inspect.isclass(obj)}
    ignored = ALWAYS_IGNORED | (IGNORED_FOR_METHODS if is_method else set())
    errors = [f"{code}: {message}" for code, message in result["errors"]
              if code not in ignored]
    assert not errors, f"{name}:\n" + "\n".join(errors)
