# Software prefetch of entries read or written out of order (a row's entries
# at a sparse input's columns): the hardware's prefetchers only follow strides.
cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define SKLEARN_LSH_PREFETCH(p) __builtin_prefetch((p), 1, 1)
    #define SKLEARN_LSH_PREFETCH_READ(p) __builtin_prefetch((p), 0, 3)
    #else
    #define SKLEARN_LSH_PREFETCH(p) ((void) 0)
    #define SKLEARN_LSH_PREFETCH_READ(p) ((void) 0)
    #endif
    """
    # A hint for the cache line of p, to be written: never faults.
    void prefetch "SKLEARN_LSH_PREFETCH"(const void* p) noexcept nogil
    # A hint for the cache line of p, to be read (shared between threads).
    void prefetch_read "SKLEARN_LSH_PREFETCH_READ"(const void* p) noexcept nogil


cdef inline void prefetch_row(const void* row, Py_ssize_t n_bytes,
                              bint write) noexcept nogil:
    # Every cache line of a row about to be used whole: the next candidate or
    # touched neuron's row, at an address no stride predicts.
    cdef Py_ssize_t offset
    for offset in range(0, n_bytes, 64):
        if write:
            prefetch(<const char*> row + offset)
        else:
            prefetch_read(<const char*> row + offset)


# How many entries ahead of the one in use a loop prefetches: far enough for
# a line from memory to arrive, near enough to stay in the cache.
cdef enum:
    PREFETCH_AHEAD = 16
    # Whole rows are longer: fewer ahead fill as many lines.
    PREFETCH_ROWS_AHEAD = 4
