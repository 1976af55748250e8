"""The Cython training core against a plain NumPy network."""

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn_lsh._hashing import HashFunctions
from sklearn_lsh._network import BatchTrainer as _BatchTrainer
from sklearn_lsh._tables import HashTables

HIDDEN = ("relu", "tanh", "logistic", "identity")
OUTPUTS = ("softmax", "logistic", "identity", "exp")


def _act(name, z):
    if name == "relu":
        return np.maximum(z, 0)
    if name == "tanh":
        return np.tanh(z)
    if name == "logistic":
        return 1 / (1 + np.exp(-z))
    if name == "exp":
        return np.exp(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return z


def _derivative(name, a):
    return {"relu": (a > 0).astype(a.dtype), "tanh": 1 - a**2,
            "logistic": a * (1 - a), "identity": np.ones_like(a)}[name]


def reference(X, Y, weights, biases, hidden, output, sw, alpha):
    """Dense forward/backward: activations, per-sample loss and gradients.

    weights[l] is (n_out, n_in); gradients are scaled by 1 / sum(sw) and carry
    the L2 term, as MLPClassifier's.
    """
    X = X.toarray() if sp.issparse(X) else X
    acts = [X]
    for i, (W, b) in enumerate(zip(weights, biases)):
        name = output if i == len(weights) - 1 else hidden
        acts.append(_act(name, acts[-1] @ W.T + b))
    p = acts[-1]
    eps = np.finfo(p.dtype).eps
    if output == "softmax":
        loss = -(Y * np.log(np.clip(p, eps, 1 - eps))).sum(axis=1)
    elif output == "logistic":
        q = np.clip(p, eps, 1 - eps)
        loss = -(Y * np.log(q) + (1 - Y) * np.log(1 - q)).sum(axis=1)
    elif output == "exp":
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = (p - Y + np.where(Y > 0, Y * np.log(Y / p), 0)).sum(axis=1)
    else:
        loss = 0.5 * ((p - Y) ** 2).sum(axis=1) / Y.shape[1]
    scale = 1 / sw.sum()
    delta = (p - Y) * sw[:, None]
    grads_w, grads_b = [None] * len(weights), [None] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        grads_w[i] = scale * (delta.T @ acts[i] + alpha * weights[i])
        grads_b[i] = scale * delta.sum(axis=0)
        if i > 0:
            delta = (delta @ weights[i]) * _derivative(hidden, acts[i])
    return acts[1:], loss * sw, grads_w, grads_b


class Spec(dict):
    """A layer as BatchTrainer reads it (attributes), edited as a dict."""

    def __getattr__(self, name):
        if name == "hashing":
            if "hashing" in self:
                return self["hashing"]  # a LayerHashing
            selection = self.get("selection", "lsh")
            if self.get("tables") is None and selection != "exact":
                return None
            return SimpleNamespace(
                selection=selection, functions=self.get("hash_functions"),
                tables=self.get("tables"),
                budget=self["budget"],
                n_candidates=self.get("n_candidates", self["budget"]),
                min_active=self["min_active"], strategy=self["strategy"],
                min_count=self["min_count"])
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class BatchTrainer(_BatchTrainer):
    """The worker, with ``run`` taking the batch's data as it used to."""

    def __init__(self, specs, batch_size, n_threads, **kwargs):
        max_labels = max(spec.get("extra_width", 0) for spec in specs)
        super().__init__(specs, batch_size, n_threads, max_labels=max_labels,
                         **kwargs)

    def run(self, X, rows, Y=None, label_indptr=None, label_ids=None,
            sample_weight=None, **kwargs):
        self.set_data(X, Y=Y, label_indptr=label_indptr, label_ids=label_ids,
                      sample_weight=sample_weight)
        return super().run(rows, **kwargs)


def make_network(sizes, hidden, output, dtype, hashed, seed=0):
    """Layer specs over random weights; hashed layers keep every neuron active."""
    rng = np.random.RandomState(seed)
    specs = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = rng.uniform(-0.5, 0.5, (n_out, n_in)).astype(dtype)
        spec = Spec({
            "weights": W,
            "bias": rng.uniform(-0.5, 0.5, n_out).astype(dtype),
            "activation": output if i == len(sizes) - 2 else hidden,
            "moment1_w": np.zeros_like(W),
            "moment2_w": np.zeros_like(W),
            "moment1_b": np.zeros(n_out, dtype),
            "moment2_b": np.zeros(n_out, dtype),
        })
        if hashed[i]:
            hf = HashFunctions("dwta", 2, 4, n_in, bin_size=2, seed=i)
            tables = HashTables(4, hf.n_buckets, n_out, seed=i)
            tables.build_from_rows(hf, W)
            # Budget and minimum of the whole layer: all neurons active.
            spec.update(hash_functions=hf, tables=tables, budget=n_out,
                        min_active=n_out, strategy="union", min_count=1,
                        extra_width=2)
        specs.append(spec)
    return specs


def assert_tables_hold(tables, keys):
    """Every bucket of every table holds the items whose key it is."""
    for t in range(tables.n_tables):
        for b in np.unique(keys[:, t]):
            np.testing.assert_array_equal(
                np.sort(tables.bucket(t, b)), np.flatnonzero(keys[:, t] == b))


def make_data(n, n_features, n_outputs, output, dtype, sparse, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, (n, n_features))
    X[rng.rand(n, n_features) < 0.5] = 0
    X = X.astype(dtype)
    if output == "softmax":
        labels = rng.randint(n_outputs, size=n)
        Y = np.eye(n_outputs, dtype=dtype)[labels]
    elif output == "logistic":
        Y = (rng.rand(n, n_outputs) < 0.3).astype(dtype)
    elif output == "exp":
        Y = rng.poisson(1.0, (n, n_outputs)).astype(dtype)
    else:
        Y = rng.normal(size=(n, n_outputs)).astype(dtype)
    Xc = sp.csr_matrix(X) if sparse else X
    if sparse:
        Xc.indices = Xc.indices.astype(np.int32)
        Xc.indptr = Xc.indptr.astype(np.int64)
    Ys = sp.csr_matrix(Y)
    Ys.sort_indices()
    return Xc, Y, Ys.indptr.astype(np.int64), Ys.indices.astype(np.int32)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    "output, hashed",
    [(output, hashed) for output in OUTPUTS
     for hashed in [(False, False, False), (True, True, False), (True, True, True)]
     # Only classification outputs hash: their targets are label lists.
     if output in ("softmax", "logistic") or not hashed[-1]],
)
def test_all_active_equals_dense(dtype, rtol, hidden, output, sparse, hashed):
    # A dense first layer over a sparse X is checked stored both ways: by
    # neuron, and by input (as the estimators store it for a sparse X).
    by_input = [False, True] if sparse and not hashed[0] else [False]
    for first_by_input in by_input:
        _check_all_active_equals_dense(dtype, rtol, hidden, output, sparse, hashed,
                                       first_by_input)


def store_by_input(spec):
    """Store a layer spec's weights and moments by input (Fortran order)."""
    for name in ("weights", "moment1_w", "moment2_w"):
        spec[name] = np.asfortranarray(spec[name])


def _check_all_active_equals_dense(dtype, rtol, hidden, output, sparse, hashed,
                                   first_by_input):
    sizes = [12, 9, 7, 4]
    specs = make_network(sizes, hidden, output, dtype, hashed)
    if first_by_input:
        store_by_input(specs[0])
    X, Y, label_indptr, label_ids = make_data(10, sizes[0], sizes[-1], output,
                                              dtype, sparse)
    sw = np.linspace(0.5, 2.0, X.shape[0]).astype(dtype)
    alpha = 0.3
    weights = [s["weights"].copy() for s in specs]
    biases = [s["bias"].copy() for s in specs]
    acts, loss, gw, gb = reference(X, Y, weights, biases, hidden, output, sw, alpha)

    trainer = BatchTrainer(specs, X.shape[0], 2, sparse_input=sparse)
    rows = np.arange(X.shape[0], dtype=np.intp)
    sample_loss, _ = trainer.run(
        X, rows, Y=np.ascontiguousarray(Y), label_indptr=label_indptr,
        label_ids=label_ids, sample_weight=sw, solver="gradient",
        scale=1 / float(sw.sum()), alpha=alpha)
    for i, spec in enumerate(specs):
        # Every neuron is active, in ascending order.
        assert np.all(trainer.n_active[i] == sizes[i + 1])
        if hashed[i]:
            assert np.array_equal(trainer.active_ids[i][:, : sizes[i + 1]],
                                  np.tile(np.arange(sizes[i + 1]), (X.shape[0], 1)))
        np.testing.assert_allclose(trainer.activations[i][:, : sizes[i + 1]],
                                   acts[i], rtol=rtol, atol=rtol)
        # An input layer fed sparse rows steps only the entries of the inputs
        # it saw (lazy, as SparseAdam): the others get no L2 step either.
        seen = np.ones(sizes[i], dtype=bool)
        if i == 0 and sparse:
            seen = np.asarray((X != 0).sum(axis=0)).ravel() > 0
        np.testing.assert_allclose(spec["moment1_w"][:, seen], gw[i][:, seen],
                                   rtol=rtol, atol=rtol * np.abs(gw[i]).max())
        assert np.all(spec["moment1_w"][:, ~seen] == 0)
        np.testing.assert_allclose(spec["moment1_b"], gb[i], rtol=rtol,
                                   atol=rtol * np.abs(gb[i]).max())
        # The gradient mode leaves the weights alone.
        assert np.array_equal(spec["weights"], weights[i])
    np.testing.assert_allclose(sample_loss, loss, rtol=max(rtol, 1e-12) * 10)


def test_finite_differences_with_fixed_active_sets():
    """Gradients of the loss over the active sets, where sets are partial."""
    dtype = np.float64
    sizes = [10, 16, 12, 6]
    specs = make_network(sizes, "tanh", "softmax", dtype, (True, True, True), seed=3)
    for spec, budget in zip(specs, (6, 5, 3)):
        spec.update(budget=budget, min_active=2)
    X, Y, label_indptr, label_ids = make_data(5, sizes[0], sizes[-1], "softmax",
                                              dtype, False, seed=4)
    rows = np.arange(X.shape[0], dtype=np.intp)
    alpha = 0.1
    scale = 1 / X.shape[0]
    trainer = BatchTrainer(specs, X.shape[0], 1)

    def loss_and_sets():
        sample_loss, _ = trainer.run(X, rows, label_indptr=label_indptr,
                                     label_ids=label_ids, solver="gradient",
                                     scale=scale, alpha=alpha, seed=7)
        sets = [(ids.copy(), n.copy()) for ids, n in
                zip(trainer.active_ids, trainer.n_active)]
        l2 = sum(float((s["weights"] ** 2).sum()) for s in specs)
        return sample_loss.sum() * scale + 0.5 * alpha * l2 * scale, sets

    _, sets = loss_and_sets()
    # The sets are partial: hashing retrieved a subset of each layer.
    assert all(n.max() < size for (_, n), size in zip(sets, sizes[1:]))
    grads = [s["moment1_w"].copy() for s in specs]
    rng = np.random.RandomState(0)
    h = 1e-6
    checked = 0
    for layer, spec in enumerate(specs):
        W = spec["weights"]
        touched = np.unique(np.concatenate(
            [sets[layer][0][r, : sets[layer][1][r]] for r in range(X.shape[0])]))
        for _ in range(6):
            k = rng.choice(touched)
            if layer == 0:
                j = rng.randint(W.shape[1])
            else:
                # Entries of the inputs that k saw: the others are not stepped.
                ids, n = sets[layer - 1]
                rows_k = [r for r in range(X.shape[0])
                          if k in sets[layer][0][r, : sets[layer][1][r]]]
                j = rng.choice(np.concatenate([ids[r, : n[r]] for r in rows_k]))
            old = W[k, j]
            W[k, j] = old + h
            up, sets_up = loss_and_sets()
            W[k, j] = old - h
            down, sets_down = loss_and_sets()
            W[k, j] = old
            same = all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
                       for a, b in zip(sets_up, sets_down))
            if not same:
                continue  # the perturbation moved a hash key: not this element
            numeric = (up - down) / (2 * h)
            np.testing.assert_allclose(grads[layer][k, j], numeric, rtol=1e-5,
                                       atol=1e-8)
            checked += 1
    assert checked >= 12


def test_adam_step_touches_only_active_rows():
    """One batch step through a hashed layer leaves untouched neurons alone."""
    dtype = np.float64
    sizes = [10, 40, 5]
    specs = make_network(sizes, "relu", "softmax", dtype, (True, False))
    specs[0].update(budget=6, min_active=0)
    X, Y, _, _ = make_data(4, sizes[0], sizes[-1], "softmax", dtype, False)
    before = specs[0]["weights"].copy()
    trainer = BatchTrainer(specs, 4, 2)
    trainer.run(X, np.arange(4, dtype=np.intp), Y=Y, solver="adam",
                scale=0.25, learning_rate=0.01)
    touched = np.unique(np.concatenate(
        [trainer.active_ids[0][r, : trainer.n_active[0][r]] for r in range(4)]))
    changed = np.flatnonzero(np.any(specs[0]["weights"] != before, axis=1))
    assert 0 < len(touched) < sizes[1]
    assert set(changed) <= set(touched)
    np.testing.assert_array_equal(trainer.last_steps[0][touched], 1)
    untouched = np.setdiff1d(np.arange(sizes[1]), touched)
    np.testing.assert_array_equal(trainer.last_steps[0][untouched], 0)


def test_catch_up_of_chosen_layers():
    """catch_up(layers) moves those layers' skipped weights exactly as a full
    catch-up does and leaves the others for later: caught up afterwards, the
    network equals one caught up at once."""
    dtype = np.float64
    sizes = [10, 40, 30, 5]
    params = dict(solver="adam", scale=0.25, learning_rate=0.01, beta_1=0.9,
                  beta_2=0.999, epsilon=1e-8)
    nets = []
    for _ in range(2):
        specs = make_network(sizes, "relu", "softmax", dtype, (True, True, False))
        specs[0].update(budget=6, min_active=0)
        specs[1].update(budget=5, min_active=0)
        X, Y, _, _ = make_data(12, sizes[0], sizes[-1], "softmax", dtype, False)
        trainer = BatchTrainer(specs, 4, 2)
        for step in range(3):
            trainer.run(X, np.arange(4 * step, 4 * step + 4, dtype=np.intp), Y=Y,
                        seed=step, **params)
        nets.append((specs, trainer))
    (partial, partial_trainer), (full, full_trainer) = nets
    before = [spec["weights"].copy() for spec in partial]
    partial_trainer.catch_up([1], **params)
    full_trainer.catch_up(**params)
    for i in (0, 2):
        np.testing.assert_array_equal(partial[i]["weights"], before[i])
    assert not np.array_equal(partial[1]["weights"], before[1])
    np.testing.assert_array_equal(partial[1]["weights"], full[1]["weights"])
    np.testing.assert_array_equal(partial[1]["moment1_w"], full[1]["moment1_w"])
    assert not np.array_equal(partial[0]["weights"], full[0]["weights"])
    partial_trainer.catch_up(**params)
    for a, b in zip(partial, full):
        for name in ("weights", "bias", "moment1_w", "moment2_w"):
            np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_first_layer_stored_by_input_trains_as_stored_by_neuron(solver, n_threads):
    """Steps, lazy catch-up, dropped rows (weight 0) and a dense X given to a
    worker built for a sparse one: a first layer stored by input moves as the
    same layer stored by neuron, and takes the same bits for any thread count
    (checked against one thread)."""
    dtype = np.float64
    sizes = [30, 8, 5]
    X_dense, Y, _, _ = make_data(40, sizes[0], sizes[-1], "softmax", dtype, False,
                                 seed=5)
    # Sparser than make_data's half: inputs skip steps and catch up.
    X_dense[np.random.RandomState(6).rand(*X_dense.shape) < 0.7] = 0
    X = sp.csr_matrix(X_dense)
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int64)
    sw = np.ones(X.shape[0])
    sw[::7] = 0
    params = dict(solver=solver, scale=1 / 6, learning_rate=0.05, alpha=0.01,
                  beta_1=0.9, beta_2=0.999, epsilon=1e-8, momentum=0.9,
                  nesterov=True)
    batches = np.random.RandomState(7).permutation(40)[:36].reshape(6, 6)
    nets = {}
    for by_input, threads in ((False, 1), (True, 1), (True, n_threads)):
        specs = make_network(sizes, "relu", "softmax", dtype, (False, False), seed=2)
        if by_input:
            store_by_input(specs[0])
        trainer = BatchTrainer(specs, 6, threads, sparse_input=True)
        for step, rows in enumerate(batches):
            # A dense X for one batch: every input of the first layer steps.
            data = X_dense if step == 3 else X
            trainer.run(data, rows.astype(np.intp), Y=Y, sample_weight=sw, **params)
        trainer.catch_up(**params)
        nets[by_input, threads] = specs
    assert np.isfortran(nets[True, 1][0]["weights"])
    for name in ("weights", "bias", "moment1_w", "moment2_w", "moment1_b"):
        for i in range(2):
            np.testing.assert_allclose(nets[True, 1][i][name], nets[False, 1][i][name],
                                       rtol=1e-10, atol=1e-13)
            np.testing.assert_array_equal(nets[True, n_threads][i][name],
                                          nets[True, 1][i][name])
    # Inputs skipped steps and caught up: no sparse batch's kept rows hold them all.
    for step, rows in enumerate(batches):
        kept = rows[sw[rows] > 0]
        assert step == 3 or (X_dense[kept] != 0).any(axis=0).sum() < sizes[0]


def test_first_layer_stored_by_input_serves_dense_inference():
    """A worker for inference over a dense X reads a first layer stored by
    input (one matrix product) as it reads one stored by neuron."""
    dtype = np.float32
    sizes = [12, 9, 4]
    X, Y, _, _ = make_data(10, sizes[0], sizes[-1], "softmax", dtype, False)
    acts = []
    for by_input in (False, True):
        specs = make_network(sizes, "relu", "softmax", dtype, (False, False))
        if by_input:
            store_by_input(specs[0])
        trainer = BatchTrainer(specs, 10, 2, inference_only=True)
        trainer.run(X, np.arange(10, dtype=np.intp), training=False)
        acts.append([a.copy() for a in trainer.activations])
    for a, b in zip(*acts):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Training on a dense X needs the first layer stored by neuron.
    specs = make_network(sizes, "relu", "softmax", dtype, (False, False))
    store_by_input(specs[0])
    with pytest.raises(ValueError, match="stored by input"):
        BatchTrainer(specs, 10, 1, sparse_input=False)


def test_refused_batch_takes_no_step():
    dtype = np.float64
    sizes = [10, 40, 5]
    specs = make_network(sizes, "relu", "softmax", dtype, (True, False))
    X, Y, _, _ = make_data(4, sizes[0], sizes[-1], "softmax", dtype, False)
    trainer = BatchTrainer(specs, 4, 1, step_base=7)
    rows = np.arange(4, dtype=np.intp)
    trainer.run(X, rows, Y=Y, solver="adam")
    assert trainer.step == 1
    with pytest.raises(ValueError, match="X must be a C-contiguous float64"):
        trainer.run(X.astype(np.float32), rows, Y=Y, solver="adam")
    with pytest.raises(ValueError, match="built for dense X"):
        trainer.run(sp.csr_matrix(X), rows, Y=Y, solver="adam")
    assert trainer.step == 1
    trainer.run(X, rows, Y=Y, solver="adam")
    assert trainer.step == 2 and trainer.step_base == 7


@pytest.mark.parametrize("dtype, target, finite_loss", [
    # float64: the loss itself overflows.
    (np.float64, 1e200, False),
    # float32: the float64 loss is finite, but a gradient's square (Adam's
    # second moment) would overflow float32.
    (np.float32, 1e30, True)])
def test_diverged_batch_takes_no_step(dtype, target, finite_loss):
    sizes = [10, 40, 3]
    specs = make_network(sizes, "relu", "identity", dtype, (True, False))
    X, Y, _, _ = make_data(4, sizes[0], sizes[-1], "identity", dtype, False)
    rows = np.arange(4, dtype=np.intp)
    trainer = BatchTrainer(specs, 4, 2, step_base=3)
    step = dict(solver="adam", scale=0.25, learning_rate=0.01)
    trainer.run(X, rows, Y=Y, **step)
    assert not trainer.diverged and trainer.step == 1
    state = [spec[name].copy() for spec in specs for name in (
        "weights", "bias", "moment1_w", "moment2_w", "moment1_b", "moment2_b")]
    last_steps = [s.copy() for s in trainer.last_steps]
    Y_bad = Y.copy()
    Y_bad[2] = target
    loss, _ = trainer.run(X, rows, Y=Y_bad, **step)
    assert trainer.diverged and trainer.step == 1
    assert np.isfinite(loss).all() == finite_loss
    after = [spec[name] for spec in specs for name in (
        "weights", "bias", "moment1_w", "moment2_w", "moment1_b", "moment2_b")]
    for a, b in zip(state, after, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(last_steps, trainer.last_steps, strict=True):
        np.testing.assert_array_equal(a, b)
    # A row of weight 0 is not trained on: its loss does not stop the step.
    sample_weight = np.ones(4, dtype)
    sample_weight[2] = 0
    trainer.run(X, rows, Y=Y_bad, sample_weight=sample_weight, **step)
    assert not trainer.diverged and trainer.step == 2
    # Large but safe gradients step.
    trainer.run(X, rows, Y=Y * 1e6, **step)
    assert not trainer.diverged and trainer.step == 3


def _dense_steps(n_threads, X, Y, rows, sample_weight=None, n_steps=3,
                 dtype=np.float32):
    """Weights after n_steps Adam steps of an all-dense network over dense X
    (every layer a matrix product over blocks of slots)."""
    specs = make_network([X.shape[1], 40, 24, Y.shape[1]], "tanh", "softmax",
                         dtype, (False, False, False))
    trainer = BatchTrainer(specs, len(rows), n_threads)
    scale = 1 / (len(rows) if sample_weight is None else sample_weight.sum())
    for _ in range(n_steps):
        trainer.run(X, rows, Y=Y, sample_weight=sample_weight, solver="adam",
                    scale=scale, learning_rate=0.01)
    return [spec[name] for spec in specs for name in ("weights", "bias")]


def test_gemm_layers_give_the_same_bits_for_any_thread_count():
    # 37 rows: two full blocks of 16 and a short one.
    X, Y, _, _ = make_data(37, 30, 5, "softmax", np.float32, False)
    rows = np.arange(37, dtype=np.intp)[::-1].copy()
    one = _dense_steps(1, X, Y, rows)
    for n_threads in (2, 3):
        for a, b in zip(one, _dense_steps(n_threads, X, Y, rows), strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_row_of_weight_zero_does_not_reach_gemm_gradients():
    # Its deltas are (p - y) x 0: NaN once its target is infinite. The
    # products over the batch read them, so they are zeroed first.
    X, Y, _, _ = make_data(20, 30, 5, "identity", np.float64, False)
    Y_bad = Y.copy()
    Y_bad[7] = np.inf
    sample_weight = np.ones(20)
    sample_weight[7] = 0
    rows = np.arange(20, dtype=np.intp)
    kept = np.delete(rows, 7)
    got = _dense_steps(2, X, Y_bad, rows, sample_weight, dtype=np.float64)
    expected = _dense_steps(2, X, Y, kept, dtype=np.float64)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize(
    "sizes, hashed, budget, min_active, n_rows",
    [
        # Every layer hashed, each fed a sparse input.
        ([30, 64, 48, 20], (True, True, True), 10, 5, 16),
        # A dense first layer stored by input, then hashed layers over a
        # dense input and a sparse one, each several blocks of 16 ids wide.
        ([90, 70, 100, 53], (False, True, True), 30, 10, 40),
    ],
)
def test_thread_count_does_not_change_a_step(sizes, hashed, budget, min_active,
                                             n_rows):
    # Phase 2 deals neurons (and a by-input layer's inputs) to the threads in
    # blocks of 16 ids: thread counts that split them unevenly, and every
    # weight and moment compared.
    dtype = np.float32
    results = []
    for n_threads in (1, 2, 3, 5):
        specs = make_network(sizes, "relu", "softmax", dtype, hashed)
        if not hashed[0]:
            store_by_input(specs[0])
        for spec, is_hashed in zip(specs, hashed, strict=True):
            if is_hashed:
                spec.update(budget=budget, min_active=min_active)
        X, _, label_indptr, label_ids = make_data(n_rows, sizes[0], sizes[-1],
                                                  "softmax", dtype, True)
        trainer = BatchTrainer(specs, n_rows, n_threads, sparse_input=True)
        for seed in range(3):
            trainer.run(X, np.arange(n_rows, dtype=np.intp),
                        label_indptr=label_indptr, label_ids=label_ids,
                        solver="adam", scale=1 / n_rows, seed=seed,
                        learning_rate=0.01)
        results.append([s[name].copy() for s in specs
                        for name in ("weights", "moment1_w", "moment2_w", "bias")])
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_inference_padding_depends_on_the_row_alone():
    dtype = np.float64
    sizes = [10, 50, 5]
    specs = make_network(sizes, "relu", "softmax", dtype, (True, False))
    specs[0].update(budget=20, min_active=15)
    X, _, _, _ = make_data(8, sizes[0], sizes[-1], "softmax", dtype, False)
    trainer = BatchTrainer(specs, 8, 1, inference_only=True)
    trainer.run(X, np.arange(8, dtype=np.intp), training=False, seed=1)
    full = trainer.activations[1][:8].copy()
    trainer.run(X, np.array([5, 2], dtype=np.intp), training=False, seed=1)
    np.testing.assert_array_equal(trainer.activations[1][:2], full[[5, 2]])
    with pytest.raises(ValueError, match="inference only"):
        trainer.run(X, np.arange(8, dtype=np.intp), training=True)


@pytest.mark.parametrize("strategy", ["union", "topk", "threshold"])
def test_active_sets_are_the_tables_answer(strategy):
    """The trainer's active set of a hashed layer is what its tables return."""
    dtype = np.float64
    sizes = [16, 400, 5]
    specs = make_network(sizes, "relu", "softmax", dtype, (True, False), seed=5)
    hf = HashFunctions("wta", 1, 12, sizes[0], bin_size=4, seed=2)
    tables = HashTables(12, hf.n_buckets, sizes[1], seed=2)
    tables.build_from_rows(hf, specs[0]["weights"])
    specs[0].update(hash_functions=hf, tables=tables, budget=30, min_active=0,
                    strategy=strategy, min_count=3)
    X, _, _, _ = make_data(20, sizes[0], sizes[-1], "softmax", dtype, False, seed=6)
    X[X == 0] = 0.1  # dense rows: every feature enters the hash
    trainer = BatchTrainer(specs, 20, 2, inference_only=True)
    trainer.run(X, np.arange(20, dtype=np.intp), training=False)
    indptr, ids = tables.query(hf.hash(X), strategy=strategy, budget=30,
                               min_count=3)
    assert np.diff(indptr).max() > 0
    for r in range(20):
        expected = np.sort(ids[indptr[r]:indptr[r + 1]])
        got = trainer.active_ids[0][r, : trainer.n_active[0][r]]
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("strategy", ["union", "topk"])
def test_ranked_candidates_keep_the_largest_pre_activations(strategy, sparse):
    """With n_candidates > budget, the retrieved neurons are ranked by their
    exact pre-activation and the budget largest are kept (ties by id), with
    the same outputs as computing them again; the ranking is counted."""
    dtype = np.float64
    sizes = [16, 400, 5]
    budget, n_candidates = 25, 90
    specs = make_network(sizes, "relu", "softmax", dtype, (True, False), seed=5)
    W, b = specs[0]["weights"], specs[0]["bias"]
    hf = HashFunctions("wta", 1, 12, sizes[0], bin_size=4, seed=2)
    tables = HashTables(12, hf.n_buckets, sizes[1], seed=2)
    tables.build_from_rows(hf, W)
    specs[0].update(hash_functions=hf, tables=tables, budget=budget,
                    n_candidates=n_candidates, min_active=0, strategy=strategy,
                    min_count=1)
    X, _, _, _ = make_data(20, sizes[0], sizes[-1], "softmax", dtype, sparse,
                           seed=6)
    Xd = X.toarray() if sparse else X
    trainer = BatchTrainer(specs, 20, 2, inference_only=True)
    trainer.run(X, np.arange(20, dtype=np.intp), training=False)
    indptr, ids = tables.query(hf.hash(X), strategy=strategy,
                               budget=n_candidates)
    n_ranked = 0
    for r in range(20):
        pool = ids[indptr[r]:indptr[r + 1]]
        z = Xd[r] @ W[pool].T + b[pool]
        order = np.lexsort((pool, -z))   # largest first, ties by smaller id
        expected = np.sort(pool[order[:budget]])
        n_act = trainer.n_active[0][r]
        got = trainer.active_ids[0][r, :n_act]
        np.testing.assert_array_equal(got, expected)
        pre = Xd[r] @ W[got].T + b[got]
        np.testing.assert_allclose(trainer.activations[0][r, :n_act],
                                   np.maximum(pre, 0), rtol=1e-12)
        if len(pool) > budget:
            n_ranked += 1
            nnz = np.count_nonzero(Xd[r]) if sparse else sizes[0]
            assert trainer.macs[0][r] == len(pool) * nnz
    assert n_ranked > 10


def test_ranking_keeps_labels_and_ranks_the_rest():
    """In the output layer the labels stay active; the ranking fills the rest
    of the budget from the other candidates."""
    dtype = np.float64
    sizes = [10, 300]
    specs = make_network(sizes, "relu", "softmax", dtype, (True,), seed=1)
    W, b = specs[0]["weights"], specs[0]["bias"]
    hf = HashFunctions("wta", 1, 8, sizes[0], bin_size=2, seed=3)
    tables = HashTables(8, hf.n_buckets, sizes[1], seed=3)
    tables.build_from_rows(hf, W)
    specs[0].update(hash_functions=hf, tables=tables, budget=12, n_candidates=60,
                    min_active=0, strategy="topk", min_count=1, extra_width=2)
    X, _, label_indptr, label_ids = make_data(6, sizes[0], sizes[-1], "softmax",
                                              dtype, False, seed=2)
    trainer = BatchTrainer(specs, 6, 1)
    rows = np.arange(6, dtype=np.intp)
    trainer.run(X, rows, Y=None, label_indptr=label_indptr, label_ids=label_ids,
                training=True, seed=0, solver="gradient")
    indptr, ids = tables.query(hf.hash(X), strategy="topk", budget=60)
    for r in range(6):
        label = label_ids[label_indptr[r]]
        pool = np.setdiff1d(ids[indptr[r]:indptr[r + 1]], [label])
        z = X[r] @ W[pool].T + b[pool]
        kept = pool[np.lexsort((pool, -z))[:11]]
        expected = np.sort(np.append(kept, label))
        got = trainer.active_ids[0][r, : trainer.n_active[0][r]]
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("family, centered", [("simhash", True), ("dwta", False)])
def test_simhash_tables_hold_the_rows_less_their_mean(family, centered):
    from sklearn.datasets import load_digits

    from sklearn_lsh import LSHMLPClassifier

    X, y = load_digits(return_X_y=True)
    clf = LSHMLPClassifier(hidden_layer_sizes=(300,), hash_family=family,
                           selection="lsh", max_iter=1, random_state=0)
    clf.fit(X / 16, y)
    layer = clf._network.layers[0]
    hashing = layer.hashing
    hashing.rebuild(layer.weights, layer.bias, 1)
    rows = layer.weights.astype(np.float64)
    if centered:
        rows = rows - rows.mean(axis=0)
    assert_tables_hold(hashing.tables, hashing.functions.hash(rows))
