"""Optimizer steps on single parameter rows.

The training core steps only the rows (neurons) a batch touched, and within a
row fed by a sparse input only the entries of the inputs it saw, so a step
costs in proportion to the touched weights. The formulas are those of
scikit-learn's ``AdamOptimizer`` and ``SGDOptimizer``, computed in the
parameters' precision as NumPy computes them there (Adam's whole-row loops are
in ``_row_kernels.h``, compiled for AVX2 too): the gradient of an entry is
``scale * (grad + alpha * param)`` with ``scale = 1 / sum of sample weights``
of the batch. ``grad`` is zeroed on return, ready for the next row.

An entry that no gradient reached for some steps is not frozen: a dense
optimizer would have kept moving it with its momentum while the moments
decayed. Before its next step (or when a fit call ends), the entry catches up
on the skipped steps in closed form (``catch_up_tables``): the moments decay by
``beta ** i`` and the weight moves by the sum of the skipped moves. For SGD
this is exact; for Adam it is exact but for ``epsilon`` (taken at the last
second moment) and the bias correction (held at one step of the skipped ones:
within 2% from the 10th step of training on). The L2 term reaches an entry only
when it is stepped.
"""
from libc.math cimport sqrt, sqrtf

from cython cimport floating

import numpy as np

from ._prefetch cimport PREFETCH_AHEAD, prefetch
from ._typedefs cimport int32_t, int64_t, intp_t, stamp_t

cdef extern from "_row_kernels.h" nogil:
    void lsh_adam_dense_row_f32(
        float* param, float* m, float* v, float* grad, intp_t n, float scale,
        float alpha, float lr, float beta_1, float one_minus_beta_1,
        float beta_2, float one_minus_beta_2, float epsilon)
    void lsh_adam_dense_row_f64(
        double* param, double* m, double* v, double* grad, intp_t n,
        double scale, double alpha, double lr, double beta_1,
        double one_minus_beta_1, double beta_2, double one_minus_beta_2,
        double epsilon)
    void lsh_adam_skip_dense_row_f32(
        float* param, float* m, float* v, float* grad, intp_t n, float scale,
        float alpha, float lr, float beta_1, float one_minus_beta_1,
        float beta_2, float one_minus_beta_2, float epsilon, float move,
        float decay_1, float decay_2)
    void lsh_adam_skip_dense_row_f64(
        double* param, double* m, double* v, double* grad, intp_t n,
        double scale, double alpha, double lr, double beta_1,
        double one_minus_beta_1, double beta_2, double one_minus_beta_2,
        double epsilon, double move, double decay_1, double decay_2)
    void lsh_adam_skip_row_f32(float* param, float* m, float* v, intp_t n,
                               float move, float decay_1, float decay_2,
                               float epsilon)
    void lsh_adam_skip_row_f64(double* param, double* m, double* v, intp_t n,
                               double move, double decay_1, double decay_2,
                               double epsilon)

# Skipped steps beyond this are as many as this: beta_2 ** 65535 < 1e-28.
CATCH_UP_LENGTH = 65536
SOLVERS = {"adam": ADAM, "sgd": SGD, "gradient": GRADIENT}


def catch_up_tables(str solver, double beta_1=0.9, double beta_2=0.999,
                    double momentum=0.9, bint nesterov=True,
                    intp_t length=CATCH_UP_LENGTH):
    """Closed forms of skipped optimizer steps, indexed by their number.

    Parameters
    ----------
    solver : {"adam", "sgd"}
        The optimizer.
    beta_1, beta_2 : float
        Adam's decay rates.
    momentum : float
        SGD's momentum.
    nesterov : bool
        Whether SGD uses Nesterov's momentum.
    length : int
        Table length; more skipped steps read the last entry.

    Returns
    -------
    tables : dict of ndarray or None
        ``decay_1``, ``decay_2``, ``shift`` and ``bias``, each of shape
        (length,); None when skipped steps cannot be summed in closed form
        (Adam with ``beta_1 ** 2 >= beta_2``: there the moves grow until
        ``epsilon`` stops them) or do nothing (SGD without momentum).
    """
    i = np.arange(length, dtype=np.float64)
    if solver == "adam":
        # The i-th skipped move is (beta_1 / sqrt(beta_2)) ** i times the
        # last step's move m / (sqrt(v) + eps).
        if beta_2 == 0.0 or beta_1 >= sqrt(beta_2):
            return None
        ratio = beta_1 / sqrt(beta_2)
        decay_1, decay_2 = beta_1 ** i, beta_2 ** i
        shift = np.cumsum(ratio ** i) - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            bias = np.sqrt(1.0 - decay_2) / (1.0 - decay_1)
        bias[0] = 0.0
    else:
        if momentum == 0.0:
            return None
        decay_1 = momentum ** i
        decay_2 = np.ones(length)
        # Velocity v_i = momentum ** i * v; Nesterov moves by momentum * v_i.
        shift = np.cumsum(decay_1) - 1.0
        if nesterov:
            shift *= momentum
        bias = np.ones(length)
    return {"decay_1": decay_1, "decay_2": decay_2, "shift": shift, "bias": bias}


cdef inline floating _sqrt(floating x) noexcept nogil:
    # In the parameters' precision (no round trip through double). The same
    # bits as a double root rounded to float: double carries more than twice
    # float's digits, so the double rounding is exact.
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline double _bias(const catch_up_t* cu, int64_t step) noexcept nogil:
    return cu.bias[step] if step < cu.length else 1.0


cdef inline void _adam_entry(
    floating* param, floating* m, floating* v, floating* grad, intp_t j,
    floating scale, floating alpha, floating lr, floating beta_1,
    floating one_minus_beta_1, floating beta_2, floating one_minus_beta_2,
    floating epsilon,
) noexcept nogil:
    # The formula of lsh_adam_dense_row (_row_kernels.h), for one entry.
    cdef floating g = scale * (grad[j] + alpha * param[j])
    grad[j] = 0
    m[j] = beta_1 * m[j] + one_minus_beta_1 * g
    v[j] = beta_2 * v[j] + one_minus_beta_2 * (g * g)
    param[j] -= lr * m[j] / (_sqrt(v[j]) + epsilon)


cdef inline void _adam_skip(
    floating* param, floating* m, floating* v, intp_t j, intp_t skipped,
    int64_t first_skipped, const catch_up_t* cu, double learning_rate,
    floating epsilon,
) noexcept nogil:
    # The moves of `skipped` steps without a gradient, from global step
    # first_skipped on; the bias correction taken near the weighted middle of
    # the moves (within 2% of the exact sum from step 10 on, 19% at step 1).
    cdef int64_t middle = first_skipped + min((skipped - 1) // 2, 9)
    if skipped >= cu.length:
        skipped = cu.length - 1
    cdef floating move = <floating> (learning_rate * _bias(cu, middle)
                                     * cu.shift[skipped])
    param[j] -= move * m[j] / (_sqrt(v[j]) + epsilon)
    m[j] *= <floating> cu.decay_1[skipped]
    v[j] *= <floating> cu.decay_2[skipped]


cdef inline void _skip_factors(
    intp_t skipped, int64_t first_skipped, const catch_up_t* cu,
    double learning_rate, floating* move, floating* decay_1, floating* decay_2,
) noexcept nogil:
    # _adam_skip's factors, for every entry of a row at once.
    cdef int64_t middle = first_skipped + min((skipped - 1) // 2, 9)
    if skipped >= cu.length:
        skipped = cu.length - 1
    move[0] = <floating> (learning_rate * _bias(cu, middle) * cu.shift[skipped])
    decay_1[0] = <floating> cu.decay_1[skipped]
    decay_2[0] = <floating> cu.decay_2[skipped]


cdef void _adam_skip_row(
    floating* param, floating* m, floating* v, intp_t n, intp_t skipped,
    int64_t first_skipped, const catch_up_t* cu, double learning_rate,
    floating epsilon,
) noexcept nogil:
    # _adam_skip on every entry of a row.
    cdef floating move, decay_1, decay_2
    _skip_factors(skipped, first_skipped, cu, learning_rate, &move, &decay_1,
                  &decay_2)
    _move_skipped(param, m, v, n, move, decay_1, decay_2, epsilon)


cdef inline void _move_skipped(
    floating* param, floating* m, floating* v, intp_t n, floating move,
    floating decay_1, floating decay_2, floating epsilon,
) noexcept nogil:
    # The row kernel of _adam_skip_row, from its factors.
    if floating is float:
        lsh_adam_skip_row_f32(param, m, v, n, move, decay_1, decay_2, epsilon)
    else:
        lsh_adam_skip_row_f64(param, m, v, n, move, decay_1, decay_2, epsilon)


cdef inline intp_t _lag(int32_t step, stamp_t last) noexcept nogil:
    # Steps from an entry's last one to `step`, from its stamp modulo 2**16
    # (the worker keeps every lag below that).
    return <stamp_t> (<stamp_t> step - last)


cdef void adam_row(
    floating* param,             # IN/OUT
    floating* first_moment,      # IN/OUT
    floating* second_moment,     # IN/OUT
    floating* grad,              # IN, zeroed on return
    const int32_t* cols,         # IN: the entries to update, or NULL for all
    intp_t n,
    double alpha,
    const step_t* st,
    int32_t row_last,
    const stamp_t* last,         # IN: each entry's last step, or NULL
    stamp_t* stamp,              # OUT: stepped entries get st.step, or NULL
) noexcept nogil:
    cdef intp_t i, j, skipped
    cdef int32_t previous, step = st.step
    cdef floating lr = <floating> st.adam_lr
    cdef floating scale = <floating> st.scale
    cdef floating alpha_ = <floating> alpha
    cdef floating beta_1 = <floating> st.beta_1
    cdef floating beta_2 = <floating> st.beta_2
    # As NumPy: 1 - beta in double, then in the parameters' precision.
    cdef floating one_minus_beta_1 = <floating> (1.0 - st.beta_1)
    cdef floating one_minus_beta_2 = <floating> (1.0 - st.beta_2)
    cdef floating epsilon = <floating> st.epsilon
    cdef floating move, decay_1, decay_2
    if st.catch_up != NULL and last != NULL:
        for i in range(n):
            if cols != NULL and i + PREFETCH_AHEAD < n:
                j = cols[i + PREFETCH_AHEAD]
                prefetch(param + j)
                prefetch(first_moment + j)
                prefetch(second_moment + j)
            j = cols[i] if cols != NULL else i
            previous = step - _lag(step, last[j])
            skipped = step - previous - 1
            if skipped > 0:
                _adam_skip(param, first_moment, second_moment, j, skipped,
                           st.step_base + previous + 1, st.catch_up,
                           st.learning_rate, epsilon)
            if stamp != NULL:
                stamp[j] = <stamp_t> step
    elif st.catch_up != NULL and step - row_last > 1:
        # The whole row skipped the same steps (it reads a dense input):
        # their moves and this step in one pass.
        _skip_factors(step - row_last - 1, st.step_base + row_last + 1,
                      st.catch_up, st.learning_rate, &move, &decay_1, &decay_2)
        if cols == NULL:
            if floating is float:
                lsh_adam_skip_dense_row_f32(
                    param, first_moment, second_moment, grad, n, scale, alpha_,
                    lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2,
                    epsilon, move, decay_1, decay_2)
            else:
                lsh_adam_skip_dense_row_f64(
                    param, first_moment, second_moment, grad, n, scale, alpha_,
                    lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2,
                    epsilon, move, decay_1, decay_2)
            return
        _move_skipped(param, first_moment, second_moment, n, move, decay_1,
                      decay_2, epsilon)
    if cols == NULL:
        if floating is float:
            lsh_adam_dense_row_f32(param, first_moment, second_moment, grad, n,
                                   scale, alpha_, lr, beta_1, one_minus_beta_1,
                                   beta_2, one_minus_beta_2, epsilon)
        else:
            lsh_adam_dense_row_f64(param, first_moment, second_moment, grad, n,
                                   scale, alpha_, lr, beta_1, one_minus_beta_1,
                                   beta_2, one_minus_beta_2, epsilon)
    else:
        for i in range(n):
            if i + PREFETCH_AHEAD < n:
                j = cols[i + PREFETCH_AHEAD]
                prefetch(param + j)
                prefetch(first_moment + j)
                prefetch(second_moment + j)
                prefetch(grad + j)
            _adam_entry(param, first_moment, second_moment, grad, cols[i], scale,
                        alpha_, lr, beta_1, one_minus_beta_1, beta_2,
                        one_minus_beta_2, epsilon)


cdef void adam_catch_up_row(
    floating* param,
    floating* first_moment,
    floating* second_moment,
    intp_t n,
    const step_t* st,
    int32_t row_last,
    const stamp_t* last,
    stamp_t* stamp,
) noexcept nogil:
    cdef intp_t j, skipped
    cdef int32_t previous, step = st.step
    if last == NULL:
        if step > row_last:
            _adam_skip_row(param, first_moment, second_moment, n,
                           step - row_last, st.step_base + row_last + 1,
                           st.catch_up, st.learning_rate, <floating> st.epsilon)
        return
    for j in range(n):
        previous = step - _lag(step, last[j])
        skipped = step - previous
        if skipped > 0:
            _adam_skip(param, first_moment, second_moment, j, skipped,
                       st.step_base + previous + 1, st.catch_up,
                       st.learning_rate, <floating> st.epsilon)
        if stamp != NULL:
            stamp[j] = <stamp_t> step


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


cdef inline void _sgd_skip(floating* param, floating* velocity, intp_t j,
                           intp_t skipped, const catch_up_t* cu) noexcept nogil:
    if skipped >= cu.length:
        skipped = cu.length - 1
    param[j] += <floating> cu.shift[skipped] * velocity[j]
    velocity[j] *= <floating> cu.decay_1[skipped]


cdef void _sgd_skip_row(floating* param, floating* velocity, intp_t n,
                        intp_t skipped, const catch_up_t* cu) noexcept nogil:
    cdef intp_t j
    if skipped >= cu.length:
        skipped = cu.length - 1
    cdef floating shift = <floating> cu.shift[skipped]
    cdef floating decay = <floating> cu.decay_1[skipped]
    for j in range(n):
        param[j] += shift * velocity[j]
        velocity[j] *= decay


cdef void sgd_row(
    floating* param,        # IN/OUT
    floating* velocity,     # IN/OUT
    floating* grad,         # IN, zeroed on return
    const int32_t* cols,    # IN: the entries to update, or NULL for all
    intp_t n,
    double alpha,
    const step_t* st,
    int32_t row_last,
    const stamp_t* last,
    stamp_t* stamp,
) noexcept nogil:
    cdef intp_t i, j, skipped
    cdef int32_t step = st.step
    cdef floating scale = <floating> st.scale
    cdef floating alpha_ = <floating> alpha
    cdef floating lr = <floating> st.learning_rate
    cdef floating momentum = <floating> st.momentum
    if st.catch_up != NULL and last != NULL:
        for i in range(n):
            if cols != NULL and i + PREFETCH_AHEAD < n:
                j = cols[i + PREFETCH_AHEAD]
                prefetch(param + j)
                prefetch(velocity + j)
            j = cols[i] if cols != NULL else i
            skipped = _lag(step, last[j]) - 1
            if skipped > 0:
                _sgd_skip(param, velocity, j, skipped, st.catch_up)
            if stamp != NULL:
                stamp[j] = <stamp_t> step
    elif st.catch_up != NULL and step - row_last > 1:
        _sgd_skip_row(param, velocity, n, step - row_last - 1, st.catch_up)
    if cols == NULL:
        for i in range(n):
            _sgd_entry(param, velocity, grad, i, scale, alpha_, lr, momentum,
                       st.nesterov)
    else:
        for i in range(n):
            if i + PREFETCH_AHEAD < n:
                j = cols[i + PREFETCH_AHEAD]
                prefetch(param + j)
                prefetch(velocity + j)
                prefetch(grad + j)
            _sgd_entry(param, velocity, grad, cols[i], scale, alpha_, lr,
                       momentum, st.nesterov)


cdef void sgd_catch_up_row(
    floating* param,
    floating* velocity,
    intp_t n,
    const step_t* st,
    int32_t row_last,
    const stamp_t* last,
    stamp_t* stamp,
) noexcept nogil:
    cdef intp_t j, skipped
    cdef int32_t step = st.step
    if last == NULL:
        if step > row_last:
            _sgd_skip_row(param, velocity, n, step - row_last, st.catch_up)
        return
    for j in range(n):
        skipped = _lag(step, last[j])
        if skipped > 0:
            _sgd_skip(param, velocity, j, skipped, st.catch_up)
        if stamp != NULL:
            stamp[j] = <stamp_t> step


cdef class CatchUp:
    """``catch_up_tables`` held for the kernels (None: no catch-up)."""

    def __init__(self, tables):
        self.tables = None
        self.c.length = 0
        if tables is not None:
            # Kept here: the struct points into these arrays.
            arrays = {k: np.ascontiguousarray(v, dtype=np.float64)
                      for k, v in tables.items()}
            self.tables = arrays
            self.c.length = arrays["shift"].shape[0]
            self.c.decay_1 = <const double*> <intp_t> arrays["decay_1"].ctypes.data
            self.c.decay_2 = <const double*> <intp_t> arrays["decay_2"].ctypes.data
            self.c.shift = <const double*> <intp_t> arrays["shift"].ctypes.data
            self.c.bias = <const double*> <intp_t> arrays["bias"].ctypes.data

    cdef const catch_up_t* pointer(self):
        return &self.c if self.tables is not None else NULL


def _adam_rows(
    floating[:, ::1] param,
    floating[:, ::1] first_moment,
    floating[:, ::1] second_moment,
    floating[:, ::1] grad,
    const int64_t[::1] rows,
    int32_t step,
    int64_t step_base,
    double scale,
    double alpha,
    double learning_rate,
    double beta_1,
    double beta_2,
    double epsilon,
    const int32_t[::1] row_last=None,
    stamp_t[:, ::1] last=None,
    const int32_t[::1] cols=None,
    bint catch_up=True,
    bint flush=False,
):
    """Apply ``adam_row`` (or with ``flush``, ``adam_catch_up_row``) to the
    given rows: a test entry point.

    ``row_last`` (one per row of ``param``; default ``step - 1``) or ``last``
    (one per entry, stamped modulo 2**16) give the entries' previous steps;
    ``cols``, if
    given, restricts every row's update to those entries.
    """
    cdef intp_t i, r
    cdef intp_t n = param.shape[1] if cols is None else cols.shape[0]
    cdef const int32_t* cols_ptr = NULL if cols is None else &cols[0]
    cdef stamp_t* last_ptr
    cdef CatchUp tables = CatchUp(
        catch_up_tables("adam", beta_1, beta_2) if catch_up else None)
    cdef step_t st = step_t(
        solver=ADAM, scale=scale, alpha=alpha, learning_rate=learning_rate, beta_1=beta_1,
        beta_2=beta_2, epsilon=epsilon, momentum=0.0, nesterov=False, step=step,
        step_base=step_base, catch_up=tables.pointer(), adam_lr=0.0)
    set_step(&st, step)
    for i in range(rows.shape[0]):
        r = rows[i]
        last_ptr = NULL if last is None else &last[r, 0]
        if flush:
            adam_catch_up_row(
                &param[r, 0], &first_moment[r, 0], &second_moment[r, 0],
                param.shape[1], &st,
                step - 1 if row_last is None else row_last[r], last_ptr, last_ptr)
        else:
            adam_row(&param[r, 0], &first_moment[r, 0], &second_moment[r, 0],
                     &grad[r, 0], cols_ptr, n, alpha, &st,
                     step - 1 if row_last is None else row_last[r], last_ptr,
                     last_ptr)


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
    int32_t step=1,
    const int32_t[::1] row_last=None,
    bint flush=False,
):
    """Apply ``sgd_row`` (or with ``flush``, ``sgd_catch_up_row``) to the
    given rows: a test entry point.

    ``cols``, if given, restricts every row's update to those entries;
    ``row_last`` (one per row of ``param``; default ``step - 1``) gives each
    row's previous step.
    """
    cdef intp_t i, r
    cdef intp_t n = param.shape[1] if cols is None else cols.shape[0]
    cdef const int32_t* cols_ptr = NULL if cols is None else &cols[0]
    cdef CatchUp tables = CatchUp(
        catch_up_tables("sgd", momentum=momentum, nesterov=nesterov))
    cdef step_t st = step_t(
        solver=SGD, scale=scale, alpha=alpha, learning_rate=learning_rate, beta_1=0.0,
        beta_2=0.0, epsilon=0.0, momentum=momentum, nesterov=nesterov, step=step,
        step_base=0, catch_up=tables.pointer(), adam_lr=0.0)
    for i in range(rows.shape[0]):
        r = rows[i]
        if flush:
            sgd_catch_up_row(&param[r, 0], &velocity[r, 0], param.shape[1], &st,
                             step - 1 if row_last is None else row_last[r],
                             NULL, NULL)
        else:
            sgd_row(&param[r, 0], &velocity[r, 0], &grad[r, 0], cols_ptr, n,
                    alpha, &st, step - 1 if row_last is None else row_last[r],
                    NULL, NULL)
