"""``solver='lbfgs'``: full-batch L-BFGS-B over the dense network.

A quasi-Newton step needs the exact gradient of every weight over every
sample, so this solver computes every neuron: it trains the network as
scikit-learn's MLP does, with the network's own arrays as its state. The work
is a few matrix products per call, done by BLAS through NumPy; the hashing
core has nothing to add here.
"""

import numpy as np
import scipy.optimize
from scipy.special import xlogy
from sklearn.utils.extmath import safe_sparse_dot


def activate(z, name):
    """Apply an activation in place (also the prediction path's)."""
    if name == "relu":
        np.maximum(z, 0, out=z)
    elif name == "tanh":
        np.tanh(z, out=z)
    elif name == "logistic":
        # Stable for large |z|, as scipy.special.expit.
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += 1
        np.reciprocal(z, out=z)
    elif name == "exp":
        np.exp(z, out=z)
    elif name == "softmax":
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)


def _backprop_activation(a, delta, name):
    """Multiply ``delta`` in place by the activation's derivative, read from
    its output ``a``."""
    if name == "relu":
        delta[a == 0] = 0
    elif name == "tanh":
        delta *= 1 - a**2
    elif name == "logistic":
        delta *= a * (1 - a)


def _data_loss(Y, out, sample_weight, out_activation):
    """MLP's loss of the outputs, averaged over samples (weighted)."""
    if out_activation in ("softmax", "logistic"):
        eps = np.finfo(out.dtype).eps
        p = np.clip(out, eps, 1 - eps)
        per_sample = -xlogy(Y, p)
        if out_activation == "logistic":
            per_sample -= xlogy(1 - Y, 1 - p)
    elif out_activation == "exp":
        # Poisson deviance / 2 up to a constant: MLPRegressor's loss.
        per_sample = xlogy(Y, Y / out) - Y + out
    else:
        per_sample = 0.5 * (Y - out) ** 2
    return float(np.average(per_sample.sum(axis=1), weights=sample_weight))


def loss_and_gradient(layers, X, Y, sample_weight, alpha, activation,
                      out_activation, activations, deltas, coef_grads,
                      intercept_grads):
    """The training objective of the dense network and its gradient.

    The objective is MLP's: the mean loss over samples (weighted by
    ``sample_weight``) plus ``alpha / 2 * sum(W ** 2) / n``, ``n`` the samples'
    weight sum. Each output activation is paired with its canonical loss
    (softmax: cross-entropy; logistic: binary cross-entropy; identity: half
    squared error; exp: Poisson), so the output delta is ``output - Y``. With
    several regression targets the squared errors are summed over targets
    (MLP's gradient; MLP's reported loss averages them instead), so that
    objective and gradient agree for the line search.

    Parameters
    ----------
    layers : list of Layer
        Weights (``(fan_out, fan_in)``) and biases at which to evaluate.
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_outputs)
        Targets: one-hot or indicator rows for a classifier.
    sample_weight : ndarray of shape (n_samples,) or None
    alpha : float
    activation, out_activation : str
    activations : list
        Work space: ``activations[0]`` is ``X``; the layers' outputs are
        written to ``activations[1:]``.
    deltas, coef_grads, intercept_grads : list
        Work space of length ``len(layers)``: filled with the gradients of the
        objective with respect to each layer's pre-activation, ``coefs_`` (as
        MLP shapes them, ``(fan_in, fan_out)``) and ``intercepts_``.

    Returns
    -------
    loss : float
        The objective.
    """
    last = len(layers) - 1
    activations[0] = X
    for i, layer in enumerate(layers):
        z = safe_sparse_dot(activations[i], layer.weights.T)
        z += layer.bias
        activate(z, activation if i < last else out_activation)
        activations[i + 1] = z
    n = X.shape[0] if sample_weight is None else float(sample_weight.sum())
    squares = sum(float(np.dot(w.ravel(), w.ravel()))
                  for w in (layer.weights for layer in layers))
    loss = (_data_loss(Y, activations[-1], sample_weight, out_activation)
            + 0.5 * alpha * squares / n)
    delta = activations[-1] - Y
    if sample_weight is not None:
        delta *= sample_weight[:, None]
    for i in range(last, -1, -1):
        deltas[i] = delta
        coef_grads[i] = safe_sparse_dot(activations[i].T, delta)
        coef_grads[i] += alpha * layers[i].weights.T
        coef_grads[i] /= n
        intercept_grads[i] = delta.sum(axis=0) / n
        if i > 0:
            delta = delta @ layers[i].weights
            _backprop_activation(activations[i], delta, activation)
    return loss


def pack(arrays):
    """One float64 vector of ``arrays``' elements, each in C order."""
    return np.concatenate([np.ravel(a).astype(np.float64) for a in arrays])


def unpack(params, layers):
    """Write ``params`` (as ``pack`` lays out ``coefs_ + intercepts_``) into the
    layers' arrays, in place: views of them stay valid."""
    start = 0
    for layer in layers:
        n_out, n_in = layer.weights.shape
        end = start + n_in * n_out
        layer.weights[...] = params[start:end].reshape(n_in, n_out).T
        start = end
    for layer in layers:
        end = start + layer.bias.shape[0]
        layer.bias[...] = params[start:end]
        start = end


def minimize(fun, x0, *, max_iter, max_fun, tol, verbose, progress):
    """Run L-BFGS-B on ``fun`` (returning objective and gradient) from ``x0``.

    Returns scipy's ``OptimizeResult``. ``progress["n_iter"]`` counts the
    iterations as they end (it survives an interruption); with ``verbose``,
    each iteration's objective is printed as MLP's stochastic solvers print
    theirs.
    """
    def callback(intermediate_result):
        progress["n_iter"] += 1
        if verbose:
            print("Iteration %d, loss = %.8f" % (progress["n_iter"],
                                                 intermediate_result.fun))

    return scipy.optimize.minimize(
        fun, x0, method="L-BFGS-B", jac=True, callback=callback,
        options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol})
