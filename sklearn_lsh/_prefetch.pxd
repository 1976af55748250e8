# Software prefetch of entries read or written out of order (a row's entries
# at a sparse input's columns): the hardware's prefetchers only follow strides.
cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define SKLEARN_LSH_PREFETCH(p) __builtin_prefetch((p), 1, 1)
    #else
    #define SKLEARN_LSH_PREFETCH(p) ((void) 0)
    #endif
    """
    # A hint for the cache line of p, to be written: never faults.
    void prefetch "SKLEARN_LSH_PREFETCH"(const void* p) noexcept nogil


# How many entries ahead of the one in use a loop prefetches: far enough for
# a line from memory to arrive, near enough to stay in the cache.
cdef enum:
    PREFETCH_AHEAD = 16
