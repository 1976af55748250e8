# One optimizer step on one parameter row: the unit of work of a lazy update.
from cython cimport floating

from ._typedefs cimport int32_t, int64_t, intp_t

# cols == NULL: the n entries of the row; else only the entries cols[0:n].
cdef void adam_row(
    floating* param,
    floating* first_moment,
    floating* second_moment,
    floating* grad,
    const int32_t* cols,
    intp_t n,
    double scale,
    double alpha,
    double learning_rate,
    double beta_1,
    double beta_2,
    double epsilon,
    int64_t step,
) noexcept nogil

cdef void sgd_row(
    floating* param,
    floating* velocity,
    floating* grad,
    const int32_t* cols,
    intp_t n,
    double scale,
    double alpha,
    double learning_rate,
    double momentum,
    bint nesterov,
) noexcept nogil
