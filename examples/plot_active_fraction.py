"""
=========================================================
Accuracy and training time against the active fraction
=========================================================

The central plot of Spring & Shrivastava (KDD 2017): how accuracy and cost
change with the share of a layer's neurons each sample computes. A
400 -> 2000 ReLU -> 10 network is trained on a synthetic 10-class problem
(:func:`~sklearn.datasets.make_classification`, 40 informative features) with
the hidden layer hashed at several values of ``active_fraction``, and
:class:`~sklearn.neural_network.MLPClassifier` with the same architecture,
optimizer, batch size and epochs is the dense reference.
"""

# %%
# Data and models
# ---------------
import time
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from sklearn_lsh import LSHMLPClassifier

X, y = make_classification(n_samples=4000, n_features=400, n_informative=40,
                           n_redundant=0, n_classes=10, n_clusters_per_class=2,
                           class_sep=1.5, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
common = dict(hidden_layer_sizes=(2000,), max_iter=6, batch_size=128,
              random_state=0)


def fit(model):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    return model.score(X_test, y_test), time.perf_counter() - start


dense_accuracy, dense_seconds = fit(MLPClassifier(**common))
print(f"MLPClassifier: test accuracy {dense_accuracy:.4f}, "
      f"fit {dense_seconds:.2f} s")

fractions = [0.02, 0.05, 0.1, 0.25]
results = []
print(f"\n{'active':>8}{'test accuracy':>15}{'fit seconds':>13}"
      f"{'multiplications':>17}")
for fraction in fractions:
    model = LSHMLPClassifier(active_fraction=fraction, **common)
    accuracy, seconds = fit(model)
    results.append((accuracy, seconds, model.multiplication_share_))
    print(f"{fraction:>8.2f}{accuracy:>15.4f}{seconds:>13.2f}"
          f"{model.multiplication_share_:>16.1%}")

# %%
# The trade-off
# -------------
# Accuracy rises with the active fraction towards the dense network's, and the
# training time rises with it, roughly in proportion. Each hashed-layer neuron
# is computed for one sample at a time, which costs more per multiply-add than
# the dense network's batched matrix products, so the advantage in time shrinks
# as the budget grows: on Fashion-MNIST (:ref:`performance`) the hashed path
# paid off below about a quarter of the neurons. The times here are those of
# the machine that built this page, under its load at the time.
# The multiplication share is about 1.5 times the active fraction: the default
# ``candidate_factor=1.5`` computes the exact pre-activations of 1.5 times the
# budget to keep the best (the 10-class output layer adds little).
accuracies, seconds, shares = zip(*results)
fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(9, 3.6))
ax_acc.semilogx(fractions, accuracies, "o-", label="LSHMLPClassifier")
ax_acc.axhline(dense_accuracy, color="k", ls="--", label="MLPClassifier")
ax_acc.set_xlabel("active fraction of the hidden layer")
ax_acc.set_ylabel("test accuracy")
ax_acc.legend()
ax_time.semilogx(fractions, seconds, "o-", label="LSHMLPClassifier")
ax_time.axhline(dense_seconds, color="k", ls="--", label="MLPClassifier")
ax_time.set_xlabel("active fraction of the hidden layer")
ax_time.set_ylabel("fit seconds (6 epochs)")
ax_time.legend()
for ax in (ax_acc, ax_time):
    ax.minorticks_off()
    ax.set_xticks(fractions, [f"{f:g}" for f in fractions])
    ax.grid(True, alpha=0.3)
fig.suptitle("400 -> 2000 -> 10, synthetic 10-class problem")
fig.tight_layout()
plt.show()
