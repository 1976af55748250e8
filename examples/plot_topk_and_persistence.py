"""
======================================================
Top-k predictions for many classes, and saving a model
======================================================

With thousands of classes, ``predict_proba`` returns an
``(n_samples, n_classes)`` array, most of which nobody reads.
:meth:`~sklearn_lsh.LSHMLPClassifier.predict_topk` returns only the ``k`` best
classes of each row and their probabilities, computed in chunks of rows.
This example trains a classifier with a hashed output of about 1,500 classes
on
:func:`~sklearn_lsh.datasets.make_extreme_classification`, scores its top-5
with :func:`~sklearn_lsh.metrics.precision_at_k`, then saves it with joblib and
loads it back, also memory-mapped.
"""

# %%
# Train
# -----
import tempfile
import time
import warnings
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sklearn_lsh import LSHMLPClassifier
from sklearn_lsh.datasets import make_extreme_classification
from sklearn_lsh.metrics import precision_at_k

X, y = make_extreme_classification(14_000, n_features=10_000, n_classes=2_000,
                                   random_state=0)
X_train, X_test, y_train, y_test = X[:12_000], X[12_000:], y[:12_000], y[12_000:]

clf = LSHMLPClassifier(hidden_layer_sizes=(128,), active_fraction=200,
                       weight_init="fan_in", batch_size=256, max_iter=2,
                       random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # two epochs
    clf.fit(X_train, y_train)
n_classes = len(clf.classes_)
print("hashed layers:", clf.lsh_layers_)
print(f"{n_classes:,} of the 2,000 classes occur in the training rows and are "
      "outputs;")
unseen = ~np.isin(y_test, clf.classes_)
print(f"{unseen.mean():.1%} of the test rows have a class never seen in "
      "training (no model can get those right)")

# %%
# The class frequencies follow a power law, so rare classes may not occur in
# 12,000 training rows at all. As with any scikit-learn classifier, the
# outputs are the classes seen in ``fit`` (``classes_``).

# %%
# Top-k predictions
# -----------------
# ``predict_topk`` gives class labels (from ``classes_``), best first, and their
# probabilities. It agrees with ``predict_proba`` ranked by hand, without the
# full array.
k = 5
top, scores = clf.predict_topk(X_test, k=k)
print("first row:", top[0], np.round(scores[0], 3))

proba = clf.predict_proba(X_test)
by_hand = clf.classes_[np.argsort(-proba, axis=1, kind="stable")[:, :k]]
print(f"predict_proba is {proba.nbytes / 1e6:.0f} MB for {X_test.shape[0]:,} rows; "
      f"the top-{k} classes agree with predict_topk on "
      f"{np.mean(by_hand == top):.1%} of the entries")

precision = [precision_at_k(y_test, top, i) for i in range(1, k + 1)]
for i, p in enumerate(precision, 1):
    print(f"P@{i} = {p:.3f}   top-{i} accuracy = {i * p:.3f}")

# %%
# With one label per row, P@k is the top-k accuracy divided by k: at most one of
# the k predictions can be right. The top-k accuracy is the share of rows whose
# class is among the first k predictions.
fig, ax = plt.subplots(figsize=(5.5, 3.4))
ks = np.arange(1, k + 1)
ax.bar(ks, ks * np.array(precision), color="tab:blue")
ax.set_xlabel("k")
ax.set_ylabel("top-k accuracy")
ax.set_title(f"{n_classes:,} classes, {X_test.shape[0]:,} held-out rows")
ax.set_ylim(0, 1)
fig.tight_layout()
plt.show()

# %%
# Save and load
# -------------
# A model saved with joblib (or pickle) keeps what it needs to predict and to
# go on training: weights, optimizer state, hash functions and tables (see
# :ref:`persistence`). ``mmap_mode="r"`` maps the large arrays read-only from
# the file instead of reading them into memory.
#
# .. warning::
#
#    Loading a pickle or a joblib file runs code named in the file: load only
#    models from a source you trust.
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "clf.joblib"
    start = time.perf_counter()
    joblib.dump(clf, path)
    print(f"saved {path.stat().st_size / 1e6:.1f} MB "
          f"in {time.perf_counter() - start:.2f} s")
    weights_mb = sum(c.nbytes + b.nbytes
                     for c, b in zip(clf.coefs_, clf.intercepts_)) / 1e6
    print(f"(the weights alone are {weights_mb:.1f} MB; the file also holds "
          "Adam's two moments and the hash tables)")

    loaded = joblib.load(path)
    same = np.array_equal(loaded.predict_topk(X_test, k=k)[0], top)
    print("loaded model gives the same top-5:", same)

    mapped = joblib.load(path, mmap_mode="r")
    print("memory-mapped weights are read-only:",
          not mapped.coefs_[0].flags.writeable)
    same = np.array_equal(mapped.predict_topk(X_test, k=k)[0], top)
    print("memory-mapped model gives the same top-5:", same)
    del loaded, mapped  # release the mapped file before the directory goes
