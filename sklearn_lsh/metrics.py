"""Ranking metrics for wide outputs.

``precision_at_k`` is the metric of the extreme-classification literature
(SLIDE reports P@1 and P@5 on Amazon-670K). It takes the ranked predictions,
for example the first output of ``LSHMLPClassifier.predict_topk``, so no
``(n_samples, n_classes)`` score matrix has to be built.
"""

import numbers

import numpy as np
import scipy.sparse as sp

__all__ = ["precision_at_k"]


def _check_top_classes(top_classes, n_samples, k):
    top = np.asarray(top_classes)
    if top.ndim == 1:
        top = top.reshape(-1, 1)
    if top.ndim != 2:
        raise ValueError(
            f"top_classes must be a 2-d array (n_samples, k); got {top.ndim} dims."
        )
    if top.shape[0] != n_samples:
        raise ValueError(
            f"y_true has {n_samples} samples but top_classes has {top.shape[0]} rows."
        )
    if top.shape[1] < k:
        raise ValueError(
            f"top_classes has {top.shape[1]} columns; at least k={k} are needed."
        )
    return top[:, :k]


def precision_at_k(y_true, top_classes, k=1):
    """Precision at k of ranked class predictions.

    The share of the first ``k`` predicted classes of each row that are true
    labels, averaged over rows: ``mean_i |top_k(i) & labels(i)| / k``. A class
    repeated within a row's first ``k`` predictions counts once.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or \
            {sparse matrix, ndarray} of shape (n_samples, n_labels)
        True targets: one class label per row (multiclass), or a binary label
        indicator matrix (multilabel), preferably CSR.
    top_classes : array-like of shape (n_samples, n_ranked)
        Predicted classes of each row, best first, with ``n_ranked >= k``
        (only the first ``k`` columns are used). For multiclass ``y_true`` they
        are class labels compared with ``y_true`` (as returned by
        ``LSHMLPClassifier.predict_topk``); for an indicator ``y_true`` they are
        its column indices, and values outside ``[0, n_labels)`` (padding such
        as -1) count as misses.
    k : int, default=1
        How many predictions per row are scored.

    Returns
    -------
    precision : float
        Precision at k, in ``[0, 1]``.

    See Also
    --------
    sklearn.metrics.top_k_accuracy_score : The top-k accuracy, from a score
        for every class.

    Notes
    -----
    With one true label per row, at most one of the ``k`` predictions can be
    right, so P@k is the top-k accuracy divided by ``k`` and never exceeds
    ``1 / k``; P@1 is the accuracy. This is the definition used for
    multi-label benchmarks such as Amazon-670K; multiply by ``k`` for the
    top-k accuracy.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lsh.metrics import precision_at_k
    >>> y = np.array([0, 1, 2])
    >>> top = np.array([[0, 1], [2, 1], [0, 1]])
    >>> precision_at_k(y, top, k=1)
    0.3333...
    >>> precision_at_k(y, top, k=2)
    0.3333...
    """
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}.")
    k = int(k)
    multilabel = sp.issparse(y_true) or (
        np.ndim(y_true) == 2 and np.shape(y_true)[1] > 1
    )
    if not multilabel:
        y = np.asarray(y_true)
        if y.ndim == 2:
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(f"y_true must be 1-d or 2-d; got {y.ndim} dims.")
        n = y.shape[0]
        if n == 0:
            raise ValueError("y_true is empty.")
        top = _check_top_classes(top_classes, n, k)
        hits = np.count_nonzero((top == y[:, None]).any(axis=1))
        return float(hits / (n * k))

    Y = sp.csr_matrix(y_true, copy=True)
    Y.eliminate_zeros()
    Y.sort_indices()
    n, n_labels = Y.shape
    if n == 0:
        raise ValueError("y_true is empty.")
    top = _check_top_classes(top_classes, n, k)
    if not np.issubdtype(top.dtype, np.integer):
        raise ValueError(
            "top_classes must hold integer column indices for an indicator y_true; "
            f"got dtype {top.dtype}."
        )
    top = np.sort(top.astype(np.int64), axis=1)
    valid = (top >= 0) & (top < n_labels)
    valid[:, 1:] &= top[:, 1:] != top[:, :-1]
    # Each true (row, label) pair as one sorted int64 key; predictions are
    # looked up among them.
    rows_true = np.repeat(np.arange(n, dtype=np.int64), np.diff(Y.indptr))
    keys_true = rows_true * n_labels + Y.indices
    keys_pred = np.arange(n, dtype=np.int64)[:, None] * n_labels + top
    if keys_true.size == 0:
        return 0.0
    pos = np.searchsorted(keys_true, keys_pred)
    pos[pos == keys_true.size] = 0
    found = keys_true[pos] == keys_pred
    hits = np.count_nonzero(found & valid)
    return float(hits / (n * k))
