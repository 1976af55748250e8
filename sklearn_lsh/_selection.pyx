"""Active-set selection of a hashed layer: retrieval, ranking, labels, padding.

For one sample the layer's input is hashed into its ``L`` keys, the tables
answer with candidates (union, top-k by frequency, or threshold), and, when
more are retrieved than the budget allows (``n_candidates > budget``), the
candidates' pre-activations are computed exactly and the largest kept (the k
winners among the candidates). A layer whose selection is exact skips the
tables: every neuron is a candidate, scored over the input's non-zeros (the
exact top-budget neurons, at n_out x nnz multiply-adds). A subspace layer
(one reading the network's dense input, whose variance lies mostly in a few
directions) scores every neuron in those directions, at rank x (nnz + n_out),
and ranks the best n_candidates exactly. In the output layer
the sample's true labels come first. A set smaller than ``min_active`` is padded with random neurons
drawn from a stream seeded by the batch and the sample's own keys, so that
equal rows get equal active sets and a prediction depends on its row alone.
"""
from libc.math cimport NAN
from libc.string cimport memcpy, memset

from cython cimport floating

from ._common cimport axpy, dot, gather_dot, keys_by_block, layer_t, scratch_t
from ._hashing cimport hash_dense_row, hash_sparse_row
from ._openmp_helpers cimport omp_get_wtime
from ._prefetch cimport PREFETCH_ROWS_AHEAD, prefetch_row
from ._rng cimport splitmix64
from ._tables cimport query_row, stamps_exhausted
from ._typedefs cimport int32_t, int64_t, intp_t, key_t, uint64_t

cdef int32_t INT32_MAX = 2147483647
# Entries of the sample that sets a selection's first threshold.
cdef enum:
    SAMPLE = 64
    # A selection among this many entries or more (all of them, or those a
    # sampled threshold let through) splits them into bins of their scores
    # first (_select_by_bins); up to SCORE_BINS bins.
    BINNED_SELECTION_MIN = 64
    SCORE_BINS = 512


cdef enum:
    RADIX_BITS = 8
    RADIX = 256
    # Below this many ids an insertion sort beats the counting passes.
    INSERTION_SORT_MAX = 32


cdef void _sort_ids(int32_t* ids, floating* vals, intp_t n, intp_t n_out,
                    int32_t* buffer, floating* val_buffer) noexcept nogil:
    """Sort distinct ids in [0, n_out) ascending, each value in vals moving
    with its id; buffer and val_buffer hold n entries.

    LSD radix sort, one counting pass per byte of n_out - 1: a few times n
    simple steps where qsort spent n log n calls of a comparison function
    (a tenth of an epoch on a wide output layer).
    """
    cdef intp_t counts[RADIX]
    cdef intp_t t, total, c
    cdef int shift = 0
    cdef int32_t key
    cdef floating value
    cdef int32_t* source = ids
    cdef int32_t* target = buffer
    cdef int32_t* swap
    cdef floating* source_vals = vals
    cdef floating* target_vals = val_buffer
    cdef floating* swap_vals
    if n <= INSERTION_SORT_MAX:
        for t in range(1, n):
            key = ids[t]
            value = vals[t]
            c = t - 1
            while c >= 0 and ids[c] > key:
                ids[c + 1] = ids[c]
                vals[c + 1] = vals[c]
                c -= 1
            ids[c + 1] = key
            vals[c + 1] = value
        return
    while shift == 0 or ((n_out - 1) >> shift) > 0:
        memset(counts, 0, RADIX * sizeof(intp_t))
        for t in range(n):
            counts[(source[t] >> shift) & (RADIX - 1)] += 1
        total = 0
        for t in range(RADIX):
            c = counts[t]
            counts[t] = total
            total += c
        for t in range(n):
            key = source[t]
            c = (key >> shift) & (RADIX - 1)
            target[counts[c]] = key
            target_vals[counts[c]] = source_vals[t]
            counts[c] += 1
        swap = source
        source = target
        target = swap
        swap_vals = source_vals
        source_vals = target_vals
        target_vals = swap_vals
        shift += RADIX_BITS
    if source != ids:
        memcpy(ids, source, n * sizeof(int32_t))
        memcpy(vals, source_vals, n * sizeof(floating))


def sort_ids(int32_t[::1] ids, floating[::1] vals, intp_t n_out):
    """Sort distinct ids in ``[0, n_out)`` in place, each entry of ``vals``
    moving with its id, as the selection sorts a sample's active set and its
    pre-activations (for tests)."""
    cdef int32_t[::1] buffer
    cdef floating[::1] val_buffer
    if ids.shape[0] == 0:
        return
    if vals.shape[0] != ids.shape[0]:
        raise ValueError(f"{ids.shape[0]} ids and {vals.shape[0]} values.")
    buffer = ids.copy()
    val_buffer = vals.copy()
    with nogil:
        _sort_ids(&ids[0], &vals[0], ids.shape[0], n_out, &buffer[0],
                  &val_buffer[0])


cdef inline bint _ranks_before(double score_a, int32_t id_a, double score_b,
                               int32_t id_b) noexcept nogil:
    # Larger score first; ties by smaller id, so the order is deterministic.
    return score_a > score_b or (score_a == score_b and id_a < id_b)


cdef inline void _swap(double* scores, int32_t* ids, intp_t i,
                       intp_t j) noexcept nogil:
    cdef double score = scores[i]
    cdef int32_t id_ = ids[i]
    scores[i] = scores[j]
    scores[j] = score
    ids[i] = ids[j]
    ids[j] = id_


cdef void _select_best(double* scores, int32_t* ids, intp_t n,
                       intp_t m) noexcept nogil:
    """Reorder so that the first m entries are the m best."""
    cdef intp_t n_front
    if m <= 0 or m >= n:
        return
    if n >= SAMPLE * 8 and m * 8 <= n:
        n_front = _front_above_sample(scores, ids, n, m)
        if n_front >= m:
            n = n_front
    if m < n and n >= BINNED_SELECTION_MIN and _select_by_bins(scores, ids, n, m):
        return
    _quickselect(scores, ids, n, m)


cdef bint _select_by_bins(double* scores, int32_t* ids, intp_t n,
                          intp_t m) noexcept nogil:
    """Reorder so that the first m entries are the m best; False (nothing
    moved) if a score is not finite or all are equal.

    Keeping most of the entries (the output layers' budget is two thirds of
    their candidates) is where a quickselect is slowest: its compares are coin
    flips, over several passes. Here the scores go to equal-width bins between
    their extremes: a histogram finds the bin of the m-th best, one pass moves
    the entries of the bins above it to the front, then those of that bin,
    and a quickselect orders only that bin's few. The bin is a non-decreasing
    function of the score, so the set is the m best, ties to the smaller id,
    as the quickselect's.
    """
    cdef intp_t counts[SCORE_BINS]
    cdef intp_t t, n_bins = min(<intp_t> SCORE_BINS, n // 4), above = 0, n_front
    cdef intp_t edge
    cdef double low = scores[0], high = scores[0], scale
    for t in range(n):
        if scores[t] != scores[t]:
            return False  # NaN: no bin
        low = min(low, scores[t])
        high = max(high, scores[t])
    # Infinite scores, all equal, or extremes so close the scale overflows.
    if not (low < high and high - low < 1e300):
        return False
    scale = n_bins / (high - low)
    if not scale < 1e300:
        return False
    memset(counts, 0, n_bins * sizeof(intp_t))
    for t in range(n):
        counts[_bin(scores[t], low, scale, n_bins)] += 1
    edge = n_bins - 1
    while above + counts[edge] < m:
        above += counts[edge]
        edge -= 1
    n_front = _move_front(scores, ids, 0, n, low, scale, n_bins, edge + 1)
    n_front = _move_front(scores, ids, n_front, n, low, scale, n_bins, edge)
    _quickselect(scores + above, ids + above, n_front - above, m - above)
    return True


cdef intp_t _move_front(double* scores, int32_t* ids, intp_t start, intp_t n,
                        double low, double scale, intp_t n_bins,
                        intp_t first_bin) noexcept nogil:
    """Move the entries of start..n - 1 in bins >= first_bin to start..;
    return where they end. Without a branch: every entry swaps with the
    front's end, which moves on only past a moved one (a branch on a bin
    would be a coin flip)."""
    cdef intp_t t, front = start
    cdef double score
    cdef int32_t id_
    for t in range(start, n):
        score, id_ = scores[t], ids[t]
        scores[t], ids[t] = scores[front], ids[front]
        scores[front], ids[front] = score, id_
        front += _bin(score, low, scale, n_bins) >= first_bin
    return front


cdef inline intp_t _bin(double score, double low, double scale,
                        intp_t n_bins) noexcept nogil:
    return min(<intp_t> ((score - low) * scale), n_bins - 1)


cdef intp_t _front_above_sample(double* scores, int32_t* ids, intp_t n,
                                intp_t m) noexcept nogil:
    """Move to the front every entry that ranks with the r-th best of an
    evenly spaced sample or before it, r about twice the m best's share of
    the sample; return how many.

    If that is at least m, the m best are among them: the quickselect that
    follows reads a few times m entries instead of n, and this pass's
    branch is mostly not taken (a quickselect's compares are coin flips).
    """
    cdef double sample_scores[SAMPLE]
    cdef int32_t sample_ids[SAMPLE]
    cdef intp_t stride = n // SAMPLE, r = min(2 * m * SAMPLE // n + 2, SAMPLE)
    cdef intp_t t, n_front = 0
    cdef double limit_score
    cdef int32_t limit_id
    for t in range(SAMPLE):
        sample_scores[t] = scores[t * stride]
        sample_ids[t] = ids[t * stride]
    _quickselect(sample_scores, sample_ids, SAMPLE, r)
    limit_score, limit_id = sample_scores[0], sample_ids[0]
    for t in range(1, r):
        if _ranks_before(limit_score, limit_id, sample_scores[t], sample_ids[t]):
            limit_score, limit_id = sample_scores[t], sample_ids[t]
    for t in range(n):
        if not _ranks_before(limit_score, limit_id, scores[t], ids[t]):
            _swap(scores, ids, t, n_front)
            n_front += 1
    return n_front


def select_best(double[::1] scores, int32_t[::1] ids, intp_t m):
    """Reorder ``scores`` and ``ids`` in place so that the first ``m`` are the
    ``m`` best (larger score first, ties to the smaller id), as the
    selection of active sets does (for tests)."""
    if scores.shape[0] != ids.shape[0]:
        raise ValueError("scores and ids differ in length")
    if scores.shape[0] == 0:
        return
    with nogil:
        _select_best(&scores[0], &ids[0], scores.shape[0], m)


cdef void _quickselect(double* scores, int32_t* ids, intp_t n,
                       intp_t m) noexcept nogil:
    """Reorder so that the first m entries are the m best."""
    cdef intp_t lo = 0, hi = n - 1, i, j, mid
    cdef double pivot_score
    cdef int32_t pivot_id
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
                _swap(scores, ids, i, j)
                i += 1
                j -= 1
        if m - 1 <= j:
            hi = j
        elif m - 1 >= i:
            lo = i
        else:
            return


cdef intp_t _nonzeros(const int32_t* in_ids, const floating* in_vals, intp_t in_n,
                      scratch_t* s) noexcept nogil:
    """Copy the non-zeros of a sparse row to s.nz_ids / s.nz_vals; count them.

    ReLU leaves exact zeros in a hashed layer's active outputs: neither the
    hash nor the ranking needs them.
    """
    cdef floating* nz_vals = <floating*> s.nz_vals
    cdef intp_t t, nnz = 0
    for t in range(in_n):
        if in_vals[t] != 0:
            s.nz_ids[nnz] = in_ids[t]
            nz_vals[nnz] = in_vals[t]
            nnz += 1
    return nnz


cdef intp_t _dense_nonzeros(const floating* x, intp_t n, scratch_t* s) noexcept nogil:
    """Copy the non-zeros of a dense row to s.nz_ids / s.nz_vals; count them."""
    cdef floating* nz_vals = <floating*> s.nz_vals
    cdef intp_t t, nnz = 0
    for t in range(n):
        if x[t] != 0:
            s.nz_ids[nnz] = <int32_t> t
            nz_vals[nnz] = x[t]
            nnz += 1
    return nnz


cdef intp_t _retrieve(
    const layer_t* layer,
    intp_t ii,
    const floating* in_dense,
    const int32_t* in_ids,
    const floating* in_vals,
    intp_t in_n,
    scratch_t* s,
    intp_t* nnz_out,
) noexcept nogil:
    """Hash the input and query the tables; the candidates go to s.retrieved.

    A sparse input enters the hash by its non-zeros only, which are also
    left in s.nz_ids / s.nz_vals for the ranking. A dense input of a layer
    with a query center is hashed as [x - center, 1]. A layer with batch_keys
    has its keys hashed already, in row ii of them.
    """
    cdef intp_t nnz = 0, j
    cdef floating* query = <floating*> s.query_row
    cdef const floating* center = <const floating*> layer.query_center
    # The tags serve layers of several widths: clear them whole before the
    # stamps run out (query_row alone would clear only this layer's range).
    if stamps_exhausted(s.query.stamp, layer.tables.n_tables):
        memset(s.query.tags, 0, s.marker_size * sizeof(int32_t))
        s.query.stamp = 0
    if keys_by_block(layer):
        memcpy(s.keys, layer.batch_keys + ii * layer.family.n_tables,
               layer.family.n_tables * sizeof(key_t))
    elif in_ids == NULL and center != NULL:
        for j in range(layer.n_in):
            query[j] = in_dense[j] - center[j]
        query[layer.n_in] = 1
        hash_dense_row(layer.family, <const floating*> query, s.hash_scratch,
                       s.codes, s.keys)
    elif in_ids == NULL:
        hash_dense_row(layer.family, in_dense, s.hash_scratch, s.codes, s.keys)
    else:
        nnz = _nonzeros(in_ids, in_vals, in_n, s)
        hash_sparse_row(layer.family, s.nz_ids, <const floating*> s.nz_vals, nnz,
                        s.hash_scratch, s.codes, s.keys)
    # Not s.query.candidates: top-k and threshold queries use that internally.
    nnz_out[0] = nnz
    return query_row(layer.tables, s.keys, layer.strategy, layer.n_candidates,
                     layer.min_count, &s.query, s.retrieved)


cdef intp_t _subspace_candidates(
    const layer_t* layer,
    const floating* nz_vals,
    intp_t nnz,
    scratch_t* s,
) noexcept nogil:
    """The n_candidates neurons of largest subspace score, in s.retrieved.

    The input (its non-zeros: s.nz_ids, nz_vals) in the basis, less the
    mean input, then every neuron's score through its projected weights:
    rank x (nnz + n_out) multiply-adds, loops of `rank` (a few dozen) left
    to the compiler.
    """
    cdef const floating* basis = <const floating*> layer.sub_basis
    cdef const floating* center = <const floating*> layer.sub_center
    cdef const floating* projected = <const floating*> layer.sub_projected
    cdef const floating* offset = <const floating*> layer.sub_offset
    cdef const floating* bias = <const floating*> layer.bias
    cdef floating* coords = <floating*> s.sub_coords
    cdef const floating* row
    cdef intp_t rank = layer.rank, t, j
    cdef floating x, score
    for j in range(rank):
        coords[j] = -center[j]
    for t in range(nnz):
        x = nz_vals[t]
        row = basis + <intp_t> s.nz_ids[t] * rank
        for j in range(rank):
            coords[j] += x * row[j]
    for t in range(layer.n_out):
        row = projected + t * rank
        score = bias[t] + offset[t]
        for j in range(rank):
            score += row[j] * coords[j]
        s.scores[t] = score
        s.retrieved[t] = <int32_t> t
    _select_best(s.scores, s.retrieved, layer.n_out, layer.n_candidates)
    return min(layer.n_candidates, layer.n_out)


cdef intp_t _rank(
    const layer_t* layer,
    const floating* in_dense,
    intp_t nnz,
    intp_t n_retrieved,
    intp_t room,
    scratch_t* s,
) noexcept nogil:
    """Keep in s.retrieved the `room` candidates of largest pre-activation.

    Candidates already in the set (labels) are dropped; returns how many
    remain, the best first, with their pre-activations in s.scores.
    """
    cdef const floating* W = <const floating*> layer.weights
    cdef const floating* W_t = <const floating*> layer.weights_t
    cdef const floating* bias = <const floating*> layer.bias
    cdef const floating* nz_vals = <const floating*> s.nz_vals
    cdef floating* exact = <floating*> s.exact_scores
    cdef int32_t* candidates = s.retrieved
    cdef intp_t t, m = 0
    cdef int32_t k
    if W_t != NULL:
        # Every neuron a candidate: one streamed row per non-zero input.
        memset(exact, 0, layer.n_out * sizeof(floating))
        for t in range(nnz):
            axpy(layer.n_out, nz_vals[t], W_t + <intp_t> s.nz_ids[t] * layer.n_out,
                 exact)
    for t in range(n_retrieved):
        if in_dense != NULL and W_t == NULL and t + PREFETCH_ROWS_AHEAD < n_retrieved:
            prefetch_row(W + <intp_t> candidates[t + PREFETCH_ROWS_AHEAD] * layer.n_in,
                         layer.n_in * sizeof(floating), False)
        k = candidates[t]
        if s.set_marker[k] == s.set_stamp:
            continue
        candidates[m] = k
        if W_t != NULL:
            s.scores[m] = bias[k] + exact[k]
        elif in_dense != NULL:
            s.scores[m] = bias[k] + dot(layer.n_in, W + k * layer.n_in, in_dense)
        else:
            s.scores[m] = bias[k] + gather_dot(W + k * layer.n_in, s.nz_ids,
                                               nz_vals, nnz)
        m += 1
    _select_best(s.scores, candidates, m, room)
    return m


cdef intp_t choose_active(
    const layer_t* layer,
    intp_t ii,
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
    cdef int32_t* out = layer.ids + ii * layer.width
    # The sample's activations row carries, id by id, the pre-activations
    # ranking computed (NaN where the forward pass must compute one).
    cdef floating* pre = <floating*> layer.act + ii * layer.width
    cdef floating not_ranked = NAN
    cdef int32_t* candidates = s.retrieved
    cdef intp_t n = 0, t, n_candidates, nnz, n_ranked = 0
    cdef int32_t k
    cdef double start
    if layer.exact:
        # Every neuron a candidate: the ranking below scores them all. The set
        # is full (padded only if min_active exceeds the budget, from the
        # batch's stream: still equal for equal rows).
        nnz = 0 if in_ids == NULL else _nonzeros(in_ids, in_vals, in_n, s)
        for t in range(layer.n_out):
            candidates[t] = <int32_t> t
        n_candidates = layer.n_out
    elif layer.subspace:
        start = omp_get_wtime()
        if in_ids == NULL:
            # The ranking below reads the non-zeros too (images: about half).
            nnz = _dense_nonzeros(in_dense, layer.n_in, s)
            in_dense = NULL
        else:
            nnz = _nonzeros(in_ids, in_vals, in_n, s)
        n_candidates = _subspace_candidates(layer, <const floating*> s.nz_vals,
                                            nnz, s)
        hash_seconds[0] += omp_get_wtime() - start
        rank_macs[0] += layer.rank * (layer.n_out + nnz)
    else:
        start = omp_get_wtime()
        n_candidates = _retrieve(layer, ii, in_dense, in_ids, in_vals, in_n, s,
                                 &nnz)
        hash_seconds[0] += omp_get_wtime() - start
        # Padding depends on the batch seed and the sample's own keys, not on
        # its place in the batch: equal rows get equal active sets (so a weight
        # of 2 equals a repeated row), and a prediction depends on its row
        # alone.
        for t in range(layer.family.n_tables):
            rng_state = (rng_state ^ s.keys[t]) * <uint64_t> 0x100000001B3

    if s.set_stamp >= INT32_MAX - 1:
        memset(s.set_marker, 0, s.marker_size * sizeof(int32_t))
        s.set_stamp = 0
    s.set_stamp += 1
    # The true labels first: they are always active during training.
    for t in range(n_labels):
        k = labels[t]
        if s.set_marker[k] != s.set_stamp:
            s.set_marker[k] = s.set_stamp
            out[n] = k
            pre[n] = not_ranked
            n += 1
    if layer.n_candidates > layer.budget and n_candidates > layer.budget - n:
        # More retrieved than room: keep the largest pre-activations (the
        # k winners among the candidates), computed exactly.
        n_candidates = _rank(layer, in_dense, nnz, n_candidates,
                             layer.budget - n, s)
        rank_macs[0] += n_candidates * (layer.n_in if in_dense != NULL else nnz)
        n_ranked = n_candidates
    for t in range(n_candidates):
        if n >= layer.budget:
            break
        k = candidates[t]
        if s.set_marker[k] != s.set_stamp:
            s.set_marker[k] = s.set_stamp
            out[n] = k
            # The best of the ranked (labels were dropped from them) come
            # first, with their scores beside them.
            pre[n] = <floating> s.scores[t] if t < n_ranked else not_ranked
            n += 1
    # Pad a small set with random neurons (linear probing from a random start
    # always ends, whatever min_active is).
    while n < layer.min_active and n < layer.n_out:
        k = <int32_t> (splitmix64(&rng_state) % <uint64_t> layer.n_out)
        while s.set_marker[k] == s.set_stamp:
            k = k + 1 if k + 1 < layer.n_out else 0
        s.set_marker[k] = s.set_stamp
        out[n] = k
        pre[n] = not_ranked
        n += 1
    # The candidates and the exact scores are spent: their buffers (n_out
    # long) sort the set.
    _sort_ids(out, pre, n, layer.n_out, s.retrieved, <floating*> s.exact_scores)
    return n
