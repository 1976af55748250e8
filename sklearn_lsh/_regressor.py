"""LSHMLPRegressor: a multi-layer perceptron regressor whose wide hidden layers
are hashed."""

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._base import _BaseLSHMLP
from ._params import REGRESSOR_PARAMETER_CONSTRAINTS


class LSHMLPRegressor(RegressorMixin, _BaseLSHMLP):
    """Multi-layer perceptron regressor whose wide hidden layers are hashed.

    The parameters and fitted attributes of
    :class:`sklearn.neural_network.MLPRegressor`, plus those of
    locality-sensitive hashing; see :class:`LSHMLPClassifier` for their
    meaning. The output layer is always dense.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        Half squared error with identity output, or half Poisson deviance with
        exponential output.
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The optimizer; 'lbfgs' trains the dense network (see
        :class:`LSHMLPClassifier`) and has no ``partial_fit``.
    alpha : float, default=0.0001
        L2 penalty.
    batch_size : int or 'auto', default='auto'
        Mini-batch size.
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
        Seeds all randomness.
    tol : float, default=1e-4
        Tolerance of the stopping rule.
    verbose : bool, default=False
        Print progress.
    warm_start : bool, default=False
        Reuse the previous solution.
    momentum : float, default=0.9
        Momentum of 'sgd'.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum.
    early_stopping : bool, default=False
        Stop on a held-out R^2; the model is then the network of the best
        epoch (its weights and its hash tables).
    validation_fraction : float, default=0.1
        Held-out share for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates.
    epsilon : float, default=1e-8
        Adam's stability term.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping.
    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.
    weight_init : {'auto', 'glorot', 'fan_in'}, default='auto'
        Initial weights and biases, uniform in ``[-b, b]``: 'glorot' draws them
        as MLPRegressor does (``b = sqrt(6 / (fan_in + fan_out))``, 2 instead
        of 6 for 'logistic'; the same values for the same ``random_state``).
        'auto' is 'glorot' for the regressor: the classifier's budget bound
        for hashed layers (see :class:`LSHMLPClassifier`) made a regressor's
        hashed hidden layer overfit (R^2 0.80 against 0.88 on
        ``make_regression``, hidden 1000). 'fan_in' as PyTorch's
        ``nn.Linear`` (``b = 1 / sqrt(fan_in)``).
    hash_family : {'auto', 'dwta', 'wta', 'simhash', 'minhash'}, default='auto'
        LSH family; 'auto' as in LSHMLPClassifier.
    n_hash_bits : int or 'auto', default='auto'
        K, at most 8 (24 for 'simhash'; see LSHMLPClassifier).
    n_tables : int or 'auto', default='auto'
        L.
    active_fraction : float in (0, 1] or int >= 1, default=0.05
        Active budget of each hashed layer (under ``lsh_layers='auto'``, a
        layer whose budget is its whole width is computed dense).
    sampling : {'union', 'topk', 'threshold'}, default='union'
        How the tables' answer is read (see LSHMLPClassifier).
    sampling_threshold : int, default=2
        Table count of 'threshold'.
    candidate_factor : float >= 1, default=1.0
        Candidates retrieved per active slot; the budget with the largest
        exact pre-activations is kept (see LSHMLPClassifier). The regressor's
        defaults differ from the classifier's because they fit better here:
        on make_regression (600 samples, hidden (512,), 25% active) test R^2
        is 0.95 with 'union' and 1.0, 0.90 with 'topk' and 1.5 (ranked
        k-winners of a plateau at 27 epochs), 0.97 with 2.0 and
        ``n_hash_bits=1``.
    min_active : int or 'auto', default='auto'
        Minimum active-set size (random padding).
    lsh_layers : 'auto', 'all', 'none' or list of int, default='auto'
        Which hidden layers hash.
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
        Table rebuild schedule.
    rebuild_interval : int or 'auto', default='auto'
        Batches before the first rebuild. 'auto': 50, or for a layer whose
        table build costs more than twice the scoring of its candidates over
        50 batches (hundreds of thousands of neurons), as many batches as
        bring it to that; every later interval keeps that floor.
    rebuild_decay : float, default=0.1
        Growth rate of the exponential schedule.
    rehash_interval : int or None, default=10
        Rebuilds between new hash functions.
    inference : {'auto', 'dense'}, default='auto'
        'auto': hashed hidden layers retrieve through their tables as in
        training; 'dense': every neuron ('lsh' acts as 'auto': regression
        outputs are always all computed).
    n_jobs : int or None, default=None
        OpenMP threads, as in LSHMLPClassifier: None is the OpenMP runtime's
        count, or one thread for batches of under about a million
        multiply-adds; -1 is all threads.

    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_
        As MLPRegressor (R^2 for validation scores).
    t_, coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_
        As MLPRegressor.
    n_layers_, n_outputs_, out_activation_
        As MLPRegressor.
    lsh_layers_, layer_selection_, n_hash_bits_, n_tables_, active_budget_
        Hashing configuration per weight layer.
    hash_family_ : list of str or None
        The hash family of each layer that retrieves through tables (None for
        the other layers).
    active_set_recall_ : list of float or None
        Per weight layer, the recall of the exact top-budget neurons in the
        active sets chosen on up to 256 training rows (see
        ``sklearn_lsh.inspection.active_set_recall``); None for a dense layer.
    multiplication_share_, layer_multiplication_share_, mean_active_
        Multiply-add share of the last epoch against the dense network, and
        mean active-set sizes.
    hashing_time_, rebuild_time_
        Seconds hashing/querying and rebuilding in the last call.

    See Also
    --------
    LSHMLPClassifier : The classifier, whose docstring details the hashing
        parameters.
    sklearn.neural_network.MLPRegressor : The dense network with the same
        parameters.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn_lsh import LSHMLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=10, random_state=0)
    >>> reg = LSHMLPRegressor(hidden_layer_sizes=(300,), max_iter=5,
    ...                       random_state=0).fit(X, y)
    >>> reg.lsh_layers_
    [True, False]
    """

    _parameter_constraints: dict = REGRESSOR_PARAMETER_CONSTRAINTS

    def __init__(
        self,
        loss="squared_error",
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
        sampling="union",
        sampling_threshold=2,
        candidate_factor=1.0,
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
            loss=loss,
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
            y_numeric=True, dtype=(np.float64, np.float32), reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' requires y >= 0; y has negative values "
                             f"(the least is {float(np.min(y))}).")
        return X, y

    def _weight_init(self):
        # The budget's larger bound trains a classifier's hashed layers faster
        # but makes a regressor overfit: on make_regression (hidden 1000, 5%)
        # R^2 0.80 against 0.88 with Glorot's draws.
        return "glorot" if self.weight_init == "auto" else self.weight_init

    def _encode_targets(self, y):
        dense = y.reshape(-1, 1) if y.ndim == 1 else y
        return {"n_outputs": dense.shape[1], "y": y, "stratify": None,
                "dense": dense}

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The fitted model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(_BaseLSHMLP._check_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The updated model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predict using the network (every neuron).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
