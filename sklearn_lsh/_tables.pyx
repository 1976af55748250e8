"""L hash tables of neuron ids in compact CSR layout.

Table ``t`` maps a bucket key to the ids of the neurons whose key in that table
is the bucket: ``ids[t, offsets[t, b]:offsets[t, b + 1]]``. The layout costs
``L * N * 4`` bytes for the ids plus ``L * (n_buckets + 1) * 4`` for the
offsets, whatever the bucket sizes (SLIDE pre-allocated fixed slots per bucket,
about 50 times more for its Amazon-670K output layer). Tables are built by a
counting sort, one table per thread, so the result does not depend on the
number of threads. A bucket keeps its ids in insertion order, ascending for a
build; with a ``capacity`` a table uses only the prefix
``ids[t, :offsets[t, -1]]`` (the rest of the row is -1 after a build).
"""
import numbers

import numpy as np

from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from ._prefetch cimport prefetch

from cython cimport floating

from ._hashing cimport (
    SIMHASH_ROWS,
    HashFunctions,
    hash_dense_row,
    hash_family_t,
    scratch_size,
    simhash_block,
    simhash_by_product,
)
from ._openmp_helpers cimport omp_get_thread_num
from ._rng cimport splitmix64
from ._typedefs cimport (
    float32_t, float64_t, int8_t, int32_t, int64_t, intp_t, key_t, uint64_t,
)

from ._hashing import _check_int
from ._openmp_helpers import _openmp_effective_n_threads, per_thread_rows
from ._threads import one_blas_thread

cdef enum:
    FIFO = 0
    RESERVOIR = 1

cdef int32_t INT32_MAX = 2147483647

# Histograms a top-k query counts into (see query_row).
cdef enum:
    HIST_LANES = 4

cdef dict _POLICIES = {"fifo": FIFO, "reservoir": RESERVOIR}
cdef dict _STRATEGIES = {"union": UNION, "topk": TOPK, "threshold": THRESHOLD}


# ---------------------------------------------------------------------------
# Random streams for reservoir sampling: one splitmix64 stream per table and
# call, so the sample depends on the seed only (never on thread timing).

cdef inline int32_t _rand_below(uint64_t* state, int32_t n) noexcept nogil:
    # Uniform in [0, n) for n < 2**31 by a multiply-shift (bias < 2**-32).
    return <int32_t> (((splitmix64(state) >> 32) * <uint64_t> n) >> 32)


cdef inline uint64_t _stream(uint64_t seed, intp_t table, uint64_t call) noexcept nogil:
    cdef uint64_t state = seed
    state = splitmix64(&state) ^ (<uint64_t> table * 0xD1B54A32D192ED03ULL)
    state = splitmix64(&state) ^ (call * 0x8CB92BA72F3D8DD7ULL)
    return splitmix64(&state)


# ---------------------------------------------------------------------------
# Per-table kernels (nogil, allocation-free: the caller owns the scratch).

cdef inline int32_t _fill_starts(
    int32_t* offsets,           # IN: sizes at [b + 1]; OUT: bucket starts
    int32_t* cursor,            # OUT: first sequence slot of each bucket
    intp_t n_buckets,
    int32_t capacity,
    int policy,
) noexcept nogil:
    # A bucket offered c ids keeps min(c, capacity). FIFO keeps the last ones:
    # the cursor starts at -(number dropped) and only slots >= 0 are written.
    # A reservoir fills slots 0.. then replaces at random.
    cdef intp_t b
    cdef int32_t c, k, total = 0
    offsets[0] = 0
    for b in range(n_buckets):
        c = offsets[b + 1]
        k = c if c < capacity else capacity
        cursor[b] = k - c if policy == FIFO else 0
        total += k
        offsets[b + 1] = total
    return total


cdef inline void _place(
    intp_t b,
    int32_t item,
    int32_t capacity,
    const int32_t* offsets,
    int32_t* ids,
    int32_t* cursor,
    uint64_t* rng,
) noexcept nogil:
    # Offer the next id of bucket b's insertion sequence to the bucket.
    cdef int32_t j = cursor[b]
    cursor[b] = j + 1
    if j < 0:                   # FIFO: a newer id will push this one out
        return
    if j >= capacity:           # reservoir: keep with probability cap / (j + 1)
        j = _rand_below(rng, j + 1)
        if j >= capacity:
            return
    ids[offsets[b] + j] = item


cdef void _build_table(
    const key_t* keys,          # key of item i at keys[i * stride]
    intp_t stride,
    intp_t n_items,
    intp_t n_buckets,
    int32_t capacity,
    int policy,
    uint64_t rng,
    int32_t* offsets,           # OUT (n_buckets + 1)
    int32_t* ids,               # OUT (n_items)
    int32_t* cursor,            # scratch (n_buckets)
) noexcept nogil:
    cdef intp_t i
    cdef intp_t mask = n_buckets - 1
    cdef int32_t total
    memset(offsets, 0, (n_buckets + 1) * sizeof(int32_t))
    for i in range(n_items):
        offsets[(keys[i * stride] & mask) + 1] += 1
    total = _fill_starts(offsets, cursor, n_buckets, capacity, policy)
    for i in range(n_items):
        _place(keys[i * stride] & mask, <int32_t> i, capacity, offsets, ids,
               cursor, &rng)
    for i in range(total, n_items):
        ids[i] = -1


# The items a reinsert moves, and their new keys in one table.
cdef struct moves_t:
    const int8_t* moved         # (n_items) 1 for the ids being moved
    const int32_t* items        # (n_moved) the moved ids
    const key_t* keys           # table t's key of items[j]: keys[j * stride + t]
    intp_t stride
    intp_t n_moved


cdef void _reinsert_table(
    const moves_t* mv,
    intp_t t,                   # the table
    intp_t n_buckets,
    int32_t capacity,
    int policy,
    uint64_t rng,
    int32_t* offsets,           # IN/OUT (n_buckets + 1)
    int32_t* ids,               # IN/OUT (n_items)
    int32_t* new_offsets,       # scratch (n_buckets + 1)
    int32_t* new_ids,           # scratch (n_items)
    int32_t* cursor,            # scratch (n_buckets)
) noexcept nogil:
    # One pass over the stored ids and the moved ones: a bucket's new insertion
    # sequence is its ids that stay (in their order), then the moved-in ids (in
    # the order of items), so moved-in ids are the newest.
    cdef intp_t b, j
    cdef intp_t mask = n_buckets - 1
    cdef int32_t k, c, item, total
    cdef int32_t old_total = offsets[n_buckets]
    for b in range(n_buckets):
        c = 0
        for k in range(offsets[b], offsets[b + 1]):
            c += 1 - mv.moved[ids[k]]
        new_offsets[b + 1] = c
    for j in range(mv.n_moved):
        new_offsets[(mv.keys[j * mv.stride + t] & mask) + 1] += 1
    total = _fill_starts(new_offsets, cursor, n_buckets, capacity, policy)
    for b in range(n_buckets):
        for k in range(offsets[b], offsets[b + 1]):
            item = ids[k]
            if not mv.moved[item]:
                _place(b, item, capacity, new_offsets, new_ids, cursor, &rng)
    for j in range(mv.n_moved):
        _place(mv.keys[j * mv.stride + t] & mask, mv.items[j], capacity, new_offsets,
               new_ids, cursor, &rng)
    memcpy(ids, new_ids, total * sizeof(int32_t))
    for k in range(total, old_total):
        ids[k] = -1
    memcpy(offsets, new_offsets, (n_buckets + 1) * sizeof(int32_t))


# ---------------------------------------------------------------------------
# Queries.

cdef inline const int32_t* _bucket(const tables_t* tables, int t, key_t key,
                                   intp_t* size) noexcept nogil:
    """The ids of table t's bucket for key, and (in size) how many."""
    cdef intp_t b = t * (tables.n_buckets + 1) + (key & (tables.n_buckets - 1))
    size[0] = tables.offsets[b + 1] - tables.offsets[b]
    return tables.ids + t * tables.n_items + tables.offsets[b]

cdef intp_t query_row(
    const tables_t* tables,
    const key_t* keys,
    int strategy,
    intp_t budget,
    int min_count,
    query_scratch_t* scratch,
    int32_t* out,
) noexcept nogil:
    cdef int t, c
    cdef int L = tables.n_tables
    cdef intp_t N = tables.n_items
    cdef intp_t k, n = 0, n_cand = 0, limit, size
    cdef const int32_t* bucket
    cdef const int32_t* next_bucket
    cdef intp_t next_size = 0
    cdef int32_t item, base, tag, fresh, acc, h, least
    cdef int32_t* tags = scratch.tags
    cdef int32_t* counts = scratch.counts
    cdef int32_t* candidates = scratch.candidates
    cdef int32_t* hist

    # This query's tags are base .. base + L - 1, above every older one: no
    # clearing between queries.
    if stamps_exhausted(scratch.stamp, L):
        memset(tags, 0, N * sizeof(int32_t))
        scratch.stamp = 0
    base = scratch.stamp + 1
    scratch.stamp += L

    if strategy == UNION:
        for t in range(L):
            bucket = _bucket(tables, t, keys[t], &size)
            for k in range(size):
                item = bucket[k]
                if tags[item] < base:
                    tags[item] = base
                    out[n] = item
                    n += 1
                    if n == budget:
                        return n
        return n

    # TOPK and THRESHOLD: an id's tag is base + its count - 1. One tag per id
    # (not a mark and a count) and no branch: the first sight of an id is a
    # coin flip a branch would mispredict.
    bucket = _bucket(tables, 0, keys[0], &size)
    for t in range(L):
        # The next table's bucket starts on its way while this one is read.
        next_bucket = bucket
        if t + 1 < L:
            next_bucket = _bucket(tables, t + 1, keys[t + 1], &next_size)
        prefetch(next_bucket)
        for k in range(size):
            item = bucket[k]
            tag = tags[item]
            candidates[n_cand] = item
            fresh = -<int32_t> (tag < base)     # all ones for a new id
            n_cand += fresh & 1
            tags[item] = ((tag & ~fresh) | ((base - 1) & fresh)) + 1
        bucket, size = next_bucket, next_size
    for k in range(n_cand):
        counts[k] = tags[candidates[k]] - base + 1

    if strategy == THRESHOLD:
        for k in range(n_cand):
            if (budget <= 0 or n < budget) and counts[k] >= min_count:
                out[n] = candidates[k]
                n += 1
        return n

    # TOPK: stable counting sort of the candidates by descending count
    # (counts <= L), writing only the first `limit` positions.
    limit = n_cand if budget <= 0 or budget > n_cand else budget
    if N >= HIST_LANES * (L + 1):
        # The tags are no longer needed: tags[0:HIST_LANES * (L + 1)] hold
        # the histograms, then go back to 0 (below every later base). Most
        # counts are equal (1): lanes of their own spare the increments of
        # one entry from waiting on each other.
        hist = tags
        memset(hist, 0, HIST_LANES * (L + 1) * sizeof(int32_t))
        k = 0
        while k + HIST_LANES <= n_cand:
            for c in range(HIST_LANES):
                hist[c * (L + 1) + counts[k + c]] += 1
            k += HIST_LANES
        while k < n_cand:
            hist[counts[k]] += 1
            k += 1
        for c in range(1, HIST_LANES):
            for h in range(L + 1):
                hist[h] += hist[c * (L + 1) + h]
        # The least count in the top `limit`: ids of higher counts go first
        # (by count), then the first ids of that count, in order.
        acc = 0
        least = L
        while least > 1 and acc + hist[least] < limit:
            acc += hist[least]
            least -= 1
        n = acc
        for k in range(n_cand):
            if n == limit:
                break
            out[n] = candidates[k]
            n += counts[k] == least
        # The ids above it (fewer than limit), moved to the front, placed by
        # a counting sort. Most ids are below it: no pass places them all.
        acc = 0
        for c in range(L, least, -1):
            h = hist[c]
            hist[c] = acc
            acc += h
        n = 0
        for k in range(n_cand):
            c = counts[k]
            candidates[n] = candidates[k]
            counts[n] = c
            n += c > least
        for k in range(n):
            c = counts[k]
            h = hist[c]
            hist[c] = h + 1
            out[h] = candidates[k]
        memset(hist, 0, HIST_LANES * (L + 1) * sizeof(int32_t))
    else:
        # Fewer ids than tables: a scan per count costs at most L * N.
        for c in range(L, 0, -1):
            for k in range(n_cand):
                if n < limit and counts[k] == c:
                    out[n] = candidates[k]
                    n += 1
    return limit


# ---------------------------------------------------------------------------
# The two passes of build_from_rows.

cdef void _keys_into_ids(
    const hash_family_t* family,
    const floating[:, ::1] rows,
    const float64_t* center,
    const float64_t* last,
    floating[:, ::1] centered,
    key_t[:, ::1] row_keys,
    int32_t[:, ::1] codes,
    float64_t[:, ::1] scratch,
    int32_t[:, ::1] ids,
    int n_threads,
) noexcept nogil:
    """Write the key of item i in table t to ids[t, i].

    With a center, row i less the center is hashed, and with ``last``, row i
    followed by last[i]: both through the thread's ``centered`` row, computed
    in float64 and stored in the rows' precision (float32 rows keep their fast
    SimHash sums). Float32 SimHash rows go SIMHASH_ROWS at a time through a
    matrix product (row_keys, centered and scratch hold a block then).
    """
    cdef intp_t i, j, t, r, i0, n_block, ld
    cdef intp_t d = rows.shape[1], width = family.n_features
    cdef intp_t N = rows.shape[0], L = ids.shape[0]
    cdef int tid
    cdef const float* block
    if floating is float:
        if simhash_by_product(family):
            for i in prange((N + SIMHASH_ROWS - 1) // SIMHASH_ROWS,
                            num_threads=n_threads, schedule="static"):
                tid = omp_get_thread_num()
                i0 = i * SIMHASH_ROWS
                n_block = min(SIMHASH_ROWS, N - i0)
                block = &rows[i0, 0]
                ld = d
                if center != NULL or last != NULL:
                    for r in range(n_block):
                        for j in range(d):
                            centered[tid, r * width + j] = <floating> (
                                rows[i0 + r, j]
                                - (center[j] if center != NULL else 0))
                        if last != NULL:
                            centered[tid, r * width + d] = <floating> last[i0 + r]
                    block = &centered[tid, 0]
                    ld = width
                simhash_block(family, block, ld, <int> n_block,
                              <float*> &scratch[tid, 0],
                              &codes[tid, 0], &row_keys[tid, 0], L)
                for r in range(n_block):
                    for t in range(L):
                        ids[t, i0 + r] = <int32_t> row_keys[tid, r * L + t]
            return
    for i in prange(N, num_threads=n_threads, schedule="static"):
        tid = omp_get_thread_num()
        if center == NULL and last == NULL:
            hash_dense_row(family, &rows[i, 0], &scratch[tid, 0], &codes[tid, 0],
                           &row_keys[tid, 0])
        else:
            for j in range(d):
                centered[tid, j] = <floating> (
                    rows[i, j] - (center[j] if center != NULL else 0))
            if last != NULL:
                centered[tid, d] = <floating> last[i]
            hash_dense_row(family, &centered[tid, 0], &scratch[tid, 0],
                           &codes[tid, 0], &row_keys[tid, 0])
        for t in range(ids.shape[0]):
            ids[t, i] = <int32_t> row_keys[tid, t]


cdef void _sort_tables(
    int32_t[:, ::1] offsets,
    int32_t[:, ::1] ids,
    key_t[:, ::1] table_keys,
    int32_t[:, ::1] cursor,
    intp_t n_buckets,
    int32_t capacity,
    int policy,
    uint64_t seed,
    int n_threads,
) noexcept nogil:
    """Build each table from the keys its ids row holds."""
    cdef intp_t t, N = ids.shape[1]
    cdef int tid
    for t in prange(ids.shape[0], num_threads=n_threads, schedule="dynamic"):
        tid = omp_get_thread_num()
        memcpy(&table_keys[tid, 0], &ids[t, 0], N * sizeof(int32_t))
        _build_table(&table_keys[tid, 0], 1, N, n_buckets, capacity,
                     policy, _stream(seed, t, 0), &offsets[t, 0], &ids[t, 0],
                     &cursor[tid, 0])


# ---------------------------------------------------------------------------
# Python-level checks.

def _finite_vector(value, name, length, what):
    # A finite float64 C-contiguous vector of the given length (copied if
    # needed), or a ValueError naming it.
    if hasattr(value, "toarray"):
        raise ValueError(f"{name} must be a dense array; got a sparse matrix.")
    value = np.ascontiguousarray(value, dtype=np.float64)
    if value.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), {what}; got shape "
                         f"{value.shape}.")
    if not np.isfinite(value).all():
        raise ValueError(f"{name} must be finite.")
    return value


def _check_int32(name, arr, shape):
    # An int32 C-contiguous writable array of the given shape (copied if needed).
    arr = np.asarray(arr)
    if arr.dtype != np.int32 or arr.shape != shape:
        raise ValueError(
            f"{name} must be an int32 array of shape {shape}; got {arr.dtype} "
            f"{arr.shape}."
        )
    if not (arr.flags.c_contiguous and arr.flags.writeable and arr.flags.aligned):
        arr = np.array(arr, dtype=np.int32, order="C", copy=True)
    return arr


cdef class HashTables:
    """L hash tables mapping bucket keys to item (neuron) ids.

    Parameters
    ----------
    n_tables : int
        L, the number of tables.
    n_buckets : int
        Buckets per table, a power of two (``HashFunctions.n_buckets``).
    n_items : int
        N, the number of items; ids are ``0 .. N - 1``.
    capacity : int or None, default=None
        Most ids a bucket keeps; None keeps all.
    policy : {'fifo', 'reservoir'}, default='fifo'
        Which ids a full bucket keeps: the newest (``'fifo'``) or a uniform
        random sample of those offered (``'reservoir'``). Used only with a
        capacity.
    seed : int, default=0
        Non-negative seed of the reservoir samples.

    Attributes
    ----------
    offsets : ndarray of shape (n_tables, n_buckets + 1), dtype int32
        Bucket ``b`` of table ``t`` is ``ids[t, offsets[t, b]:offsets[t, b + 1]]``.
    ids : ndarray of shape (n_tables, n_items), dtype int32
        The ids of each table, grouped by bucket.
    nbytes : int
        Bytes held by ``offsets`` and ``ids``.
    n_reinserts : int
        Calls of ``reinsert`` since the last build (each draws its own
        reservoir streams).
    """

    def __init__(self, n_tables, n_buckets, n_items, capacity=None,
                 policy="fifo", seed=0):
        L = _check_int("n_tables", n_tables, 1, INT32_MAX)
        if (
            isinstance(n_buckets, bool)
            or not isinstance(n_buckets, numbers.Integral)
            or n_buckets < 1
            or n_buckets > 2**32
            or n_buckets & (n_buckets - 1)
        ):
            raise ValueError(
                f"n_buckets must be a power of two in [1, 2**32]; got {n_buckets!r}."
            )
        N = _check_int("n_items", n_items, 1, INT32_MAX)
        if capacity is not None:
            capacity = _check_int("capacity", capacity, 1)
        if not isinstance(policy, str) or policy not in _POLICIES:
            raise ValueError(
                f"policy must be 'fifo' or 'reservoir'; got {policy!r}."
            )
        seed = _check_int("seed", seed, 0, 2**64 - 1)

        self.n_tables = L
        self.n_buckets = int(n_buckets)
        self.n_items = N
        self.capacity = capacity
        self.policy = policy
        self.seed = seed
        self._capacity = INT32_MAX if capacity is None else min(capacity, INT32_MAX)
        self._policy = _POLICIES[policy]
        self._seed = seed
        self.n_reinserts = 0
        # np.zeros maps fresh pages: no memory is touched until a build.
        self._set_arrays(
            np.zeros((L, self.n_buckets + 1), dtype=np.int32),
            np.zeros((L, N), dtype=np.int32),
        )

    def _set_arrays(self, offsets, ids):
        cdef const int32_t[:, ::1] offsets_view = offsets
        cdef const int32_t[:, ::1] ids_view = ids
        self.offsets = offsets
        self.ids = ids
        self.c.n_tables = self.n_tables
        self.c.n_buckets = self.n_buckets
        self.c.n_items = self.n_items
        self.c.offsets = &offsets_view[0, 0]
        self.c.ids = &ids_view[0, 0]

    @property
    def nbytes(self):
        """Bytes held by the ``offsets`` and ``ids`` arrays."""
        return self.offsets.nbytes + self.ids.nbytes

    def _check_keys(self, keys, n_rows=None, name="keys"):
        keys = np.asarray(keys)
        L = self.n_tables
        if (
            keys.ndim != 2
            or keys.shape[1] != L
            or (n_rows is not None and keys.shape[0] != n_rows)
        ):
            expected = f"({'n' if n_rows is None else n_rows}, {L})"
            raise ValueError(
                f"{name} must have shape {expected} (n_tables={L}); got "
                f"shape {keys.shape}."
            )
        if keys.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integers; got dtype {keys.dtype}.")
        if keys.size:
            low, high = keys.min(), keys.max()
            if low < 0 or high >= self.n_buckets:
                bad = low if low < 0 else high
                raise ValueError(
                    f"{name} must be in [0, n_buckets) = [0, {self.n_buckets}); "
                    f"got {bad}."
                )
        return np.ascontiguousarray(keys, dtype=np.uint32)

    def _n_threads(self, n_threads, n_tasks):
        return max(1, min(_openmp_effective_n_threads(n_threads), n_tasks))

    def build(self, keys, n_threads=1):
        """Fill the tables from the keys of all items.

        Parameters
        ----------
        keys : array-like of shape (n_items, n_tables), dtype uint32
            ``keys[i, t]``, in ``[0, n_buckets)``, is the bucket of item ``i``
            in table ``t``.
        n_threads : int, default=1
            OpenMP threads (one table per thread). None or negative values
            follow ``_openmp_effective_n_threads``.

        Returns
        -------
        self : HashTables
        """
        cdef const key_t[:, ::1] k = self._check_keys(keys, self.n_items)
        cdef int n = self._n_threads(n_threads, self.n_tables)
        cdef intp_t N = self.n_items
        cdef intp_t B = self.n_buckets
        cdef int L = self.n_tables
        cdef int32_t[:, ::1] offsets = self.offsets
        cdef int32_t[:, ::1] ids = self.ids
        cdef int32_t[:, ::1] cursor = per_thread_rows(n, B, np.int32)
        cdef int32_t capacity = self._capacity
        cdef int policy = self._policy
        cdef uint64_t seed = self._seed
        cdef intp_t t
        cdef int tid
        for t in prange(L, nogil=True, num_threads=n, schedule="dynamic"):
            tid = omp_get_thread_num()
            _build_table(&k[0, t], L, N, B, capacity, policy, _stream(seed, t, 0),
                         &offsets[t, 0], &ids[t, 0], &cursor[tid, 0])
        self.n_reinserts = 0
        return self

    def build_from_rows(self, hash_functions, rows, n_threads=1, center=None,
                        last=None):
        """Hash the rows of all items and fill the tables, in bounded memory.

        Equal to ``build(hash_functions.hash(np.hstack([rows - center,
        last[:, None]]).astype(rows.dtype)))`` (the difference taken in
        float64) without the ``(n_items, n_tables)`` key array or
        the centered copy of the rows:
        the keys are written into ``ids`` (one table per row of it) and each
        table is then sorted in place through a scratch row of ``n_items``
        keys per thread. Both passes run in one call without the GIL, so an
        interruption (Ctrl-C) arrives before or after the build, never in the
        middle of it: the tables are always valid.

        Parameters
        ----------
        hash_functions : HashFunctions
            With ``n_tables`` and ``n_buckets`` equal to those of the tables.
        rows : ndarray of shape (n_items, n_features)
            Dense rows (e.g. the weight rows of the neurons). C-contiguous
            float32 and float64 rows are hashed where they are; others are
            first copied to C-contiguous float64. With ``last``, of shape
            (n_items, n_features - 1): ``last`` is their final coordinate.
        n_threads : int, default=1
            OpenMP threads: rows in parallel, then tables in parallel.
        center : ndarray of shape (n_features,) or None, default=None
            Subtracted from every row before it is hashed (in float64, the
            result rounded to the rows' precision). For
            neurons ranked by inner products with a query, subtracting the
            same vector from every weight row shifts all the scores of one
            query equally and leaves their order unchanged, while it removes
            the direction the rows share, which otherwise puts most of them in
            the same buckets. Of shape (n_features - 1,) with ``last``.
        last : ndarray of shape (n_items,) or None, default=None
            A final coordinate appended to every (centered) row before it is
            hashed (rounded to the rows' precision): for example
            ``(w - center) . m + b``, which makes inner products with the
            queries ``[x - m, 1]`` equal ``w . x + b - center . x``, the
            neurons' pre-activations shifted by the same amount for every
            neuron.

        Returns
        -------
        self : HashTables
        """
        if not isinstance(hash_functions, HashFunctions):
            raise TypeError(
                "hash_functions must be a HashFunctions; got "
                f"{type(hash_functions).__name__}."
            )
        cdef HashFunctions hf = hash_functions
        if hf.n_tables != self.n_tables or hf.n_buckets != self.n_buckets:
            raise ValueError(
                f"hash_functions give n_tables={hf.n_tables}, "
                f"n_buckets={hf.n_buckets}; the tables have "
                f"n_tables={self.n_tables}, n_buckets={self.n_buckets}."
            )
        if hasattr(rows, "toarray"):
            raise ValueError("rows must be a dense array; got a sparse matrix.")
        rows = np.asarray(rows)
        cdef intp_t n_cols = hf.n_features - (last is not None)
        if rows.ndim != 2 or rows.shape != (self.n_items, n_cols):
            raise ValueError(
                f"rows must have shape ({self.n_items}, {n_cols}) (n_items and "
                "the functions' n_features, less one with last); got shape "
                f"{rows.shape}."
            )
        dtype = rows.dtype if rows.dtype in (np.float32, np.float64) else np.float64
        rows = np.ascontiguousarray(rows, dtype=dtype)
        cdef const float64_t[::1] center_view = None
        cdef const float64_t* center_ptr = NULL
        if center is not None:
            center = _finite_vector(center, "center", n_cols, "a row's")
            center_view = center
            center_ptr = &center_view[0]
        cdef const float64_t[::1] last_view = None
        cdef const float64_t* last_ptr = NULL
        if last is not None:
            last = _finite_vector(last, "last", self.n_items, "n_items")
            last_view = last
            last_ptr = &last_view[0]
        cdef intp_t N = self.n_items
        cdef int L = self.n_tables
        cdef intp_t B = self.n_buckets
        cdef int n_rows = self._n_threads(n_threads, N)
        cdef int n_tabs = self._n_threads(n_threads, L)
        # Every scratch is allocated before the tables are touched; float32
        # SimHash rows are hashed a block at a time (see _keys_into_ids).
        cdef intp_t block = (SIMHASH_ROWS if dtype == np.float32
                             and simhash_by_product(&hf.c) else 1)
        cdef float64_t[:, ::1] scratch = per_thread_rows(
            n_rows, max(1, scratch_size(&hf.c), (block * hf.c.n_hashes + 1) // 2
                        if block > 1 else 1), np.float64)
        cdef int32_t[:, ::1] codes = per_thread_rows(n_rows, max(1, hf.c.n_hashes),
                                                     np.int32)
        cdef key_t[:, ::1] row_keys = per_thread_rows(n_rows, block * L, np.uint32)
        cdef key_t[:, ::1] table_keys = per_thread_rows(n_tabs, N, np.uint32)
        cdef int32_t[:, ::1] cursor = per_thread_rows(n_tabs, B, np.int32)
        cdef int32_t[:, ::1] offsets = self.offsets
        cdef int32_t[:, ::1] ids = self.ids
        centered = per_thread_rows(
            n_rows, max(1, block * hf.n_features)
            if center is not None or last is not None else 1, dtype)
        cdef const float32_t[:, ::1] x32 = rows if dtype == np.float32 else None
        cdef const float64_t[:, ::1] x64 = rows if dtype == np.float64 else None
        cdef float32_t[:, ::1] centered32 = centered if dtype == np.float32 else None
        cdef float64_t[:, ::1] centered64 = centered if dtype == np.float64 else None
        with one_blas_thread(), nogil:
            # Pass 1: the keys of table t go to ids[t] (the memory of the result).
            if x32 is not None:
                _keys_into_ids(&hf.c, x32, center_ptr, last_ptr, centered32,
                               row_keys, codes, scratch, ids, n_rows)
            else:
                _keys_into_ids(&hf.c, x64, center_ptr, last_ptr, centered64,
                               row_keys, codes, scratch, ids, n_rows)
            # Pass 2: each table copies its keys to a scratch row, then sorts.
            _sort_tables(offsets, ids, table_keys, cursor, B, self._capacity,
                         self._policy, self._seed, n_tabs)
        self.n_reinserts = 0
        return self

    def reinsert(self, items, keys, n_threads=1):
        """Move some items to the buckets of their new keys.

        Every table removes the items from their old buckets and appends them
        to their new ones, in the order of ``items``, as the newest ids (a full
        FIFO bucket drops its oldest; a full reservoir keeps a new id with
        probability ``capacity / size``, counting the ids it holds and those
        offered by this call). Costs ``O(n_items + n_buckets)`` per table
        without hashing the items that do not move.

        Parameters
        ----------
        items : array-like of shape (n_moved,)
            Distinct ids in ``[0, n_items)``.
        keys : array-like of shape (n_moved, n_tables)
            The new keys of ``items``.
        n_threads : int, default=1
            OpenMP threads (one table per thread).

        Returns
        -------
        self : HashTables
        """
        items = np.asarray(items)
        if items.ndim != 1 or (items.size and items.dtype.kind not in "iu"):
            raise ValueError(
                "items must be a 1-D array of integer ids; got "
                f"shape {items.shape}, dtype {items.dtype}."
            )
        if items.size and (items.min() < 0 or items.max() >= self.n_items):
            bad = items.min() if items.min() < 0 else items.max()
            raise ValueError(
                f"items must be in [0, n_items) = [0, {self.n_items}); got {bad}."
            )
        items = np.ascontiguousarray(items, dtype=np.int32)
        keys = self._check_keys(keys, items.shape[0])
        moved_arr = np.zeros(self.n_items, dtype=np.int8)
        moved_arr[items] = 1
        if np.count_nonzero(moved_arr) != items.shape[0]:
            raise ValueError("items must be distinct; got repeated ids.")
        if items.shape[0] == 0:
            return self

        cdef int L = self.n_tables
        cdef int n = self._n_threads(n_threads, L)
        cdef intp_t N = self.n_items
        cdef intp_t B = self.n_buckets
        cdef const int8_t[::1] moved = moved_arr
        cdef const int32_t[::1] items_view = items
        cdef const key_t[:, ::1] keys_view = keys
        cdef int32_t[:, ::1] offsets = self.offsets
        cdef int32_t[:, ::1] ids = self.ids
        cdef int32_t[:, ::1] new_offsets = per_thread_rows(n, B + 1, np.int32)
        cdef int32_t[:, ::1] new_ids = per_thread_rows(n, N, np.int32)
        cdef int32_t[:, ::1] cursor = per_thread_rows(n, B, np.int32)
        cdef intp_t n_moved = items.shape[0]
        cdef int32_t capacity = self._capacity
        cdef int policy = self._policy
        cdef uint64_t seed = self._seed
        cdef uint64_t call = self.n_reinserts + 1
        cdef intp_t t
        cdef int tid
        cdef moves_t mv
        mv.moved = &moved[0]
        mv.items = &items_view[0]
        mv.keys = &keys_view[0, 0]
        mv.stride = L
        mv.n_moved = n_moved
        for t in prange(L, nogil=True, num_threads=n, schedule="dynamic"):
            tid = omp_get_thread_num()
            _reinsert_table(&mv, t, B, capacity, policy, _stream(seed, t, call),
                            &offsets[t, 0], &ids[t, 0], &new_offsets[tid, 0],
                            &new_ids[tid, 0], &cursor[tid, 0])
        self.n_reinserts = call
        return self

    def query(self, keys, strategy="union", budget=None, min_count=1, n_threads=1):
        """Candidate ids of each sample, from its L buckets.

        Parameters
        ----------
        keys : array-like of shape (n_samples, n_tables)
            The keys of the samples, in ``[0, n_buckets)``.
        strategy : {'union', 'topk', 'threshold'}, default='union'
            ``'union'``: the distinct ids of the L buckets, in table then
            bucket order, stopping after ``budget``. ``'topk'``: the
            ``budget`` ids found in the most tables, by descending count then
            first appearance. ``'threshold'``: the ids found in at least
            ``min_count`` tables, in first-appearance order, at most ``budget``.
        budget : int or None, default=None
            Most ids per sample; None is no limit. Required by ``'topk'``.
        min_count : int, default=1
            ``'threshold'`` only: tables an id must be found in, in
            ``[1, n_tables]``.
        n_threads : int, default=1
            OpenMP threads (samples in parallel).

        Returns
        -------
        indptr : ndarray of shape (n_samples + 1,), dtype int64
            Sample ``i``'s candidates are ``ids[indptr[i]:indptr[i + 1]]``.
        ids : ndarray of shape (indptr[-1],), dtype int32
        """
        if not isinstance(strategy, str) or strategy not in _STRATEGIES:
            raise ValueError(
                "strategy must be 'union', 'topk' or 'threshold'; got "
                f"{strategy!r}."
            )
        if budget is None:
            if strategy == "topk":
                raise ValueError("strategy='topk' needs a budget; got budget=None.")
            budget = 0
        else:
            budget = _check_int("budget", budget, 1)
        min_count = _check_int("min_count", min_count, 1, self.n_tables)
        keys_arr = self._check_keys(keys)

        cdef const key_t[:, ::1] k = keys_arr
        cdef intp_t n_samples = keys_arr.shape[0]
        cdef intp_t N = self.n_items
        cdef int n = self._n_threads(n_threads, n_samples)
        cdef int strat = _STRATEGIES[strategy]
        cdef intp_t budget_c = budget
        cdef int min_count_c = min_count
        cdef intp_t out_size = N if budget_c <= 0 or budget_c > N else budget_c
        tags_arr = per_thread_rows(n, N, np.int32)
        counts_arr = per_thread_rows(n, N, np.int32)
        candidates_arr = per_thread_rows(n, N + 1, np.int32)
        cdef int32_t[:, ::1] tags = tags_arr
        cdef int32_t[:, ::1] counts = counts_arr
        cdef int32_t[:, ::1] candidates = candidates_arr
        cdef int32_t[:, ::1] buf = per_thread_rows(n, out_size, np.int32)
        indptr_arr = np.zeros(n_samples + 1, dtype=np.int64)
        cdef int64_t[::1] indptr = indptr_arr
        cdef int32_t[::1] ids_view
        cdef int32_t* out
        cdef const tables_t* tables = &self.c
        cdef intp_t i
        cdef int tid
        cdef query_scratch_t* scratches = <query_scratch_t*> malloc(
            n * sizeof(query_scratch_t))
        if scratches == NULL:
            raise MemoryError()
        try:
            for tid in range(n):
                scratches[tid].tags = &tags[tid, 0]
                scratches[tid].counts = &counts[tid, 0]
                scratches[tid].candidates = &candidates[tid, 0]
                scratches[tid].stamp = 0
            # Pass 1 counts, pass 2 writes each sample's ids in place.
            for i in prange(n_samples, nogil=True, num_threads=n,
                            schedule="dynamic", chunksize=16):
                tid = omp_get_thread_num()
                indptr[i + 1] = query_row(tables, &k[i, 0], strat, budget_c,
                                          min_count_c, &scratches[tid],
                                          &buf[tid, 0])
            np.cumsum(indptr_arr, out=indptr_arr)
            ids_arr = np.empty(indptr[n_samples], dtype=np.int32)
            if ids_arr.shape[0]:
                ids_view = ids_arr
                out = &ids_view[0]
                for i in prange(n_samples, nogil=True, num_threads=n,
                                schedule="dynamic", chunksize=16):
                    tid = omp_get_thread_num()
                    query_row(tables, &k[i, 0], strat, budget_c, min_count_c,
                              &scratches[tid], out + indptr[i])
        finally:
            free(scratches)
        return indptr_arr, ids_arr

    def bucket(self, table, key):
        """Return a copy of the ids in bucket ``key`` of table ``table``."""
        t = _check_int("table", table, 0, self.n_tables - 1)
        b = _check_int("key", key, 0, self.n_buckets - 1)
        start, stop = self.offsets[t, b], self.offsets[t, b + 1]
        return self.ids[t, start:stop].copy()

    def copy(self):
        """A copy with arrays of its own (no packing round trip)."""
        other = HashTables(self.n_tables, self.n_buckets, self.n_items,
                           self.capacity, self.policy, self.seed)
        other._set_arrays(self.offsets.copy(), self.ids.copy())
        other.n_reinserts = self.n_reinserts
        return other

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        # Saved compactly as each item's bucket keys when the tables are what
        # build() makes of them, else as their arrays (see _table_io).
        from . import _table_io
        return (_table_io.load_tables, (_table_io.pack_tables(self),))

    def __setstate__(self, state):
        """Take ``offsets`` and ``ids`` (and ``n_reinserts``), checked.

        Loaded arrays may be read-only (e.g. joblib ``mmap_mode='r'``): copies
        keep build and reinsert working.
        """
        L, B, N = self.n_tables, self.n_buckets, self.n_items
        offsets = _check_int32("offsets", state["offsets"], (L, B + 1))
        ids = _check_int32("ids", state["ids"], (L, N))
        # Queries index with these values without bounds checks.
        if (
            (offsets[:, 0] != 0).any()
            or (offsets[:, 1:] < offsets[:, :-1]).any()
            or (offsets[:, B] > N).any()
        ):
            raise ValueError("offsets are not valid bucket offsets of the tables.")
        for t in range(L):
            used = ids[t, :offsets[t, B]]
            if used.size and (used.min() < 0 or used.max() >= N):
                raise ValueError(f"ids of table {t} are not in [0, n_items).")
        self._set_arrays(offsets, ids)
        self.n_reinserts = state.get("n_reinserts", 0)

    def __repr__(self):
        return (
            f"HashTables(n_tables={self.n_tables}, n_buckets={self.n_buckets}, "
            f"n_items={self.n_items}, capacity={self.capacity!r}, "
            f"policy={self.policy!r}, seed={self.seed!r})"
        )


def _query_rows_serial(HashTables tables, keys, strategy, budget, min_count,
                       stamp, tags_arr):
    """Run ``query_row`` on the rows of keys with one scratch starting from
    ``stamp`` and ``tags_arr`` (int32, n_items, values <= stamp; modified in
    place): a test entry point for the stamp wrap-around and the tags
    contract. Returns the candidate lists and the final stamp."""
    cdef const key_t[:, ::1] k = tables._check_keys(keys)
    cdef intp_t N = tables.n_items
    cdef int32_t[::1] tags = tags_arr
    cdef int32_t[::1] counts = np.empty(N, dtype=np.int32)
    cdef int32_t[::1] candidates = np.empty(N + 1, dtype=np.int32)
    cdef int32_t[::1] out = np.empty(N, dtype=np.int32)
    cdef query_scratch_t scratch
    scratch.tags = &tags[0]
    scratch.counts = &counts[0]
    scratch.candidates = &candidates[0]
    scratch.stamp = stamp
    result = []
    cdef intp_t i, n
    for i in range(k.shape[0]):
        n = query_row(&tables.c, &k[i, 0], _STRATEGIES[strategy],
                      0 if budget is None else budget, min_count, &scratch,
                      &out[0])
        result.append(np.asarray(out[:n]).copy())
    return result, scratch.stamp
