"""Property tests: the compiled kernels against their NumPy references over
random shapes, dtypes, sparsity patterns and thread counts (hypothesis).

The references are those of the module tests (test_tables, test_network,
test_selection, test_optimizers: scikit-learn's own Adam); here hypothesis
draws the cases, including the edges a fixed case list misses: one neuron,
one feature, empty rows, a single table or bucket. The example budget is fixed
and drawn deterministically, so that the suite is reproducible and stays
within its time.
"""

import numpy as np
import pytest
import scipy.sparse as sp

hypothesis = pytest.importorskip(
    "hypothesis", reason="hypothesis (the tests extra) runs the property tests")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sklearn.neural_network._stochastic_optimizers import (  # noqa: E402
    AdamOptimizer,
)
from sklearn_lsh._hashing import HashFunctions  # noqa: E402
from sklearn_lsh._optimizers import _adam_rows  # noqa: E402
from sklearn_lsh._tables import HashTables  # noqa: E402
from test_network import BatchTrainer, make_network, reference  # noqa: E402
from test_selection import _exact, _top  # noqa: E402
from test_tables import ref_buckets, ref_query, split, table_buckets  # noqa: E402

from sklearn_lsh import LSHMLPClassifier  # noqa: E402

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    database=None)
FAMILIES = ["dwta", "wta", "simhash", "minhash"]
DTYPES = [np.float32, np.float64]


def _rows(seed, n_rows, n_features, density, dtype, empty_rows):
    """Random rows with ``density`` non-zeros, some rows all zero."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, (n_rows, n_features))
    X[rng.rand(n_rows, n_features) >= density] = 0
    X[rng.rand(n_rows) < empty_rows] = 0
    return X.astype(dtype)


@SETTINGS
@given(n_items=st.integers(1, 60), n_tables=st.integers(1, 6),
       log_buckets=st.integers(0, 6), n_distinct=st.integers(1, 8),
       strategy=st.sampled_from(["union", "topk", "threshold"]),
       budget=st.integers(1, 70), min_count=st.integers(1, 6),
       seed=st.integers(0, 2**16))
def test_tables_build_and_query_are_the_reference(n_items, n_tables, log_buckets,
                                                  n_distinct, strategy, budget,
                                                  min_count, seed):
    n_buckets = 2**log_buckets
    rng = np.random.default_rng(seed)
    n_distinct = min(n_distinct, n_buckets)
    keys = rng.integers(0, n_distinct, (n_items, n_tables)).astype(np.uint32)
    queries = rng.integers(0, n_distinct, (7, n_tables)).astype(np.uint32)
    min_count = min(min_count, n_tables) if strategy == "threshold" else 1
    buckets = ref_buckets(keys, n_buckets)
    expected = ref_query(buckets, queries, strategy, budget, min_count)
    for n_threads in (1, 2):
        tables = HashTables(n_tables, n_buckets, n_items).build(
            keys, n_threads=n_threads)
        assert table_buckets(tables) == buckets
        indptr, ids = tables.query(queries, strategy=strategy, budget=budget,
                                   min_count=min_count, n_threads=n_threads)
        assert split(indptr, ids) == expected


@SETTINGS
@given(family=st.sampled_from(FAMILIES), dtype=st.sampled_from(DTYPES),
       n_features=st.integers(1, 40), n_rows=st.integers(1, 12),
       density=st.floats(0.05, 1.0), empty_rows=st.floats(0, 0.5),
       k=st.integers(1, 4), n_tables=st.integers(1, 5),
       seed=st.integers(0, 2**16))
def test_hash_keys_agree_across_forms_dtypes_and_threads(
        family, dtype, n_features, n_rows, density, empty_rows, k, n_tables, seed):
    if family != "simhash" and n_features < 2:
        n_features = 2  # rank-order families bin at least two features
    bin_size = 1 << min(3, int(np.log2(n_features)))
    hf = HashFunctions(family, k, n_tables, n_features, bin_size=bin_size,
                       seed=seed)
    X = _rows(seed, n_rows, n_features, density, np.float64, empty_rows)
    keys = hf.hash(X, n_threads=1)
    assert keys.shape == (n_rows, n_tables)
    assert keys.max(initial=0) < hf.n_buckets
    Xt = X.astype(dtype)
    if np.array_equal(Xt.astype(np.float64), X) or family == "minhash":
        # Rounding to float32 may reorder close values for rank-order hashes.
        for form in (Xt, sp.csr_matrix(Xt)):
            for n_threads in (1, 2):
                np.testing.assert_array_equal(hf.hash(form, n_threads=n_threads),
                                              hf.hash(Xt, n_threads=1))
    np.testing.assert_array_equal(hf.hash(sp.csr_matrix(X), n_threads=2), keys)


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), sparse=st.booleans(),
       n_in=st.integers(1, 8), widths=st.lists(st.integers(1, 7), min_size=1,
                                               max_size=2),
       hidden=st.sampled_from(["relu", "tanh", "logistic", "identity"]),
       output=st.sampled_from(["softmax", "logistic", "identity"]),
       n_rows=st.integers(1, 9), empty_rows=st.floats(0, 0.5),
       hash_hidden=st.booleans(), seed=st.integers(0, 2**16))
def test_all_active_network_is_the_dense_reference(
        dtype, sparse, n_in, widths, hidden, output, n_rows, empty_rows,
        hash_hidden, seed):
    n_out = 3
    sizes = [n_in, *widths, n_out]
    # Hashing needs at least two inputs; hashed layers keep every neuron.
    hashed = tuple(hash_hidden and i < len(widths) and sizes[i] >= 2
                   for i in range(len(sizes) - 1))
    specs = make_network(sizes, hidden, output, dtype, hashed, seed=seed % 1000)
    rng = np.random.RandomState(seed)
    X = _rows(seed, n_rows, n_in, 0.6, dtype, empty_rows)
    if output == "softmax":
        Y = np.eye(n_out, dtype=dtype)[rng.randint(n_out, size=n_rows)]
    elif output == "logistic":
        Y = (rng.rand(n_rows, n_out) < 0.4).astype(dtype)
    else:
        Y = rng.normal(size=(n_rows, n_out)).astype(dtype)
    labels = sp.csr_matrix(Y) if output != "identity" else None
    sw = rng.uniform(0.5, 2.0, n_rows).astype(dtype)
    weights = [s["weights"].copy() for s in specs]
    biases = [s["bias"].copy() for s in specs]
    acts, loss, gw, gb = reference(X, Y, weights, biases, hidden, output, sw, 0.1)
    Xc = sp.csr_matrix(X) if sparse else X
    if sparse:
        Xc.indices = Xc.indices.astype(np.int32)
        Xc.indptr = Xc.indptr.astype(np.int64)
    results = []
    for n_threads in (1, 2):
        layers = make_network(sizes, hidden, output, dtype, hashed,
                              seed=seed % 1000)
        trainer = BatchTrainer(layers, n_rows, n_threads, sparse_input=sparse)
        sample_loss, _ = trainer.run(
            Xc, np.arange(n_rows, dtype=np.intp), Y=np.ascontiguousarray(Y),
            label_indptr=None if labels is None else labels.indptr.astype(np.int64),
            label_ids=None if labels is None else labels.indices.astype(np.int32),
            sample_weight=sw, solver="gradient", scale=1 / float(sw.sum()),
            alpha=0.1)
        results.append((sample_loss, [layer["moment1_w"] for layer in layers]))
        rtol = 1e-9 if dtype == np.float64 else 2e-4
        for i, layer in enumerate(layers):
            width = sizes[i + 1]
            np.testing.assert_allclose(trainer.activations[i][:, :width], acts[i],
                                       rtol=rtol, atol=rtol)
            seen = np.ones(sizes[i], dtype=bool)
            if i == 0 and sparse:
                seen = np.count_nonzero(X, axis=0) > 0
            scale = max(1.0, np.abs(gw[i]).max())
            np.testing.assert_allclose(layer["moment1_w"][:, seen], gw[i][:, seen],
                                       rtol=rtol, atol=rtol * scale)
            np.testing.assert_allclose(layer["moment1_b"], gb[i], rtol=rtol,
                                       atol=rtol * max(1.0, np.abs(gb[i]).max()))
        np.testing.assert_allclose(sample_loss, loss, rtol=rtol * 10, atol=rtol)
    # The same bits for any thread count.
    np.testing.assert_array_equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


@SETTINGS
@given(sparse=st.booleans(), n_in=st.integers(1, 12), width=st.integers(1, 40),
       budget=st.integers(1, 40), n_rows=st.integers(1, 8),
       empty_rows=st.floats(0, 0.5), seed=st.integers(0, 2**16))
def test_exact_selection_is_numpy_top_k(sparse, n_in, width, budget, n_rows,
                                        empty_rows, seed):
    budget = min(budget, width)
    specs = make_network([n_in, width, 2], "relu", "softmax", np.float64,
                         (False, False), seed=seed % 1000)
    _exact(specs[0], budget)
    X = _rows(seed, n_rows, n_in, 0.7, np.float64, empty_rows)
    trainer = BatchTrainer(specs, n_rows, 2, inference_only=True,
                           sparse_input=sparse)
    Xc = sp.csr_matrix(X) if sparse else X
    if sparse:
        Xc.indices = Xc.indices.astype(np.int32)
        Xc.indptr = Xc.indptr.astype(np.int64)
    trainer.run(Xc, np.arange(n_rows, dtype=np.intp), training=False)
    W, b = specs[0]["weights"], specs[0]["bias"]
    for r in range(n_rows):
        z = W @ X[r] + b
        n_act = trainer.n_active[0][r]
        got = trainer.active_ids[0][r, :n_act]
        np.testing.assert_array_equal(got, _top(z, budget))
        np.testing.assert_allclose(trainer.activations[0][r, :n_act],
                                   np.maximum(z[got], 0), rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(n_rows=st.integers(2, 20), n_features=st.integers(2, 30),
       duplicates=st.integers(0, 10), seed=st.integers(0, 2**16))
def test_estimator_reads_unsorted_and_duplicate_csr_as_their_sum(
        n_rows, n_features, duplicates, seed):
    rng = np.random.RandomState(seed)
    X = _rows(seed, n_rows, n_features, 0.5, np.float64, 0.2)
    y = np.arange(n_rows) % 2
    clf = LSHMLPClassifier(hidden_layer_sizes=(300,), lsh_layers="all",
                           active_fraction=0.2, max_iter=1, random_state=0)
    with pytest.warns(Warning):  # one epoch does not converge
        clf.fit(X, y)
    # The same matrix with its entries shuffled and some split in two.
    coo = sp.coo_matrix(X)
    split_at = rng.choice(coo.nnz, size=min(duplicates, coo.nnz), replace=False)
    rows = np.concatenate([coo.row, coo.row[split_at]])
    cols = np.concatenate([coo.col, coo.col[split_at]])
    data = coo.data.copy()
    data[split_at] /= 2
    data = np.concatenate([data, data[split_at]])
    order = rng.permutation(rows.shape[0])
    messy = _csr_in_order(rows[order], cols[order], data[order], X.shape)
    assert duplicates == 0 or not messy.has_canonical_format
    np.testing.assert_allclose(clf.predict_proba(messy), clf.predict_proba(X),
                               rtol=1e-12, atol=1e-12)


def _csr_in_order(rows, cols, data, shape):
    """A CSR matrix whose entries keep the given order inside each row
    (unsorted columns, repeated columns), as scipy stores what it is given."""
    by_row = np.argsort(rows, kind="stable")
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sp.csr_matrix((data[by_row], cols[by_row].astype(np.int32), indptr),
                         shape=shape)


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), n_rows=st.integers(1, 9),
       n_cols=st.integers(1, 7), t=st.integers(1, 50),
       alpha=st.floats(0, 1), seed=st.integers(0, 2**16), data=st.data())
def test_adam_row_steps_are_dense_adam_on_those_rows(dtype, n_rows, n_cols, t,
                                                     alpha, seed, data):
    rng = np.random.RandomState(seed)
    W = rng.normal(size=(n_rows, n_cols)).astype(dtype)
    grad = rng.normal(size=(n_rows, n_cols)).astype(dtype)
    m = (rng.normal(size=(n_rows, n_cols)) * 0.1).astype(dtype)
    v = (rng.uniform(size=(n_rows, n_cols)) * 0.1).astype(dtype)
    rows = np.array(sorted(data.draw(st.sets(st.integers(0, n_rows - 1),
                                             min_size=1))), dtype=np.int64)
    n = 3.0
    dense = AdamOptimizer([W.copy()], learning_rate_init=0.01)
    dense.ms, dense.vs, dense.t = [m.copy()], [v.copy()], t - 1
    dense_W = [W.copy()]
    dense.update_params(dense_W, [(grad + alpha * W) / n])
    W2, m2, v2, g2 = W.copy(), m.copy(), v.copy(), grad.copy()
    _adam_rows(W2, m2, v2, g2, rows, t, 0, 1 / n, alpha, 0.01, 0.9, 0.999, 1e-8)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(W2[rows], dense_W[0][rows], rtol=tol, atol=tol)
    np.testing.assert_allclose(m2[rows], dense.ms[0][rows], rtol=tol, atol=tol)
    np.testing.assert_allclose(v2[rows], dense.vs[0][rows], rtol=tol, atol=tol)
    others = np.setdiff1d(np.arange(n_rows), rows)
    assert np.array_equal(W2[others], W[others])
