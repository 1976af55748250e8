"""Synthetic data for wide-output learning, generated from a seed.

- :func:`make_extreme_classification`: sparse synthetic data at the shape of
  SLIDE's Amazon-670K benchmark, with a learnable structure.

As the generators of :mod:`sklearn.datasets`, it returns arrays: sparse
inputs are CSR with float32 values and int32 indices; a multilabel target is
a CSR indicator matrix. (The loaders of the benchmarks' real data sets, read
from Debian packages, are in ``benchmarks/data.py``, outside the package.)
"""

import math
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

__all__ = ["make_extreme_classification"]


def _check_int(name, value, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int; got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value}.")
    return int(value)


def _check_real(name, value, low, high=None, high_open=False):
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number; got {value!r}.")
    value = float(value)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or value < low or too_high:
        bound = "" if high is None else f" and {'<' if high_open else '<='} {high}"
        raise ValueError(f"{name} must be >= {low}{bound}; got {value}.")
    return value


# --------------------------------------------------------------------------
# Synthetic extreme classification
# --------------------------------------------------------------------------

def _splitmix64(z):
    """The splitmix64 finaliser, element-wise on a uint64 array (wraps)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _prototype_features(key, labels, slots, prototype_size, n_features):
    """Feature of slot ``slots`` in the prototype of ``labels``.

    A hash of (seed key, label, slot): prototypes are never stored, and a
    label's prototype does not depend on how many samples are drawn.
    """
    z = labels.astype(np.uint64) * np.uint64(prototype_size)
    z += slots.astype(np.uint64)
    z += key
    return (_splitmix64(z) % np.uint64(n_features)).astype(np.int32)


def _generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    if random_state is None or (isinstance(random_state, numbers.Integral)
                                and not isinstance(random_state, bool)):
        return np.random.default_rng(random_state)
    raise ValueError(
        "random_state must be None, an int, a numpy Generator or RandomState; "
        f"got {random_state!r}."
    )


def make_extreme_classification(n_samples=100, n_features=135_909,
                                n_classes=670_091, n_labels=1, nnz_per_row=75, *,
                                prototype_size=None, noise=0.2, power_law=1.0,
                                return_prototypes=False, random_state=None):
    """Generate sparse data for extreme (very many classes) classification.

    The default shape is SLIDE's Amazon-670K benchmark: 135,909 sparse
    features with about 75 non-zeros per row and 670,091 classes whose
    frequencies follow a power law (use ``n_labels=5.45`` for its multilabel
    form). The data is learnable:

    - each class owns a *prototype*, a set of ``prototype_size`` features
      (drawn by hashing, so it is never stored and does not depend on
      ``n_samples``);
    - class frequencies follow a power law: the class of popularity rank ``r``
      (0-based) is drawn with probability proportional to
      ``(r + 1) ** -power_law``; ranks are assigned to class ids at random;
    - a sample draws its classes (one, or ``1 + Poisson(n_labels - 1)``
      distinct ones), then takes ``round((1 - noise) * nnz_per_row)`` features
      from its classes' prototypes (an equal share from each, a random subset
      of each prototype) and ``nnz_per_row`` minus that many uniformly random
      noise features. Values are uniform in ``[0.1, 1)`` before each row is
      scaled to unit L2 norm.

    Parameters
    ----------
    n_samples : int, default=100
        Number of rows.
    n_features : int, default=135_909
        Number of features.
    n_classes : int, default=670_091
        Number of classes.
    n_labels : float, default=1
        Mean number of labels per row. 1 gives a multiclass problem (``y`` is
        a vector of labels); above 1, each row has ``1 + Poisson(n_labels - 1)``
        distinct labels (at most ``n_classes`` and the number of prototype
        features per row) and ``y`` is an indicator matrix.
    nnz_per_row : int, default=75
        Number of features drawn per row. A row has this many non-zeros
        unless the same feature is drawn twice (rare when ``n_features`` is
        large; duplicates are summed).
    prototype_size : int, default=None
        Number of features each class owns; None means ``nnz_per_row``.
    noise : float, default=0.2
        Share of each row's features drawn at random rather than from its
        classes' prototypes, in ``[0, 1)``.
    power_law : float, default=1.0
        Exponent of the class-frequency power law (0 gives uniform classes).
    return_prototypes : bool, default=False
        If True, also return the prototypes and the class probabilities.
    random_state : int, numpy Generator or RandomState, or None, default=None
        Seed of the generator; an int gives reproducible data.

    Returns
    -------
    X : sparse matrix of shape (n_samples, n_features)
        CSR, float32 values, int32 indices (int64 if ``n_samples *
        nnz_per_row`` exceeds the int32 range), sorted indices.
    y : ndarray of shape (n_samples,) or sparse matrix of shape \
            (n_samples, n_classes)
        Class labels (int64) if ``n_labels == 1``, else a CSR indicator
        matrix (int32 values and indices).
    prototypes : sparse matrix of shape (n_classes, n_features)
        Only if ``return_prototypes``: the binary (float32) indicator of each
        class's prototype features. It has ``n_classes * prototype_size``
        entries (about 400 MB at the default shape).
    class_prior : ndarray of shape (n_classes,)
        Only if ``return_prototypes``: the probability of drawing each class.

    See Also
    --------
    sklearn.datasets.make_multilabel_classification : Dense multilabel data
        with a few classes.

    Notes
    -----
    The work and memory are linear in ``n_samples * nnz_per_row`` plus
    ``n_classes`` (no per-class data besides the frequency table):
    100,000 rows at the default shape take a few seconds and a few hundred MB.

    Examples
    --------
    >>> from sklearn_lsh.datasets import make_extreme_classification
    >>> X, y = make_extreme_classification(1000, random_state=0)
    >>> X.shape, X.dtype, X.indices.dtype, y.shape
    ((1000, 135909), dtype('float32'), dtype('int32'), (1000,))
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    n_features = _check_int("n_features", n_features, 1)
    n_classes = _check_int("n_classes", n_classes, 1)
    n_labels = _check_real("n_labels", n_labels, 1)
    nnz_per_row = _check_int("nnz_per_row", nnz_per_row, 1)
    if prototype_size is None:
        prototype_size = nnz_per_row
    prototype_size = _check_int("prototype_size", prototype_size, 1)
    noise = _check_real("noise", noise, 0, 1, high_open=True)
    power_law = _check_real("power_law", power_law, 0)
    rng = _generator(random_state)

    # Drawn first, so that they do not depend on n_samples.
    key = rng.integers(0, np.iinfo(np.int64).max, dtype=np.int64).astype(np.uint64)
    rank_to_class = rng.permutation(n_classes)
    weights = np.arange(1, n_classes + 1, dtype=np.float64) ** -power_law
    cdf = np.cumsum(weights)

    def draw_classes(size):
        ranks = np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right")
        return rank_to_class[np.minimum(ranks, n_classes - 1)]

    n_signal = max(1, round((1 - noise) * nnz_per_row))
    n_noise = nnz_per_row - n_signal
    multilabel = n_labels != 1
    if multilabel:
        counts = 1 + rng.poisson(n_labels - 1, n_samples)
        np.minimum(counts, min(n_classes, n_signal), out=counts)
    else:
        counts = np.ones(n_samples, dtype=np.int64)
    rows = np.repeat(np.arange(n_samples, dtype=np.int64), counts)
    labels = draw_classes(rows.size)
    if multilabel:
        # Redraw the classes drawn twice in a row; give up after a few rounds
        # (possible only with few classes) and drop what is left.
        for _ in range(32):
            pair_keys = rows * n_classes + labels
            order = np.argsort(pair_keys, kind="stable")
            sorted_keys = pair_keys[order]
            dup = order[1:][sorted_keys[1:] == sorted_keys[:-1]]
            if dup.size == 0:
                break
            labels[dup] = draw_classes(dup.size)
        pair_keys = rows * n_classes + labels
        pair_keys, first = np.unique(pair_keys, return_index=True)
        rows = rows[first]
        labels = labels[first]
        counts = np.bincount(rows, minlength=n_samples)
    row_ptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(counts, out=row_ptr[1:])

    # Each (row, class) pair reads its prototype along a random cyclic
    # progression start, start + step, ... (step coprime with the prototype
    # size), so the features it takes are distinct.
    steps = np.array([s for s in range(1, max(prototype_size, 2))
                      if math.gcd(s, prototype_size) == 1], dtype=np.int64)
    starts = rng.integers(0, prototype_size, size=labels.size)
    strides = steps[rng.integers(0, steps.size, size=labels.size)]
    noise_features = rng.integers(0, n_features, size=(n_samples, n_noise),
                                  dtype=np.int32)
    values = rng.random((n_samples, nnz_per_row), dtype=np.float32)
    values *= 0.9
    values += 0.1

    indices = np.empty((n_samples, nnz_per_row), dtype=np.int32)
    indices[:, n_signal:] = noise_features
    del noise_features
    j = np.arange(n_signal, dtype=np.int64)[None, :]
    chunk = max(1, 2**20 // n_signal)
    for lo in range(0, n_samples, chunk):
        hi = min(lo + chunk, n_samples)
        k = counts[lo:hi, None]
        # Slot j of a row goes to its class j * k // n_signal, as the t-th
        # feature taken from that class.
        block = j * k // n_signal
        t = j - (block * n_signal + k - 1) // k
        pair = row_ptr[lo:hi, None] + block
        slots = (starts[pair] + t * strides[pair]) % prototype_size
        indices[lo:hi, :n_signal] = _prototype_features(
            key, labels[pair], slots, prototype_size, n_features)

    nnz = n_samples * nnz_per_row
    index_dtype = np.int32 if nnz <= np.iinfo(np.int32).max else np.int64
    indptr = np.arange(0, nnz + 1, nnz_per_row, dtype=index_dtype)
    X = sp.csr_matrix((values.ravel(), indices.ravel().astype(index_dtype,
                                                              copy=False), indptr),
                      shape=(n_samples, n_features))
    del values, indices
    X.sum_duplicates()
    normalize(X, copy=False)

    if multilabel:
        y = sp.csr_matrix(
            (np.ones(labels.size, dtype=np.int32), labels.astype(np.int32),
             row_ptr.astype(np.int32 if labels.size <= np.iinfo(np.int32).max
                            else np.int64)),
            shape=(n_samples, n_classes))
    else:
        y = labels.astype(np.int64)
    if not return_prototypes:
        return X, y

    class_prior = np.empty(n_classes, dtype=np.float64)
    class_prior[rank_to_class] = weights / cdf[-1]
    proto_classes = np.repeat(np.arange(n_classes, dtype=np.int64), prototype_size)
    proto_slots = np.tile(np.arange(prototype_size, dtype=np.int64), n_classes)
    proto_features = _prototype_features(key, proto_classes, proto_slots,
                                         prototype_size, n_features)
    prototypes = sp.csr_matrix(
        (np.ones(proto_features.size, dtype=np.float32), proto_features,
         np.arange(0, proto_features.size + 1, prototype_size)),
        shape=(n_classes, n_features))
    prototypes.sum_duplicates()
    prototypes.data[:] = 1
    return X, y, prototypes, class_prior
