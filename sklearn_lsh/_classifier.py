"""LSHMLPClassifier: a multi-layer perceptron classifier with hashed layers."""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import gen_batches
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._base import _BaseLSHMLP
from ._params import PARAMETER_CONSTRAINTS


class LSHMLPClassifier(ClassifierMixin, _BaseLSHMLP):
    """Multi-layer perceptron classifier whose wide layers are hashed.

    The parameters and fitted attributes of
    :class:`sklearn.neural_network.MLPClassifier`, with the same names, defaults
    and meaning, plus those of locality-sensitive
    hashing: each hashed layer keeps its neurons' weight vectors in ``n_tables``
    hash tables, and each sample computes, forward and backward, only the
    neurons its input retrieves (and, in the output layer, its true labels).

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The optimizer. 'lbfgs' (full-batch quasi-Newton, as in MLPClassifier)
        needs the exact gradient of every weight, so it trains the dense
        network: no layer hashes, and hashing parameters set away from their
        defaults draw a warning. ``partial_fit`` is unavailable with it.
    alpha : float, default=0.0001
        L2 penalty, applied to the rows (neurons) a batch touches.
    batch_size : int or 'auto', default='auto'
        Mini-batch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule of 'sgd'.
    learning_rate_init : float, default=0.001
        Initial learning rate.
    power_t : float, default=0.5
        Exponent of 'invscaling'.
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Whether to shuffle the samples at each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the hash functions, the shuffles and the random
        padding of active sets. With an int and one thread (or any number of
        threads: the batch step does not depend on it) training is
        reproducible bit for bit.
    tol : float, default=1e-4
        Tolerance of the stopping rule.
    verbose : bool, default=False
        Print progress; MLP's lines, with the multiplication share, hashing and
        rebuild time after them.
    warm_start : bool, default=False
        Reuse the previous solution as the initialisation of ``fit``.
    momentum : float, default=0.9
        Momentum of 'sgd'.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for 'sgd'.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` (stratified, unless multilabel) and
        stop when its accuracy stops improving; the model is then the network
        of the best epoch (its weights and its hash tables).
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates.
    epsilon : float, default=1e-8
        Adam's numerical stability term.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping.
    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.
    weight_init : {'auto', 'glorot', 'fan_in'}, default='auto'
        Initial weights and biases, uniform in ``[-b, b]``: 'glorot' draws them
        as MLPClassifier does (``b = sqrt(6 / (fan_in + fan_out))``, 2 instead
        of 6 for 'logistic'; the same values for the same ``random_state``).
        'auto' keeps MLPClassifier's draws for dense layers (and for a hashed
        layer whose budget covers its width); a hashed hidden layer takes
        Glorot's bound with the fan-out a sample backpropagates through, its
        active budget (``b = sqrt(6 / (fan_in + budget))``), and a hashed
        output layer He's bound, Glorot's without the fan-out term
        (``b = sqrt(6 / fan_in)``), from which a wide output layer trains
        much faster (``doc/parameters.rst`` has the figures). 'fan_in' as
        PyTorch's ``nn.Linear`` (``b = 1 / sqrt(fan_in)``). Glorot's bound over
        the full width starts a wide output layer with weights so small that
        the scores are left to the biases (0.003 for 128 -> 670,091).
    hash_family : {'auto', 'dwta', 'wta', 'simhash', 'minhash'}, default='auto'
        The LSH family of the layers that retrieve through tables. 'auto':
        per layer, SimHash (signed random projections of each neuron's row
        less the layer's mean row and, over a dense hidden layer, of the
        input less its mean; it ranks by angle, as inner products need)
        unless building its tables costs more than twice the scoring of the
        batches between rebuilds (a very wide layer under a fixed count, such
        as 670,091 outputs with ``active_fraction=1000``, or a hidden layer
        over a sparse input of many features, whose candidates cost only its
        non-zeros) or its retrieval more than scoring every neuron (a first
        layer over a hundred dense features), then DWTA. The fitted
        ``hash_family_`` gives each layer's family.
    n_hash_bits : int or 'auto', default='auto'
        K, codes per table key. 'auto' sizes the buckets so that the
        ``n_tables`` buckets a query visits hold about 5 times the candidates
        (``candidate_factor`` times the budget). At most 8 (24 for
        'simhash'): a key holds 24 bits.
    n_tables : int or 'auto', default='auto'
        L, tables per hashed layer. 'auto' is 100 (the KDD 2017 setting).
    active_fraction : float in (0, 1] or int >= 1, default=0.05
        The active budget of each hashed layer: a share of its neurons, or a
        count. Under ``lsh_layers='auto'`` a layer whose budget is its whole
        width is computed dense (every neuron, by matrix products).
    sampling : {'topk', 'union', 'threshold'}, default='topk'
        How the tables' answer is read: the most frequent ids across the
        tables (KDD 2017), the union of the buckets in table order (SLIDE), or
        the ids found in at least ``sampling_threshold`` tables; each up to
        ``candidate_factor`` times the budget.
    sampling_threshold : int, default=2
        The table count of 'threshold'.
    candidate_factor : float >= 1, default=1.5
        Retrieve up to this many times the active budget, compute their
        pre-activations exactly and keep the budget largest (the k winners
        among the candidates; the true labels of the output layer are always
        kept). 1 keeps the retrieved neurons as they come. The ranking's
        multiply-adds are counted in ``multiplication_share_``: a layer with
        dense input computes at most ``candidate_factor * active_fraction``
        of its neurons. On load_digits, hidden (1000,), 10% active,
        random_state=0: test accuracy 0.936 with 1 (0.916 with 'union'), 0.962
        with 1.5, against MLPClassifier's 0.976.
    min_active : int or 'auto', default='auto'
        Active sets smaller than this are padded with random neurons; 'auto'
        is half the budget.
    lsh_layers : 'auto', 'all', 'none' or list of int, default='auto'
        Which weight layers hash (0 is the first hidden layer, the last is the
        output layer). 'auto' hashes layers of at least 256 neurons, unless
        the budget keeps all of them active.
    selection : {'auto', 'lsh', 'exact'}, default='auto'
        How a hashed layer chooses its active neurons. 'lsh': the neurons its
        input's hash retrieves from the tables (the best ``budget`` of them by
        pre-activation). 'exact': the ``budget`` neurons of largest
        pre-activation, every neuron scored over the input's non-zeros, no
        tables (costs ``n_out x nnz(input)`` multiply-adds a sample, cheap when
        the input is the sparse output of a hashed layer). 'auto' chooses per
        layer from a cost model (input non-zeros, width, budget, K, L): exact
        scores where they are cheap (a sparse input, or one so narrow that
        they cost less than hashing it); for a first layer over a dense ``X``
        whose variance lies mostly in a few directions (images, for example),
        scores in those directions (estimated from ``X`` at the first fit),
        the best candidates then ranked exactly ('subspace'); tables
        otherwise. ``layer_selection_`` says what it chose.
    rebuild_schedule : {'exponential', 'fixed'}, default='exponential'
        When the tables are rebuilt from the current weights: first after
        ``rebuild_interval`` batches, then at intervals growing by
        ``exp(rebuild_decay)`` each time, or every ``rebuild_interval`` batches.
    rebuild_interval : int or 'auto', default='auto'
        Batches before the first rebuild. 'auto': 50, or for a layer whose
        table build costs more than twice the scoring of its candidates over
        50 batches (hundreds of thousands of neurons), as many batches as
        bring it to that; every later interval keeps that floor.
    rebuild_decay : float, default=0.1
        Growth rate of the exponential schedule.
    rehash_interval : int or None, default=10
        Every this many rebuilds, new hash functions are drawn; None never.
    inference : {'auto', 'dense', 'lsh'}, default='auto'
        How predictions are computed. 'auto': hashed hidden layers compute the
        neurons their tables retrieve, as in training (the function the network
        was trained as), and the output layer computes every class. 'dense':
        every neuron of every layer (the MLP with these weights; accurate only
        when the active fraction is large). 'lsh': the output layer too goes
        through its tables, for speed on wide outputs. All are deterministic:
        a row's prediction depends on that row alone.
    n_jobs : int or None, default=None
        OpenMP threads. None follows the OpenMP runtime (``OMP_NUM_THREADS``,
        threadpoolctl), capped at the number of cores, and uses one thread
        for a network whose batches are too small to share (under about a
        million multiply-adds a batch: waiting at each step's barriers would
        cost more than the work saved, far more on a busy machine); -1 is all
        threads. Results do not depend on the thread count.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.
    loss_ : float
        Loss of the last epoch (over the active outputs of each sample).
    best_loss_ : float or None
        Best training loss; None with early stopping.
    loss_curve_ : list of float
        Loss of each epoch.
    validation_scores_ : list of float or None
        Validation accuracy of each epoch with early stopping.
    best_validation_score_ : float or None
        Best validation accuracy with early stopping.
    t_ : int
        Training samples seen.
    coefs_ : list of ndarray of shape (fan_in, fan_out)
        Weights; each is the transposed view of a (fan_out, fan_in) array in
        which a neuron's weights are contiguous.
    intercepts_ : list of ndarray of shape (fan_out,)
        Biases.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names, when X has string column names.
    n_iter_ : int
        Epochs run by the last call.
    n_layers_ : int
        Number of layers.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Output activation.
    lsh_layers_ : list of bool
        Whether each weight layer hashes.
    layer_selection_ : list of str
        How each weight layer chooses its active neurons: 'dense' (all),
        'lsh' (tables), 'exact' or 'subspace' (see ``selection``).
    active_set_recall_ : list of float or None
        Per weight layer, the recall of the exact top-budget neurons (by
        pre-activation) in the active sets the layer chose on up to 256
        training rows at the end of the last call (see
        ``sklearn_lsh.inspection.active_set_recall``); None for a dense layer.
    hash_family_ : list of str or None
        The hash family of each layer that retrieves through tables (None for
        the other layers).
    n_hash_bits_, n_tables_ : list of int or None
        K and L of each layer that retrieves through tables.
    active_budget_ : list of int
        The active budget of each weight layer (its width if dense).
    multiplication_share_ : float
        Multiply-adds of the last epoch's forward passes over those of the dense
        network (Spring & Shrivastava's "multiplications": active neurons x
        active fan-in).
    layer_multiplication_share_ : list of float
        The same, per weight layer.
    mean_active_ : list of float
        Mean active-set size of each weight layer in the last epoch.
    hashing_time_ : float
        Seconds spent hashing inputs and querying tables in the last call
        (summed over threads).
    rebuild_time_ : float
        Seconds spent rebuilding tables in the last call.

    See Also
    --------
    LSHMLPRegressor : The regressor with hashed hidden layers.
    sklearn.neural_network.MLPClassifier : The dense network with the same
        parameters.

    Notes
    -----
    The optimizer steps only the neurons a batch touched, and in a neuron fed
    by a sparse input (CSR X, or a hashed layer below) only the weights of the
    inputs it saw: a step costs in proportion to the touched weights. The
    weights a step skips are not frozen: before their next step (and at the end
    of every epoch) they take the skipped steps in closed form, as the dense
    optimizer would have moved them with its momentum (exactly for 'sgd'; for
    'adam' up to ``epsilon`` and the bias correction of the first few steps).
    The L2 penalty reaches a weight only when it is stepped. The training
    loss is computed over each sample's active outputs (a sampled softmax in a
    hashed output layer); its L2 term uses the weights at the end of the epoch.

    On Fashion-MNIST, 784-1000x3-10 at 5%, 10 epochs, the defaults reach 0.838
    test accuracy (15.0 s an epoch; the first layer retrieves through tables,
    the two others score exactly) against MLPClassifier's 0.891 (43.3 s) in the
    same run (``benchmarks/README.md``). On wide outputs (10^4 classes and
    more), a ``candidate_factor`` of 3-4 ranks more candidates for a higher
    precision (WordNet, 16,897 classes: P@1 0.321 against PyTorch's 0.327 with
    ``weight_init='fan_in', candidate_factor=4``).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_lsh import LSHMLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = LSHMLPClassifier(hidden_layer_sizes=(1000,), active_fraction=0.1,
    ...                        max_iter=5, random_state=0).fit(X / 16, y)
    >>> clf.lsh_layers_
    [True, False]
    """

    _parameter_constraints: dict = PARAMETER_CONSTRAINTS

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        weight_init="auto",
        hash_family="auto",
        n_hash_bits="auto",
        n_tables="auto",
        active_fraction=0.05,
        sampling="topk",
        sampling_threshold=2,
        candidate_factor=1.5,
        min_active="auto",
        lsh_layers="auto",
        selection="auto",
        rebuild_schedule="exponential",
        rebuild_interval="auto",
        rebuild_decay=0.1,
        rehash_interval=10,
        inference="auto",
        n_jobs=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss="log_loss",
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            weight_init=weight_init,
            hash_family=hash_family,
            n_hash_bits=n_hash_bits,
            n_tables=n_tables,
            active_fraction=active_fraction,
            sampling=sampling,
            sampling_threshold=sampling_threshold,
            candidate_factor=candidate_factor,
            min_active=min_active,
            lsh_layers=lsh_layers,
            selection=selection,
            rebuild_schedule=rebuild_schedule,
            rebuild_interval=rebuild_interval,
            rebuild_decay=rebuild_decay,
            rehash_interval=rehash_interval,
            inference=inference,
            n_jobs=n_jobs,
        )

    def _validate_input(self, X, y, incremental, reset, classes=None):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
            dtype=(np.float64, np.float32), reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if classes is not None:
            # The first call to partial_fit: the classes are given (those of a
            # multilabel y are its columns).
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
            self.classes_ = self._label_binarizer.classes_
        elif (not hasattr(self, "classes_")) or (
                not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            return X, y
        y_classes = unique_labels(y)
        if self.warm_start and not incremental:
            if set(y_classes) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same "
                    "classes as in the previous call to fit. Previously "
                    f"got {self.classes_}, `y` has {y_classes}"
                )
        elif len(np.setdiff1d(y_classes, self.classes_, assume_unique=True)):
            raise ValueError(
                "`y` has classes not in `self.classes_`. "
                f"`self.classes_` has {self.classes_}. 'y' has {y_classes}."
            )
        return X, y

    def _encode_targets(self, y):
        """Targets for the core: dense Y, and label lists for a hashed output."""
        y_type = self._label_binarizer.y_type_
        n_classes = len(self.classes_)
        n = y.shape[0]
        if y_type == "multilabel-indicator":
            Y = sp.csr_matrix(y)
            Y.eliminate_zeros()
            Y.sort_indices()
            indptr = Y.indptr.astype(np.int64)
            label_ids = Y.indices.astype(np.int32)
            # The dense indicator is built only for a dense output layer (_fit).
            return {"n_outputs": n_classes, "y": y, "stratify": None,
                    "indicator": Y, "label_indptr": indptr,
                    "label_ids": label_ids,
                    "max_labels": int(np.diff(indptr).max(initial=0))}
        codes = np.searchsorted(self.classes_, y)
        if n_classes <= 2:
            # One logistic output, as MLP (a single class: always 0).
            dense = (codes == 1).reshape(-1, 1) if n_classes == 2 else np.zeros(
                (n, 1), dtype=bool)
            # Stratified on the binarised column, as MLP (its error for a
            # class too small to split names the class 'True' or 'False').
            return {"n_outputs": 1, "y": y, "stratify": dense, "dense": dense}
        # One-hot targets are built only for a dense output layer (_fit).
        return {"n_outputs": n_classes, "y": y, "stratify": y,
                "label_indptr": np.arange(n + 1, dtype=np.int64),
                "label_ids": codes.astype(np.int32), "max_labels": 1}

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels, or a multilabel indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The fitted model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(_BaseLSHMLP._check_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            All the classes; required on the first call, and equal to the
            first call's if given again.

        Returns
        -------
        self : object
            The updated model.
        """
        # Parameters first, as scikit-learn's check_param_validation expects.
        self._validate_params()
        first_call = not hasattr(self, "classes_")
        if first_call and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None and not first_call:
            if not np.array_equal(self.classes_, unique_labels(classes)):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call to "
                    f"partial_fit, was: {self.classes_!r}"
                )
        # On a first call, _fit sets classes_ from `classes` once the data are
        # checked (LabelBinarizer sorts them: at 670,091 classes each pass
        # costs 0.4 s).
        return self._fit(X, y, sample_weight=sample_weight, incremental=True,
                         classes=classes if first_call else None)

    def predict(self, X):
        """Predict classes.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    def predict_proba(self, X):
        """Probability estimates, computed over every output neuron.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Probability of each class, in the order of ``classes_``.
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """Log of the probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_topk(self, X, k=5, *, chunk_size=None):
        """The k best classes of each row and their scores.

        Computed in row chunks, so no (n_samples, n_classes) array is built.
        With ``inference='lsh'`` and a hashed output layer, only the retrieved
        classes compete (rows with fewer than k retrieved are padded with the
        first class and score 0).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        k : int, default=5
            How many classes per row.
        chunk_size : int, default=None
            Rows per chunk. None: as many as keep a chunk's outputs within
            scikit-learn's ``working_memory`` (``sklearn.set_config``, 1 GiB
            by default): 100 rows at 670,091 float32 classes.

        Returns
        -------
        classes : ndarray of shape (n_samples, k)
            Class labels, best first.
        scores : ndarray of shape (n_samples, k)
            Their output activations (probabilities), best first.
        """
        check_is_fitted(self)
        n_classes = len(self.classes_)
        if (not isinstance(k, numbers.Integral) or isinstance(k, bool)
                or not 1 <= k <= n_classes):
            raise ValueError(f"k must be an int in [1, {n_classes}]; got {k!r}.")
        if chunk_size is not None and (
                not isinstance(chunk_size, numbers.Integral)
                or isinstance(chunk_size, bool) or chunk_size < 1):
            raise ValueError("chunk_size must be None or an int >= 1; got "
                             f"{chunk_size!r}.")
        if self.inference == "lsh" and self.lsh_layers_[-1]:
            X = validate_data(self, X, accept_sparse=["csr", "csc"],
                              dtype=(np.float64, np.float32), reset=False)
            indptr, ids, vals = self._forward_tables(X, hash_output=True)
            n = indptr.shape[0] - 1
            rows = np.repeat(np.arange(n), np.diff(indptr))
            # Each row's retrieved classes best first (ties: retrieval order),
            # then the first k of each row scattered into place.
            order = np.lexsort((np.arange(rows.shape[0]), -vals, rows))
            rank = np.arange(rows.shape[0]) - indptr[rows]
            keep = rank < k
            top = np.zeros((n, k), dtype=np.intp)
            scores = np.zeros((n, k), dtype=vals.dtype)
            top[rows[keep], rank[keep]] = ids[order][keep]
            scores[rows[keep], rank[keep]] = vals[order][keep]
            return self.classes_[top], scores
        X = validate_data(self, X, accept_sparse=["csr", "csc"],
                          dtype=(np.float64, np.float32), reset=False)
        if chunk_size is None:
            # A chunk's outputs, the two-class copy and argpartition's indices.
            row_bytes = max(2, n_classes) * (2 * X.dtype.itemsize + 8)
            budget = get_config()["working_memory"] * 2**20
            chunk_size = max(1, int(budget // row_bytes))
        last = max(2, n_classes) - k
        tops, scores = [], []
        for batch in gen_batches(X.shape[0], chunk_size):
            proba = self._forward_pass_fast(X[batch], check_input=False)
            if proba.shape[1] == 1:
                proba = np.hstack([1 - proba, proba])
            # The k largest in the last k places (no negated copy of proba).
            part = np.argpartition(proba, last, axis=1)[:, last:]
            part_scores = np.take_along_axis(proba, part, axis=1)
            order = np.argsort(-part_scores, axis=1, kind="stable")
            tops.append(np.take_along_axis(part, order, axis=1))
            scores.append(np.take_along_axis(part_scores, order, axis=1))
        return self.classes_[np.vstack(tops)], np.vstack(scores)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
