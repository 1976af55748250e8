"""Optimizer steps on single parameter rows.

The training core updates only the rows (neurons) a batch touched, each with its
own step count, and within a row fed by a sparse input only the entries of the
inputs it saw, so a step costs in proportion to the touched weights. The
formulas are those of scikit-learn's ``AdamOptimizer`` and ``SGDOptimizer``,
computed in the parameters' precision as NumPy computes them there: the
gradient of an entry is ``scale * (grad + alpha * param)`` with
``scale = 1 / sum of sample weights`` of the batch. ``grad`` is zeroed on
return, ready for the next row.
"""
from libc.math cimport sqrt

from cython cimport floating

from ._typedefs cimport int32_t, int64_t, intp_t


cdef inline void _adam_entry(
    floating* param, floating* m, floating* v, floating* grad, intp_t j,
    floating scale, floating alpha, floating lr, floating beta_1,
    floating beta_2, floating epsilon,
) noexcept nogil:
    cdef floating g = scale * (grad[j] + alpha * param[j])
    grad[j] = 0
    m[j] = beta_1 * m[j] + (1 - beta_1) * g
    v[j] = beta_2 * v[j] + (1 - beta_2) * g * g
    param[j] -= lr * m[j] / (<floating> sqrt(v[j]) + epsilon)


cdef void adam_row(
    floating* param,             # IN/OUT
    floating* first_moment,      # IN/OUT
    floating* second_moment,     # IN/OUT
    floating* grad,              # IN, zeroed on return
    const int32_t* cols,         # IN: the entries to update, or NULL for all
    intp_t n,
    double scale,
    double alpha,
    double learning_rate,
    double beta_1,
    double beta_2,
    double epsilon,
    int64_t step,
) noexcept nogil:
    cdef intp_t i
    # Bias correction with this row's own step count (lazy Adam).
    cdef floating lr = <floating> (learning_rate * sqrt(1.0 - beta_2 ** step)
                                   / (1.0 - beta_1 ** step))
    if cols == NULL:
        for i in range(n):
            _adam_entry(param, first_moment, second_moment, grad, i,
                        <floating> scale, <floating> alpha, lr,
                        <floating> beta_1, <floating> beta_2, <floating> epsilon)
    else:
        for i in range(n):
            _adam_entry(param, first_moment, second_moment, grad, cols[i],
                        <floating> scale, <floating> alpha, lr,
                        <floating> beta_1, <floating> beta_2, <floating> epsilon)


cdef inline void _sgd_entry(
    floating* param, floating* velocity, floating* grad, intp_t j,
    floating scale, floating alpha, floating lr, floating momentum,
    bint nesterov,
) noexcept nogil:
    cdef floating g = scale * (grad[j] + alpha * param[j])
    cdef floating update = momentum * velocity[j] - lr * g
    grad[j] = 0
    velocity[j] = update
    if nesterov:
        update = momentum * update - lr * g
    param[j] += update


cdef void sgd_row(
    floating* param,        # IN/OUT
    floating* velocity,     # IN/OUT
    floating* grad,         # IN, zeroed on return
    const int32_t* cols,    # IN: the entries to update, or NULL for all
    intp_t n,
    double scale,
    double alpha,
    double learning_rate,
    double momentum,
    bint nesterov,
) noexcept nogil:
    cdef intp_t i
    if cols == NULL:
        for i in range(n):
            _sgd_entry(param, velocity, grad, i, <floating> scale,
                       <floating> alpha, <floating> learning_rate,
                       <floating> momentum, nesterov)
    else:
        for i in range(n):
            _sgd_entry(param, velocity, grad, cols[i], <floating> scale,
                       <floating> alpha, <floating> learning_rate,
                       <floating> momentum, nesterov)


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
    const int32_t[::1] cols=None,
):
    """Apply ``adam_row`` to the given rows (a test entry point).

    ``cols``, if given, restricts every row's update to those entries.
    """
    cdef intp_t i, r
    cdef intp_t n = param.shape[1] if cols is None else cols.shape[0]
    cdef const int32_t* cols_ptr = NULL if cols is None else &cols[0]
    for i in range(rows.shape[0]):
        r = rows[i]
        adam_row(&param[r, 0], &first_moment[r, 0], &second_moment[r, 0],
                 &grad[r, 0], cols_ptr, n, scale, alpha, learning_rate, beta_1,
                 beta_2, epsilon, steps[i])


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
    const int32_t[::1] cols=None,
):
    """Apply ``sgd_row`` to the given rows (a test entry point).

    ``cols``, if given, restricts every row's update to those entries.
    """
    cdef intp_t i, r
    cdef intp_t n = param.shape[1] if cols is None else cols.shape[0]
    cdef const int32_t* cols_ptr = NULL if cols is None else &cols[0]
    for i in range(rows.shape[0]):
        r = rows[i]
        sgd_row(&param[r, 0], &velocity[r, 0], &grad[r, 0], cols_ptr, n, scale,
                alpha, learning_rate, momentum, nesterov)
