"""One mini-batch step of a network with hashed layers: the kernels.

``train_batch`` runs the step in two phases:

1. Layer by layer, forward then backward, parallel over samples: choose the
   active neurons (all of them for a dense layer; for a hashed layer, see
   ``_selection``), compute them forward, then the deltas backward between
   active neurons only. A dense layer over a dense input (a "gemm" layer)
   does this as matrix products over fixed blocks of ``GEMM_BLOCK`` samples
   instead. Weights are only read; each sample writes its own slots.
2. Parallel over the neurons the batch touched: each neuron's gradient row is
   the sum over its samples of delta x input (in sample order; for a gemm
   layer, the rows of a block of neurons as one matrix product), followed at
   once by the optimizer step on that row (see ``_optimizers``). A dense first
   layer over a sparse X is stored by input instead (``by_input``): parallel
   over the inputs the batch touched, each input's row of n_out weights is
   the sum over its samples of value x delta, then stepped. Skipped if a
   sample's loss is not finite, or a gradient (or its square, Adam's second
   moment) might not be: a diverged batch writes nothing.

Each row, and each entry of a row fed by a sparse input, remembers its last
step; an entry skipped by some steps catches up on them in closed form when it
is next stepped, or in ``catch_up``, so that the weights move as a dense
optimizer's would. No two threads write the same memory, and every sum runs in
a fixed order (a matrix product over a fixed block is one BLAS call, whichever
thread makes it; the estimators run BLAS on one thread inside these loops), so
a step gives the same bits for any number of threads.

The layer structs hold float or double arrays as void pointers; the kernels
are specialised on ``floating`` by a ``tag`` argument (a zero of the network's
dtype) that only selects the specialisation. They trust their inputs: the
worker (``_network.BatchTrainer``) checks every array where it enters.
"""
from cython.parallel cimport prange

from libc.float cimport DBL_MAX, FLT_MAX
from libc.math cimport exp, fabs, isfinite, log, sqrt, tanh
from libc.string cimport memcpy, memset

from cython cimport floating

from ._common cimport (
    EXP,
    GEMM_BLOCK,
    LOGISTIC,
    RELU,
    SOFTMAX,
    TANH,
    axpy,
    batch_t,
    dot,
    gather_dot,
    gemm,
    keys_by_block,
    layer_t,
    network_t,
    scratch_t,
)
from ._hashing cimport SIMHASH_BLOCK, simhash_block
from ._openmp_helpers cimport omp_get_thread_num, omp_get_wtime
from ._prefetch cimport PREFETCH_ROWS_AHEAD, prefetch_row
from ._optimizers cimport (
    ADAM,
    GRADIENT,
    adam_catch_up_row,
    adam_row,
    sgd_catch_up_row,
    sgd_row,
    step_t,
)
from ._selection cimport choose_active
from ._typedefs cimport int32_t, int64_t, intp_t, stamp_t, uint64_t

cdef int32_t INT32_MAX = 2147483647


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


cdef inline bint _dropped(const batch_t* b, intp_t ii) noexcept nogil:
    # A row of weight 0 touches nothing, as if it were not in the batch.
    return b.sample_weight != NULL and b.sample_weight[b.rows[ii]] == 0


cdef inline bint _sparse_input(const network_t* net, int l,
                               const batch_t* b) noexcept nogil:
    return b.X == NULL if l == 0 else net.layers[l - 1].hashed


cdef intp_t _input_row(
    const network_t* net,
    int l,
    intp_t ii,
    const batch_t* b,
    const floating** dense,
    const int32_t** ids,
    const floating** vals,
) noexcept nogil:
    """Layer l's input in slot ii: a dense row (ids NULL) or a sparse one.

    Returns its length: the fan-in if dense, else the stored entries.
    """
    cdef const layer_t* prev
    cdef intp_t row
    dense[0] = NULL
    ids[0] = NULL
    vals[0] = NULL
    if l == 0:
        row = b.rows[ii]
        if b.X != NULL:
            dense[0] = <const floating*> b.X + row * b.n_features
            return b.n_features
        ids[0] = b.X_indices + b.X_indptr[row]
        vals[0] = <const floating*> b.X_data + b.X_indptr[row]
        return b.X_indptr[row + 1] - b.X_indptr[row]
    prev = &net.layers[l - 1]
    if prev.hashed:
        ids[0] = prev.ids + ii * prev.width
        vals[0] = <const floating*> prev.act + ii * prev.width
    else:
        dense[0] = <const floating*> prev.act + ii * prev.width
    return prev.n_active[ii]


cdef double _output_delta(
    const layer_t* layer,
    intp_t ii,
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
    for a in range(layer.n_active[ii]):
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


cdef void _forward_layer(network_t* net, const batch_t* b, int l, intp_t ii,
                         scratch_t* s, floating tag) noexcept nogil:
    """Forward pass of slot ii through the active neurons of layer l."""
    cdef intp_t a, n_act, in_n
    cdef layer_t* layer = &net.layers[l]
    cdef const floating* in_dense
    cdef const int32_t* in_ids
    cdef const floating* in_vals
    cdef const int32_t* labels
    cdef intp_t n_labels, row = b.rows[ii]
    cdef floating* out
    cdef const floating* W
    cdef const floating* bias
    cdef int32_t* ids
    cdef int32_t k
    cdef uint64_t rng_state
    cdef int64_t layer_macs = 0
    in_n = _input_row(net, l, ii, b, &in_dense, &in_ids, &in_vals)
    if layer.hashed:
        labels = NULL
        n_labels = 0
        if b.training and l == net.n_layers - 1:
            labels = b.label_ids + b.label_indptr[row]
            n_labels = b.label_indptr[row + 1] - b.label_indptr[row]
        rng_state = b.seed ^ (<uint64_t> (l + 1) * <uint64_t> 0xD1B54A32D192ED03)
        n_act = choose_active(layer, ii, in_dense, in_ids, in_vals, in_n,
                              labels, n_labels, rng_state, s,
                              &b.hash_seconds[ii], &layer_macs)
    else:
        n_act = layer.n_out
    layer.n_active[ii] = n_act

    out = <floating*> layer.act + ii * layer.width
    W = <const floating*> layer.weights
    bias = <const floating*> layer.bias
    if layer.by_input:
        _forward_by_input(layer, in_dense, in_ids, in_vals, in_n, out)
        layer.macs[ii] = layer.n_out * in_n
        _activate(layer.activation, out, n_act)
        return
    ids = layer.ids + ii * layer.width
    for a in range(n_act):
        k = ids[a] if layer.hashed else <int32_t> a
        if layer.hashed and out[a] == out[a]:
            continue  # not NaN: computed when ranking (choose_active)
        layer_macs += in_n
        if in_ids == NULL:
            out[a] = bias[k] + dot(layer.n_in, W + k * layer.n_in, in_dense)
        else:
            out[a] = bias[k] + gather_dot(W + k * layer.n_in, in_ids, in_vals,
                                          in_n)
    layer.macs[ii] = layer_macs
    _activate(layer.activation, out, n_act)


cdef void _forward_by_input(const layer_t* layer, const floating* in_dense,
                            const int32_t* in_ids, const floating* in_vals,
                            intp_t in_n, floating* out) noexcept nogil:
    """Pre-activations of every neuron of a layer stored by input: the bias,
    then one contiguous row of weights per non-zero input, in input order."""
    cdef const floating* W_t = <const floating*> layer.weights
    cdef intp_t t, n_out = layer.n_out
    memcpy(out, layer.bias, n_out * sizeof(floating))
    if in_ids != NULL:
        for t in range(in_n):
            axpy(n_out, in_vals[t], W_t + <intp_t> in_ids[t] * n_out, out)
    else:
        for t in range(in_n):
            if in_dense[t] != 0:
                axpy(n_out, in_dense[t], W_t + t * n_out, out)


cdef void _hash_block(const network_t* net, const batch_t* b, int l, intp_t i0,
                      scratch_t* s) noexcept nogil:
    """The keys of slots i0 to i0 + SIMHASH_BLOCK of layer l's (float32, dense)
    queries, [x - query_center, 1] or x, by one product with the projections:
    a layer's hashing per sample was a pass over all of them per sample."""
    cdef const layer_t* layer = &net.layers[l]
    cdef intp_t i1 = min(i0 + SIMHASH_BLOCK, b.n_samples), ii, j
    cdef intp_t n_in = layer.n_in, L = layer.family.n_tables
    cdef intp_t width = n_in + (layer.query_center != NULL)
    cdef const float* center = <const float*> layer.query_center
    cdef const float* x
    cdef const int32_t* unused_ids
    cdef const float* unused_vals
    cdef float* q
    cdef double start = omp_get_wtime()
    for ii in range(i0, i1):
        _input_row(net, l, ii, b, &x, &unused_ids, &unused_vals)
        q = s.query_block + (ii - i0) * width
        if center != NULL:
            for j in range(n_in):
                q[j] = x[j] - center[j]
            q[n_in] = 1
        else:
            memcpy(q, x, n_in * sizeof(float))
    simhash_block(layer.family, s.query_block, width, <int> (i1 - i0), s.hash_acc,
                  s.codes, layer.batch_keys + i0 * L, L)
    b.hash_seconds[i0] += omp_get_wtime() - start


cdef inline bint _gemm(const network_t* net, int l, const batch_t* b) noexcept nogil:
    """Whether layer l's batch work is matrix products: a dense layer over a
    dense input (for the first layer, X's rows gathered by the worker)."""
    return net.layers[l].gemm and (l > 0 or b.X_batch != NULL)


cdef inline const floating* _gemm_inputs(const network_t* net, int l,
                                         const batch_t* b, intp_t* ld,
                                         floating tag) noexcept nogil:
    """A gemm layer's inputs, slot by slot, and their row stride."""
    if l == 0:
        ld[0] = b.n_features
        return <const floating*> b.X_batch
    ld[0] = net.layers[l - 1].width
    return <const floating*> net.layers[l - 1].act


cdef void _forward_block(network_t* net, const batch_t* b, int l, intp_t i0,
                         floating tag) noexcept nogil:
    """Forward pass of a gemm layer over slots i0 to i0 + GEMM_BLOCK: one
    matrix product, then each slot's bias and activation."""
    cdef layer_t* layer = &net.layers[l]
    cdef intp_t i1 = min(i0 + GEMM_BLOCK, b.n_samples), ii, a, ld
    cdef const floating* inputs = _gemm_inputs(net, l, b, &ld, tag)
    cdef const floating* bias = <const floating*> layer.bias
    cdef floating* out = <floating*> layer.act + i0 * layer.width
    # Row-major out (slots x n_out) = inputs (slots x n_in) W^T; stored by
    # input, W^T is the row-major array (n_in x n_out) itself.
    if layer.by_input:
        gemm(c"N", c"N", layer.n_out, i1 - i0, layer.n_in,
             <const floating*> layer.weights, layer.n_out, inputs + i0 * ld, ld,
             out, layer.width)
    else:
        gemm(c"T", c"N", layer.n_out, i1 - i0, layer.n_in,
             <const floating*> layer.weights, layer.n_in, inputs + i0 * ld, ld,
             out, layer.width)
    for ii in range(i0, i1):
        out = <floating*> layer.act + ii * layer.width
        for a in range(layer.n_out):
            out[a] += bias[a]
        layer.n_active[ii] = layer.n_out
        layer.macs[ii] = layer.n_out * layer.n_in
        _activate(layer.activation, out, layer.n_out)


cdef void _output_deltas(network_t* net, const batch_t* b, intp_t ii,
                         floating tag) noexcept nogil:
    """Output deltas and loss of slot ii."""
    cdef intp_t row = b.rows[ii]
    cdef layer_t* layer = &net.layers[net.n_layers - 1]
    cdef const int32_t* labels = NULL
    cdef intp_t n_labels = 0
    if layer.hashed:
        labels = b.label_ids + b.label_indptr[row]
        n_labels = b.label_indptr[row + 1] - b.label_indptr[row]
    b.sample_loss[ii] = _output_delta(
        layer, ii,
        <const floating*> b.Y + row * layer.n_out if not layer.hashed else NULL,
        labels, n_labels,
        b.sample_weight[row] if b.sample_weight != NULL else 1.0, b.eps)


cdef void _backward_layer(network_t* net, const batch_t* b, int l, intp_t ii,
                          floating tag) noexcept nogil:
    """Slot ii's deltas of layer l - 1's active neurons, from layer l's."""
    cdef intp_t a, t, n_act, n_prev
    cdef layer_t* layer = &net.layers[l]
    cdef layer_t* prev = &net.layers[l - 1]
    cdef floating* d_cur
    cdef floating* d_prev
    cdef const floating* a_prev
    cdef const floating* W
    cdef const int32_t* ids
    cdef const int32_t* prev_ids
    cdef int32_t k
    cdef floating dk
    n_act = layer.n_active[ii]
    n_prev = prev.n_active[ii]
    d_cur = <floating*> layer.delta + ii * layer.width
    d_prev = <floating*> prev.delta + ii * prev.width
    a_prev = <const floating*> prev.act + ii * prev.width
    ids = layer.ids + ii * layer.width
    prev_ids = prev.ids + ii * prev.width
    W = <const floating*> layer.weights
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
            axpy(n_prev, dk, W + k * layer.n_in, d_prev)
    for t in range(n_prev):
        d_prev[t] = <floating> (d_prev[t] * _derivative(prev.activation, a_prev[t]))


cdef void _backward_block(network_t* net, const batch_t* b, int l, intp_t i0,
                          floating tag) noexcept nogil:
    """Deltas of layer l - 1 (dense) over slots i0 to i0 + GEMM_BLOCK, from
    those of the gemm layer l: one matrix product."""
    cdef layer_t* layer = &net.layers[l]
    cdef layer_t* prev = &net.layers[l - 1]
    cdef intp_t i1 = min(i0 + GEMM_BLOCK, b.n_samples), ii, t
    cdef floating* d_prev
    cdef const floating* a_prev
    # Row-major d_prev (slots x n_in) = delta (slots x n_out) W.
    gemm(c"N", c"N", layer.n_in, i1 - i0, layer.n_out,
         <const floating*> layer.weights, layer.n_in,
         <const floating*> layer.delta + i0 * layer.width, layer.width,
         <floating*> prev.delta + i0 * prev.width, prev.width)
    for ii in range(i0, i1):
        d_prev = <floating*> prev.delta + ii * prev.width
        a_prev = <const floating*> prev.act + ii * prev.width
        for t in range(prev.n_out):
            d_prev[t] = <floating> (d_prev[t]
                                    * _derivative(prev.activation, a_prev[t]))


cdef void _regroup(layer_t* layer, const batch_t* b) noexcept nogil:
    """Invert (sample -> active neurons) into (neuron -> slots), in sample order."""
    cdef intp_t ii, a, k, n_touched = 0
    cdef int64_t* offsets = layer.touched_offsets
    cdef int32_t* ids
    memset(offsets, 0, (layer.n_out + 1) * sizeof(int64_t))
    for ii in range(b.n_samples):
        if _dropped(b, ii):
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
    for ii in range(b.n_samples):
        if _dropped(b, ii):
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
    const network_t* net,
    int l,
    int32_t k,
    const batch_t* b,
    const step_t* st,
    scratch_t* s,
    floating tag,
) noexcept nogil:
    """Gradient row of neuron k summed over its samples, then its step.

    When the layer's input is sparse (CSR rows, or a hashed layer's active
    outputs), only the entries of the inputs the neuron saw are gathered and
    stepped: the step costs what the batch touched, not the fan-in.
    """
    cdef layer_t* layer = &net.layers[l]
    cdef const floating* delta = <const floating*> layer.delta
    cdef floating* grad = <floating*> s.acc
    cdef const floating* in_dense
    cdef const int32_t* in_ids
    cdef const floating* in_vals
    cdef intp_t e, e_start = 0, e_end = b.n_samples, ii, slot, t, in_n
    cdef intp_t n_in = layer.n_in
    cdef floating dk
    cdef floating grad_bias = 0
    cdef int32_t j
    cdef bint sparse_input = _sparse_input(net, l, b)
    cdef int32_t* cols = s.cols if sparse_input else NULL
    cdef intp_t n_cols = 0
    if sparse_input:
        if s.col_stamp >= INT32_MAX - 1:
            memset(s.col_marker, 0, s.col_marker_size * sizeof(int32_t))
            s.col_stamp = 0
        s.col_stamp += 1
    if layer.hashed:
        e_start = layer.touched_offsets[k]
        e_end = layer.touched_offsets[k + 1]
    for e in range(e_start, e_end):
        if layer.hashed:
            slot = layer.touched_slots[e]
            ii = slot // layer.width
        else:
            ii = e
            slot = ii * layer.width + k
        if _dropped(b, ii):
            continue
        dk = delta[slot]
        # A sparse input's entries count as seen even through a zero delta,
        # so that the stepped entries do not depend on the activations.
        if dk == 0 and not sparse_input:
            continue
        grad_bias += dk
        in_n = _input_row(net, l, ii, b, &in_dense, &in_ids, &in_vals)
        if in_ids == NULL:
            axpy(n_in, dk, in_dense, grad)
            continue
        for t in range(in_n):
            j = in_ids[t]
            if s.col_marker[j] != s.col_stamp:
                s.col_marker[j] = s.col_stamp
                cols[n_cols] = j
                n_cols += 1
            grad[j] += dk * in_vals[t]
    if not sparse_input:
        n_cols = n_in
    _step_row(net, l, k, grad, grad_bias, cols, n_cols, st, tag)


cdef inline bint _in_share(int32_t k, intp_t share, intp_t n_shares) noexcept nogil:
    """Whether neuron (or input) k is in share `share` of n_shares: blocks of
    16 ids dealt in turn, so that shares are even when the ids' frequencies
    follow their order (labels sorted by frequency)."""
    return (k >> 4) % n_shares == share


cdef void _update_share(const network_t* net, int l, intp_t share,
                        const batch_t* b, const step_t* st, scratch_t* s,
                        floating tag) noexcept nogil:
    """Steps of a hashed layer's touched neurons in share `share`, in
    ascending order; a neuron's step does not depend on the thread that
    takes it, so the bits do not depend on the shares."""
    cdef const layer_t* layer = &net.layers[l]
    cdef intp_t n_shares = net.n_threads, t, ahead
    cdef int32_t k
    # Whole short rows: the touched neurons are scattered.
    cdef bint prefetch_rows = not _sparse_input(net, l, b)
    for t in range(layer.n_touched):
        k = layer.touched[t]
        if not _in_share(k, share, n_shares):
            continue
        ahead = t + n_shares * PREFETCH_ROWS_AHEAD
        if (prefetch_rows and ahead < layer.n_touched
                and _in_share(layer.touched[ahead], share, n_shares)):
            _prefetch_neuron(layer, layer.touched[ahead], tag)
        _update_neuron(net, l, k, b, st, s, tag)


cdef inline void _prefetch_neuron(const layer_t* layer, int32_t k,
                                  floating tag) noexcept nogil:
    """Prefetch the rows neuron k's step writes: weights and moments."""
    cdef intp_t offset = k * layer.n_in
    cdef intp_t n_bytes = layer.n_in * sizeof(floating)
    prefetch_row(<floating*> layer.weights + offset, n_bytes, True)
    prefetch_row(<floating*> layer.moment1_w + offset, n_bytes, True)
    if layer.moment2_w != layer.moment1_w:
        prefetch_row(<floating*> layer.moment2_w + offset, n_bytes, True)


cdef inline void _step_entries(
    floating* param, floating* moment1, floating* moment2, floating* grad,
    const int32_t* cols, intp_t n, double alpha, const step_t* st,
    int32_t row_last, const stamp_t* last, stamp_t* stamp,
) noexcept nogil:
    """The optimizer step of n entries of a row (``cols``, or all if NULL)
    from their gradient; zeroes ``grad``'s stepped entries. The gradient
    solver stores the gradient in ``moment1``."""
    if st.solver == GRADIENT:
        _store_gradient(moment1, param, grad, cols, n, st.scale, alpha)
    elif st.solver == ADAM:
        adam_row(param, moment1, moment2, grad, cols, n, alpha, st, row_last,
                 last, stamp)
    else:
        sgd_row(param, moment1, grad, cols, n, alpha, st, row_last, last, stamp)


cdef inline void _step_bias(const layer_t* layer, int32_t k, floating grad_bias,
                            const step_t* st, floating tag) noexcept nogil:
    """The optimizer step of neuron k's bias (call before its row_last moves)."""
    _step_entries(<floating*> layer.bias + k, <floating*> layer.moment1_b + k,
                  <floating*> layer.moment2_b + k, &grad_bias, NULL, 1, 0.0, st,
                  layer.row_last[k], NULL, NULL)


cdef void _step_row(const network_t* net, int l, int32_t k, floating* grad,
                    floating grad_bias, const int32_t* cols, intp_t n_cols,
                    const step_t* st, floating tag) noexcept nogil:
    """The optimizer step of neuron k of layer l from its gradient row (the
    entries ``cols``, or all if NULL); zeroes ``grad``'s stepped entries."""
    cdef layer_t* layer = &net.layers[l]
    cdef intp_t n_in = layer.n_in
    cdef floating* W = <floating*> layer.weights + k * n_in
    cdef stamp_t* last = NULL
    cdef stamp_t* stamp = NULL
    # Each entry's last step: its own in a hashed layer, its input's in a dense
    # one (stamped after the whole layer is stepped), else the row's.
    if layer.entry_last != NULL:
        last = stamp = layer.entry_last + k * n_in
    elif layer.col_last != NULL:
        last = layer.col_last
    _step_entries(W, <floating*> layer.moment1_w + k * n_in,
                  <floating*> layer.moment2_w + k * n_in, grad, cols, n_cols,
                  st.alpha, st, layer.row_last[k], last, stamp)
    _step_bias(layer, k, grad_bias, st, tag)
    layer.row_last[k] = st.step
    if layer.weights_t != NULL and st.solver != GRADIENT:
        _copy_to_transposed(layer, k, W, cols, n_cols)


cdef inline int32_t _input_last(const step_t* st, stamp_t stamp) noexcept nogil:
    # An input's last step, from its stamp modulo 2**16 (the worker keeps
    # every lag below that).
    return st.step - <stamp_t> (<stamp_t> st.step - stamp)


cdef void _regroup_inputs(layer_t* layer, const batch_t* b,
                          floating tag) noexcept nogil:
    """The batch's CSR rows regrouped by input for a by_input first layer:
    each touched input (in order of first sight) with its (slot, value)
    entries in sample order."""
    cdef intp_t ii, t, row, n_inputs = 0
    cdef int64_t e, start, stop
    cdef int32_t j, place
    cdef int64_t* offsets = layer.input_offsets
    cdef floating* values = <floating*> layer.entry_values
    cdef const floating* X_data = <const floating*> b.X_data
    for ii in range(b.n_samples):
        if _dropped(b, ii):
            continue
        row = b.rows[ii]
        for e in range(b.X_indptr[row], b.X_indptr[row + 1]):
            j = b.X_indices[e]
            if layer.input_place[j] < 0:
                layer.input_place[j] = <int32_t> n_inputs
                layer.inputs[n_inputs] = j
                offsets[n_inputs + 1] = 0
                n_inputs += 1
            offsets[layer.input_place[j] + 1] += 1
    offsets[0] = 0
    for t in range(n_inputs):
        offsets[t + 1] += offsets[t]
    for ii in range(b.n_samples):
        if _dropped(b, ii):
            continue
        row = b.rows[ii]
        start = b.X_indptr[row]
        stop = b.X_indptr[row + 1]
        for e in range(start, stop):
            place = layer.input_place[b.X_indices[e]]
            layer.entry_slots[offsets[place]] = <int32_t> ii
            values[offsets[place]] = X_data[e]
            offsets[place] += 1
    # The fill advanced each offset to the next one's start: shift back.
    for t in range(n_inputs, 0, -1):
        offsets[t] = offsets[t - 1]
    offsets[0] = 0
    for t in range(n_inputs):
        layer.input_place[layer.inputs[t]] = -1
    layer.n_inputs = n_inputs


cdef void _update_input(const network_t* net, int l, intp_t t, const batch_t* b,
                        const step_t* st, scratch_t* s, floating tag) noexcept nogil:
    """Gradient row of input t of a by_input layer (the t-th of the batch's
    inputs; with a dense X, input t itself) summed over its samples, then the
    step of its n_out weights, contiguous."""
    cdef const layer_t* layer = &net.layers[l]
    cdef intp_t n_out = layer.n_out, ii, offset
    cdef const floating* delta = <const floating*> layer.delta
    cdef const floating* values = <const floating*> layer.entry_values
    cdef const floating* X = <const floating*> b.X
    cdef floating* grad = <floating*> s.acc
    cdef floating x
    cdef int64_t e
    cdef int32_t j
    if X != NULL:
        j = <int32_t> t
        for ii in range(b.n_samples):
            x = X[b.rows[ii] * b.n_features + j]
            if x != 0 and not _dropped(b, ii):
                axpy(n_out, x, delta + ii * layer.width, grad)
    else:
        j = layer.inputs[t]
        for e in range(layer.input_offsets[t], layer.input_offsets[t + 1]):
            axpy(n_out, values[e], delta + <intp_t> layer.entry_slots[e] * layer.width,
                 grad)
    offset = <intp_t> j * n_out
    _step_entries(<floating*> layer.weights + offset,
                  <floating*> layer.moment1_w + offset,
                  <floating*> layer.moment2_w + offset, grad, NULL, n_out,
                  st.alpha, st, _input_last(st, layer.col_last[j]), NULL, NULL)


cdef void _update_input_share(const network_t* net, int l, intp_t share,
                              const batch_t* b, const step_t* st, scratch_t* s,
                              floating tag) noexcept nogil:
    """_update_input for the batch's inputs in share `share` (_in_share)."""
    cdef const layer_t* layer = &net.layers[l]
    cdef intp_t t
    cdef int32_t j
    for t in range(layer.n_inputs):
        j = <int32_t> t if b.X != NULL else layer.inputs[t]
        if _in_share(j, share, net.n_threads):
            _update_input(net, l, t, b, st, s, tag)


cdef void _update_biases(const network_t* net, int l, intp_t k0, intp_t k1,
                         const batch_t* b, const step_t* st,
                         floating tag) noexcept nogil:
    """The bias steps of neurons k0 to k1 of a by_input layer (every neuron
    is active): each one's gradient summed in sample order."""
    cdef const layer_t* layer = &net.layers[l]
    cdef const floating* delta = <const floating*> layer.delta
    cdef floating grad_bias
    cdef intp_t k, ii
    for k in range(k0, k1):
        grad_bias = 0
        for ii in range(b.n_samples):
            if not _dropped(b, ii):
                grad_bias += delta[ii * layer.width + k]
        _step_bias(layer, <int32_t> k, grad_bias, st, tag)
        layer.row_last[k] = st.step


cdef void _update_block(network_t* net, int l, intp_t k0, const batch_t* b,
                        const step_t* st, scratch_t* s, floating tag) noexcept nogil:
    """Gradient rows of a gemm layer's neurons k0 to k0 + GEMM_BLOCK (one
    matrix product over the batch), then each one's optimizer step."""
    cdef layer_t* layer = &net.layers[l]
    cdef intp_t k1 = min(k0 + GEMM_BLOCK, layer.n_out), ii, k, ld
    cdef intp_t n_in = layer.n_in
    cdef const floating* inputs = _gemm_inputs(net, l, b, &ld, tag)
    cdef const floating* delta = <const floating*> layer.delta
    cdef floating* grad = <floating*> s.grad_block
    cdef floating grad_bias
    # Row-major grad (neurons x n_in) = delta[:, k0:k1]^T inputs.
    gemm(c"N", c"T", n_in, k1 - k0, b.n_samples, inputs, ld, delta + k0,
         layer.width, grad, n_in)
    for k in range(k0, k1):
        grad_bias = 0
        for ii in range(b.n_samples):
            grad_bias += delta[ii * layer.width + k]
        _step_row(net, l, <int32_t> k, grad + (k - k0) * n_in, grad_bias, NULL,
                  n_in, st, tag)


cdef inline void _copy_to_transposed(layer_t* layer, int32_t k, const floating* W,
                                     const int32_t* cols,
                                     intp_t n_cols) noexcept nogil:
    """Write entries of neuron k's row (``cols``, or all if NULL) to column k
    of the layer's transposed weights. Neurons are stepped in parallel: each
    writes its own column."""
    cdef floating* W_t = <floating*> layer.weights_t
    cdef intp_t c, j
    for c in range(n_cols):
        j = cols[c] if cols != NULL else c
        W_t[j * layer.n_out + k] = W[j]


cdef void _stamp_inputs(const network_t* net, int l, const batch_t* b,
                        stamp_t step, floating tag) noexcept nogil:
    """Stamp the inputs a dense layer's rows were stepped on with ``step``."""
    cdef layer_t* layer = &net.layers[l]
    cdef const floating* in_dense
    cdef const int32_t* in_ids
    cdef const floating* in_vals
    cdef intp_t ii, t, in_n
    # Only a sparse input has col_last: CSR X, or a hashed layer below (dense
    # X fed to a worker built for CSR steps every input).
    if l == 0 and b.X != NULL:
        for t in range(layer.n_in):
            layer.col_last[t] = step
        return
    for ii in range(b.n_samples):
        if _dropped(b, ii):
            continue
        in_n = _input_row(net, l, ii, b, &in_dense, &in_ids, &in_vals)
        for t in range(in_n):
            layer.col_last[in_ids[t]] = step


cdef void _bound_gradients(const network_t* net, const batch_t* b, intp_t ii,
                           floating tag) noexcept nogil:
    """Slot ii's share of a bound on every layer's gradient entries.

    An entry of layer l's gradient is scale x (sum over samples of delta x
    input): max |delta| x max(|input|, 1) (1: the bias's input) bounds a
    sample's part of every entry of the layer.
    """
    cdef double delta_max, input_max
    cdef intp_t a, in_n
    cdef int l
    cdef layer_t* layer
    cdef const floating* delta
    cdef const floating* in_dense
    cdef const int32_t* in_ids
    cdef const floating* in_vals
    cdef const floating* inputs
    for l in range(net.n_layers):
        layer = &net.layers[l]
        delta = <const floating*> layer.delta + ii * layer.width
        delta_max = 0
        for a in range(layer.n_active[ii]):
            delta_max = max(delta_max, fabs(delta[a]))
        in_n = _input_row(net, l, ii, b, &in_dense, &in_ids, &in_vals)
        inputs = in_dense if in_dense != NULL else in_vals
        input_max = 1
        for a in range(in_n):
            input_max = max(input_max, fabs(inputs[a]))
        layer.grad_bound[ii] = delta_max * input_max


cdef bint _gradients_finite(const network_t* net, const batch_t* b,
                            const step_t* st, floating tag) noexcept nogil:
    """Whether every gradient of the batch, squared too (Adam's second
    moment), is surely finite: summed in sample order, so the answer does
    not depend on the thread count."""
    cdef double limit = sqrt(FLT_MAX if floating is float else DBL_MAX)
    cdef double bound
    cdef intp_t ii
    cdef int l
    for l in range(net.n_layers):
        bound = 0
        for ii in range(b.n_samples):
            if not _dropped(b, ii):
                bound += net.layers[l].grad_bound[ii]
        if not bound * st.scale < limit:
            return False
    return True


cdef bint train_batch(network_t* net, const batch_t* b, const step_t* st,
                      floating tag) noexcept nogil:
    cdef intp_t ii, t, n_blocks = (b.n_samples + GEMM_BLOCK - 1) // GEMM_BLOCK
    cdef int tid, l
    cdef layer_t* layer
    # Phase 1, layer by layer: a gemm layer's work is matrix products over
    # fixed blocks of slots, any other's goes slot by slot.
    if _gemm(net, 0, b):
        for ii in prange(b.n_samples, schedule="static", num_threads=net.n_threads):
            memcpy(<floating*> b.X_batch + ii * b.n_features,
                   <const floating*> b.X + b.rows[ii] * b.n_features,
                   b.n_features * sizeof(floating))
    for l in range(net.n_layers):
        if _gemm(net, l, b):
            for t in prange(n_blocks, schedule="static", num_threads=net.n_threads):
                _forward_block(net, b, l, t * GEMM_BLOCK, tag)
        else:
            if floating is float:
                if keys_by_block(&net.layers[l]):
                    for t in prange((b.n_samples + SIMHASH_BLOCK - 1)
                                    // SIMHASH_BLOCK, schedule="static",
                                    num_threads=net.n_threads):
                        tid = omp_get_thread_num()
                        _hash_block(net, b, l, t * SIMHASH_BLOCK,
                                    &net.scratch[tid])
            # A hashed layer's samples differ in cost (their candidates):
            # handed out in small chunks, each slot still computed alone.
            for ii in prange(b.n_samples, schedule="dynamic", chunksize=4,
                             num_threads=net.n_threads):
                tid = omp_get_thread_num()
                _forward_layer(net, b, l, ii, &net.scratch[tid], tag)
    if not b.training:
        return True
    for ii in prange(b.n_samples, schedule="static", num_threads=net.n_threads):
        _output_deltas(net, b, ii, tag)
    for l in range(net.n_layers - 1, 0, -1):
        if _gemm(net, l, b):
            for t in prange(n_blocks, schedule="static", num_threads=net.n_threads):
                _backward_block(net, b, l, t * GEMM_BLOCK, tag)
        else:
            for ii in prange(b.n_samples, schedule="static",
                             num_threads=net.n_threads):
                _backward_layer(net, b, l, ii, tag)
    for ii in prange(b.n_samples, schedule="static", num_threads=net.n_threads):
        _bound_gradients(net, b, ii, tag)
    for ii in range(b.n_samples):
        if not _dropped(b, ii) and not isfinite(b.sample_loss[ii]):
            return False
    if not _gradients_finite(net, b, st, tag):
        return False
    for ii in range(b.n_samples):
        if _dropped(b, ii):
            # A matrix product over the batch reads every slot's deltas.
            for l in range(net.n_layers):
                layer = &net.layers[l]
                memset(<floating*> layer.delta + ii * layer.width, 0,
                       layer.width * sizeof(floating))
    # Phase 2, layer by layer: the touched neurons' gradient rows and steps.
    for l in range(net.n_layers):
        layer = &net.layers[l]
        if _gemm(net, l, b):
            layer.n_touched = layer.n_out
            for t in prange((layer.n_out + GEMM_BLOCK - 1) // GEMM_BLOCK,
                            schedule="dynamic", num_threads=net.n_threads):
                tid = omp_get_thread_num()
                _update_block(net, l, t * GEMM_BLOCK, b, st, &net.scratch[tid],
                              tag)
        elif layer.by_input:
            if b.X == NULL:
                _regroup_inputs(layer, b, tag)
            else:
                layer.n_inputs = layer.n_in
            # Shares of the inputs, as for a hashed layer's neurons.
            for t in prange(net.n_threads, schedule="static",
                            num_threads=net.n_threads):
                _update_input_share(net, l, t, b, st,
                                    &net.scratch[omp_get_thread_num()], tag)
            for t in prange((layer.n_out + GEMM_BLOCK - 1) // GEMM_BLOCK,
                            schedule="static", num_threads=net.n_threads):
                _update_biases(net, l, t * GEMM_BLOCK,
                               min((t + 1) * GEMM_BLOCK, layer.n_out), b, st, tag)
        elif layer.hashed:
            _regroup(layer, b)
            # Each thread steps the same share of the neurons at every batch:
            # a neuron's moments stay in one core's cache instead of moving to
            # whichever thread a dynamic schedule hands it (which made
            # WordNet's steps cost 1.56x the CPU on two threads as on one).
            for t in prange(net.n_threads, schedule="static",
                            num_threads=net.n_threads):
                _update_share(net, l, t, b, st,
                              &net.scratch[omp_get_thread_num()], tag)
        else:
            layer.n_touched = layer.n_out
            for t in prange(layer.n_out, schedule="dynamic", chunksize=4,
                            num_threads=net.n_threads):
                tid = omp_get_thread_num()
                _update_neuron(net, l, <int32_t> t, b, st, &net.scratch[tid], tag)
        if layer.col_last != NULL:
            _stamp_inputs(net, l, b, <stamp_t> st.step, tag)
    return True


cdef void catch_up(network_t* net, const step_t* st, const unsigned char* layers,
                   floating tag) noexcept nogil:
    """Bring every weight of the chosen layers (all if ``layers`` is NULL) to
    the end of ``st.step``."""
    cdef intp_t k, n_in
    cdef int l
    cdef layer_t* layer
    cdef stamp_t* last
    cdef stamp_t* stamp
    for l in range(net.n_layers):
        if layers != NULL and not layers[l]:
            continue
        layer = &net.layers[l]
        n_in = layer.n_in
        if layer.by_input:
            _catch_up_by_input(layer, st, net.n_threads, tag)
            continue
        for k in prange(layer.n_out, schedule="static", num_threads=net.n_threads):
            last = stamp = NULL
            if layer.entry_last != NULL:
                last = stamp = layer.entry_last + k * n_in
            elif layer.col_last != NULL:
                last = layer.col_last
            _catch_up_entries(<floating*> layer.weights + k * n_in,
                              <floating*> layer.moment1_w + k * n_in,
                              <floating*> layer.moment2_w + k * n_in, n_in, st,
                              layer.row_last[k], last, stamp)
            _catch_up_bias(layer, k, st, tag)
            if layer.weights_t != NULL:
                _copy_to_transposed(layer, <int32_t> k,
                                    <const floating*> layer.weights + k * n_in,
                                    NULL, n_in)
        if layer.col_last != NULL:
            for k in range(n_in):
                layer.col_last[k] = <stamp_t> st.step


cdef void _catch_up_by_input(layer_t* layer, const step_t* st, int n_threads,
                             floating tag) noexcept nogil:
    """``catch_up`` of a layer stored by input: each input's n_out weights
    (contiguous) from its last step, then the biases from their neurons'."""
    cdef intp_t j, k, n_out = layer.n_out, offset
    for j in prange(layer.n_in, schedule="static", num_threads=n_threads):
        offset = j * n_out
        _catch_up_entries(<floating*> layer.weights + offset,
                          <floating*> layer.moment1_w + offset,
                          <floating*> layer.moment2_w + offset, n_out, st,
                          _input_last(st, layer.col_last[j]), NULL, NULL)
        layer.col_last[j] = <stamp_t> st.step
    for k in range(n_out):
        _catch_up_bias(layer, k, st, tag)


cdef inline void _catch_up_entries(
    floating* param, floating* moment1, floating* moment2, intp_t n,
    const step_t* st, int32_t row_last, const stamp_t* last, stamp_t* stamp,
) noexcept nogil:
    """The skipped steps of n entries of a row (Adam's or SGD's closed form)."""
    if st.solver == ADAM:
        adam_catch_up_row(param, moment1, moment2, n, st, row_last, last, stamp)
    else:
        sgd_catch_up_row(param, moment1, n, st, row_last, last, stamp)


cdef inline void _catch_up_bias(layer_t* layer, intp_t k, const step_t* st,
                                floating tag) noexcept nogil:
    """The skipped steps of neuron k's bias; its row is then up to date."""
    _catch_up_entries(<floating*> layer.bias + k, <floating*> layer.moment1_b + k,
                      <floating*> layer.moment2_b + k, 1, st, layer.row_last[k],
                      NULL, NULL)
    layer.row_last[k] = st.step
