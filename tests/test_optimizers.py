"""Row optimizer steps against scikit-learn's dense optimizers."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
from sklearn_lsh._optimizers import _adam_rows, _sgd_rows, catch_up_tables

from sklearn_lsh import LSHMLPRegressor


def _adam(W, m, v, t):
    """scikit-learn's Adam at step t - 1 with these moments."""
    opt = AdamOptimizer([W.copy()], learning_rate_init=0.01)
    opt.ms, opt.vs, opt.t = [m.copy()], [v.copy()], t - 1
    return opt


def _state(shape, dtype, seed=0):
    rng = np.random.RandomState(seed)
    W = rng.normal(size=shape).astype(dtype)
    grad = rng.normal(size=shape).astype(dtype)
    m = (rng.normal(size=shape) * 0.1).astype(dtype)
    v = (rng.uniform(size=shape) * 0.1).astype(dtype)
    return W, grad, m, v


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_rows_equal_dense_adam_on_those_rows(dtype):
    W, grad, m, v = _state((8, 5), dtype)
    t = 3
    alpha, n = 0.01, 4.0
    dense = _adam(W, m, v, t)
    dense_W = [W.copy()]
    dense.update_params(dense_W, [(grad + alpha * W) / n])
    rows = np.array([1, 4, 6], dtype=np.int64)
    W2, m2, v2, g2 = W.copy(), m.copy(), v.copy(), grad.copy()
    _adam_rows(W2, m2, v2, g2, rows, t, 0, 1 / n, alpha, 0.01, 0.9, 0.999, 1e-8)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(W2[rows], dense_W[0][rows], rtol=tol)
    np.testing.assert_allclose(m2[rows], dense.ms[0][rows], rtol=tol)
    np.testing.assert_allclose(v2[rows], dense.vs[0][rows], rtol=tol)
    others = np.setdiff1d(np.arange(8), rows)
    assert np.array_equal(W2[others], W[others])
    assert np.all(g2[rows] == 0)  # the kernel hands back a zeroed gradient row
    # Restricted to some entries of the rows: those equal dense Adam, the
    # others are left alone.
    cols = np.array([0, 3], dtype=np.int32)
    W3, m3, v3, g3 = W.copy(), m.copy(), v.copy(), grad.copy()
    _adam_rows(W3, m3, v3, g3, rows, t, 0, 1 / n, alpha, 0.01, 0.9, 0.999, 1e-8,
               cols=cols)
    np.testing.assert_allclose(W3[np.ix_(rows, cols)], dense_W[0][np.ix_(rows, cols)],
                               rtol=tol)
    rest = np.setdiff1d(np.arange(5), cols)
    assert np.array_equal(W3[np.ix_(rows, rest)], W[np.ix_(rows, rest)])
    assert np.array_equal(m3[np.ix_(rows, rest)], m[np.ix_(rows, rest)])


@pytest.mark.parametrize("base", [0, 5000])
def test_adam_catch_up_follows_dense_adam_through_skipped_steps(base):
    """A row skipped for some steps, then stepped, lands where dense Adam
    (zero gradients meanwhile, no L2) puts it; its moments too."""
    W, grad, m, v = _state((6, 5), np.float64, seed=1)
    last = np.array([9, 5, 0, 8, 2, 9], dtype=np.int32)  # rows' last steps
    step = 10
    rows = np.arange(6, dtype=np.int64)
    W2, m2, v2 = W.copy(), m.copy(), v.copy()
    _adam_rows(W2, m2, v2, grad.copy(), rows, step, base, 0.5, 0.0, 0.01, 0.9,
               0.999, 1e-8, row_last=last)
    # Without the catch-up, skipped rows lag: the comparison can tell.
    W3 = W.copy()
    _adam_rows(W3, m.copy(), v.copy(), grad.copy(), rows, step, base, 0.5, 0.0,
               0.01, 0.9, 0.999, 1e-8, row_last=last, catch_up=False)
    for r in rows:
        dense = _adam(W[r:r + 1], m[r:r + 1], v[r:r + 1], base + last[r] + 1)
        Wr = [W[r:r + 1].copy()]
        for _ in range(step - last[r] - 1):
            dense.update_params(Wr, [np.zeros((1, 5))])
        dense.update_params(Wr, [0.5 * grad[r:r + 1]])
        # Exact but for the bias correction held at one of the skipped steps:
        # it changes fastest at the start of training.
        moved = Wr[0][0] - W[r]
        tol = (1e-4 if base else 0.2) * np.abs(moved).max()
        np.testing.assert_allclose(W2[r] - W[r], moved, rtol=0, atol=tol)
        np.testing.assert_allclose(m2[r], dense.ms[0][0], rtol=1e-12)
        np.testing.assert_allclose(v2[r], dense.vs[0][0], rtol=1e-12)
        if last[r] < step - 1:
            assert np.abs(W3[r] - Wr[0][0]).max() > tol
        else:
            assert np.array_equal(W3[r], W2[r])


@pytest.mark.parametrize("offset", [0, 2**16 - 4, 3 * 2**16 - 6])
def test_adam_catch_up_of_entries_and_flush(offset):
    """Each entry's own last step; a flush takes the skipped steps only.

    The worker's steps are ``offset`` later and the global steps the same:
    stamps kept modulo 2**16 give the same lags across a wrap (``offset`` 2**16
    - 4: the step is 3 past it, some entries' last steps before it).
    """
    W, grad, m, v = _state((3, 4), np.float64, seed=2)
    base, step = 4000, 7
    last = np.array([[6, 3, 0, 6], [1, 1, 5, 2], [6, 6, 6, 6]], dtype=np.int32)
    stamps = ((last + offset) % 2**16).astype(np.uint16)
    rows = np.arange(3, dtype=np.int64)
    cols = np.array([1, 2], dtype=np.int32)
    W2, m2, v2, last2 = W.copy(), m.copy(), v.copy(), stamps.copy()
    _adam_rows(W2, m2, v2, grad.copy(), rows, step + offset, base - offset, 1.0,
               0.0, 0.01, 0.9, 0.999, 1e-8, last=last2, cols=cols)
    # Stepped entries are stamped; the others keep their values and steps.
    assert np.all(last2[:, cols] == (step + offset) % 2**16)
    rest = [0, 3]
    assert np.array_equal(last2[:, rest], stamps[:, rest])
    assert np.array_equal(W2[:, rest], W[:, rest])
    for r in rows:
        for j in cols:
            dense = _adam(W[r:r + 1, j:j + 1], m[r:r + 1, j:j + 1],
                          v[r:r + 1, j:j + 1], base + last[r, j] + 1)
            w = [W[r:r + 1, j:j + 1].copy()]
            for _ in range(step - last[r, j] - 1):
                dense.update_params(w, [np.zeros((1, 1))])
            dense.update_params(w, [grad[r:r + 1, j:j + 1]])
            np.testing.assert_allclose(W2[r, j] - W[r, j], w[0][0, 0] - W[r, j],
                                       rtol=1e-4)
    # The flush brings every entry to the end of `step` without a gradient.
    W4, m4, v4, last4 = W2.copy(), m2.copy(), v2.copy(), last2.copy()
    _adam_rows(W4, m4, v4, np.zeros_like(W), rows, step + offset, base - offset,
               1.0, 0.0, 0.01, 0.9, 0.999, 1e-8, last=last4, flush=True)
    assert np.all(last4 == (step + offset) % 2**16)
    assert np.array_equal(W4[:, cols], W2[:, cols])  # already there
    for r in rows:
        for j in rest:
            dense = _adam(W[r:r + 1, j:j + 1], m[r:r + 1, j:j + 1],
                          v[r:r + 1, j:j + 1], base + last[r, j] + 1)
            w = [W[r:r + 1, j:j + 1].copy()]
            for _ in range(step - last[r, j]):
                dense.update_params(w, [np.zeros((1, 1))])
            np.testing.assert_allclose(W4[r, j] - W[r, j], w[0][0, 0] - W[r, j],
                                       rtol=1e-4, atol=1e-15)
            np.testing.assert_allclose(m4[r, j], dense.ms[0][0, 0], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_row_step_has_the_bits_of_numpy_in_the_rows_precision(dtype):
    # 37 entries: vector loops and their tails. Whole rows go through the
    # compiled row kernel (baseline or AVX2 copy), entries through the scalar
    # path; both are element-wise IEEE operations, so both equal NumPy's.
    W, grad, m, v = _state((6, 37), dtype, seed=3)
    t, scale, alpha, lr, beta_1, beta_2, eps = 5, 1 / 128, 1e-4, 1e-3, 0.9, 0.999, 1e-8
    g = dtype(scale) * (grad + dtype(alpha) * W)
    m_ref = beta_1 * m + (1 - beta_1) * g
    v_ref = beta_2 * v + (1 - beta_2) * (g * g)
    step_lr = lr * (1 - beta_2 ** t) ** 0.5 / (1 - beta_1 ** t)  # a Python float
    W_ref = W - step_lr * m_ref / (np.sqrt(v_ref) + eps)
    assert W_ref.dtype == dtype
    rows = np.arange(6, dtype=np.int64)
    for cols in (None, np.arange(37, dtype=np.int32)):
        W2, m2, v2, g2 = W.copy(), m.copy(), v.copy(), grad.copy()
        _adam_rows(W2, m2, v2, g2, rows, t, 0, scale, alpha, lr, beta_1, beta_2,
                   eps, cols=cols, catch_up=False)
        np.testing.assert_array_equal(m2, m_ref)
        np.testing.assert_array_equal(v2, v_ref)
        np.testing.assert_array_equal(W2, W_ref)
        assert not g2.any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_step_of_a_skipped_row_is_its_catch_up_then_its_step(dtype):
    # A row that skipped steps takes their moves and its step in one pass:
    # the bits of a catch-up to the step before, then the step.
    W, grad, m, v = _state((5, 37), dtype, seed=4)
    rows = np.arange(5, dtype=np.int64)
    row_last = np.array([2, 5, 9, 11, 11], dtype=np.int32)
    step, hyper = 12, (0, 1 / 64, 1e-4, 1e-3, 0.9, 0.999, 1e-8)
    one = [a.copy() for a in (W, m, v, grad)]
    _adam_rows(*one, rows, step, *hyper, row_last=row_last)
    two = [a.copy() for a in (W, m, v, grad)]
    _adam_rows(*two, rows, step - 1, *hyper, row_last=row_last, flush=True)
    _adam_rows(*two, rows, step, *hyper)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(one[0], W)


@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_rows_equal_dense_sgd_on_those_rows(nesterov):
    rng = np.random.RandomState(1)
    W = rng.normal(size=(6, 4))
    grad = rng.normal(size=(6, 4))
    vel = rng.normal(size=(6, 4)) * 0.1
    dense = SGDOptimizer([W.copy()], learning_rate_init=0.05, momentum=0.9,
                         nesterov=nesterov)
    dense.velocities = [vel.copy()]
    dense_W = [W.copy()]
    dense.update_params(dense_W, [(grad + 0.1 * W) / 2.0])
    rows = np.array([0, 5], dtype=np.int64)
    W2, vel2 = W.copy(), vel.copy()
    _sgd_rows(W2, vel2, grad.copy(), rows, 0.5, 0.1, 0.05, 0.9, nesterov)
    np.testing.assert_allclose(W2[rows], dense_W[0][rows], rtol=1e-12)
    np.testing.assert_allclose(vel2[rows], dense.velocities[0][rows], rtol=1e-12)
    assert np.array_equal(W2[1:5], W[1:5])


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("flush", [False, True])
def test_sgd_catch_up_is_exact(nesterov, flush):
    rng = np.random.RandomState(2)
    W, grad, vel = (rng.normal(size=(4, 3)) for _ in range(3))
    last = np.array([8, 3, 0, 7], dtype=np.int32)
    step = 9
    rows = np.arange(4, dtype=np.int64)
    W2, vel2 = W.copy(), vel.copy()
    _sgd_rows(W2, vel2, grad.copy(), rows, 1.0, 0.0, 0.05, 0.9, nesterov,
              step=step, row_last=last, flush=flush)
    for r in rows:
        dense = SGDOptimizer([W[r:r + 1]], learning_rate_init=0.05, momentum=0.9,
                             nesterov=nesterov)
        dense.velocities = [vel[r:r + 1].copy()]
        w = [W[r:r + 1].copy()]
        n_skipped = step - last[r] - (0 if flush else 1)
        for _ in range(n_skipped):
            dense.update_params(w, [np.zeros((1, 3))])
        if not flush:
            dense.update_params(w, [grad[r:r + 1]])
        np.testing.assert_allclose(W2[r], w[0][0], rtol=1e-12)
        np.testing.assert_allclose(vel2[r], dense.velocities[0][0], rtol=1e-12,
                                   atol=1e-300)


def test_catch_up_tables():
    tables = catch_up_tables("adam", 0.9, 0.999, length=50)
    r = 0.9 / np.sqrt(0.999)
    np.testing.assert_allclose(tables["shift"][3], r + r ** 2 + r ** 3)
    np.testing.assert_allclose(tables["decay_2"][7], 0.999 ** 7)
    np.testing.assert_allclose(tables["bias"][10],
                               np.sqrt(1 - 0.999 ** 10) / (1 - 0.9 ** 10))
    sgd = catch_up_tables("sgd", momentum=0.5, nesterov=True, length=5)
    np.testing.assert_allclose(sgd["shift"][2], 0.5 * (0.5 + 0.25))
    # No closed form (moves grow until epsilon stops them), nothing to do.
    assert catch_up_tables("adam", 0.99, 0.9) is None
    assert catch_up_tables("adam", 0.0, 0.0) is None
    assert np.all(catch_up_tables("adam", 0.0, 0.5)["shift"] == 0)
    assert catch_up_tables("sgd", momentum=0.0) is None


def test_weights_lagging_2_16_steps_are_caught_up_in_time():
    """Stamps count steps modulo 2**16: a weight whose input is seen at the
    first step and again 65,526 steps later (one call of batch size 1) takes
    the same steps as when a second call splits that lag (each call ends
    with every weight caught up, so neither lags 2**16). Without the worker's
    catch-up every STAMP_PERIOD steps, the lag reads as 90 steps (0.026 off)."""
    n = 2**16 + 100
    rows = np.r_[np.arange(n), 0, n - 10]
    cols = np.r_[np.zeros(n, dtype=int), 1, 1]  # feature 1 in two rows only
    X = sp.csr_matrix((np.ones(n + 2), (rows, cols)), shape=(n, 2))
    y = np.random.RandomState(0).normal(size=n) * 0.1
    y[n - 10] = 3.0
    params = dict(hidden_layer_sizes=(3,), batch_size=1, shuffle=False, alpha=0.0,
                  active_fraction=1.0, random_state=0)
    one = LSHMLPRegressor(**params).partial_fit(X, y)
    two = LSHMLPRegressor(**params).partial_fit(X[:40_000], y[:40_000])
    two.partial_fit(X[40_000:], y[40_000:])
    for got, expected in zip(one.coefs_, two.coefs_):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
