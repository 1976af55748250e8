"""Active-set selection (_selection.pyx): exact and subspace scores against
NumPy, the cost model that chooses between exact scores, subspace scores and
tables, and the recall diagnostic (sklearn_lsh.inspection)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn_lsh._network import BatchTrainer as _BatchTrainer
from sklearn_lsh._selection import select_best, sort_ids
from test_network import (
    BatchTrainer,
    assert_tables_hold,
    make_data,
    make_network,
)

from sklearn_lsh import LSHMLPClassifier, LSHMLPRegressor
from sklearn_lsh._layers import (
    AUTO_REBUILD_INTERVAL,
    SIMHASH_BUILD_RATIO,
    SUBSPACE_MIN_ROWS,
    LayerHashing,
    build_cost,
    hash_config,
    input_subspace,
    min_rebuild_interval,
    selection_costs,
)
from sklearn_lsh.inspection import active_set_recall


def _exact(spec, budget, **extra):
    spec.update(selection="exact", hash_functions=None, tables=None, budget=budget,
                n_candidates=budget, min_active=0, strategy="union", min_count=1,
                **extra)


def _top(z, k):
    """The k largest of z, ties by the smaller id (the kernels' order)."""
    return np.sort(np.lexsort((np.arange(z.shape[0]), -z))[:k])


@pytest.mark.parametrize("n", [0, 1, 2, 5, 63, 64, 75, 128, 511, 512, 1000, 1166, 3001])
@pytest.mark.parametrize("order", ["random", "ascending", "descending", "ties",
                                   "sample", "outlier", "tiny", "infinite",
                                   "equal"])
def test_select_best_keeps_the_m_best(n, order):
    """The first m entries are the m best (larger score, ties to the smaller
    id) for every m, whether a sampled threshold applies (n >= 512, m <=
    n / 8), bins of the scores (n >= 64, or the threshold's front) or
    neither, when the sample holds the best scores (its threshold lets fewer
    than m through), when one score leaves the others in one bin, the scores
    differ by a few units in the last place, some are infinite (no bins) or
    all are equal; the arrays stay a permutation of the (score, id) pairs."""
    rng = np.random.default_rng(n)
    scores = {"random": rng.standard_normal(n),
              "ascending": np.sort(rng.standard_normal(n)),
              "descending": -np.sort(rng.standard_normal(n)),
              "ties": rng.integers(0, 4, n).astype(np.float64),
              "sample": rng.standard_normal(n),
              "outlier": np.r_[rng.standard_normal(n)[:-1], 1e9][:n],
              "tiny": 1.0 + rng.integers(0, 8, n) * np.spacing(1.0),
              "infinite": np.where(rng.random(n) < 0.1, np.inf,
                                   rng.standard_normal(n)),
              "equal": np.full(n, 0.5)}[order]
    if order == "sample":
        # The largest scores where an evenly spaced sample of 64 reads: its
        # threshold is too high, and the selection must fall back to all.
        sampled = np.arange(64) * max(n // 64, 1)
        sampled = sampled[sampled < n]
        rest = np.setdiff1d(np.arange(n), sampled)
        ranked = np.sort(scores)[::-1]
        scores[sampled], scores[rest] = ranked[:sampled.size], ranked[sampled.size:]
    ids = rng.permutation(n).astype(np.int32)
    for m in sorted({0, 1, 2, n // 32, n // 16, n // 8, n // 8 + 1, n // 4,
                     n // 2, 2 * n // 3, n - 1, n, n + 1}):
        got_scores, got_ids = scores.copy(), ids.copy()
        select_best(got_scores, got_ids, m)
        best = ids[np.lexsort((ids, -scores))[:m]]
        np.testing.assert_array_equal(np.sort(got_ids[:m]), np.sort(best))
        pairs = dict(zip(ids.tolist(), scores.tolist()))
        assert sorted(got_ids.tolist()) == sorted(ids.tolist())
        assert [pairs[i] for i in got_ids.tolist()] == got_scores.tolist()


@pytest.mark.parametrize("n", [200, 1166])
def test_select_best_with_nan_scores(n):
    """NaN scores have no bin: the selection falls back to the quickselect,
    returns, and leaves a permutation of the (score, id) pairs."""
    rng = np.random.default_rng(0)
    scores = rng.standard_normal(n)
    scores[::7] = np.nan
    ids = np.arange(n, dtype=np.int32)
    got_scores, got_ids = scores.copy(), ids.copy()
    select_best(got_scores, got_ids, 2 * n // 3)
    assert sorted(got_ids.tolist()) == ids.tolist()
    np.testing.assert_array_equal(got_scores, scores[got_ids])


@pytest.mark.parametrize("n_out", [1, 2, 33, 256, 257, 16_897, 670_091, 2**31 - 1])
@pytest.mark.parametrize("share", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sort_ids_is_numpy_sort(n_out, share, dtype):
    """A sample's active set is sorted by its radix passes (one per byte of
    n_out - 1; insertion below 33 ids) as np.sort sorts it, ids at both ends
    of the range included, and each pre-activation moves with its id."""
    rng = np.random.default_rng(n_out)
    n = min(n_out, int(share * min(n_out, 5000)) + (share > 0))
    ids = rng.choice(min(n_out, 10**6), size=n, replace=False)
    if n_out > 10**6:
        ids = ids * (n_out // 10**6)
    if n >= 2:
        ids[:2] = [0, n_out - 1]
    ids = rng.permutation(ids).astype(np.int32)
    got = ids.copy()
    vals = rng.standard_normal(n).astype(dtype)
    vals[::3] = np.nan  # not ranked
    got_vals = vals.copy()
    sort_ids(got, got_vals, n_out)
    order = np.argsort(ids, kind="stable")  # ids may repeat here
    np.testing.assert_array_equal(got, ids[order])
    np.testing.assert_array_equal(got_vals, vals[order])


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sizes", [[30, 200, 150, 4], [30, 1200, 600, 4]])
def test_exact_selection_is_numpy_top_k(sparse, dtype, sizes):
    """An exact layer keeps the budget largest pre-activations of all its
    neurons, over its input's non-zeros, and counts n_out x nnz multiply-adds;
    a second exact layer does the same on the first one's sparse output (the
    wider layers select through a sampled threshold)."""
    specs = make_network(sizes, "relu", "softmax", dtype, (False, False, False),
                         seed=3)
    _exact(specs[0], 20)
    _exact(specs[1], 15)
    X, _, _, _ = make_data(25, sizes[0], sizes[-1], "softmax", dtype, sparse, seed=4)
    Xd = X.toarray() if sparse else X
    trainer = BatchTrainer(specs, 25, 2, inference_only=True)
    trainer.run(X, np.arange(25, dtype=np.intp), training=False)
    tol = dict(rtol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for r in range(25):
        h = Xd[r].astype(np.float64)
        for i in range(2):
            W, b = specs[i]["weights"], specs[i]["bias"]
            z = W.astype(np.float64) @ h + b
            n_act = trainer.n_active[i][r]
            got = trainer.active_ids[i][r, :n_act]
            if dtype == np.float64:
                np.testing.assert_array_equal(got, _top(z, specs[i]["budget"]))
            else:
                # float32 sums may swap neighbours at the edge of the set.
                assert len(np.intersect1d(got, _top(z, specs[i]["budget"]))) >= (
                    specs[i]["budget"] - 1)
            act = trainer.activations[i][r, :n_act]
            np.testing.assert_allclose(act, np.maximum(z[got], 0), **tol)
            nnz = np.count_nonzero(h) if (sparse or i > 0) else sizes[0]
            # Every neuron scored once; the kept ones are not computed again.
            assert trainer.macs[i][r] == sizes[i + 1] * nnz
            h = np.zeros(sizes[i + 1])
            h[got] = act


def test_exact_output_layer_keeps_labels_and_ranks_the_rest():
    sizes = [10, 300]
    specs = make_network(sizes, "relu", "softmax", np.float64, (False,), seed=1)
    _exact(specs[0], 12, extra_width=2)
    X, _, label_indptr, label_ids = make_data(6, sizes[0], sizes[-1], "softmax",
                                              np.float64, False, seed=2)
    W, b = specs[0]["weights"], specs[0]["bias"]
    trainer = BatchTrainer(specs, 6, 1)
    trainer.run(X, np.arange(6, dtype=np.intp), label_indptr=label_indptr,
                label_ids=label_ids, training=True, seed=0, solver="gradient")
    for r in range(6):
        label = label_ids[label_indptr[r]]
        others = np.setdiff1d(np.arange(sizes[1]), [label])
        z = X[r] @ W[others].T + b[others]
        expected = np.sort(np.append(others[_top(z, 11)], label))
        np.testing.assert_array_equal(
            trainer.active_ids[0][r, :trainer.n_active[0][r]], expected)


def test_exact_with_every_neuron_active_equals_the_tables_network():
    """Budget = width: an exact layer computes what a dense layer does."""
    sizes = [12, 9, 7, 4]
    X, Y, _, _ = make_data(10, sizes[0], sizes[-1], "softmax", np.float64, True)
    specs = make_network(sizes, "relu", "softmax", np.float64, (False, False, False))
    dense = BatchTrainer(specs, 10, 1, inference_only=True)
    dense.run(X, np.arange(10, dtype=np.intp), training=False)
    for i in (0, 1):
        _exact(specs[i], sizes[i + 1])
    exact = BatchTrainer(specs, 10, 1, inference_only=True)
    exact.run(X, np.arange(10, dtype=np.intp), training=False)
    np.testing.assert_allclose(exact.activations[2], dense.activations[2],
                               rtol=1e-12)


def _config(fan_in, width, **kw):
    params = dict(hash_family="dwta", active_fraction=0.05, candidate_factor=1.5,
                  n_tables="auto", n_hash_bits="auto", min_active="auto",
                  selection="auto")
    return hash_config(fan_in, width, **{**params, **kw})


def test_auto_family_is_simhash_unless_its_builds_outweigh_the_scoring():
    # A fraction: the build and the scoring both grow with the width.
    for width in (16_897, 670_091):
        assert _config(128, width, hash_family="auto", batch_size=128,
                       selection="lsh")["family"] == "simhash"
    # 1,000 neurons over 128 inputs: hashing costs more than exact scores.
    assert _config(128, 1_000, hash_family="auto", batch_size=128,
                   selection="lsh")["family"] == "dwta"
    # A count of 1,000 (1,500 candidates), batches of 256, 50 between builds:
    # 10^4 neurons cost 0.01x the scoring. At 670,091 a float32 build (by
    # matrix products) costs 4.4x the scoring but 1.1x DWTA's build; a
    # float64 one, row by row over the sparse projections, 15x the scoring
    # and 3.9x DWTA's, unless the builds are rarer.
    fixed = dict(hash_family="auto", active_fraction=1000, batch_size=256,
                 selection="lsh")
    assert _config(128, 10_000, **fixed)["family"] == "simhash"
    assert _config(128, 670_091, **fixed)["family"] == "simhash"
    assert _config(128, 670_091, **fixed, float32=False)["family"] == "dwta"
    assert _config(128, 670_091, **fixed, float32=False,
                   rebuild_interval=1000)["family"] == "simhash"
    # Over a sparse input a candidate's score costs its non-zeros, while a
    # build hashes every weight of a row: 2,048 neurons over 100,000 features
    # take SimHash when the input is dense, DWTA at 75 non-zeros a row.
    sparse = dict(hash_family="auto", batch_size=128, selection="lsh")
    assert _config(100_000, 2_048, **sparse)["family"] == "simhash"
    assert _config(100_000, 2_048, **sparse, input_nnz=75)["family"] == "dwta"
    # Keys of more than 8 codes exist for SimHash alone.
    assert _config(128, 670_091, **{**fixed, "n_hash_bits": 12},
                   float32=False)["family"] == "simhash"
    # A named family is kept.
    assert _config(128, 1_000, hash_family="wta", selection="lsh")["family"] == "wta"
    # Under selection='auto', DWTA's costs choose the selection; SimHash takes
    # the tables only where its retrieval costs less than exact scores: a
    # wide output layer over 128 hidden units, not 100 or 784 dense features.
    auto = dict(hash_family="auto", selection="auto", batch_size=128)
    wide = _config(128, 16_897, **auto)
    assert (wide["family"], wide["selection"]) == ("simhash", "lsh")
    exact, lsh = selection_costs(wide, 128, 16_897, 128)
    assert lsh < exact
    for fan_in in (100, 784):
        config = _config(fan_in, 1_000, **auto)
        assert (config["family"], config["selection"]) == ("dwta", "lsh")
        simhash = _config(fan_in, 1_000, hash_family="simhash", selection="lsh")
        exact, lsh = selection_costs(simhash, fan_in, 1_000, fan_in)
        assert lsh > exact
    # T1's first layer: scores in the input's principal directions.
    first = _config(784, 1_000, captured=np.full(64, 0.7), **auto)
    assert (first["family"], first["selection"]) == ("dwta", "subspace")


def test_auto_rebuild_interval_spaces_the_builds_of_a_very_wide_layer():
    # A count of 1,000 (1,500 candidates) in batches of 256 over 128 inputs:
    # at 10^4 neurons a build costs less than twice the scoring of a batch,
    # at 670,091 twice the scoring of about a hundred.
    fixed = dict(hash_family="simhash", active_fraction=1000, batch_size=256,
                 selection="lsh")
    floors = {}
    for width in (10_000, 670_091):
        config = _config(128, width, **fixed)
        floor = min_rebuild_interval(config, 128, width, input_nnz=None,
                                     batch_size=256)
        scoring = SIMHASH_BUILD_RATIO * 256 * config["n_candidates"] * 128
        build = build_cost(config, 128, width)
        assert (floor - 1) * scoring < build <= floor * scoring or floor == 1
        floors[width] = floor
        hashing = LayerHashing({**config, "min_rebuild_interval": floor},
                               "topk", 1)
        hashing.schedule(0, "exponential", "auto", 0.1)
        assert hashing.next_rebuild == max(floor, AUTO_REBUILD_INTERVAL)
        hashing.n_rebuilds = 3
        hashing.schedule(200, "exponential", "auto", 0.1)
        assert hashing.next_rebuild == 200 + max(
            floor, round(AUTO_REBUILD_INTERVAL * np.exp(0.3)))
        # A number of batches is kept as given.
        hashing.schedule(200, "fixed", 7, 0.1)
        assert hashing.next_rebuild == 207
    assert floors[10_000] < AUTO_REBUILD_INTERVAL < floors[670_091]
    # A config saved without a floor schedules as before.
    hashing = LayerHashing(_config(128, 10_000, **fixed), "topk", 1)
    hashing.schedule(0, "fixed", "auto", 0.1)
    assert hashing.next_rebuild == AUTO_REBUILD_INTERVAL


def test_fitted_layers_carry_their_rebuild_floor():
    X, y = load_digits(return_X_y=True)
    est = LSHMLPClassifier(hidden_layer_sizes=(3000,), lsh_layers=[0],
                           selection="lsh", hash_family="simhash", max_iter=1,
                           batch_size=50, random_state=0).fit(X, y)
    (hashing,) = est._network.hashed
    # float64 rows: SimHash hashes them row by row over sparse projections.
    floor = min_rebuild_interval(hashing.config, 64, 3000, input_nnz=None,
                                 batch_size=50, float32=False)
    assert hashing.config["min_rebuild_interval"] == floor
    assert hashing.next_rebuild == max(floor, AUTO_REBUILD_INTERVAL)
    # A first partial_fit of fewer rows than a batch prices full batches.
    first = clone(est).partial_fit(X[:10], y[:10], classes=np.arange(10))
    assert first._network.hashed[0].config["min_rebuild_interval"] == floor
    est = clone(est).set_params(rebuild_interval=5).fit(X[:100], y[:100])
    assert est._network.hashed[0].next_rebuild == 5


@pytest.mark.parametrize("family, expected", [("auto", "simhash"), ("dwta", "dwta")])
def test_fitted_hash_family_per_layer(family, expected):
    X, y = load_digits(return_X_y=True)
    # 3,000 neurons over 64 features: SimHash's retrieval costs less than
    # exact scores under 'auto'.
    clf = LSHMLPClassifier(hidden_layer_sizes=(3000, 300), hash_family=family,
                           selection="lsh", lsh_layers=[0], max_iter=1,
                           random_state=0)
    clf.fit(X / 16, y)
    assert clf.hash_family_ == [expected, None, None]
    assert clf._network.layers[0].hashing.functions.family == expected


def test_auto_key_length_sizes_the_buckets():
    # The L buckets a query visits hold about 5x the 75 candidates:
    # 100 x 1000 / 375 = 267 buckets, 3-bit codes: K = 3.
    assert _config(784, 1000)["n_hash_bits"] == 3
    # 1-bit SimHash codes: K = 8.
    assert _config(784, 1000, hash_family="simhash")["n_hash_bits"] == 8


def test_auto_selection_follows_the_cost_model():
    # A layer fed by a hashed 1000-wide layer at 5%: 50 x 1000 multiply-adds,
    # 5% of the dense layer's work: exact.
    assert _config(1000, 1000, input_nnz=50, input_density=0.05)["selection"] == "exact"
    # A dense input (the first layer, or below a dense layer): scoring every
    # neuron is the dense layer's work: tables.
    assert _config(784, 1000, input_nnz=784)["selection"] == "lsh"
    # A wide layer with a small budget over a hashed layer's sparse output:
    # far cheaper through tables.
    assert _config(2000, 500_000, active_fraction=1000, input_nnz=100,
                   input_density=0.05)["selection"] == "lsh"
    # Forced either way.
    assert _config(784, 1000, selection="exact")["selection"] == "exact"
    assert _config(1000, 1000, input_nnz=50, input_density=0.05,
                   selection="lsh")["selection"] == "lsh"


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16, y


def test_estimator_reports_selection_and_recall(digits):
    X, y = digits
    clf = LSHMLPClassifier(hidden_layer_sizes=(512, 512), max_iter=2,
                           random_state=0).fit(X, y)
    assert clf.layer_selection_ == ["lsh", "exact", "dense"]
    assert clf.n_tables_[1] is None and clf.n_hash_bits_[1] is None
    recall = active_set_recall(clf, X)
    assert recall[1] == 1.0 and recall[2] is None
    assert 0.0 < recall[0] < 1.0  # tables find a share of the true top-k
    # The fitted attribute: the same probe over the first training rows.
    assert clf.active_set_recall_ == active_set_recall(clf, X[:256])
    forced = LSHMLPClassifier(hidden_layer_sizes=(512, 512), max_iter=2,
                              random_state=0, selection="exact").fit(X, y)
    assert forced.layer_selection_ == ["exact", "exact", "dense"]
    assert forced.active_set_recall_ == [1.0, 1.0, None]
    dense = LSHMLPRegressor(hidden_layer_sizes=(20,), max_iter=2,
                            random_state=0).fit(X, y)
    assert dense.layer_selection_ == ["dense", "dense"]
    assert dense.active_set_recall_ == [None, None]


def test_recall_probe_runs_on_one_blas_thread(digits, monkeypatch):
    # A threaded product in the probe would leave BLAS's own threads spinning
    # on the cores the next batches of training use.
    from threadpoolctl import threadpool_info

    import sklearn_lsh.inspection as inspection

    X, y = digits
    clf = LSHMLPClassifier(hidden_layer_sizes=(512,), max_iter=1,
                           random_state=0).fit(X, y)
    seen = []
    argpartition = np.argpartition

    def spy(*args, **kwargs):
        seen.extend(i["num_threads"] for i in threadpool_info()
                    if i["user_api"] == "blas")
        return argpartition(*args, **kwargs)

    monkeypatch.setattr(inspection.np, "argpartition", spy)
    active_set_recall(clf, X, max_samples=2)
    assert seen and set(seen) == {1}


def _check_mmap_round_trip(clf, X, y, tmp_path):
    """Saved, loaded read-only: predicts and trains on as the original."""
    import joblib

    joblib.dump(clf, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib", mmap_mode="r")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    clf.partial_fit(X, y)
    loaded.partial_fit(X, y)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_exact_layers_persist_and_continue(digits, tmp_path):
    X, y = digits
    clf = LSHMLPClassifier(hidden_layer_sizes=(300, 300), max_iter=1,
                           random_state=0, selection="exact")
    clf.partial_fit(X, y, classes=np.arange(10))
    _check_mmap_round_trip(clf, X, y, tmp_path)


def test_recall_rejects_bad_max_samples(digits):
    X, y = digits
    clf = LSHMLPClassifier(hidden_layer_sizes=(300,), max_iter=1,
                           random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="max_samples must be an int >= 1; got 0"):
        active_set_recall(clf, X, max_samples=0)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_exact_scores_follow_the_steps(solver):
    """An exact layer over a sparse input scores through a transposed copy of
    its weights, which each step (and the catch-up) keeps equal to them: after
    training steps, the same worker still chooses NumPy's top-k of the
    current weights."""
    sizes = [30, 200, 150, 4]
    specs = make_network(sizes, "relu", "softmax", np.float64, (False, False, False),
                         seed=7)
    _exact(specs[0], 20)
    _exact(specs[1], 15)
    if solver == "sgd":
        for spec in specs:
            spec["moment2_w"] = spec["moment2_b"] = None
    X, Y, _, _ = make_data(40, sizes[0], sizes[-1], "softmax", np.float64, True,
                           seed=8)
    trainer = BatchTrainer(specs, 40, 2, sparse_input=True)
    trainer.set_data(X, Y=Y)
    params = dict(solver=solver, scale=1 / 10, alpha=1e-4, learning_rate=0.05,
                  beta_1=0.9, beta_2=0.999, epsilon=1e-8, momentum=0.9,
                  nesterov=True)
    rng = np.random.RandomState(0)
    for step in range(6):
        rows = rng.choice(40, 10, replace=False).astype(np.intp)
        _BatchTrainer.run(trainer, rows, training=True, seed=step, **params)
        if step == 3:
            trainer.catch_up(**params)
    rows = np.arange(40, dtype=np.intp)
    _BatchTrainer.run(trainer, rows, training=False)
    Xd = X.toarray()
    moved = 0
    for r in range(40):
        # The hidden layer (exact over the CSR row): NumPy's top-k of the
        # weights as they are now.
        W, b = specs[0]["weights"], specs[0]["bias"]
        z = W @ Xd[r] + b
        got = trainer.active_ids[0][r, :trainer.n_active[0][r]]
        np.testing.assert_array_equal(got, _top(z, 20))
        h = np.zeros(sizes[1])
        h[got] = trainer.activations[0][r, :len(got)]
        W, b = specs[1]["weights"], specs[1]["bias"]
        got = trainer.active_ids[1][r, :trainer.n_active[1][r]]
        np.testing.assert_array_equal(got, _top(W @ h + b, 15))
    for spec, first in zip(specs, make_network(sizes, "relu", "softmax", np.float64,
                                               (False, False, False), seed=7)):
        moved += not np.array_equal(spec["weights"], first["weights"])
    assert moved == 3  # the steps did move every layer


# ------------------------------------------------------------------ subspace
def _low_rank(n, n_features, rank, seed, zeros=0.0):
    """Rows near a rank-`rank` subspace; a share `zeros` of entries set to 0."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, rank) @ rng.randn(rank, n_features)
    X += 0.05 * rng.randn(n, n_features)
    X[rng.uniform(size=X.shape) < zeros] = 0.0
    return X


def test_input_subspace_finds_the_principal_directions():
    X = _low_rank(500, 40, 3, seed=0) + 2.0
    center, components, captured = input_subspace(X)
    np.testing.assert_allclose(center, X.mean(axis=0))
    np.testing.assert_allclose(components @ components.T, np.eye(len(components)),
                               atol=1e-10)
    assert captured[2] > 0.99 and captured[1] < 0.99
    assert np.all(np.diff(captured) >= 0) and captured[-1] <= 1 + 1e-12
    # Nothing to estimate from: too few rows, a constant or a sparse input.
    assert input_subspace(X[:SUBSPACE_MIN_ROWS - 1]) is None
    assert input_subspace(np.ones((100, 5))) is None
    assert input_subspace(sp.csr_matrix(X)) is None


def test_auto_selection_scores_in_a_subspace_where_the_variance_lies():
    # 75 candidates over 784 inputs and 1000 neurons: 16 directions cost half
    # the exact ranking of the candidates.
    flat = np.linspace(0.3, 0.95, 64)  # 16 directions hold 0.45 of the variance
    assert _config(784, 1000, captured=flat)["selection"] == "lsh"
    config = _config(784, 1000, captured=np.full(64, 0.7), batch_size=128)
    assert config["selection"] == "subspace" and config["rank"] == 16
    # Refreshing 1000 x 784 x 16 costs half what 7 batches of 128 spend scoring.
    assert config["refresh_interval"] == 7
    # Exact scores first where they are cheap; forced choices stay forced.
    assert _config(1000, 1000, input_nnz=50, input_density=0.05,
                   captured=np.ones(64))["selection"] == "exact"
    assert _config(784, 1000, selection="lsh",
                   captured=np.ones(64))["selection"] == "lsh"
    # Every neuron active: nothing to retrieve or to rank, every neuron
    # computed, as in the dense layer.
    assert _config(784, 1000, active_fraction=1.0,
                   captured=np.ones(64))["selection"] == "exact"
    # Too narrow an input for a direction to pay: 10 features, 10,000 neurons.
    assert _config(10, 10_000, captured=np.ones(9))["selection"] == "lsh"
    # Every neuron scored costs less than the tables' hashing and reads (10
    # features, 500 neurons: 5,000 multiply-adds against about 11,000): exact,
    # although the input is dense.
    exact, lsh = selection_costs(_config(10, 500, selection="lsh"), 10, 500, 10)
    assert exact < lsh
    assert _config(10, 500, captured=np.ones(9))["selection"] == "exact"
    # A named family whose own hashing costs more than exact scores (SimHash
    # over 400 dense features) is used as asked where DWTA's tables pay.
    simhash = _config(400, 1000, hash_family="simhash")
    exact, lsh = selection_costs(simhash, 400, 1000, 400)
    assert lsh > exact and simhash["selection"] == "lsh"
    assert _config(10, 500, hash_family="simhash")["selection"] == "exact"


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_subspace_selection_is_numpy_reference(sparse, dtype):
    """Candidates: the n_candidates largest scores in the subspace; kept: the
    budget largest exact pre-activations among them, over the non-zeros."""
    n, sizes, rank = 40, [60, 300, 5], 4
    specs = make_network(sizes, "relu", "softmax", dtype, (False, False), seed=5)
    X = _low_rank(200, sizes[0], 3, seed=6, zeros=0.3)  # the first n a batch
    config = dict(budget=12, n_candidates=30, min_active=0, rank=rank,
                  selection="subspace", refresh_interval=1)
    hashing = LayerHashing(config, "topk", 1)
    center, components, _ = input_subspace(X)
    hashing.set_subspace(center, components, specs[0]["weights"])
    specs[0]["hashing"] = hashing
    Xin = sp.csr_matrix(X.astype(dtype)) if sparse else X.astype(dtype)
    trainer = BatchTrainer(specs, n, 2, inference_only=True)
    trainer.run(Xin, np.arange(n, dtype=np.intp), training=False)
    W = specs[0]["weights"].astype(np.float64)
    b = specs[0]["bias"].astype(np.float64)
    U = components[:rank].T
    for r in range(n):
        x = X[r].astype(dtype).astype(np.float64)
        score = b + W @ center + (W @ U) @ (U.T @ (x - center))
        candidates = _top(score, 30)
        z = W @ x + b
        expected = np.sort(candidates[_top(z[candidates], 12)])
        got = trainer.active_ids[0][r, :trainer.n_active[0][r]]
        if dtype == np.float64:
            np.testing.assert_array_equal(got, expected)
        else:
            assert len(np.intersect1d(got, expected)) >= 11
        nnz = np.count_nonzero(x)
        assert trainer.macs[0][r] == rank * (sizes[1] + nnz) + 30 * nnz


@pytest.fixture(scope="module")
def low_rank_classes():
    rng = np.random.RandomState(0)
    Z = rng.randn(1200, 4)
    X = Z @ rng.randn(4, 300) + 0.05 * rng.randn(1200, 300)
    y = (Z[:, 0] > 0).astype(int) + 2 * (Z[:, 1] > 0)
    return X, y


def test_estimator_scores_a_low_rank_input_in_its_subspace(low_rank_classes,
                                                           tmp_path):
    X, y = low_rank_classes
    params = dict(hidden_layer_sizes=(600,), max_iter=3, random_state=0)
    clf = LSHMLPClassifier(**params).fit(X, y)
    assert clf.layer_selection_ == ["subspace", "dense"]
    assert clf.n_hash_bits_ == [None, None] and clf.n_tables_ == [None, None]
    assert clf.active_set_recall_[0] >= 0.9
    assert clf.score(X, y) > 0.9
    # The same bits again; tables rather than directions when forced.
    again = LSHMLPClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(again.coefs_[0], clf.coefs_[0])
    forced = LSHMLPClassifier(**params, selection="lsh").fit(X, y)
    assert forced.layer_selection_ == ["lsh", "dense"]
    assert forced.active_set_recall_[0] < clf.active_set_recall_[0]
    _check_mmap_round_trip(clf, X, y, tmp_path)


def test_subspace_refresh_and_early_stopping(low_rank_classes):
    X, y = low_rank_classes
    clf = LSHMLPClassifier(hidden_layer_sizes=(600,), max_iter=6, random_state=0,
                           early_stopping=True, n_iter_no_change=2).fit(X, y)
    network = clf._network
    layer = network.layers[0]
    hashing = layer.hashing
    assert hashing.selection == "subspace"
    # A restored snapshot (early stopping's best) is projected again.
    best = network.snapshot()
    layer.weights += 0.5
    hashing.rebuild(layer.weights, layer.bias, 1)
    network.restore(best)
    np.testing.assert_allclose(hashing.projected, best[0][0] @ hashing.basis,
                               rtol=1e-10)
    np.testing.assert_allclose(hashing.offset, best[0][0] @ hashing.center,
                               rtol=1e-10)
    # A first partial_fit batch too small to estimate directions from: tables.
    small = LSHMLPClassifier(hidden_layer_sizes=(600,), random_state=0)
    small.partial_fit(X[:SUBSPACE_MIN_ROWS - 1], y[:SUBSPACE_MIN_ROWS - 1],
                      classes=np.arange(4))
    assert small.layer_selection_[0] == "lsh"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n", [40, 150])
def test_centered_queries_retrieve_the_buckets_numpy_hashes(dtype, n_threads, n):
    """A SimHash layer over a dense hidden layer hashes [h - m, 1] (m its
    query center) and takes the union of those buckets. (A float32 worker
    hashes a batch's queries 64 slots at a time: 150 is two blocks and part
    of a third.)"""
    sizes = [20, 30, 400]
    specs = make_network(sizes, "relu", "softmax", dtype, (False, False), seed=7)
    config = dict(family="simhash", budget=400, n_candidates=400, n_hash_bits=5,
                  n_tables=6, bin_size=2, key_bits=5, min_active=0,
                  selection="lsh", center_queries=True)
    hashing = LayerHashing(config, "union", 1)
    X, _, _, _ = make_data(n, sizes[0], sizes[-1], "softmax", dtype, False, seed=8)
    W0, b0 = specs[0]["weights"], specs[0]["bias"]
    H_sample = np.maximum(X @ W0.T + b0, 0)
    hashing.rehash(specs[1]["weights"], specs[1]["bias"], 11, 1, inputs=H_sample)
    m = hashing.query_center
    np.testing.assert_allclose(m, H_sample.mean(axis=0), rtol=1e-5)
    assert hashing.functions.n_features == sizes[1] + 1
    specs[1]["hashing"] = hashing
    trainer = BatchTrainer(specs, n, n_threads, inference_only=True)
    trainer.run(X, np.arange(n, dtype=np.intp), training=False)
    H = trainer.activations[0][:n]  # the worker's own hidden outputs
    # The query is made in the network's dtype, then hashed.
    queries = np.hstack([H - m, np.ones((n, 1), dtype=dtype)])
    indptr, ids = hashing.tables.query(hashing.functions.hash(queries),
                                       strategy="union", budget=400)
    plain_indptr, plain_ids = hashing.tables.query(
        hashing.functions.hash(np.hstack([H, np.zeros((n, 1), dtype=dtype)])),
        strategy="union", budget=400)
    differ = 0
    for r in range(n):
        got = trainer.active_ids[1][r, :trainer.n_active[1][r]]
        np.testing.assert_array_equal(got, np.sort(ids[indptr[r]:indptr[r + 1]]))
        differ += not np.array_equal(
            got, np.sort(plain_ids[plain_indptr[r]:plain_indptr[r + 1]]))
    assert differ > n // 2  # the center matters


def test_estimator_centers_simhash_queries_of_a_dense_hidden_layer():
    """The output layer's query center is the mean hidden output of the batch
    before the last rebuild, and its tables hold [w - c, (w - c) . m + b]."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16, y[:200]
    # A step too small to move the weights: the hidden outputs the rebuild
    # saw are those of the fitted weights.
    clf = LSHMLPClassifier(hidden_layer_sizes=(40,), lsh_layers=[1],
                           selection="lsh", hash_family="simhash",
                           active_fraction=0.5,
                           batch_size=200, rebuild_interval=1,
                           learning_rate_init=1e-10, random_state=0, n_jobs=1)
    clf.partial_fit(X, y, classes=np.arange(10))
    layer = clf._network.layers[1]
    hashing = layer.hashing
    assert hashing.center_queries and hashing.n_rebuilds == 1
    hidden = np.maximum(X @ clf.coefs_[0] + clf.intercepts_[0], 0)
    np.testing.assert_allclose(hashing.query_center, hidden.mean(axis=0),
                               rtol=1e-6)
    W = layer.weights.astype(np.float64)
    c, m = W.mean(axis=0), hashing.query_center
    rows = np.hstack([W - c, ((W - c) @ m + layer.bias)[:, None]])
    assert_tables_hold(hashing.tables, hashing.functions.hash(rows))
    # Not for a layer over a hashed (sparse) input, nor for DWTA.
    for params in (dict(lsh_layers=[0, 1]), dict(hash_family="dwta")):
        other = clone(clf).set_params(**params).partial_fit(
            X, y, classes=np.arange(10))
        assert not other._network.layers[1].hashing.center_queries
        assert other._network.layers[1].hashing.query_center is None
