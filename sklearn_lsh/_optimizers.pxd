# One optimizer step on one parameter row: the unit of work of a lazy update.
from cython cimport floating
from libc.math cimport sqrt

from ._typedefs cimport int32_t, int64_t, intp_t, stamp_t


# Closed forms of the steps an entry skipped (no gradient reached it): the
# optimizer's moments decay and the weight keeps moving as a dense optimizer
# would move it. Index i = number of skipped steps (clipped to length - 1).
cdef struct catch_up_t:
    intp_t length
    const double* decay_1     # beta_1 ** i (SGD: momentum ** i)
    const double* decay_2     # beta_2 ** i (SGD: unused)
    const double* shift       # sum of the i skipped moves, per unit of the last
    const double* bias        # Adam's bias correction of global step j


# Solvers, as the Python side names them in SOLVERS (_optimizers.pyx).
# GRADIENT stores each touched row's gradient in the first moment and leaves
# the weights alone: the test entry point of the backward pass.
cdef enum:
    ADAM = 0
    SGD = 1
    GRADIENT = 2


# One optimizer step, the same for every row of a batch.
cdef struct step_t:
    int solver
    double scale               # 1 / sum of the batch's sample weights
    double alpha               # L2 penalty of the weights (not the biases)
    double learning_rate
    double beta_1
    double beta_2
    double epsilon
    double momentum
    bint nesterov
    int32_t step               # steps since the worker was built, this one too
    int64_t step_base          # the optimizer's global step when it was built
    const catch_up_t* catch_up  # NULL: no catch-up
    double adam_lr             # Adam's bias-corrected step size at this step


# Set st.step (st.step_base, the solver and Adam's parameters set before) and
# Adam's step size at it: once a batch, not once a row (two powers a row step
# were 2% of an epoch at 670,091 outputs).
cdef inline void set_step(step_t* st, int32_t step) noexcept nogil:
    cdef int64_t t = st.step_base + step
    st.step = step
    st.adam_lr = 0.0
    if st.solver == ADAM and t > 0:
        st.adam_lr = (st.learning_rate * sqrt(1.0 - st.beta_2 ** t)
                      / (1.0 - st.beta_1 ** t))


# Entries: cols == NULL: the n entries of the row; else only cols[0:n]. The
# gradient of an entry is scale * (grad + alpha * param) (alpha: the L2 term;
# 0 for biases). step_base + step is the optimizer's global step (Adam's bias
# correction). An entry's previous step is last[j] (modulo 2**16: it lags
# the step by less) if last is not NULL, else row_last; entries stepped are
# stamped in stamp[j] if not NULL.
cdef void adam_row(
    floating* param,
    floating* first_moment,
    floating* second_moment,
    floating* grad,
    const int32_t* cols,
    intp_t n,
    double alpha,
    const step_t* step,
    int32_t row_last,
    const stamp_t* last,
    stamp_t* stamp,
) noexcept nogil

cdef void sgd_row(
    floating* param,
    floating* velocity,
    floating* grad,
    const int32_t* cols,
    intp_t n,
    double alpha,
    const step_t* step,
    int32_t row_last,
    const stamp_t* last,
    stamp_t* stamp,
) noexcept nogil

# Bring the n entries of a row to the end of step.step (no gradient since
# their last step): what a dense optimizer would have done to them meanwhile.
cdef void adam_catch_up_row(
    floating* param,
    floating* first_moment,
    floating* second_moment,
    intp_t n,
    const step_t* step,
    int32_t row_last,
    const stamp_t* last,
    stamp_t* stamp,
) noexcept nogil

cdef void sgd_catch_up_row(
    floating* param,
    floating* velocity,
    intp_t n,
    const step_t* step,
    int32_t row_last,
    const stamp_t* last,
    stamp_t* stamp,
) noexcept nogil


cdef class CatchUp:
    cdef catch_up_t c
    cdef readonly object tables
    cdef const catch_up_t* pointer(self)
