"""How well a fitted network's hashed layers choose their neurons."""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted, validate_data

from ._threads import one_blas_thread

__all__ = ["active_set_recall"]


def active_set_recall(estimator, X, *, max_samples=256):
    """Recall of the exact top-budget neurons in each hashed layer's active set.

    For each sample, a hashed layer chooses an active set of about ``budget``
    neurons (by its tables, or exactly). The ideal set is the ``budget``
    neurons of largest pre-activation given the same input (the layer below's
    active outputs). The recall is the share of the ideal set the chosen set
    holds, averaged over the samples: 1.0 for exact selection (up to ties of
    equal pre-activations), the retrieval quality of the tables otherwise.
    Computed as prediction runs (no labels added to the output layer).

    Parameters
    ----------
    estimator : LSHMLPClassifier or LSHMLPRegressor
        A fitted estimator.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The probe rows; the first ``max_samples`` are used.
    max_samples : int, default=256
        At most this many rows are probed (fewer for layers wider than
        65,536 neurons: at most 2**24 pre-activations are computed).

    Returns
    -------
    recall : list of float or None
        One entry per weight layer: the mean recall of a hashed layer, None for
        a layer that computes every neuron.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_lsh import LSHMLPClassifier
    >>> from sklearn_lsh.inspection import active_set_recall
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = LSHMLPClassifier(hidden_layer_sizes=(512, 512), max_iter=3,
    ...                        random_state=0).fit(X, y)
    >>> clf.layer_selection_
    ['lsh', 'exact', 'dense']
    >>> recall = active_set_recall(clf, X)
    >>> recall[1], recall[2]
    (1.0, None)
    """
    check_is_fitted(estimator, "_network")
    if not (isinstance(max_samples, (int, np.integer)) and max_samples >= 1):
        raise ValueError(f"max_samples must be an int >= 1; got {max_samples!r}.")
    X = validate_data(estimator, X, accept_sparse=["csr", "csc"],
                      dtype=(np.float64, np.float32), reset=False)
    X = X[:_probe_size(estimator, max_samples)]
    return _recall(estimator, estimator._prepare_X(X))


def _probe_size(estimator, max_samples=256):
    """Rows whose pre-activations in the widest layer number at most 2**24."""
    widest = max(layer.weights.shape[0] for layer in estimator._network.layers)
    return max(1, min(max_samples, (1 << 24) // widest))


def _recall(estimator, X, worker=None, batch_size=None):
    """``active_set_recall`` on X prepared by the estimator (``_prepare_X``).

    ``worker``: the fit's own, pointed at the fitted layers, whose batches
    hold ``batch_size`` rows. Probing through it spares a second set of
    per-thread rows as long as the widest layer (at 670,091 outputs, 28 MB
    on top of the fit's peak).
    """
    network = estimator._network
    layers = network.layers
    n = X.shape[0]
    if n == 0:
        return [None if layer.hashing is None else float("nan") for layer in layers]
    if worker is None:
        worker = network.worker(n, estimator._n_threads(), inference=True,
                                hash_output=True)
        batch_size = n
    worker.set_data(X)
    hits = [0 if layer.hashing is not None else None for layer in layers]
    # One BLAS thread for the probe's products too: a threaded product wakes
    # BLAS's own threads, which then spin for a while on the cores the next
    # batches use (a tenth of a second of CPU after each probe of T1's
    # network, in a profile of partial_fit called epoch by epoch).
    with one_blas_thread():
        for start in range(0, n, batch_size):
            rows = np.arange(start, min(n, start + batch_size), dtype=np.intp)
            worker.run(rows, training=False)
            for r in range(rows.shape[0]):
                # Row by row: memory of one layer's width, whatever the layer.
                h = X[start + r]
                for i, layer in enumerate(layers):
                    W, act = layer.weights, worker.activations[i][r]
                    ids = worker.active_ids[i]
                    if ids is None:
                        h = act
                        continue
                    chosen = ids[r, :worker.n_active[i][r]]
                    # What the layer's kernel computes, for every neuron.
                    if sp.issparse(h):
                        z = W[:, h.indices] @ h.data.astype(W.dtype) + layer.bias
                    else:
                        z = W @ h.astype(W.dtype) + layer.bias
                    budget = layer.hashing.budget
                    ideal = np.argpartition(-z, budget - 1)[:budget]
                    hits[i] += np.isin(ideal, chosen, assume_unique=True).sum()
                    h = np.zeros(W.shape[0], dtype=W.dtype)
                    h[chosen] = act[:chosen.shape[0]]
    return [None if k is None else float(k / (n * layer.hashing.budget))
            for k, layer in zip(hits, layers)]
