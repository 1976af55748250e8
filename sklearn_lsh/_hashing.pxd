# Hash families: a batch of rows, or one row from nogil code, to L bucket keys.
from cython cimport floating

from ._typedefs cimport int8_t, int32_t, intp_t, key_t, uint64_t

cdef enum:
    SIMHASH = 0
    WTA = 1
    DWTA = 2
    MINHASH = 3

# Everything a nogil hash call reads. The pointers refer to arrays owned by the
# HashFunctions object that filled the struct; they live as long as it does.
cdef struct hash_family_t:
    int family             # SIMHASH, WTA, DWTA or MINHASH
    int n_bits_per_table   # K: codes packed into one key
    int n_tables           # L
    int n_hashes           # K * L
    int n_features         # input dimension d
    int bin_size           # m: coordinates a WTA/DWTA/MinHash code chooses from
    int code_bits          # bits per code: log2(bin_size), 1 for SimHash
    int key_bits           # log2(number of buckets per table)
    int n_perms            # DWTA/MinHash: permutations of the d features
    uint64_t seed          # densification probes and key folding
    # SimHash, per input feature j: the hashes it enters and the sign, in
    # proj_hash[proj_indptr[j]:proj_indptr[j + 1]] and proj_sign[...].
    const int32_t* proj_indptr
    const int32_t* proj_hash
    const int8_t* proj_sign
    # The same projections as a dense (d, n_hashes) float32 matrix, or NULL
    # when that would exceed DENSE_PROJECTIONS_MAX entries: float32 rows then
    # sum in float32, one contiguous vectorised pass per non-zero feature.
    const float* proj_dense
    # WTA: (n_hashes, bin_size) feature indices. DWTA/MinHash: (n_perms, d)
    # position of each feature in each permutation.
    const int32_t* positions
    # DWTA/MinHash: (d, n_perms), transposed so that the permutations of one
    # feature are contiguous: the bin slot h * bin_size + r that feature j takes
    # in permutation p (hash h, rank r in its bin), or -1 when that position
    # lies past the last full bin or maps to a hash >= n_hashes.
    const int32_t* slots


cdef class HashFunctions:
    cdef hash_family_t c
    cdef readonly str family
    cdef readonly int n_bits_per_table
    cdef readonly int n_tables
    cdef readonly int n_features
    cdef readonly int bin_size
    cdef readonly int key_bits
    cdef readonly object seed
    # Owning arrays behind the pointers of self.c.
    cdef readonly object proj_indptr
    cdef readonly object proj_hash
    cdef readonly object proj_sign
    cdef readonly object proj_dense
    cdef readonly object positions
    cdef readonly object slots
    cdef object __weakref__


# Number of float64 scratch values one thread needs for one call (at least 1).
# The scratch must be all zero before a thread's first call; every call leaves
# it all zero again (sparse WTA relies on it), so it can be reused across rows.
cdef intp_t scratch_size(const hash_family_t* family) noexcept nogil

# Both row functions read the struct only: any number of threads may call them
# at once, each with its own scratch and codes. Values must be finite (hash()
# checks; nogil callers are trusted).

# Hash one dense row x[0:d] into keys[0:L]. codes: int32 scratch of n_hashes
# (on return it holds the K * L codes, table t's in codes[t * K:(t + 1) * K]).
cdef void hash_dense_row(
    const hash_family_t* family,
    const floating* x,
    double* scratch,
    int32_t* codes,
    key_t* keys,
) noexcept nogil

# Hash one sparse row (indices ascending, int32) into keys[0:L]. Gives the same
# keys as hash_dense_row on the dense form of the row.
cdef void hash_sparse_row(
    const hash_family_t* family,
    const int32_t* indices,
    const floating* values,
    intp_t nnz,
    double* scratch,
    int32_t* codes,
    key_t* keys,
) noexcept nogil


# SimHash of float32 rows in blocks: one matrix product with the dense
# projections (when the family keeps them: simhash_by_product) in place of a
# pass over the projections per row. The same codes as hash_dense_row, in
# blocks of any size: the products are +-x or 0, summed in the order of the
# features. A worker hashes a batch's queries SIMHASH_BLOCK slots at a time
# (a block per thread); hash() and table builds SIMHASH_ROWS rows at a time
# (the product packs the projections once per block).
cdef enum:
    SIMHASH_BLOCK = 64
    SIMHASH_ROWS = 256

cdef inline bint simhash_by_product(const hash_family_t* family) noexcept nogil:
    return family.family == SIMHASH and family.proj_dense != NULL

# Keys of the n_rows float32 rows X + i * ld into keys + i * keys_ld (or, if
# keys is NULL, their codes into codes + i * n_hashes; else codes is scratch of
# n_hashes). acc: float32 scratch of n_rows * n_hashes.
cdef void simhash_block(
    const hash_family_t* family,
    const float* X,
    intp_t ld,
    int n_rows,
    float* acc,
    int32_t* codes,
    key_t* keys,
    intp_t keys_ld,
) noexcept nogil
