"""The optimizer's Python side: its solver, learning rate and step count.

The moments live on the layers (``Layer.moment1_w`` ...); the compiled worker
steps the rows a batch touched (``_optimizers.pyx``). Like scikit-learn's
``SGDOptimizer`` and ``AdamOptimizer``, this object keeps the current
``learning_rate`` and decides what the 'invscaling' and 'adaptive' schedules
do at the end of an epoch.
"""

import numpy as np


class LazyOptimizer:
    """Adam or SGD over the weights a batch touched, with closed-form catch-up.

    Parameters
    ----------
    solver : {'adam', 'sgd'}
        Fixed for the optimizer's life: its state has that solver's shape.
    learning_rate_init : float
        The initial learning rate.
    """

    def __init__(self, solver, learning_rate_init):
        self.solver = solver
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        # Steps taken (Adam's t): every weight is caught up to it at the end of
        # a call, so no per-weight count outlives the call.
        self.steps = 0
        self.hyperparameters = {}

    def init_state(self, layers):
        """Zero moments on every layer (SGD keeps no second moment)."""
        for layer in layers:
            layer.moment1_w = _zeros_as(layer.weights)
            layer.moment1_b = _zeros_as(layer.bias)
            second = self.solver == "adam"
            layer.moment2_w = _zeros_as(layer.weights) if second else None
            layer.moment2_b = _zeros_as(layer.bias) if second else None

    def configure(self, *, beta_1, beta_2, epsilon, momentum, nesterov):
        """Take the hyperparameters of this fit call (they may change between
        calls, as in scikit-learn's MLP)."""
        self.hyperparameters = dict(beta_1=float(beta_1), beta_2=float(beta_2),
                                    epsilon=float(epsilon), momentum=float(momentum),
                                    nesterov=bool(nesterov))

    def params(self):
        """The step's parameters for the worker's ``run`` and ``catch_up``."""
        return dict(solver=self.solver, learning_rate=self.learning_rate,
                    **self.hyperparameters)

    def catch_up(self, worker, layers=None):
        """Move the weights no gradient reached as the optimizer would have
        (of the layers of these indices; None: all)."""
        worker.catch_up(layers, **self.params())
        self.steps = worker.step_base + worker.step

    def iteration_ends(self, time_step, schedule, power_t):
        """'invscaling' SGD: the rate after ``time_step`` samples."""
        if self.solver == "sgd" and schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** power_t

    def trigger_stopping(self, msg, verbose, schedule):
        """Whether to stop; 'adaptive' SGD divides its rate by 5 first."""
        if self.solver != "sgd" or schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


def _zeros_as(a):
    """Zeros of ``a``'s shape, dtype and layout.

    ``np.zeros`` takes pages the kernel zeroes on first write, where
    ``np.zeros_like`` writes every page here: at 670,091 outputs the moments'
    686 MB took 1.7 s of one thread before training; now their pages are
    first touched by the optimizer's threads.
    """
    return np.zeros(a.shape, dtype=a.dtype,
                    order="F" if not a.flags.c_contiguous and a.flags.f_contiguous
                    else "C")
