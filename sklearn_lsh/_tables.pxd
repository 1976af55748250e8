# L hash tables in CSR layout: per table, bucket offsets and neuron ids.
from ._typedefs cimport int32_t, int64_t, intp_t, key_t, uint64_t

cdef enum:
    UNION = 0
    TOPK = 1
    THRESHOLD = 2

cdef struct tables_t:
    int n_tables           # L
    intp_t n_buckets       # buckets per table (a power of two)
    intp_t n_items         # N: neuron ids are 0 .. N-1
    # (L, n_buckets + 1): bucket b of table t holds
    # ids[t * n_items + offsets[t, b] : t * n_items + offsets[t, b + 1]]
    const int32_t* offsets
    const int32_t* ids     # (L, n_items); a table with capacity uses a prefix

# Per-thread query state; int32 arrays owned by the caller: tags and counts of
# n_items, candidates of n_items + 1. tags must start all zero and stamp at 0;
# every tag stays <= stamp, which query_row advances by n_tables a query.
cdef struct query_scratch_t:
    int32_t* tags
    int32_t* counts
    int32_t* candidates
    int32_t stamp


cdef inline bint stamps_exhausted(int32_t stamp, int n_tables) noexcept nogil:
    """Whether a query of n_tables tables would pass INT32_MAX (and clears the
    tags first)."""
    return <int64_t> stamp + n_tables >= 2147483647


cdef class HashTables:
    cdef tables_t c
    cdef readonly int n_tables
    cdef readonly intp_t n_buckets
    cdef readonly intp_t n_items
    cdef readonly object capacity
    cdef readonly str policy
    cdef readonly object seed
    cdef readonly object offsets   # (L, n_buckets + 1) int32
    cdef readonly object ids       # (L, n_items) int32
    cdef readonly uint64_t n_reinserts  # gives each reinsert call its own streams
    # Private state, not part of the contract above.
    cdef int32_t _capacity         # INT32_MAX when unlimited
    cdef int _policy               # FIFO or RESERVOIR (see _tables.pyx)
    cdef uint64_t _seed
    cdef object __weakref__


# Candidates of one sample given its L keys, written to out (room for n_items,
# or for budget when budget > 0). strategy: UNION (deduplicated ids of the L
# buckets, in table then bucket order, stopping at budget), TOPK (the budget
# most frequent ids across the tables; ties by first appearance), THRESHOLD
# (ids found in at least min_count tables, in first-appearance order, at most
# budget). budget <= 0 means no limit. Returns the number written.
# Only out[0:n] is written; tags, counts and candidates are scratch. Keys are
# masked to n_buckets - 1.
cdef intp_t query_row(
    const tables_t* tables,
    const key_t* keys,
    int strategy,
    intp_t budget,
    int min_count,
    query_scratch_t* scratch,
    int32_t* out,
) noexcept nogil
