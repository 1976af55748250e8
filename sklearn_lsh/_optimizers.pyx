"""Optimizer steps on single parameter rows.

The training core updates only the rows (neurons) a batch touched, each with its
own step count, so a step costs in proportion to the touched rows. The formulas
are those of scikit-learn's ``AdamOptimizer`` and ``SGDOptimizer``: the gradient
of a row is ``scale * (grad + alpha * param)`` with ``scale = 1 / sum of sample
weights`` of the batch. ``grad`` is zeroed on return, ready for the next row.
"""
from libc.math cimport sqrt

from cython cimport floating

from ._typedefs cimport int64_t, intp_t


cdef void adam_row(
    floating* param,             # IN/OUT
    floating* first_moment,      # IN/OUT
    floating* second_moment,     # IN/OUT
    floating* grad,              # IN, zeroed on return
    intp_t n,
    double scale,
    double alpha,
    double learning_rate,
    double beta_1,
    double beta_2,
    double epsilon,
    int64_t step,
) noexcept nogil:
    cdef intp_t j
    cdef double g, m, v
    # Bias correction with this row's own step count (lazy Adam).
    cdef double lr = (learning_rate * sqrt(1.0 - beta_2 ** step)
                      / (1.0 - beta_1 ** step))
    for j in range(n):
        g = scale * (grad[j] + alpha * param[j])
        grad[j] = 0
        m = beta_1 * first_moment[j] + (1.0 - beta_1) * g
        v = beta_2 * second_moment[j] + (1.0 - beta_2) * g * g
        first_moment[j] = <floating> m
        second_moment[j] = <floating> v
        param[j] = <floating> (param[j] - lr * m / (sqrt(v) + epsilon))


cdef void sgd_row(
    floating* param,        # IN/OUT
    floating* velocity,     # IN/OUT
    floating* grad,         # IN, zeroed on return
    intp_t n,
    double scale,
    double alpha,
    double learning_rate,
    double momentum,
    bint nesterov,
) noexcept nogil:
    cdef intp_t j
    cdef double g, update
    for j in range(n):
        g = scale * (grad[j] + alpha * param[j])
        grad[j] = 0
        update = momentum * velocity[j] - learning_rate * g
        velocity[j] = <floating> update
        if nesterov:
            update = momentum * update - learning_rate * g
        param[j] = <floating> (param[j] + update)


def _adam_rows(
    floating[:, ::1] param,
    floating[:, ::1] first_moment,
    floating[:, ::1] second_moment,
    floating[:, ::1] grad,
    const int64_t[::1] rows,
    const int64_t[::1] steps,
    double scale,
    double alpha,
    double learning_rate,
    double beta_1,
    double beta_2,
    double epsilon,
):
    """Apply ``adam_row`` to the given rows (a test entry point)."""
    cdef intp_t i, r
    cdef intp_t n = param.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        adam_row(&param[r, 0], &first_moment[r, 0], &second_moment[r, 0],
                 &grad[r, 0], n, scale, alpha, learning_rate, beta_1, beta_2,
                 epsilon, steps[i])


def _sgd_rows(
    floating[:, ::1] param,
    floating[:, ::1] velocity,
    floating[:, ::1] grad,
    const int64_t[::1] rows,
    double scale,
    double alpha,
    double learning_rate,
    double momentum,
    bint nesterov,
):
    """Apply ``sgd_row`` to the given rows (a test entry point)."""
    cdef intp_t i, r
    cdef intp_t n = param.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        sgd_row(&param[r, 0], &velocity[r, 0], &grad[r, 0], n, scale, alpha,
                learning_rate, momentum, nesterov)
