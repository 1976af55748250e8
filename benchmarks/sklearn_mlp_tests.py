"""Run scikit-learn's own MLP tests against sklearn-lsh's estimators (T6).

scikit-learn's ``neural_network/tests/test_mlp.py`` is read from the installed
scikit-learn, its import of ``MLPClassifier`` and ``MLPRegressor`` pointed at
``LSHMLPClassifier`` and ``LSHMLPRegressor``, and run with pytest in a
temporary directory. Prints pytest's summary and the count of passed tests::

    python benchmarks/sklearn_mlp_tests.py [extra pytest arguments]

The tests' expectations are scikit-learn's; where ours differ on purpose the
difference is listed in ``doc/differences.rst``.
"""

import pathlib
import sys
import tempfile

import pytest
import sklearn

IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
OURS = ("from sklearn_lsh import LSHMLPClassifier as MLPClassifier, "
        "LSHMLPRegressor as MLPRegressor")


def pointed_source():
    """The text of scikit-learn's test_mlp.py importing our estimators."""
    path = (pathlib.Path(sklearn.__file__).parent / "neural_network" / "tests"
            / "test_mlp.py")
    source = path.read_text()
    if IMPORT not in source:
        raise RuntimeError(f"{path} no longer contains {IMPORT!r}: update IMPORT.")
    return source.replace(IMPORT, OURS)


# scikit-learn's conftest provides this fixture; 42 is its default seed.
CONFTEST = """
import pytest


@pytest.fixture(params=[42])
def global_random_seed(request):
    return request.param
"""


def main(argv):
    with tempfile.TemporaryDirectory() as tmp:
        test_file = pathlib.Path(tmp) / "test_mlp_pointed.py"
        test_file.write_text(pointed_source())
        (pathlib.Path(tmp) / "conftest.py").write_text(CONFTEST)
        # -p no:cacheprovider: nothing written beside the temporary file.
        return pytest.main([str(test_file), "-q", "-p", "no:cacheprovider",
                            "--rootdir", tmp, "-W", "ignore", *argv])


if __name__ == "__main__":
    print(f"scikit-learn {sklearn.__version__}")
    sys.exit(main(sys.argv[1:]))
