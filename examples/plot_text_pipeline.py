"""
==============================================================================
Text classification: a ``Pipeline`` with ``TfidfVectorizer`` and a grid search
==============================================================================

:class:`~sklearn_lsh.LSHMLPClassifier` is an ordinary scikit-learn estimator:
here it takes the sparse TF-IDF rows of a
:class:`~sklearn.feature_extraction.text.TfidfVectorizer` in a
:class:`~sklearn.pipeline.Pipeline`, and
:class:`~sklearn.model_selection.GridSearchCV` tunes its hashing parameters.

**The corpus** has to be available offline (scikit-learn's 20 newsgroups is a
download). It is the docstrings of SciPy's public functions and classes,
read from the installed SciPy: the task is to tell from a docstring which
subpackage documents it (``scipy.special``, ``scipy.stats``,
``scipy.signal``, ...). The sections that name the subpackage outright
(*See Also*, *Examples*, *References*) and every ``scipy.<name>`` are removed.
The corpus depends on the SciPy version, so the figures below are those of the
SciPy that built this page.
"""

# %%
# The corpus
# ----------
import importlib
import inspect
import re
import warnings
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

from sklearn_lsh import LSHMLPClassifier

SUBPACKAGES = ["fft", "integrate", "interpolate", "linalg", "ndimage", "optimize",
               "signal", "sparse", "spatial", "special", "stats"]


def scipy_docstrings():
    """One document per public callable of each subpackage, labelled by it."""
    docs, labels, seen = [], [], set()
    for name in SUBPACKAGES:
        module = importlib.import_module(f"scipy.{name}")
        for attr in sorted(getattr(module, "__all__", dir(module))):
            obj = getattr(module, attr, None)
            if attr.startswith("_") or not callable(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))  # an object exported twice is counted once
            doc = inspect.getdoc(obj)
            if not doc:
                continue
            doc = re.split(r"\n(?:See Also|Examples|References)\n-{3,}", doc)[0]
            docs.append(re.sub(r"scipy\.\w+", " ", doc))
            labels.append(name)
    return np.array(docs), np.array(labels)


docs, labels = scipy_docstrings()
print(f"SciPy {scipy.__version__}: {len(docs)} docstrings")
print(Counter(labels.tolist()).most_common())
docs_train, docs_test, y_train, y_test = train_test_split(
    docs, labels, test_size=0.25, stratify=labels, random_state=0)

# %%
# Pipeline and grid search
# ------------------------
# The vectorizer's vocabulary is a few thousand words, so the first weight
# layer is wide and its input sparse; the 512-wide hidden layer is hashed
# (``lsh_layers='auto'`` hashes layers of 256 neurons or more). The grid
# crosses the active fraction with the number of tables; 3-fold
# cross-validation on the training part, then a refit on all of it.
pipe = make_pipeline(
    TfidfVectorizer(sublinear_tf=True, min_df=2),
    LSHMLPClassifier(hidden_layer_sizes=(512,), max_iter=12, random_state=0),
)
grid = GridSearchCV(
    pipe,
    {"lshmlpclassifier__active_fraction": [0.05, 0.2],
     "lshmlpclassifier__n_tables": [20, "auto"]},
    cv=3,
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # 12 epochs
    grid.fit(docs_train, y_train)

results = pd.DataFrame({
    "active_fraction": grid.cv_results_["param_lshmlpclassifier__active_fraction"],
    "n_tables": grid.cv_results_["param_lshmlpclassifier__n_tables"],
    "CV accuracy": grid.cv_results_["mean_test_score"].round(3),
    "fit seconds": grid.cv_results_["mean_fit_time"].round(2),
})
print(results.to_string(index=False))
print("best:", grid.best_params_)
print(f"held-out accuracy of the refitted best pipeline: "
      f"{grid.score(docs_test, y_test):.3f}")

# %%
# What the grid shows
# -------------------
# With 12 epochs on a few hundred documents per fold, the budget matters: the
# larger active fractions reach a clearly higher cross-validated accuracy,
# at a higher fit time. ``n_tables='auto'`` means 100 tables; the fitted
# ``n_tables_`` of the best model shows the value it used.
best = grid.best_estimator_[-1]
print("vocabulary:", len(grid.best_estimator_[0].vocabulary_), "words;",
      "hashed layers:", best.lsh_layers_, "K:", best.n_hash_bits_,
      "L:", best.n_tables_)

fig, ax = plt.subplots(figsize=(6, 3.6))
for n_tables, group in results.groupby(results["n_tables"].astype(str)):
    label = "n_tables=100 ('auto')" if n_tables == "auto" else f"n_tables={n_tables}"
    ax.plot(group["active_fraction"].astype(float), group["CV accuracy"], "o-",
            label=label)
ax.set_xlabel("active fraction of the hidden layer")
ax.set_ylabel("mean 3-fold CV accuracy")
ax.set_title("SciPy docstrings -> subpackage")
ax.grid(True, alpha=0.3)
ax.legend()
fig.tight_layout()
plt.show()
