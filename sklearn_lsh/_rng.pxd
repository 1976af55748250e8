# splitmix64: the one random generator and mixer of the compiled core.
# Streams derived from a seed with it depend on the seed alone (never on
# thread timing), so hashing, table sampling and active-set padding are
# reproducible for any number of threads.
from ._typedefs cimport uint64_t


cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    # The splitmix64 finaliser: a bijection of 64-bit words with good avalanche.
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint64_t splitmix64(uint64_t* state) noexcept nogil:
    # The next value of the stream whose state is state[0].
    state[0] += 0x9E3779B97F4A7C15ULL
    return mix64(state[0])
