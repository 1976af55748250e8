"""The machinery shared by LSHMLPClassifier and LSHMLPRegressor.

Python decides here: validation, epochs, batches, stopping, when tables are
rebuilt. The network's state lives in a ``Network`` of ``Layer`` objects
(``_layers``), the optimizer's in a ``LazyOptimizer`` (``_optimizer``); the
compiled worker ``BatchTrainer`` (``_network``) does one mini-batch step per
call over their arrays.
"""

import inspect
import numbers
import time
import warnings
from abc import ABCMeta, abstractmethod

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import _check_sample_weight, validate_data

from . import _lbfgs
from ._layers import (
    active_budget,
    available_memory,
    hash_config,
    hashed_layers,
    input_subspace,
    min_rebuild_interval,
    network_bytes,
    new_network,
)
from ._optimizer import LazyOptimizer
from ._params import check_params
from ._threads import effective_n_threads, one_blas_thread
from ._version import __version__
from .inspection import _probe_size, _recall

# Fixed when the network is built: they shape its tables and active sets. A
# warm-started fit or a partial_fit that changes one is refused.
STRUCTURAL_PARAMETERS = ("hash_family", "n_hash_bits", "n_tables",
                         "active_fraction", "candidate_factor", "min_active",
                         "lsh_layers", "selection")
# Every parameter that only a hashed layer reads: 'lbfgs' trains none.
HASHING_PARAMETERS = (*STRUCTURAL_PARAMETERS, "sampling", "sampling_threshold",
                      "rebuild_schedule", "rebuild_interval", "rebuild_decay",
                      "rehash_interval", "inference")


_NON_FINITE = ("Solver produced non-finite parameter weights. The input data "
               "may contain large values and need to be preprocessed.")


class _Diverged(Exception):
    """Raised inside an epoch: the worker took no step on a batch whose loss
    or gradients were not surely finite."""

    def __init__(self, batch, sample_loss, counted):
        # Rows of weight 0 are not trained on: their loss does not count.
        loss = sample_loss[counted]
        loss = loss[~np.isfinite(loss)]
        self.reason = (f"the loss of batch {batch} of epoch {{epoch}} is "
                       f"{loss[0]}" if loss.size else
                       f"a gradient of batch {batch} of epoch {{epoch}} would "
                       "overflow")


def _forward_dense(X, coefs, intercepts, activation, out_activation):
    """Exact forward pass over all neurons (the prediction path)."""
    a = X
    n_layers = len(coefs)
    for i in range(n_layers):
        a = safe_sparse_dot(a, coefs[i])
        a += intercepts[i]
        _lbfgs.activate(a, activation if i < n_layers - 1 else out_activation)
    return a


def _size(n_bytes):
    """A byte count in MiB or GiB, for messages."""
    if n_bytes < 2**30:
        return f"{n_bytes / 2**20:.1f} MiB"
    return f"{n_bytes / 2**30:.1f} GiB"


def _same(a, b):
    """Whether two parameter values mean the same (an int count is not a share)."""
    if np.ndim(a) or np.ndim(b):
        return np.ndim(a) == np.ndim(b) and np.array_equal(a, b)
    return (isinstance(a, numbers.Integral) == isinstance(b, numbers.Integral)
            and isinstance(a, str) == isinstance(b, str) and a == b)


class InconsistentLSHVersionWarning(UserWarning):
    """Warns that a model was saved by another version of sklearn_lsh.

    Emitted when a pickled or joblib-saved estimator is loaded by a version of
    sklearn_lsh other than the one that saved it (or the model carries no
    version): its state may not mean the same in this version. scikit-learn's
    own ``InconsistentVersionWarning`` (about the scikit-learn version) may
    come too.

    Parameters
    ----------
    estimator_name : str
        The class of the loaded model.
    original_version : str or None
        The sklearn_lsh version that saved it (None: saved before models were
        stamped).
    current_version : str
        The sklearn_lsh version loading it.

    See Also
    --------
    sklearn.exceptions.InconsistentVersionWarning : The warning of scikit-learn for
        its own estimators.

    Examples
    --------
    >>> from sklearn_lsh import InconsistentLSHVersionWarning
    >>> w = InconsistentLSHVersionWarning(estimator_name="LSHMLPClassifier",
    ...                                   original_version="0.0.1",
    ...                                   current_version="0.1.0")
    >>> w.original_version
    '0.0.1'
    """

    def __init__(self, *, estimator_name, original_version, current_version):
        self.estimator_name = estimator_name
        self.original_version = original_version
        self.current_version = current_version

    def __str__(self):
        if self.original_version is None:
            saved_by = "an unknown sklearn_lsh version (no version stamp)"
            advice = "Refit the model."
        else:
            saved_by = f"sklearn_lsh {self.original_version}"
            advice = ("Refit the model, or load it with sklearn_lsh "
                      f"{self.original_version}.")
        return (
            f"Loading {self.estimator_name} saved by {saved_by} into sklearn_lsh "
            f"{self.current_version}. Its state may not mean the same here: this "
            f"might lead to breaking code or invalid results. {advice}"
        )


class _DivergedError(ValueError):
    """Training reached a non-finite loss or non-finite weights; ``refused``:
    the step that would have made them was not taken."""

    def __init__(self, message, refused=False):
        super().__init__(message)
        self.refused = refused


class _BaseLSHMLP(BaseEstimator, metaclass=ABCMeta):
    """Shared machinery of LSHMLPClassifier and LSHMLPRegressor."""

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        loss,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        weight_init,
        hash_family,
        n_hash_bits,
        n_tables,
        active_fraction,
        sampling,
        sampling_threshold,
        candidate_factor,
        min_active,
        lsh_layers,
        selection,
        rebuild_schedule,
        rebuild_interval,
        rebuild_decay,
        rehash_interval,
        inference,
        n_jobs,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.weight_init = weight_init
        self.hash_family = hash_family
        self.n_hash_bits = n_hash_bits
        self.n_tables = n_tables
        self.active_fraction = active_fraction
        self.sampling = sampling
        self.sampling_threshold = sampling_threshold
        self.candidate_factor = candidate_factor
        self.min_active = min_active
        self.lsh_layers = lsh_layers
        self.selection = selection
        self.rebuild_schedule = rebuild_schedule
        self.rebuild_interval = rebuild_interval
        self.rebuild_decay = rebuild_decay
        self.rehash_interval = rehash_interval
        self.inference = inference
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ checks
    def _hidden_sizes(self):
        # Checked by check_params: an int >= 1 or an array-like of them.
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        return [int(s) for s in sizes]

    # --------------------------------------------------------- initialisation
    def _initialize(self, layer_units, dtype, input_nnz, X=None):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(layer_units)
        self.n_outputs_ = layer_units[-1]
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        # A hashed output layer trains on label lists: multiclass or
        # multilabel outputs (one logistic unit for binary has nothing to skip).
        can_hash_output = (is_classifier(self) and self.out_activation_ in (
            "softmax", "logistic") and layer_units[-1] >= 2)
        # 'lbfgs' needs the exact gradient of every weight: no layer hashes.
        lsh_layers = "none" if self.solver == "lbfgs" else self.lsh_layers
        self.lsh_layers_ = hashed_layers(layer_units, lsh_layers,
                                         can_hash_output, self.out_activation_)
        for i, width in enumerate(layer_units[1:]):
            if self.lsh_layers_[i]:
                self._warn_too_many(i, width)
            if lsh_layers == "auto" and active_budget(self.active_fraction,
                                                      width) >= width:
                # A budget of the whole layer selects every neuron: such a
                # layer is computed dense, by matrix products. Named layers
                # ('all', a list) hash whatever their budget.
                self.lsh_layers_[i] = False
        configs = []
        input_density = 1.0  # X: what the dense network reads too
        # A hashed first layer over a dense X may score in X's principal
        # directions (estimated from X here, once).
        subspace = None
        batch_size = full_batch = 200 if self.batch_size == "auto" else self.batch_size
        if X is not None:
            batch_size = min(batch_size, X.shape[0])
        if (self.lsh_layers_[0] and self.selection == "auto" and X is not None
                and not sp.issparse(X)):
            subspace = input_subspace(X)
        for i, hashed in enumerate(self.lsh_layers_):
            config = None
            if hashed:
                config = hash_config(
                    layer_units[i], layer_units[i + 1],
                    hash_family=self.hash_family,
                    active_fraction=self.active_fraction,
                    candidate_factor=self.candidate_factor,
                    n_tables=self.n_tables, n_hash_bits=self.n_hash_bits,
                    min_active=self.min_active,
                    selection=self.selection,
                    input_nnz=input_nnz, input_density=input_density,
                    captured=subspace[2] if i == 0 and subspace else None,
                    batch_size=batch_size, rebuild_interval=self.rebuild_interval,
                    float32=np.dtype(dtype) == np.float32)
                if config["selection"] == "lsh":
                    # Full batches: a first partial_fit of a few rows does
                    # not make the builds of the whole stream rarer.
                    config["min_rebuild_interval"] = min_rebuild_interval(
                        config, layer_units[i], layer_units[i + 1],
                        input_nnz=input_nnz, batch_size=full_batch,
                        float32=np.dtype(dtype) == np.float32)
                # SimHash queries from a dense hidden layer's ReLU outputs
                # share a direction: the tables center them (see _built).
                config["center_queries"] = (
                    config["selection"] == "lsh" and config["family"] == "simhash"
                    and i > 0 and not self.lsh_layers_[i - 1])
                self._warn_clipped(i, config)
            configs.append(config)
            # A hashed layer's outputs are its active set: at most its budget
            # are non-zero in the next layer's input, all of them in the dense
            # network's.
            input_nnz = config["budget"] if hashed else layer_units[i + 1]
            input_density = input_nnz / layer_units[i + 1]
        needed = network_bytes(layer_units, dtype, configs, self.solver)
        available = available_memory()
        if available is not None and needed > available:
            # Refused before anything is allocated: an allocation that the
            # system overcommits fails later, in the middle of training.
            raise MemoryError(
                f"The network {layer_units} needs about {_size(needed)} "
                f"(weights, optimizer state and tables in {np.dtype(dtype)}); "
                f"{_size(available)} of memory is available. Use "
                "smaller layers, float32 input, or a machine with more memory.")
        self.layer_selection_ = [c["selection"] if c else "dense" for c in configs]
        lsh = [c if c and c["selection"] == "lsh" else None for c in configs]
        self.hash_family_ = [c["family"] if c else None for c in lsh]
        self.n_hash_bits_ = [c["n_hash_bits"] if c else None for c in lsh]
        self.n_tables_ = [c["n_tables"] if c else None for c in lsh]
        self.active_budget_ = [c["budget"] if c else layer_units[i + 1]
                               for i, c in enumerate(configs)]
        self._network = new_network(
            layer_units, dtype, self._random_state, activation=self.activation,
            out_activation=self.out_activation_, weight_init=self._weight_init(),
            hashed=self.lsh_layers_, configs=configs, strategy=self.sampling,
            min_count=self.sampling_threshold, n_threads=self._n_threads(),
            subspace=subspace and subspace[:2],
            sparse_input=sp.issparse(X) and self.solver != "lbfgs")
        for hashing in self._network.hashed:
            hashing.schedule(0, self.rebuild_schedule, self.rebuild_interval,
                             self.rebuild_decay)
        self._structure = {name: getattr(self, name)
                           for name in STRUCTURAL_PARAMETERS}
        self._optimizer = None
        self._sync_attributes()
        self.hashing_time_ = 0.0
        self.rebuild_time_ = 0.0
        if self.solver != "lbfgs":
            # MLP's 'lbfgs' keeps no curve and no stopping state either.
            self._reset_stopping()

    def _reset_stopping(self):
        """The loss curve and early-stopping state of a first stochastic fit."""
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _weight_init(self):
        """The draw of ``weight_init``; 'auto' is each estimator's measured
        choice (``LSHMLPRegressor`` overrides this)."""
        return self.weight_init

    def _warn_too_many(self, layer, width):
        """Warn when an int budget asks for more neurons than a layer has."""
        asked = self.active_fraction
        if isinstance(asked, numbers.Integral) and asked > width:
            warnings.warn(
                f"active_fraction={asked} asks for more neurons than the "
                f"{width} of layer {layer}: all {width} are active.",
                UserWarning)

    def _warn_clipped(self, layer, config):
        """Warn when an int minimum cannot be met as given."""
        if self.min_active != "auto" and self.min_active > config["budget"]:
            warnings.warn(
                f"min_active={self.min_active} exceeds the active budget "
                f"{config['budget']} of hashed layer {layer}: at most "
                f"{config['budget']} are filled in.", UserWarning)

    def _sync_attributes(self):
        """MLP's coefs_ and intercepts_: views of the layers' arrays."""
        layers = self._network.layers
        self.coefs_ = [layer.weights.T for layer in layers]
        self.intercepts_ = [layer.bias for layer in layers]

    def _check_structure(self, incremental):
        """Refuse a changed structural parameter on a network that exists."""
        for name, built in self._structure.items():
            value = getattr(self, name)
            if not _same(value, built):
                raise ValueError(
                    f"The '{name}' parameter is {value!r}, but the network was "
                    f"built with {built!r}: it is fixed once the network exists. "
                    "Refit without warm_start (fit, not partial_fit) to change it."
                )
        if incremental and self._optimizer is not None and (
                self.solver != self._optimizer.solver):
            raise ValueError(
                f"The 'solver' parameter is {self.solver!r}, but partial_fit goes "
                f"on with the state of solver={self._optimizer.solver!r}. Refit "
                "(fit) to change the solver."
            )

    def _n_threads(self, n_rows=None):
        """OpenMP threads of a call; with ``n_rows``, the rows of a batch
        through the network (under ``n_jobs=None``, one thread for batches too
        small to share)."""
        if n_rows is None:
            return effective_n_threads(self.n_jobs)
        # Every neuron's multiply-adds: an upper bound of a hashed network's.
        per_row = sum(layer.weights.size for layer in self._network.layers)
        return effective_n_threads(self.n_jobs, work=n_rows * per_row)

    # ------------------------------------------------------------- training
    def _prepare_X(self, X):
        """Canonical CSR (sorted, no duplicates) or C-contiguous dense, in the
        weights' dtype; the caller's X is never modified."""
        dtype = self._network.layers[0].weights.dtype
        if sp.issparse(X):
            X = sp.csr_matrix(X, dtype=dtype)
            if X.shape[1] >= np.iinfo(np.int32).max:
                raise ValueError(f"X has {X.shape[1]} features; at most 2**31 - 2 "
                                 "are supported.")
            if not X.has_canonical_format:
                # A bag of words built one entry per token repeats columns.
                X = X.copy()
                X.sum_duplicates()
            return X
        # Aligned too: a block unpickled from a Dask worker's buffer may not be.
        return np.require(X, dtype=dtype, requirements=["C", "A"])

    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        self._validate_params()
        check_params(self)
        hidden_layer_sizes = self._hidden_sizes()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "_network") or (
            not self.warm_start and not incremental
        )
        # Everything a call can fail on is checked before training touches the
        # model. The attributes set on the way (n_features_in_, classes_, a new
        # network on a first pass) are put back if a check fails: a failed call
        # leaves a fitted model as it was, and an unfitted one unfitted.
        saved = self.__dict__.copy()
        try:
            if not first_pass:
                self._check_structure(incremental)
            X, y = self._validate_input(X, y, incremental, reset=first_pass,
                                        classes=classes)
            n_samples, n_features = X.shape
            if sample_weight is not None:
                sample_weight = _check_sample_weight(sample_weight, X)
                if (sample_weight < 0).any():
                    # A batch's step is divided by its weight sum.
                    i = int(np.argmax(sample_weight < 0))
                    raise ValueError(
                        "sample_weight must be non-negative (a zero weight drops "
                        f"a row); got {float(sample_weight[i])} at index {i}."
                    )
            targets = self._encode_targets(y)
            layer_units = [n_features, *hidden_layer_sizes, targets["n_outputs"]]
            self._random_state = check_random_state(self.random_state)
            if first_pass:
                if self.solver == "lbfgs":
                    self._warn_unused_hashing()
                input_nnz = (X.nnz / max(1, X.shape[0]) if sp.issparse(X)
                             else X.shape[1])
                # One BLAS thread: a threaded product may sum in another
                # order (the input's principal directions), and a fit is to
                # give the same bits for any number of threads.
                with one_blas_thread():
                    self._initialize(layer_units, X.dtype, input_nnz, X)
            else:
                layers = self._network.layers
                expected = [layers[0].weights.shape[1]] + [
                    layer.weights.shape[0] for layer in layers]
                if expected != layer_units:
                    raise ValueError(
                        f"The network's layer sizes {expected} differ from those "
                        f"of this call {layer_units}; refit without warm_start "
                        "to change hidden_layer_sizes or the number of outputs."
                    )
            # Seeds of the active-set padding: batch b of the model's life gets
            # (seed_base, b), whatever the shuffles drew, so that equal rows in
            # equal batches get equal active sets.
            seed_base = int(self._random_state.randint(2**31))
            # As in MLP, 'lbfgs' trains on every row: no early stopping.
            split = (self._validation_split(targets, n_samples)
                     if self.solver != "lbfgs" else (np.arange(n_samples), None))
            if sample_weight is not None and not sample_weight[split[0]].any():
                raise ValueError(
                    "Every training row has sample_weight 0 once the validation "
                    "set is held out; nothing would be learned."
                )
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        network = self._network
        # What a call that diverges on its first batch puts back.
        n_batches = network.n_batches
        moments = [(layer.moment1_w, layer.moment1_b, layer.moment2_w,
                    layer.moment2_b) for layer in network.layers]
        for layer in network.layers[:-1]:
            layer.activation = self.activation
        for hashing in network.hashed:
            hashing.strategy, hashing.min_count = self.sampling, self.sampling_threshold
        for layer in network.layers:
            layer.ensure_writeable()
        try:
            if self.solver == "lbfgs":
                self._fit_lbfgs(X, targets, sample_weight)
                return self._check_finite()
            if not incremental or self._optimizer is None:
                self._optimizer = LazyOptimizer(self.solver,
                                                self.learning_rate_init)
                self._optimizer.init_state(network.layers)
            self._optimizer.configure(beta_1=self.beta_1, beta_2=self.beta_2,
                                      epsilon=self.epsilon,
                                      momentum=self.momentum,
                                      nesterov=self.nesterovs_momentum)
            self._sync_attributes()
            if not self.lsh_layers_[-1]:
                targets["dense"] = self._dense_targets(targets, n_samples)
            self._fit_stochastic(X, targets, sample_weight, incremental,
                                 seed_base, split)
            return self._check_finite()
        except _DivergedError as exc:
            untouched = self.solver != "lbfgs" and network.n_batches == n_batches
            if first_pass or untouched:
                # The new network is dropped whole, or no batch of this call
                # took a step: the estimator is the one before the call.
                self.__dict__.clear()
                self.__dict__.update(saved)
                for layer, state in zip(network.layers, moments):
                    (layer.moment1_w, layer.moment1_b, layer.moment2_w,
                     layer.moment2_b) = state
                kept = "The estimator is left as it was before this call."
            elif exc.refused:
                kept = ("The batches of this call before the diverged one took "
                        "their steps; that one took none.")
            else:
                kept = "The steps of this call are kept."
            raise _DivergedError(
                f"{exc} {kept} Lower learning_rate_init (now "
                f"{self.learning_rate_init}) or scale the data, for example "
                "with StandardScaler.") from None

    def _dense_targets(self, targets, n_samples):
        """The (n_samples, n_outputs) bool targets of a classifier."""
        if "dense" in targets:
            return targets["dense"]
        if "indicator" in targets:
            return targets["indicator"].toarray() != 0
        dense = np.zeros((n_samples, targets["n_outputs"]), dtype=bool)
        dense[np.arange(n_samples), targets["label_ids"]] = True
        return dense

    def _check_finite(self):
        weights = [*self.coefs_, *self.intercepts_]
        # A finite sum has no NaN or infinity to add (scikit-learn's fast
        # path): no boolean copy of each layer (82 MB at 670,091 outputs).
        if not all(np.isfinite(w.sum(dtype=np.float64))
                   or np.isfinite(w).all() for w in weights):
            raise _DivergedError(_NON_FINITE)
        return self

    def _validation_split(self, targets, n_samples):
        """Training and validation row indices (all rows train without early
        stopping)."""
        if not self.early_stopping:
            return np.arange(n_samples), None
        should_stratify = is_classifier(self) and targets["stratify"] is not None
        stratify = targets["stratify"] if should_stratify else None
        train_idx, val_idx = train_test_split(
            np.arange(n_samples), random_state=self._random_state,
            test_size=self.validation_fraction, stratify=stratify)
        if val_idx.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        return train_idx, val_idx

    def _warn_unused_hashing(self):
        """Warn that 'lbfgs' ignores hashing parameters set away from their
        defaults."""
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [name for name in HASHING_PARAMETERS
                   if not _same(getattr(self, name), defaults[name].default)]
        if changed:
            warnings.warn(
                "solver='lbfgs' trains the dense network: every neuron of every "
                f"layer is computed and no layer hashes, so {', '.join(changed)} "
                f"{'is' if len(changed) == 1 else 'are'} not used. Use "
                "solver='adam' or 'sgd' to train with hashing.", UserWarning)

    def _check_solver(self):
        if self.solver == "lbfgs":
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic.")
        return True

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight,
                         activations, deltas, coef_grads, intercept_grads):
        """The training objective and its gradient at packed parameters.

        MLP's method of the same name and signature (``solver='lbfgs'``): the
        parameters are ``coefs_`` then ``intercepts_``, each raveled in C order;
        they are written into the network. The lists are work space, filled
        as ``_lbfgs.loss_and_gradient`` says.

        Returns
        -------
        loss : float
        grad : ndarray of shape (n_parameters,)
        """
        layers = self._network.layers
        _lbfgs.unpack(packed_coef_inter, layers)
        loss = _lbfgs.loss_and_gradient(
            layers, X, y, sample_weight, float(self.alpha), self.activation,
            self.out_activation_, activations, deltas, coef_grads,
            intercept_grads)
        return loss, _lbfgs.pack([*coef_grads, *intercept_grads])

    def _fit_lbfgs(self, X, targets, sample_weight):
        """Train every neuron with L-BFGS-B over all rows, as MLP does."""
        network = self._network
        n_layers = len(network.layers)
        # No stochastic state carries over an 'lbfgs' fit.
        self._optimizer = None
        dtype = network.layers[0].weights.dtype
        X = self._prepare_X(X)
        Y = np.asarray(self._dense_targets(targets, X.shape[0]), dtype=dtype)
        sw = None if sample_weight is None else sample_weight.astype(dtype)
        work = ([X] + [None] * n_layers, [None] * n_layers, [None] * n_layers,
                [None] * n_layers)
        best = {"loss": np.inf, "params": None}

        def objective(params):
            loss, grad = self._loss_grad_lbfgs(params, X, Y, sw, *work)
            if loss < best["loss"]:
                best["loss"], best["params"] = loss, params.copy()
            return loss, grad

        x0 = _lbfgs.pack([*self.coefs_, *self.intercepts_])
        progress = {"n_iter": 0}
        try:
            result = _lbfgs.minimize(objective, x0, max_iter=self.max_iter,
                                     max_fun=self.max_fun, tol=self.tol,
                                     verbose=self.verbose, progress=progress)
        except KeyboardInterrupt:
            # The line search may have left a trial point in the layers.
            warnings.warn("Training interrupted by user.")
            result = None
        if result is None or not np.isfinite(result.fun):
            # The best point evaluated (the initial one if none was).
            params = best["params"] if best["params"] is not None else x0
            self.n_iter_ = min(progress["n_iter"], self.max_iter)
            self.loss_ = float(best["loss"])
        else:
            params = result.x
            self.n_iter_ = min(result.nit, self.max_iter)
            self.loss_ = float(result.fun)
            if result.status != 0:
                warnings.warn(
                    f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                    f"(status={result.status}): {result.message}. Increase "
                    f"max_iter (now {self.max_iter}) or max_fun (now "
                    f"{self.max_fun}), or scale the data.", ConvergenceWarning)
        _lbfgs.unpack(params, network.layers)
        start = time.perf_counter()
        for layer in network.layers:
            if layer.hashing is not None:
                # A warm start of a hashed network: tables of the new weights.
                layer.hashing.rebuild(layer.weights, layer.bias, self._n_threads())
        self.multiplication_share_ = 1.0
        self.layer_multiplication_share_ = [1.0] * n_layers
        self.mean_active_ = [float(layer.weights.shape[0])
                             for layer in network.layers]
        self.hashing_time_ = 0.0
        self.rebuild_time_ = time.perf_counter() - start
        self.active_set_recall_ = [None] * n_layers
        if network.hashed:
            probe = np.arange(min(X.shape[0], _probe_size(self)))
            self.active_set_recall_ = _recall(self, X[probe])

    def _fit_stochastic(self, X, targets, sample_weight, incremental, seed_base,
                        split):
        train_idx, val_idx = split
        early_stopping = val_idx is not None
        if not hasattr(self, "loss_curve_"):
            # A warm start after an 'lbfgs' fit.
            self._reset_stopping()
        if early_stopping:
            X_val = X[val_idx]
            y_val = targets["y"][val_idx]
            sw_val = sample_weight[val_idx] if sample_weight is not None else None
            if self.validation_scores_ is None:
                # A warm start after a fit without early stopping.
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
                self._no_improvement_count = 0
            self._best = self._network.snapshot()
        else:
            X_val = y_val = sw_val = None
            if self.best_loss_ is None:
                # A warm start after a fit with early stopping.
                self.best_loss_ = np.inf
                self.validation_scores_ = self.best_validation_score_ = None
                self._no_improvement_count = 0

        n_samples = train_idx.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        dtype = self.coefs_[0].dtype
        X_core = self._prepare_X(X)
        sw = None if sample_weight is None else np.require(
            sample_weight, dtype=dtype, requirements=["C", "A"])
        Y = targets.get("dense")
        if Y is not None:
            Y = np.require(Y, dtype=dtype, requirements=["C", "A"])
        if self._network.store_first_layer(by_input=sp.issparse(X_core)):
            self._sync_attributes()
        worker = self._network.worker(
            batch_size, self._n_threads(batch_size), sparse_input=sp.issparse(X_core),
            max_labels=targets.get("max_labels", 0), step_base=self._optimizer.steps)
        worker.set_data(X_core, Y=Y, label_indptr=targets.get("label_indptr"),
                        label_ids=targets.get("label_ids"), sample_weight=sw)
        sample_idx = train_idx.astype(np.intp)
        self.hashing_time_ = 0.0
        self.rebuild_time_ = 0.0
        diverged = None
        try:
            self.n_iter_ = 0
            # BLAS runs inside the OpenMP loops: one thread each.
            with one_blas_thread():
                for _ in range(self.max_iter):
                    if self.shuffle:
                        sample_idx = self._random_state.permutation(sample_idx)
                    stats = self._run_epoch(worker, X_core, sw, sample_idx,
                                            batch_size, seed_base)
                    self.n_iter_ += 1
                    self.loss_ = stats["loss"]
                    self.t_ += n_samples
                    self.loss_curve_.append(self.loss_)
                    if self.verbose:
                        print(
                            "Iteration %d, loss = %.8f, multiplications = %.2f%%, "
                            "hashing = %.3fs, rebuilding = %.3fs"
                            % (self.n_iter_, self.loss_,
                               100 * self.multiplication_share_,
                               stats["hash_seconds"], stats["rebuild_seconds"])
                        )
                    self._update_no_improvement_count(early_stopping, X_val, y_val,
                                                      sw_val)
                    self._optimizer.iteration_ends(self.t_, self.learning_rate,
                                                   self.power_t)
                    if self._no_improvement_count > self.n_iter_no_change:
                        if early_stopping:
                            msg = (
                                "Validation score did not improve more than "
                                "tol=%f for %d consecutive epochs."
                                % (self.tol, self.n_iter_no_change)
                            )
                        else:
                            msg = (
                                "Training loss did not improve more than tol=%f"
                                " for %d consecutive epochs."
                                % (self.tol, self.n_iter_no_change)
                            )
                        if self._optimizer.trigger_stopping(msg, self.verbose,
                                                            self.learning_rate):
                            break
                        self._no_improvement_count = 0
                    if incremental:
                        break
                    if self.n_iter_ == self.max_iter:
                        warnings.warn(
                            "Stochastic Optimizer: Maximum iterations (%d) "
                            "reached and the optimization hasn't converged yet."
                            % self.max_iter,
                            ConvergenceWarning,
                        )
        except KeyboardInterrupt:
            # Tables are never left half built (see LayerHashing): the model
            # is the network after the last completed batch.
            warnings.warn("Training interrupted by user.")
        except _Diverged as exc:
            diverged = exc
        finally:
            # After an interruption too: no weight is left behind its step.
            self._optimizer.catch_up(worker)
        if diverged is not None:
            where = diverged.reason.format(epoch=self.n_iter_ + 1)
            if not early_stopping:
                # MLP's message first (scikit-learn's tests match it); this
                # step was refused, not taken.
                raise _DivergedError(
                    f"{_NON_FINITE} Training diverged: {where}, and that step "
                    "was not taken.", refused=True)
            # The diverged epoch is recorded as MLP records one: its loss and
            # validation score NaN. The best network is kept.
            self.n_iter_ += 1
            self.loss_ = float("nan")
            self.loss_curve_.append(self.loss_)
            self.validation_scores_.append(float("nan"))
            warnings.warn(f"Training diverged: {where}. Training stopped; the "
                          "network of the best validation score is kept.",
                          ConvergenceWarning)
        if early_stopping:
            # The network of the best validation score: its weights and the
            # tables its hashed layers retrieved through.
            self._network.restore(self._best)
            del self._best
            self._sync_attributes()
        if self._network.hashed:
            # Retrieval quality of the fitted layers, on the first training rows,
            # through the training worker unless the network was just restored
            # (its arrays and tables are then others).
            probe = train_idx[:_probe_size(self)]
            self.active_set_recall_ = _recall(
                self, self._prepare_X(X_core[probe]),
                worker=None if early_stopping else worker, batch_size=batch_size)
        else:
            self.active_set_recall_ = [None] * len(self._network.layers)

    def _run_epoch(self, worker, X, sw, sample_idx, batch_size, seed_base):
        network = self._network
        n_layers = len(network.layers)
        macs = np.zeros(n_layers)
        dense_macs = np.zeros(n_layers)
        active = np.zeros(n_layers)
        accumulated_loss = 0.0
        l2_factor = 0.0
        n_skipped = 0
        hash_seconds = 0.0
        rebuild_seconds = 0.0
        n_samples = sample_idx.shape[0]
        if sp.issparse(X):
            row_nnz = np.diff(X.indptr)
        for batch, batch_slice in enumerate(gen_batches(n_samples, batch_size), 1):
            rows = sample_idx[batch_slice]
            n_batch = rows.shape[0]
            sw_sum = float(sw[rows].sum()) if sw is not None else float(n_batch)
            if sw_sum == 0:
                # Rows of zero weight are as good as absent: a batch of them
                # takes no step, and has no loss.
                n_skipped += n_batch
                continue
            sample_loss, seconds = worker.run(
                rows, training=True, seed=(seed_base << 32) + network.n_batches,
                scale=1.0 / sw_sum, alpha=float(self.alpha),
                **self._optimizer.params())
            if worker.diverged:
                raise _Diverged(batch, sample_loss, sw is None or sw[rows] != 0)
            accumulated_loss += sample_loss.sum() / sw_sum * n_batch
            l2_factor += n_batch / sw_sum
            hash_seconds += seconds.sum()
            for i, layer in enumerate(network.layers):
                n_out, n_in = layer.weights.shape
                macs[i] += worker.macs[i][:n_batch].sum()
                active[i] += worker.n_active[i][:n_batch].sum()
                if i == 0 and sp.issparse(X):
                    fan_in = row_nnz[rows].sum()
                else:
                    fan_in = n_batch * n_in
                dense_macs[i] += fan_in * n_out
            network.n_batches += 1
            due = network.rebuild_due()
            if due:
                start = time.perf_counter()
                # Tables (and projections) of the weights as a dense optimizer
                # would have them now; the other layers wait for their own
                # steps (catching up every layer at each of the first layer's
                # frequent refreshes cost 10% of an epoch of T1).
                self._optimizer.catch_up(worker, due)
                rebuilt = network.rebuild(
                    worker, self._random_state, self._n_threads(batch_size),
                    kind=self.rebuild_schedule, interval=self.rebuild_interval,
                    decay=self.rebuild_decay, rehash_interval=self.rehash_interval,
                    n_rows=n_batch)
                for i in rebuilt:
                    hashing = network.layers[i].hashing
                    if hashing.selection == "subspace":
                        # Projecting the weights is multiply-adds too.
                        n_out, n_in = network.layers[i].weights.shape
                        macs[i] += n_out * n_in * (hashing.rank + 1)
                rebuild_seconds += time.perf_counter() - start
        self._optimizer.catch_up(worker)
        # The L2 term of MLP's loss, from the weights at the end of the epoch.
        l2 = sum(float(np.dot(c.ravel(order="K"), c.ravel(order="K")))
                 for c in self.coefs_)
        accumulated_loss += 0.5 * self.alpha * l2 * l2_factor
        self.layer_multiplication_share_ = list(macs / dense_macs)
        self.multiplication_share_ = float(macs.sum() / dense_macs.sum())
        self.mean_active_ = list(active / max(1, n_samples - n_skipped))
        self.hashing_time_ += hash_seconds
        self.rebuild_time_ += rebuild_seconds
        return {"loss": accumulated_loss / (n_samples - n_skipped),
                "hash_seconds": hash_seconds,
                "rebuild_seconds": rebuild_seconds}

    def _update_no_improvement_count(self, early_stopping, X, y, sample_weight):
        if early_stopping:
            val_score = self._score(X, y, sample_weight=sample_weight)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._best = self._network.snapshot()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # ------------------------------------------------------------ prediction
    def _forward_pass_fast(self, X, check_input=True):
        """Outputs of every output neuron, as ``inference`` says to compute them."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"],
                              dtype=(np.float64, np.float32), reset=False)
        hashed_hidden = any(self.lsh_layers_[:-1])
        if self.inference == "dense" or not (
                hashed_hidden or (self.inference == "lsh" and self.lsh_layers_[-1])):
            return _forward_dense(X, self.coefs_, self.intercepts_, self.activation,
                                  self.out_activation_)
        if self.inference == "lsh" and self.lsh_layers_[-1]:
            indptr, ids, vals = self._forward_tables(X, hash_output=True)
            out = np.zeros((X.shape[0], self.n_outputs_), dtype=vals.dtype)
            rows = np.repeat(np.arange(X.shape[0]), np.diff(indptr))
            out[rows, ids] = vals
            return out
        return self._forward_tables(X, hash_output=False)

    def _forward_tables(self, X, hash_output, chunk_size=1024):
        """Forward pass with hashed layers retrieving through their tables.

        Deterministic and row by row: the active sets of a sample depend on it
        alone. Returns the (n_samples, n_outputs) outputs, or, with
        ``hash_output``, the output layer's active ids and values as CSR parts
        (indptr, ids, values).
        """
        X = self._prepare_X(X)
        n = X.shape[0]
        rows = max(1, min(n, chunk_size))
        worker = self._network.worker(rows, self._n_threads(rows), inference=True,
                                      hash_output=hash_output)
        worker.set_data(X)
        last = len(self.coefs_) - 1
        dense_out, indptr, ids, vals = [], [0], [], []
        with one_blas_thread():
            for batch in gen_batches(n, chunk_size):
                rows = np.arange(batch.start, batch.stop, dtype=np.intp)
                m = rows.shape[0]
                worker.run(rows, training=False)
                act = worker.activations[last][:m]
                if not hash_output:
                    dense_out.append(act.copy())
                    continue
                n_active = worker.n_active[last][:m]
                act_ids = worker.active_ids[last][:m]
                mask = np.arange(act.shape[1]) < n_active[:, None]
                ids.append(act_ids[mask])
                vals.append(act[mask])
                indptr.extend(indptr[-1] + np.cumsum(n_active))
        if not hash_output:
            return (np.vstack(dense_out) if dense_out
                    else np.zeros((0, self.n_outputs_), dtype=self.coefs_[0].dtype))
        dtype = self.coefs_[0].dtype
        return (np.asarray(indptr, dtype=np.int64),
                np.concatenate(ids) if ids else np.zeros(0, dtype=np.int32),
                np.concatenate(vals) if vals else np.zeros(0, dtype=dtype))

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ----------------------------------------------------------- persistence
    def __getstate__(self):
        # object.__getstate__ gives the live __dict__: change a copy.
        state = dict(super().__getstate__())
        state["_sklearn_lsh_version"] = __version__
        # Every fit and partial_fit draws from a new check_random_state(
        # random_state), so the generator of the last call is not state (a
        # RandomState given as random_state is kept: it is a parameter).
        state.pop("_random_state", None)
        # Views of the layers' arrays, saved once with the network.
        state.pop("coefs_", None)
        state.pop("intercepts_", None)
        return state

    def __setstate__(self, state):
        version = state.pop("_sklearn_lsh_version", None)
        if version != __version__:
            warnings.warn(InconsistentLSHVersionWarning(
                estimator_name=type(self).__name__, original_version=version,
                current_version=__version__))
        super().__setstate__(state)
        if "_network" in state:
            self._check_loaded()
            self._sync_attributes()

    def _check_loaded(self):
        """Refuse a loaded network that is not whole, naming what is wrong."""
        layers = self._network.layers
        try:
            self._network.check()
            shapes = {"n_features_in_": layers[0].weights.shape[1],
                      "n_outputs_": layers[-1].weights.shape[0],
                      "n_layers_": len(layers) + 1}
            for name, value in shapes.items():
                if getattr(self, name, value) != value:
                    raise ValueError(f"{name} is {getattr(self, name)!r}, the "
                                     f"network's is {value}")
        except (ValueError, TypeError, IndexError) as exc:
            raise ValueError(
                f"The saved {type(self).__name__} is inconsistent: "
                f"{str(exc).rstrip('.')}. The "
                "file may be corrupted or truncated; load an intact copy or "
                "refit.") from exc
