"""Sparse forward and backward passes of a network with hashed layers.

One call of ``BatchTrainer.run`` is one mini-batch step, in two phases:

1. Parallel over samples: for each layer, choose the active neurons (all of
   them for a dense layer; for a hashed layer, the neurons the layer input's
   hash retrieves from the tables, plus the sample's labels in the output layer,
   padded with random neurons up to a minimum), compute them forward, then the
   deltas backward between active neurons only. Weights are only read; each
   sample writes its own slots.
2. Parallel over the neurons the batch touched: each neuron's gradient row is
   the sum, in sample order, of delta x input over its samples, followed at
   once by the optimizer step on that row.

Steps are counted from the worker's construction (``step_base`` is the
optimizer's global step then). Each row, and each entry of a row fed by a
sparse input, remembers its last step; an entry skipped by some steps catches
up on them in closed form when it is next stepped, or in ``catch_up`` at the
end of a fit call (see ``_optimizers``), so that the weights move as a dense
optimizer's would.

No two threads write the same memory, and every sum runs in a fixed order, so
a step gives the same bits for any number of threads.
"""
from cython.parallel cimport prange

from libc.math cimport exp, log, tanh
from libc.stdlib cimport calloc, free, qsort
from libc.string cimport memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from cython cimport floating
from scipy.linalg.cython_blas cimport daxpy, ddot, saxpy, sdot

import numpy as np

from ._hashing cimport (
    HashFunctions,
    hash_dense_row,
    hash_family_t,
    hash_sparse_row,
    scratch_size,
)
from ._openmp_helpers cimport omp_get_thread_num
from ._optimizers cimport (
    CatchUp,
    adam_catch_up_row,
    adam_row,
    catch_up_t,
    sgd_catch_up_row,
    sgd_row,
)
from ._openmp_helpers import per_thread_rows
from ._optimizers import catch_up_tables
from ._tables cimport (
    THRESHOLD,
    TOPK,
    UNION,
    HashTables,
    query_row,
    query_scratch_t,
    tables_t,
)
from ._typedefs cimport int32_t, int64_t, intp_t, key_t, uint64_t

# Activations (hidden and output) and solvers, as the Python side names them.
cdef enum:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    SOFTMAX = 4
    EXP = 5

ACTIVATIONS = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH,
               "relu": RELU, "softmax": SOFTMAX, "exp": EXP}
STRATEGIES = {"union": UNION, "topk": TOPK, "threshold": THRESHOLD}

cdef enum:
    ADAM = 0
    SGD = 1
    GRADIENT = 2

# "gradient" stores each touched row's gradient in moment1_w/moment1_b and
# leaves the weights alone: the test entry point of the backward pass.
SOLVERS = {"adam": ADAM, "sgd": SGD, "gradient": GRADIENT}


cdef struct layer_t:
    intp_t n_out                 # neurons
    intp_t n_in                  # fan-in
    int activation
    bint hashed
    intp_t width                 # slot width per sample (n_out if dense)
    intp_t budget                # hashed: at most this many retrieved
    intp_t n_candidates          # hashed: retrieved, then the best budget kept
    intp_t min_active            # hashed: pad with random neurons up to this
    int strategy
    int min_count
    const hash_family_t* family  # hashed only
    const tables_t* tables       # hashed only
    void* weights                # (n_out, n_in): a neuron's weights contiguous
    void* bias                   # (n_out,)
    void* moment1_w              # Adam first moment / SGD velocity
    void* moment2_w              # Adam second moment (unused by SGD)
    void* moment1_b
    void* moment2_b
    int32_t* row_last            # (n_out,) each neuron's last step
    # Hashed layers fed a sparse input: each weight's last step (n_out, n_in);
    # dense layers fed a sparse input: each input's (n_in,); else NULL.
    int32_t* entry_last
    int32_t* col_last
    # Per-sample slots of the current batch.
    int32_t* ids                 # (batch, width) active ids, ascending
    intp_t* n_active             # (batch,)
    void* act                    # (batch, width)
    void* delta                  # (batch, width)
    int64_t* macs                # (batch,) forward multiply-adds, ranking too
    # Regrouped (neuron -> slots) lists of a hashed layer, phase 2.
    int64_t* touched_offsets     # (n_out + 1,)
    int64_t* touched_slots       # (batch * width,) entries ii * width + a
    int32_t* touched             # (n_out,) the touched neurons
    intp_t n_touched


cdef struct scratch_t:
    double* hash_scratch
    int32_t* codes
    key_t* keys
    query_scratch_t query
    int32_t* retrieved           # a query's result (n_out of the widest layer)
    double* scores               # pre-activations of the retrieved, for ranking
    double* pre_act              # (n_out) kept ranked pre-activation, by id
    int32_t* pre_marker          # set_stamp where pre_act holds this set's value
    int32_t* set_marker          # active-set membership, stamped
    int32_t set_stamp
    intp_t marker_size           # length of both marker arrays
    int32_t* nz_ids              # non-zeros of a hashed layer's input
    void* nz_vals
    void* acc                    # gradient row (n_in), zero between rows
    int32_t* cols                # the entries of a sparse-input row touched
    int32_t* col_marker          # stamped membership of cols
    int32_t col_stamp
    intp_t col_marker_size


cdef inline uint64_t _splitmix64(uint64_t* state) noexcept nogil:
    state[0] += <uint64_t> 0x9E3779B97F4A7C15
    cdef uint64_t z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t> 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t> 0x94D049BB133111EB
    return z ^ (z >> 31)


cdef int _compare_int32(const void* a, const void* b) noexcept nogil:
    cdef int32_t x = (<const int32_t*> a)[0]
    cdef int32_t y = (<const int32_t*> b)[0]
    return (x > y) - (x < y)


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec


cdef inline floating _dot(intp_t n, const floating* x, const floating* y) noexcept nogil:
    cdef int n_ = <int> n, one = 1
    if floating is float:
        return sdot(&n_, <float*> x, &one, <float*> y, &one)
    else:
        return ddot(&n_, <double*> x, &one, <double*> y, &one)


cdef inline void _axpy(intp_t n, floating alpha, const floating* x,
                       floating* y) noexcept nogil:
    cdef int n_ = <int> n, one = 1
    if floating is float:
        saxpy(&n_, &alpha, <float*> x, &one, y, &one)
    else:
        daxpy(&n_, &alpha, <double*> x, &one, y, &one)


cdef inline floating _gather_dot(const floating* w, const int32_t* ids,
                                 const floating* vals, intp_t n) noexcept nogil:
    cdef intp_t t
    cdef floating s = 0
    for t in range(n):
        s += w[ids[t]] * vals[t]
    return s


cdef inline double _derivative(int activation, double a) noexcept nogil:
    # Derivative of a hidden activation, from its output a.
    if activation == RELU:
        return 1.0 if a > 0 else 0.0
    if activation == TANH:
        return 1.0 - a * a
    if activation == LOGISTIC:
        return a * (1.0 - a)
    return 1.0


cdef void _activate(int activation, floating* z, intp_t n) noexcept nogil:
    cdef intp_t a
    cdef double zmax, total
    if activation == RELU:
        for a in range(n):
            if z[a] < 0:
                z[a] = 0
    elif activation == TANH:
        for a in range(n):
            z[a] = tanh(z[a])
    elif activation == LOGISTIC:
        for a in range(n):
            z[a] = 1.0 / (1.0 + exp(-z[a]))
    elif activation == EXP:
        for a in range(n):
            z[a] = exp(z[a])
    elif activation == SOFTMAX:
        # Normalised over the active neurons only.
        zmax = z[0]
        for a in range(1, n):
            if z[a] > zmax:
                zmax = z[a]
        total = 0
        for a in range(n):
            z[a] = exp(z[a] - zmax)
            total += z[a]
        for a in range(n):
            z[a] = z[a] / total


cdef inline bint _ranks_before(double score_a, int32_t id_a, double score_b,
                               int32_t id_b) noexcept nogil:
    # Larger score first; ties by smaller id, so the order is deterministic.
    return score_a > score_b or (score_a == score_b and id_a < id_b)


cdef void _select_best(double* scores, int32_t* ids, intp_t n,
                       intp_t m) noexcept nogil:
    """Reorder so that the first m entries are the m best (quickselect)."""
    cdef intp_t lo = 0, hi = n - 1, i, j, mid
    cdef double pivot_score, ts
    cdef int32_t pivot_id, ti
    if m <= 0 or m >= n:
        return
    while lo < hi:
        mid = lo + (hi - lo) // 2
        pivot_score, pivot_id = scores[mid], ids[mid]
        i, j = lo, hi
        while i <= j:
            while _ranks_before(scores[i], ids[i], pivot_score, pivot_id):
                i += 1
            while _ranks_before(pivot_score, pivot_id, scores[j], ids[j]):
                j -= 1
            if i <= j:
                ts = scores[i]
                scores[i] = scores[j]
                scores[j] = ts
                ti = ids[i]
                ids[i] = ids[j]
                ids[j] = ti
                i += 1
                j -= 1
        if m - 1 <= j:
            hi = j
        elif m - 1 >= i:
            lo = i
        else:
            return


cdef intp_t _choose_active(
    const layer_t* layer,
    intp_t ii,
    bint input_dense,
    const floating* in_dense,
    const int32_t* in_ids,
    const floating* in_vals,
    intp_t in_n,
    const int32_t* labels,
    intp_t n_labels,
    uint64_t rng_state,
    scratch_t* s,
    double* hash_seconds,
    int64_t* rank_macs,
) noexcept nogil:
    """Write the sample's active neurons of a hashed layer, ascending."""
    cdef int32_t* out = layer.ids + ii * layer.width
    # Not s.query.candidates: top-k and threshold queries use that internally.
    cdef int32_t* candidates = s.retrieved
    cdef floating* nz_vals = <floating*> s.nz_vals
    cdef intp_t n = 0, t, n_candidates, nnz = 0, m
    cdef int32_t k
    cdef const floating* W = <const floating*> layer.weights
    cdef const floating* bias = <const floating*> layer.bias
    cdef double start = _now()
    # The markers serve layers of several widths: clear them whole before a
    # stamp wraps (query_row alone would clear only this layer's range).
    if s.query.stamp >= 2147483647 - 2:
        memset(s.query.marker, 0, s.marker_size * sizeof(int32_t))
        s.query.stamp = 0

    if input_dense:
        hash_dense_row(layer.family, in_dense, s.hash_scratch, s.codes, s.keys)
    else:
        # Only the non-zero inputs enter the hash (ReLU leaves exact zeros).
        for t in range(in_n):
            if in_vals[t] != 0:
                s.nz_ids[nnz] = in_ids[t]
                nz_vals[nnz] = in_vals[t]
                nnz += 1
        hash_sparse_row(layer.family, s.nz_ids, nz_vals, nnz, s.hash_scratch,
                        s.codes, s.keys)
    n_candidates = query_row(layer.tables, s.keys, layer.strategy,
                             layer.n_candidates, layer.min_count, &s.query,
                             candidates)
    hash_seconds[0] += _now() - start
    # Padding depends on the batch seed and the sample's own keys, not on its
    # place in the batch: equal rows get equal active sets (so a weight of 2
    # equals a repeated row), and a prediction depends on its row alone.
    for t in range(layer.family.n_tables):
        rng_state = (rng_state ^ s.keys[t]) * <uint64_t> 0x100000001B3

    if s.set_stamp >= 2147483647 - 1:
        memset(s.set_marker, 0, s.marker_size * sizeof(int32_t))
        memset(s.pre_marker, 0, s.marker_size * sizeof(int32_t))
        s.set_stamp = 0
    s.set_stamp += 1
    # The true labels first: they are always active during training.
    for t in range(n_labels):
        k = labels[t]
        if s.set_marker[k] != s.set_stamp:
            s.set_marker[k] = s.set_stamp
            out[n] = k
            n += 1
    if layer.n_candidates > layer.budget and n_candidates > layer.budget - n:
        # More retrieved than room: keep the largest pre-activations (the
        # k winners among the candidates), computed exactly.
        m = 0
        for t in range(n_candidates):
            k = candidates[t]
            if s.set_marker[k] == s.set_stamp:
                continue
            candidates[m] = k
            if input_dense:
                s.scores[m] = bias[k] + _dot(layer.n_in, W + k * layer.n_in, in_dense)
            else:
                s.scores[m] = bias[k] + _gather_dot(
                    W + k * layer.n_in, s.nz_ids, nz_vals, nnz)
            m += 1
        rank_macs[0] += m * (layer.n_in if input_dense else nnz)
        n_candidates = m
        _select_best(s.scores, candidates, m, layer.budget - n)
        for t in range(min(m, layer.budget - n)):
            s.pre_act[candidates[t]] = s.scores[t]
            s.pre_marker[candidates[t]] = s.set_stamp
    for t in range(n_candidates):
        if n >= layer.budget:
            break
        k = candidates[t]
        if s.set_marker[k] != s.set_stamp:
            s.set_marker[k] = s.set_stamp
            out[n] = k
            n += 1
    # Pad a small set with random neurons (linear probing from a random start
    # always ends, whatever min_active is).
    while n < layer.min_active and n < layer.n_out:
        k = <int32_t> (_splitmix64(&rng_state) % <uint64_t> layer.n_out)
        while s.set_marker[k] == s.set_stamp:
            k = k + 1 if k + 1 < layer.n_out else 0
        s.set_marker[k] = s.set_stamp
        out[n] = k
        n += 1
    qsort(out, n, sizeof(int32_t), _compare_int32)
    return n


cdef double _output_delta(
    const layer_t* layer,
    intp_t ii,
    intp_t n_act,
    const floating* y_dense,
    const int32_t* labels,
    intp_t n_labels,
    double weight,
    double eps,
) noexcept nogil:
    """Write the output deltas (act - y) * weight; return the weighted loss."""
    cdef floating* p = <floating*> layer.act + ii * layer.width
    cdef floating* d = <floating*> layer.delta + ii * layer.width
    cdef const int32_t* ids = layer.ids + ii * layer.width
    cdef intp_t a, t = 0
    cdef int32_t k
    cdef double y, q, loss = 0
    cdef double label_mass = 1.0 / n_labels if n_labels > 0 else 0.0
    for a in range(n_act):
        if layer.hashed:
            # Both lists ascending: a merge walk finds the labels.
            k = ids[a]
            while t < n_labels and labels[t] < k:
                t += 1
            y = 0.0
            if t < n_labels and labels[t] == k:
                y = label_mass if layer.activation == SOFTMAX else 1.0
        else:
            y = y_dense[a]
        q = p[a]
        d[a] = <floating> ((q - y) * weight)
        if layer.activation == SOFTMAX:
            if y != 0:
                q = min(max(q, eps), 1 - eps)
                loss -= y * log(q)
        elif layer.activation == LOGISTIC:
            q = min(max(q, eps), 1 - eps)
            if y != 0:
                loss -= y * log(q)
            if y != 1:
                loss -= (1 - y) * log(1 - q)
        elif layer.activation == EXP:
            loss += q - y
            if y > 0:
                loss += y * log(y / q)
        else:
            loss += 0.5 * (q - y) * (q - y) / layer.n_out
    return loss * weight


cdef void _forward_backward_sample(
    layer_t* layers,
    int n_layers,
    intp_t ii,
    intp_t row,
    bint x_dense,
    const floating* X,
    const floating* X_data,
    const int32_t* X_indices,
    const int64_t* X_indptr,
    intp_t n_features,
    const floating* Y,
    const int64_t* label_indptr,
    const int32_t* label_ids,
    double weight,
    bint training,
    uint64_t seed,
    scratch_t* s,
    double* sample_loss,
    double* hash_seconds,
    double eps,
) noexcept nogil:
    cdef intp_t l, a, t, n_act, n_prev, in_n = 0
    cdef layer_t* layer
    cdef layer_t* prev
    cdef bint input_dense
    cdef const floating* in_dense = NULL
    cdef const int32_t* in_ids = NULL
    cdef const floating* in_vals = NULL
    cdef const int32_t* labels = NULL
    cdef intp_t n_labels = 0
    cdef floating* out
    cdef floating* W
    cdef floating* b
    cdef floating* d_cur
    cdef floating* d_prev
    cdef floating* a_prev
    cdef int32_t* ids
    cdef int32_t* prev_ids
    cdef int32_t k
    cdef floating dk
    cdef uint64_t rng_state
    cdef int64_t layer_macs
    cdef bint ranked

    for l in range(n_layers):
        layer = &layers[l]
        # The layer's input: the raw row, or the previous layer's active outputs.
        if l == 0:
            input_dense = x_dense
            if x_dense:
                in_dense = X + row * n_features
                in_n = n_features
            else:
                in_ids = X_indices + X_indptr[row]
                in_vals = X_data + X_indptr[row]
                in_n = X_indptr[row + 1] - X_indptr[row]
        else:
            prev = &layers[l - 1]
            input_dense = not prev.hashed
            in_n = prev.n_active[ii]
            if input_dense:
                in_dense = <floating*> prev.act + ii * prev.width
            else:
                in_ids = prev.ids + ii * prev.width
                in_vals = <floating*> prev.act + ii * prev.width

        layer_macs = 0
        if layer.hashed:
            n_labels = 0
            if training and l == n_layers - 1:
                labels = label_ids + label_indptr[row]
                n_labels = label_indptr[row + 1] - label_indptr[row]
            rng_state = seed ^ (<uint64_t> (l + 1) * <uint64_t> 0xD1B54A32D192ED03)
            n_act = _choose_active(layer, ii, input_dense, in_dense, in_ids,
                                   in_vals, in_n, labels, n_labels, rng_state,
                                   s, hash_seconds, &layer_macs)
        else:
            n_act = layer.n_out
        layer.n_active[ii] = n_act
        ranked = layer.hashed and layer_macs > 0  # ranking ran

        out = <floating*> layer.act + ii * layer.width
        W = <floating*> layer.weights
        b = <floating*> layer.bias
        ids = layer.ids + ii * layer.width
        for a in range(n_act):
            k = ids[a] if layer.hashed else <int32_t> a
            if ranked and s.pre_marker[k] == s.set_stamp:
                out[a] = <floating> s.pre_act[k]   # computed when ranking
                continue
            layer_macs += in_n
            if input_dense:
                out[a] = b[k] + _dot(layer.n_in, W + k * layer.n_in, in_dense)
            else:
                out[a] = b[k] + _gather_dot(W + k * layer.n_in, in_ids, in_vals, in_n)
        layer.macs[ii] = layer_macs
        _activate(layer.activation, out, n_act)

    if not training:
        return

    # Output deltas and loss.
    layer = &layers[n_layers - 1]
    labels = NULL
    n_labels = 0
    if layer.hashed:
        labels = label_ids + label_indptr[row]
        n_labels = label_indptr[row + 1] - label_indptr[row]
    sample_loss[0] = _output_delta(
        layer, ii, layer.n_active[ii],
        Y + row * layer.n_out if not layer.hashed else NULL,
        labels, n_labels, weight, eps)

    # Backward, between active neurons only.
    for l in range(n_layers - 1, 0, -1):
        layer = &layers[l]
        prev = &layers[l - 1]
        n_act = layer.n_active[ii]
        n_prev = prev.n_active[ii]
        d_cur = <floating*> layer.delta + ii * layer.width
        d_prev = <floating*> prev.delta + ii * prev.width
        a_prev = <floating*> prev.act + ii * prev.width
        ids = layer.ids + ii * layer.width
        prev_ids = prev.ids + ii * prev.width
        W = <floating*> layer.weights
        memset(d_prev, 0, n_prev * sizeof(floating))
        for a in range(n_act):
            dk = d_cur[a]
            if dk == 0:
                continue
            k = ids[a] if layer.hashed else <int32_t> a
            if prev.hashed:
                for t in range(n_prev):
                    d_prev[t] += dk * W[k * layer.n_in + prev_ids[t]]
            else:
                _axpy(n_prev, dk, W + k * layer.n_in, d_prev)
        for t in range(n_prev):
            d_prev[t] = <floating> (d_prev[t] * _derivative(prev.activation, a_prev[t]))


cdef void _regroup(layer_t* layer, intp_t n_samples, const intp_t* rows,
                   const floating* sample_weight) noexcept nogil:
    """Invert (sample -> active neurons) into (neuron -> slots), in sample order.

    A sample of weight 0 touches nothing, as if it were not in the batch.
    """
    cdef intp_t ii, a, k, n_touched = 0
    cdef int64_t* offsets = layer.touched_offsets
    cdef int32_t* ids
    memset(offsets, 0, (layer.n_out + 1) * sizeof(int64_t))
    for ii in range(n_samples):
        if sample_weight != NULL and sample_weight[rows[ii]] == 0:
            continue
        ids = layer.ids + ii * layer.width
        for a in range(layer.n_active[ii]):
            offsets[ids[a] + 1] += 1
    for k in range(layer.n_out):
        if offsets[k + 1] > 0:
            layer.touched[n_touched] = <int32_t> k
            n_touched += 1
        offsets[k + 1] += offsets[k]
    layer.n_touched = n_touched
    for ii in range(n_samples):
        if sample_weight != NULL and sample_weight[rows[ii]] == 0:
            continue
        ids = layer.ids + ii * layer.width
        for a in range(layer.n_active[ii]):
            k = ids[a]
            layer.touched_slots[offsets[k]] = ii * layer.width + a
            offsets[k] += 1
    # The scatter advanced each offset to its end: shift back.
    for k in range(layer.n_out, 0, -1):
        offsets[k] = offsets[k - 1]
    offsets[0] = 0


cdef void _store_gradient(floating* out, const floating* param, floating* grad,
                          const int32_t* cols, intp_t n, double scale,
                          double alpha) noexcept nogil:
    cdef intp_t i, j
    for i in range(n):
        j = cols[i] if cols != NULL else i
        out[j] = <floating> (scale * (grad[j] + alpha * param[j]))
        grad[j] = 0


cdef void _update_neuron(
    layer_t* layers,
    int l,
    int32_t k,
    intp_t n_samples,
    const intp_t* rows,
    bint x_dense,
    const floating* X,
    const floating* X_data,
    const int32_t* X_indices,
    const int64_t* X_indptr,
    const floating* sample_weight,
    scratch_t* s,
    int solver,
    double scale,
    double alpha,
    double learning_rate,
    double beta_1,
    double beta_2,
    double epsilon,
    double momentum,
    bint nesterov,
    int32_t step,
    int64_t step_base,
    const catch_up_t* catch_up,
) noexcept nogil:
    """Gradient row of neuron k summed over its samples, then its step.

    When the layer's input is sparse (CSR rows, or a hashed layer's active
    outputs), only the entries of the inputs the neuron saw are gathered and
    stepped: the step costs what the batch touched, not the fan-in.
    """
    cdef layer_t* layer = &layers[l]
    cdef layer_t* prev = &layers[l - 1] if l > 0 else NULL
    cdef floating* delta = <floating*> layer.delta
    cdef floating* grad = <floating*> s.acc
    cdef floating* a_prev
    cdef intp_t e, e_start, e_end, ii, slot, t, n_in = layer.n_in, row
    cdef floating dk
    cdef floating grad_bias = 0
    cdef int32_t* prev_ids
    cdef int32_t j
    cdef bint sparse_input = (not x_dense) if l == 0 else prev.hashed
    cdef int32_t* cols = s.cols if sparse_input else NULL
    cdef intp_t n_cols = 0
    cdef int32_t* last = NULL
    cdef int32_t* stamp = NULL
    cdef int32_t row_last = layer.row_last[k]
    if sparse_input:
        if s.col_stamp >= 2147483647 - 1:
            memset(s.col_marker, 0, s.col_marker_size * sizeof(int32_t))
            s.col_stamp = 0
        s.col_stamp += 1
    if layer.hashed:
        e_start = layer.touched_offsets[k]
        e_end = layer.touched_offsets[k + 1]
    else:
        e_start = 0
        e_end = n_samples
    for e in range(e_start, e_end):
        if layer.hashed:
            slot = layer.touched_slots[e]
            ii = slot // layer.width
        else:
            ii = e
            slot = ii * layer.width + k
        if sample_weight != NULL and sample_weight[rows[ii]] == 0:
            continue  # as if the row were not in the batch
        dk = delta[slot]
        # A sparse input's entries count as seen even through a zero delta,
        # so that the stepped entries do not depend on the activations.
        if dk == 0 and not sparse_input:
            continue
        grad_bias += dk
        if l == 0:
            row = rows[ii]
            if x_dense:
                _axpy(n_in, dk, X + row * n_in, grad)
            else:
                for t in range(X_indptr[row], X_indptr[row + 1]):
                    j = X_indices[t]
                    if s.col_marker[j] != s.col_stamp:
                        s.col_marker[j] = s.col_stamp
                        cols[n_cols] = j
                        n_cols += 1
                    grad[j] += dk * X_data[t]
        else:
            a_prev = <floating*> prev.act + ii * prev.width
            if prev.hashed:
                prev_ids = prev.ids + ii * prev.width
                for t in range(prev.n_active[ii]):
                    j = prev_ids[t]
                    if s.col_marker[j] != s.col_stamp:
                        s.col_marker[j] = s.col_stamp
                        cols[n_cols] = j
                        n_cols += 1
                    grad[j] += dk * a_prev[t]
            else:
                _axpy(n_in, dk, a_prev, grad)
    if not sparse_input:
        n_cols = n_in
    # Each entry's last step: its own in a hashed layer, its input's in a dense
    # one (stamped after the whole layer is stepped), else the row's.
    if layer.entry_last != NULL:
        last = stamp = layer.entry_last + k * n_in
    elif layer.col_last != NULL:
        last = layer.col_last
    layer.row_last[k] = step
    if solver == GRADIENT:
        _store_gradient(<floating*> layer.moment1_w + k * n_in,
                        <floating*> layer.weights + k * n_in, grad, cols, n_cols,
                        scale, alpha)
        (<floating*> layer.moment1_b)[k] = <floating> (scale * grad_bias)
    elif solver == ADAM:
        adam_row(<floating*> layer.weights + k * n_in,
                 <floating*> layer.moment1_w + k * n_in,
                 <floating*> layer.moment2_w + k * n_in,
                 grad, cols, n_cols, scale, alpha, learning_rate, beta_1, beta_2,
                 epsilon, step, step_base, row_last, last, stamp, catch_up)
        adam_row(<floating*> layer.bias + k, <floating*> layer.moment1_b + k,
                 <floating*> layer.moment2_b + k, &grad_bias, NULL, 1, scale,
                 0.0, learning_rate, beta_1, beta_2, epsilon, step, step_base,
                 row_last, NULL, NULL, catch_up)
    else:
        sgd_row(<floating*> layer.weights + k * n_in,
                <floating*> layer.moment1_w + k * n_in,
                grad, cols, n_cols, scale, alpha, learning_rate, momentum,
                nesterov, step, row_last, last, stamp, catch_up)
        sgd_row(<floating*> layer.bias + k, <floating*> layer.moment1_b + k,
                &grad_bias, NULL, 1, scale, 0.0, learning_rate, momentum,
                nesterov, step, row_last, NULL, NULL, catch_up)


cdef void _stamp_inputs(layer_t* layers, int l, intp_t n_samples,
                        const intp_t* rows, bint x_dense,
                        const int32_t* X_indices, const int64_t* X_indptr,
                        const floating* sample_weight,
                        int32_t step) noexcept nogil:
    """Stamp the inputs a dense layer's rows were stepped on with ``step``."""
    cdef layer_t* layer = &layers[l]
    cdef layer_t* prev = &layers[l - 1] if l > 0 else NULL
    cdef intp_t ii, t, row
    # Only a sparse input has col_last: CSR X, or a hashed layer below (dense
    # X fed to a worker built for CSR steps every input).
    if l == 0 and x_dense:
        for t in range(layer.n_in):
            layer.col_last[t] = step
        return
    for ii in range(n_samples):
        row = rows[ii]
        if sample_weight != NULL and sample_weight[row] == 0:
            continue
        if l == 0:
            for t in range(X_indptr[row], X_indptr[row + 1]):
                layer.col_last[X_indices[t]] = step
        else:
            for t in range(prev.n_active[ii]):
                layer.col_last[prev.ids[ii * prev.width + t]] = step


cdef void _train_batch(
    layer_t* layers,
    int n_layers,
    scratch_t* scratch,
    const intp_t* rows,
    intp_t n_samples,
    bint x_dense,
    const floating* X,
    const floating* X_data,
    const int32_t* X_indices,
    const int64_t* X_indptr,
    intp_t n_features,
    const floating* Y,
    const int64_t* label_indptr,
    const int32_t* label_ids,
    const floating* sample_weight,
    bint training,
    uint64_t seed,
    double* sample_loss,
    double* hash_seconds,
    double eps,
    int solver,
    double scale,
    double alpha,
    double learning_rate,
    double beta_1,
    double beta_2,
    double epsilon,
    double momentum,
    bint nesterov,
    int32_t step,
    int64_t step_base,
    const catch_up_t* catch_up,
    int n_threads,
) noexcept nogil:
    cdef intp_t ii, t
    cdef int tid, l
    cdef layer_t* layer
    cdef double weight

    for ii in prange(n_samples, schedule="static", num_threads=n_threads):
        tid = omp_get_thread_num()
        weight = sample_weight[rows[ii]] if sample_weight != NULL else 1.0
        _forward_backward_sample(
            layers, n_layers, ii, rows[ii], x_dense, X, X_data, X_indices,
            X_indptr, n_features, Y, label_indptr, label_ids, weight, training,
            seed, &scratch[tid], &sample_loss[ii], &hash_seconds[ii], eps)
    if not training:
        return

    for l in range(n_layers):
        layer = &layers[l]
        if layer.hashed:
            _regroup(layer, n_samples, rows, sample_weight)
        else:
            layer.n_touched = layer.n_out
        for t in prange(layer.n_touched, schedule="dynamic", chunksize=4,
                        num_threads=n_threads):
            tid = omp_get_thread_num()
            _update_neuron(
                layers, l, layer.touched[t] if layer.hashed else <int32_t> t,
                n_samples, rows, x_dense, X, X_data, X_indices, X_indptr,
                sample_weight, &scratch[tid], solver, scale, alpha,
                learning_rate, beta_1, beta_2, epsilon, momentum, nesterov,
                step, step_base, catch_up)
        if layer.col_last != NULL:
            _stamp_inputs(layers, l, n_samples, rows, x_dense, X_indices,
                          X_indptr, sample_weight, step)


cdef void _catch_up_layer(
    layer_t* layer,
    floating* weights,
    int solver,
    double learning_rate,
    double epsilon,
    int32_t step,
    int64_t step_base,
    const catch_up_t* catch_up,
    int n_threads,
) noexcept nogil:
    """Bring every weight of a layer to the end of ``step``."""
    cdef intp_t k, n_in = layer.n_in
    cdef int32_t* last
    cdef int32_t* stamp
    for k in prange(layer.n_out, schedule="static", num_threads=n_threads):
        last = stamp = NULL
        if layer.entry_last != NULL:
            last = stamp = layer.entry_last + k * n_in
        elif layer.col_last != NULL:
            last = layer.col_last
        if solver == ADAM:
            adam_catch_up_row(
                weights + k * n_in,
                <floating*> layer.moment1_w + k * n_in,
                <floating*> layer.moment2_w + k * n_in, n_in, learning_rate,
                epsilon, step, step_base, layer.row_last[k], last, stamp,
                catch_up)
            adam_catch_up_row(
                <floating*> layer.bias + k, <floating*> layer.moment1_b + k,
                <floating*> layer.moment2_b + k, 1, learning_rate, epsilon,
                step, step_base, layer.row_last[k], NULL, NULL, catch_up)
        else:
            sgd_catch_up_row(
                weights + k * n_in,
                <floating*> layer.moment1_w + k * n_in, n_in, step,
                layer.row_last[k], last, stamp, catch_up)
            sgd_catch_up_row(
                <floating*> layer.bias + k, <floating*> layer.moment1_b + k, 1,
                step, layer.row_last[k], NULL, NULL, catch_up)
        layer.row_last[k] = step
    if layer.col_last != NULL:
        for k in range(n_in):
            layer.col_last[k] = step


cdef class BatchTrainer:
    """The per-fit worker: layer structs and scratch over the network's arrays.

    Built at the start of ``fit``/``partial_fit`` from NumPy arrays that the
    estimator owns (weights, optimizer state, hash functions and tables); it
    holds no state of its own beyond scratch and the steps taken since it was
    built (each row's and each sparse-fed entry's last step), and is never
    pickled: ``catch_up`` at the end of a call leaves every weight where a dense
    optimizer would have it, so the estimator keeps only the step count.

    Parameters
    ----------
    layers : list of dict
        One dict per weight layer with keys ``weights`` (n_out, n_in),
        ``bias`` (n_out,), ``activation`` (str), ``moment1_w``, ``moment2_w``,
        ``moment1_b``, ``moment2_b`` (same shapes as weights/bias), and for
        hashed layers ``hash_functions``
        (HashFunctions), ``tables`` (HashTables), ``budget``, ``min_active``,
        ``strategy`` (str), ``min_count``, ``extra_width`` (room for labels)
        and optionally ``n_candidates`` (retrieved, ranked by pre-activation,
        the best ``budget`` kept; default ``budget``: no ranking).
    batch_size : int
        The largest batch this worker will process.
    n_threads : int
        OpenMP threads.
    inference_only : bool, default=False
        Forward passes only (the weights may be read-only).
    step_base : int, default=0
        The optimizer's global step when the worker is built (Adam's bias
        correction counts from it).
    sparse_input : bool, default=False
        Whether training batches may come as CSR rows (the first layer then
        tracks the last step of each input).
    """

    cdef layer_t* layers
    cdef int n_layers
    cdef scratch_t* scratch
    cdef int n_threads
    cdef intp_t batch_size
    cdef bint inference_only
    cdef readonly object dtype
    cdef list _keep                 # arrays and objects the pointers refer to
    cdef readonly list n_active     # per layer (batch,) intp
    cdef readonly list macs         # per layer (batch,) int64
    cdef readonly list activations  # per layer (batch, width)
    cdef readonly list active_ids   # per layer (batch, width) int32 (hashed)
    cdef readonly list last_steps   # per layer (n_out,) int32 rows' last steps
    cdef readonly int32_t step      # steps taken since built
    cdef readonly int64_t step_base
    cdef bint sparse_input
    cdef CatchUp _catch_up
    cdef tuple _catch_up_key

    def __cinit__(self):
        self.layers = NULL
        self.scratch = NULL

    def __init__(self, list layers, intp_t batch_size, int n_threads,
                 bint inference_only=False, int64_t step_base=0,
                 bint sparse_input=False):
        cdef intp_t l, width, max_n = 1, max_in = 1, max_hash = 1, max_hashes = 1
        cdef intp_t max_tables = 1
        cdef int tid
        cdef layer_t* c
        cdef HashFunctions hf
        cdef HashTables tables
        self.n_layers = len(layers)
        self.n_threads = n_threads
        self.batch_size = batch_size
        self.inference_only = inference_only
        self.step = 0
        self.step_base = step_base
        self.sparse_input = sparse_input
        self._catch_up = CatchUp(None)
        self._catch_up_key = None
        self.dtype = layers[0]["weights"].dtype
        self._keep = []
        self.n_active, self.macs, self.activations, self.active_ids = [], [], [], []
        self.last_steps = []
        self.layers = <layer_t*> calloc(self.n_layers, sizeof(layer_t))
        self.scratch = <scratch_t*> calloc(n_threads, sizeof(scratch_t))
        if self.layers == NULL or self.scratch == NULL:
            raise MemoryError()
        for l, spec in enumerate(layers):
            c = &self.layers[l]
            W = spec["weights"]
            c.n_out, c.n_in = W.shape[0], W.shape[1]
            c.activation = ACTIVATIONS[spec["activation"]]
            c.hashed = spec.get("tables") is not None
            if c.hashed:
                hf = spec["hash_functions"]
                tables = spec["tables"]
                c.family = &hf.c
                c.tables = &tables.c
                c.budget = spec["budget"]
                c.n_candidates = max(c.budget, spec.get("n_candidates", c.budget))
                c.min_active = spec["min_active"]
                c.strategy = STRATEGIES[spec["strategy"]]
                c.min_count = spec["min_count"]
                width = min(c.n_out, c.budget + spec.get("extra_width", 0))
                width = max(width, min(c.min_active, c.n_out))
                max_hash = max(max_hash, scratch_size(c.family))
                max_hashes = max(max_hashes, hf.n_tables * hf.n_bits_per_table)
                max_tables = max(max_tables, hf.n_tables)
                self._keep += [hf, tables]
            else:
                width = c.n_out
            c.width = width
            max_n = max(max_n, c.n_out)
            max_in = max(max_in, c.n_in)
            names = ("weights", "bias") if inference_only else (
                "weights", "bias", "moment1_w", "moment2_w", "moment1_b",
                "moment2_b")
            for name in names:
                arr = spec[name]
                if (arr.dtype != self.dtype or not arr.flags.c_contiguous
                        or not (arr.flags.writeable or inference_only)):
                    raise ValueError("%s of layer %d must be a writeable C-contiguous "
                                     "%s array" % (name, l, self.dtype))
            c.weights = <void*> <intp_t> W.ctypes.data
            c.bias = <void*> <intp_t> spec["bias"].ctypes.data
            if not inference_only:
                c.moment1_w = <void*> <intp_t> spec["moment1_w"].ctypes.data
                c.moment2_w = <void*> <intp_t> spec["moment2_w"].ctypes.data
                c.moment1_b = <void*> <intp_t> spec["moment1_b"].ctypes.data
                c.moment2_b = <void*> <intp_t> spec["moment2_b"].ctypes.data
                row_last = np.zeros(c.n_out, dtype=np.int32)
                c.row_last = <int32_t*> <intp_t> row_last.ctypes.data
                self.last_steps.append(row_last)
                self._keep.append(row_last)
                # A sparse input steps some entries of a row and not others.
                if sparse_input if l == 0 else self.layers[l - 1].hashed:
                    if c.hashed:
                        last = np.zeros((c.n_out, c.n_in), dtype=np.int32)
                        c.entry_last = <int32_t*> <intp_t> last.ctypes.data
                    else:
                        last = np.zeros(c.n_in, dtype=np.int32)
                        c.col_last = <int32_t*> <intp_t> last.ctypes.data
                    self._keep.append(last)
            ids = np.zeros((batch_size, width), dtype=np.int32)
            n_active = np.zeros(batch_size, dtype=np.intp)
            act = np.zeros((batch_size, width), dtype=self.dtype)
            delta = np.zeros((batch_size, width), dtype=self.dtype)
            macs = np.zeros(batch_size, dtype=np.int64)
            offsets = np.zeros(c.n_out + 1 if c.hashed else 1, dtype=np.int64)
            slots = np.zeros(batch_size * width if c.hashed else 1, dtype=np.int64)
            touched = np.zeros(c.n_out if c.hashed else 1, dtype=np.int32)
            c.ids = <int32_t*> <intp_t> ids.ctypes.data
            c.n_active = <intp_t*> <intp_t> n_active.ctypes.data
            c.act = <void*> <intp_t> act.ctypes.data
            c.delta = <void*> <intp_t> delta.ctypes.data
            c.macs = <int64_t*> <intp_t> macs.ctypes.data
            c.touched_offsets = <int64_t*> <intp_t> offsets.ctypes.data
            c.touched_slots = <int64_t*> <intp_t> slots.ctypes.data
            c.touched = <int32_t*> <intp_t> touched.ctypes.data
            self._keep += [spec, ids, n_active, act, delta, macs, offsets, slots,
                           touched]
            self.n_active.append(n_active)
            self.macs.append(macs)
            self.activations.append(act)
            self.active_ids.append(ids if c.hashed else None)

        # One zeroed row per thread of each buffer, rows a cache line apart.
        sizes = {
            "hash": (max_hash, np.float64), "codes": (max_hashes, np.int32),
            "keys": (max_tables, np.uint32), "marker": (max_n, np.int32),
            "counts": (max_n, np.int32), "candidates": (max_n, np.int32),
            "retrieved": (max_n, np.int32), "scores": (max_n, np.float64),
            "pre_act": (max_n, np.float64), "pre_marker": (max_n, np.int32),
            "set_marker": (max_n, np.int32),
            "nz_ids": (max(max_in, max_n), np.int32),
            "nz_vals": (max(max_in, max_n), self.dtype),
            "acc": (max_in, self.dtype), "cols": (max_in, np.int32),
            "col_marker": (max_in, np.int32),
        }
        rows = {name: per_thread_rows(n_threads, size, dtype)
                for name, (size, dtype) in sizes.items()}
        self._keep.append(rows)
        for tid in range(n_threads):
            buffers = {name: arr[tid] for name, arr in rows.items()}
            self._keep.append(buffers)
            self.scratch[tid].hash_scratch = <double*> <intp_t> buffers["hash"].ctypes.data
            self.scratch[tid].codes = <int32_t*> <intp_t> buffers["codes"].ctypes.data
            self.scratch[tid].keys = <key_t*> <intp_t> buffers["keys"].ctypes.data
            self.scratch[tid].query.marker = <int32_t*> <intp_t> buffers["marker"].ctypes.data
            self.scratch[tid].query.counts = <int32_t*> <intp_t> buffers["counts"].ctypes.data
            self.scratch[tid].query.candidates = <int32_t*> <intp_t> buffers["candidates"].ctypes.data
            self.scratch[tid].query.stamp = 0
            self.scratch[tid].retrieved = <int32_t*> <intp_t> buffers["retrieved"].ctypes.data
            self.scratch[tid].scores = <double*> <intp_t> buffers["scores"].ctypes.data
            self.scratch[tid].pre_act = <double*> <intp_t> buffers["pre_act"].ctypes.data
            self.scratch[tid].pre_marker = <int32_t*> <intp_t> buffers["pre_marker"].ctypes.data
            self.scratch[tid].set_marker = <int32_t*> <intp_t> buffers["set_marker"].ctypes.data
            self.scratch[tid].set_stamp = 0
            self.scratch[tid].marker_size = max_n
            self.scratch[tid].nz_ids = <int32_t*> <intp_t> buffers["nz_ids"].ctypes.data
            self.scratch[tid].nz_vals = <void*> <intp_t> buffers["nz_vals"].ctypes.data
            self.scratch[tid].acc = <void*> <intp_t> buffers["acc"].ctypes.data
            self.scratch[tid].cols = <int32_t*> <intp_t> buffers["cols"].ctypes.data
            self.scratch[tid].col_marker = <int32_t*> <intp_t> buffers["col_marker"].ctypes.data
            self.scratch[tid].col_stamp = 0
            self.scratch[tid].col_marker_size = max_in

    def __dealloc__(self):
        free(self.layers)
        free(self.scratch)

    def set_hashing(self, int layer, HashFunctions hash_functions, HashTables tables):
        """Point a hashed layer at new hash functions and tables."""
        if not self.layers[layer].hashed:
            raise ValueError("layer %d is not hashed" % layer)
        self.layers[layer].family = &hash_functions.c
        self.layers[layer].tables = &tables.c
        self._keep += [hash_functions, tables]

    cdef const catch_up_t* _tables(self, str solver, double beta_1, double beta_2,
                                   double momentum, bint nesterov) except? NULL:
        key = (solver, beta_1, beta_2, momentum, nesterov)
        if key != self._catch_up_key:
            self._catch_up = CatchUp(
                None if solver == "gradient" else
                catch_up_tables(solver, beta_1, beta_2, momentum, nesterov))
            self._catch_up_key = key
        return self._catch_up.pointer()

    def catch_up(self, *, str solver="adam", double learning_rate=1e-3,
                 double beta_1=0.9, double beta_2=0.999, double epsilon=1e-8,
                 double momentum=0.9, bint nesterov=True):
        """Bring every weight to the end of the last step.

        The rows and entries no gradient reached since their last step take
        the skipped steps in closed form, as a dense optimizer would have. Call
        it before the weights are read (evaluation, the end of a fit call).
        Parameters as in ``run``.
        """
        if self.inference_only:
            raise ValueError("this worker was built for inference only")
        cdef const catch_up_t* tables = self._tables(solver, beta_1, beta_2,
                                                     momentum, nesterov)
        cdef int solver_code = SOLVERS[solver]
        cdef int l
        cdef layer_t* layer
        if tables == NULL:
            return
        for l in range(self.n_layers):
            layer = &self.layers[l]
            if self.dtype == np.float32:
                with nogil:
                    _catch_up_layer(layer, <float*> layer.weights, solver_code,
                                    learning_rate, epsilon, self.step,
                                    self.step_base, tables, self.n_threads)
            else:
                with nogil:
                    _catch_up_layer(layer, <double*> layer.weights, solver_code,
                                    learning_rate, epsilon, self.step,
                                    self.step_base, tables, self.n_threads)

    def run(self, X, rows, Y=None, label_indptr=None, label_ids=None,
            sample_weight=None, *, bint training=True, uint64_t seed=0,
            str solver="adam", double scale=1.0, double alpha=0.0,
            double learning_rate=1e-3, double beta_1=0.9, double beta_2=0.999,
            double epsilon=1e-8, double momentum=0.9, bint nesterov=True):
        """Process one batch: forward (and, if training, backward and update).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features) or CSR matrix
            All the samples, in the weights' dtype (C-contiguous if dense; CSR
            with int32 indices and int64 indptr, sorted indices).
        rows : ndarray of shape (n_batch,), dtype intp
            The rows of X in this batch.
        Y : ndarray of shape (n_samples, n_outputs), default=None
            Dense targets, for a dense output layer.
        label_indptr, label_ids : ndarray, default=None
            Each row's label ids (int64 indptr, int32 ascending ids), for a
            hashed output layer.
        sample_weight : ndarray of shape (n_samples,), default=None
            Sample weights, in the weights' dtype.
        training : bool, default=True
            If False, only the forward pass through the active sets runs.
        seed : int, default=0
            Seed of the random padding of active sets in this batch.
        solver, scale, alpha, learning_rate, beta_1, beta_2, epsilon, momentum, nesterov
            The optimizer step; ``scale`` is 1 / (sum of sample weights).

        Returns
        -------
        sample_loss : ndarray of shape (n_batch,)
            Each sample's weighted loss over its active outputs.
        hash_seconds : ndarray of shape (n_batch,)
            Time spent hashing and querying tables for each sample.
        """
        cdef intp_t n_batch = rows.shape[0]
        cdef bint x_dense = isinstance(X, np.ndarray)
        cdef int solver_code = SOLVERS[solver]
        cdef int n_threads = self.n_threads
        cdef int n_layers = self.n_layers
        cdef void* X_ptr = NULL
        cdef void* X_data = NULL
        cdef int32_t* X_indices = NULL
        cdef int64_t* X_indptr = NULL
        cdef void* Y_ptr = _pointer(Y, self.dtype, "Y")
        cdef int64_t* label_indptr_ptr = <int64_t*> _pointer(label_indptr, np.int64, "label_indptr")
        cdef int32_t* label_ids_ptr = <int32_t*> _pointer(label_ids, np.int32, "label_ids")
        cdef void* sw_ptr = _pointer(sample_weight, self.dtype, "sample_weight")
        cdef intp_t* rows_ptr = <intp_t*> _pointer(rows, np.intp, "rows")
        cdef intp_t n_features
        if training and self.inference_only:
            raise ValueError("this worker was built for inference only")
        if n_batch > self.batch_size:
            raise ValueError("batch of %d rows exceeds the worker's %d"
                             % (n_batch, self.batch_size))
        if self.layers[n_layers - 1].hashed and training and label_indptr is None:
            raise ValueError("a hashed output layer needs label_indptr/label_ids")
        if not self.layers[n_layers - 1].hashed and training and Y is None:
            raise ValueError("a dense output layer needs Y")
        if training and not x_dense and not self.sparse_input:
            raise ValueError("this worker was built for dense X "
                             "(sparse_input=False)")
        cdef const catch_up_t* tables = NULL
        if training:
            tables = self._tables(solver, beta_1, beta_2, momentum, nesterov)
            if solver_code != GRADIENT and self.step == 2147483647:
                raise OverflowError("a worker takes at most 2**31 - 1 steps")
        if x_dense:
            X_ptr = _pointer(X, self.dtype, "X")
        else:
            X_data = _pointer(X.data, self.dtype, "X.data")
            X_indices = <int32_t*> _pointer(X.indices, np.int32, "X.indices")
            X_indptr = <int64_t*> _pointer(X.indptr, np.int64, "X.indptr")
        n_features = X.shape[1]
        if n_features != self.layers[0].n_in:
            raise ValueError("X has %d features, the network expects %d"
                             % (n_features, self.layers[0].n_in))
        sample_loss = np.zeros(n_batch, dtype=np.float64)
        hash_seconds = np.zeros(n_batch, dtype=np.float64)
        cdef double* loss_ptr = <double*> <intp_t> sample_loss.ctypes.data
        cdef double* hash_ptr = <double*> <intp_t> hash_seconds.ctypes.data
        cdef double eps = np.finfo(self.dtype).eps
        # Counted once the batch is sure to run: a refused call takes no step.
        if training and solver_code != GRADIENT:
            self.step += 1
        if self.dtype == np.float32:
            with nogil:
                _train_batch[float](
                    self.layers, n_layers, self.scratch, rows_ptr, n_batch,
                    x_dense, <float*> X_ptr, <float*> X_data, X_indices,
                    X_indptr, n_features, <float*> Y_ptr, label_indptr_ptr,
                    label_ids_ptr, <float*> sw_ptr, training, seed, loss_ptr,
                    hash_ptr, eps, solver_code, scale, alpha, learning_rate,
                    beta_1, beta_2, epsilon, momentum, nesterov, self.step,
                    self.step_base, tables, n_threads)
        else:
            with nogil:
                _train_batch[double](
                    self.layers, n_layers, self.scratch, rows_ptr, n_batch,
                    x_dense, <double*> X_ptr, <double*> X_data, X_indices,
                    X_indptr, n_features, <double*> Y_ptr, label_indptr_ptr,
                    label_ids_ptr, <double*> sw_ptr, training, seed, loss_ptr,
                    hash_ptr, eps, solver_code, scale, alpha, learning_rate,
                    beta_1, beta_2, epsilon, momentum, nesterov, self.step,
                    self.step_base, tables, n_threads)
        return sample_loss, hash_seconds


cdef void* _pointer(arr, dtype, str name) except? NULL:
    """Data pointer of a C-contiguous array of the given dtype (NULL for None)."""
    if arr is None:
        return NULL
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype or not arr.flags.c_contiguous:
        raise ValueError("%s must be a C-contiguous %s ndarray" % (name, np.dtype(dtype)))
    return <void*> <intp_t> arr.ctypes.data
