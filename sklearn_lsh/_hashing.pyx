"""Hash families that map rows to L bucket keys of K packed codes.

Families:

- ``'simhash'``: signed random projections, sparse +-1 entries (about 1/3 of
  them non-zero); one bit per code. Collision probability ``1 - theta / pi``.
- ``'wta'``: winner take all; each code is the rank, among ``bin_size`` random
  features, of the largest value.
- ``'dwta'``: densified WTA (SLIDE's default); random permutations split into
  bins of ``bin_size`` features, a pass over the non-zeros of the row only, and
  empty bins filled by a fixed random probing rule.
- ``'minhash'``: densified one-permutation MinHash of the set of non-zero
  features; collision probability close to the Jaccard similarity.

Codes take ``log2(bin_size)`` bits (1 for SimHash) and the K codes of a table
are packed into one key; when they need more than ``key_bits`` bits the packed
value is mixed down into ``[0, 2**key_bits)``.
"""

import numbers

import numpy as np
import scipy.sparse as sp

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.string cimport memset
from scipy.linalg.cython_blas cimport sgemm

from ._openmp_helpers cimport omp_get_thread_num
from ._rng cimport mix64

from ._openmp_helpers import per_thread_rows
from ._threads import one_blas_thread
from ._typedefs cimport int8_t, int32_t, int64_t, intp_t, key_t, uint64_t

FAMILIES = ("simhash", "wta", "dwta", "minhash")
cdef dict _FAMILY_IDS = {
    "simhash": SIMHASH, "wta": WTA, "dwta": DWTA, "minhash": MINHASH
}

# Densification: probes per empty hash before the fallback to the first
# non-empty hash.
cdef enum:
    MAX_PROBES = 100
    # SimHash projections kept dense as well up to this many entries (16 MB):
    # a hidden layer's (d + 1) x K * L, never a wide sparse input's.
    DENSE_PROJECTIONS_MAX = 1 << 22
# The same, for the cost model in Python (_layers.auto_family).
DENSE_PROJECTION_ENTRIES = DENSE_PROJECTIONS_MAX
cdef uint64_t GOLDEN = 0x9E3779B97F4A7C15ULL


cdef inline uint64_t _mix_bits(uint64_t x, int n, uint64_t seed) noexcept nogil:
    # A bijection of n-bit words (1 < n <= 64): xor-shifts and multiplications
    # by odd constants modulo 2**n. Keeping its top bits folds uniform n-bit
    # codes into exactly equal-sized buckets.
    cdef uint64_t mask = (<uint64_t> -1) >> (64 - n)
    cdef int shift = (n + 1) // 2
    x = (x ^ seed) & mask
    x ^= x >> shift
    x = (x * 0xBF58476D1CE4E5B9ULL) & mask
    x ^= x >> shift
    x = (x * 0x94D049BB133111EBULL) & mask
    x ^= x >> shift
    x = (x * 0xBF58476D1CE4E5B9ULL) & mask
    return x ^ (x >> shift)


cdef intp_t scratch_size(const hash_family_t* family) noexcept nogil:
    if family.family == WTA:
        return family.n_features   # sparse rows are scattered into it
    if family.family == MINHASH:
        return 1                   # codes alone hold the running minima
    return family.n_hashes         # SimHash sums, DWTA running maxima


# ---------------------------------------------------------------------------
# Codes of one row. Every family leaves codes[0:n_hashes] valid and scratch
# all zero.

cdef inline void _simhash_codes(
    const hash_family_t* fam,
    const floating* x,
    double* acc,
    int32_t* codes,
) noexcept nogil:
    cdef int h
    cdef float* acc32 = <float*> acc
    if _simhash_in_float32(fam, x):
        for h in range(fam.n_hashes):
            codes[h] = acc32[h] > 0
            acc32[h] = 0
        return
    for h in range(fam.n_hashes):
        codes[h] = acc[h] > 0
        acc[h] = 0


cdef inline bint _simhash_in_float32(const hash_family_t* fam,
                                     const floating* x) noexcept nogil:
    # float32 rows through the dense projections: 2.5x faster than the
    # scattered float64 sums, as exact as the row's own precision.
    return floating is float and fam.proj_dense != NULL


cdef inline void _simhash_add(
    const hash_family_t* fam, intp_t j, floating v, double* acc
) noexcept nogil:
    # Feature j's projections, in the order of the features: dense and sparse
    # rows of equal values sum alike.
    cdef int32_t e
    cdef int h
    cdef float* acc32
    cdef const float* row
    if _simhash_in_float32(fam, &v):
        acc32 = <float*> acc
        row = fam.proj_dense + j * fam.n_hashes
        for h in range(fam.n_hashes):
            acc32[h] += row[h] * v
        return
    for e in range(fam.proj_indptr[j], fam.proj_indptr[j + 1]):
        acc[fam.proj_hash[e]] += fam.proj_sign[e] * <double> v


cdef inline void _wta_codes(
    const hash_family_t* fam,
    const floating* x,
    int32_t* codes,
) noexcept nogil:
    cdef int h, r, r_best
    cdef int m = fam.bin_size
    cdef const int32_t* pos
    cdef double v, best
    for h in range(fam.n_hashes):
        pos = fam.positions + <intp_t> h * m
        best = x[pos[0]]
        r_best = 0
        for r in range(1, m):
            v = x[pos[r]]
            if v > best:   # strict: ties keep the smallest rank
                best = v
                r_best = r
        codes[h] = r_best


cdef inline void _dwta_init(
    const hash_family_t* fam, double* best, int32_t* codes
) noexcept nogil:
    cdef int h
    for h in range(fam.n_hashes):
        best[h] = -INFINITY
        codes[h] = -1


cdef inline void _dwta_add(
    const hash_family_t* fam, intp_t j, double v, double* best, int32_t* codes
) noexcept nogil:
    # Feature j with value v != 0 enters one bin of every permutation.
    cdef int n_perms = fam.n_perms
    cdef int shift = fam.code_bits
    cdef int32_t mask = fam.bin_size - 1
    cdef const int32_t* row = fam.slots + j * n_perms
    cdef int p
    cdef int32_t s, h
    cdef double b
    cdef int32_t win, c
    for p in range(n_perms):
        s = row[p]
        if s >= 0:
            h = s >> shift
            # Branch-free update: the winner is random on random data and a
            # branch on it mispredicts. Strict: ties keep the first feature.
            b = best[h]
            win = -<int32_t> (v > b)   # all ones when v wins
            best[h] = v if v > b else b
            c = codes[h]
            codes[h] = c ^ ((c ^ (s & mask)) & win)


cdef inline void _minhash_init(const hash_family_t* fam, int32_t* codes) noexcept nogil:
    cdef int h
    for h in range(fam.n_hashes):
        codes[h] = fam.bin_size   # above every rank: empty


cdef inline void _minhash_add(
    const hash_family_t* fam, intp_t j, int32_t* codes
) noexcept nogil:
    cdef int n_perms = fam.n_perms
    cdef int shift = fam.code_bits
    cdef int32_t mask = fam.bin_size - 1
    cdef const int32_t* row = fam.slots + j * n_perms
    cdef int p
    cdef int32_t s, h, r
    for p in range(n_perms):
        s = row[p]
        if s >= 0:
            h = s >> shift
            r = s & mask
            if r < codes[h]:
                codes[h] = r


cdef inline void _minhash_finish(const hash_family_t* fam, int32_t* codes) noexcept nogil:
    cdef int h
    for h in range(fam.n_hashes):
        if codes[h] == fam.bin_size:
            codes[h] = -1


cdef void _densify(const hash_family_t* fam, int32_t* codes) noexcept nogil:
    """Give every empty code (-1) the code of a non-empty hash.

    Hash h probes h' = (top 32 bits of mix(seed, h, attempt)) * n_hashes >> 32
    for attempt = 0, 1, ... and takes the code of the first originally
    non-empty one, so that two rows with the same non-empty hashes borrow
    alike. After MAX_PROBES failures it takes the first non-empty hash. A row
    with no non-empty hash gets all codes 0. Borrowed codes are stored as
    -(code + 2) until the end so that probes only ever see original codes.
    """
    cdef int n = fam.n_hashes
    cdef int h, h2, attempt, n_empty = 0, first = -1
    cdef uint64_t base
    for h in range(n):
        if codes[h] < 0:
            n_empty += 1
        elif first < 0:
            first = h
    if n_empty == 0:
        return
    if first < 0:   # no non-zero in the row
        for h in range(n):
            codes[h] = 0
        return
    for h in range(n):
        if codes[h] != -1:
            continue
        base = fam.seed + <uint64_t> h * <uint64_t> (MAX_PROBES + 1) * GOLDEN
        for attempt in range(MAX_PROBES):
            # Top 32 bits of the mix scaled to [0, n): a multiply, no division.
            h2 = <int> (((mix64(base + <uint64_t> (attempt + 1) * GOLDEN) >> 32)
                         * <uint64_t> n) >> 32)
            if codes[h2] >= 0:
                codes[h] = -(codes[h2] + 2)
                break
        else:
            codes[h] = -(codes[first] + 2)
    for h in range(n):
        if codes[h] < 0:
            codes[h] = -(codes[h] + 2)


cdef inline void _dense_codes(
    const hash_family_t* fam,
    const floating* x,
    double* scratch,
    int32_t* codes,
) noexcept nogil:
    cdef intp_t j
    cdef intp_t d = fam.n_features
    cdef double v
    cdef int h
    if fam.family == SIMHASH:
        memset(scratch, 0, fam.n_hashes * sizeof(double))
        for j in range(d):
            if x[j] != 0:
                _simhash_add(fam, j, x[j], scratch)
        _simhash_codes(fam, x, scratch, codes)
    elif fam.family == WTA:
        _wta_codes(fam, x, codes)
    elif fam.family == DWTA:
        _dwta_init(fam, scratch, codes)
        for j in range(d):
            v = x[j]
            if v != 0:
                _dwta_add(fam, j, v, scratch, codes)
        for h in range(fam.n_hashes):
            scratch[h] = 0
        _densify(fam, codes)
    else:
        _minhash_init(fam, codes)
        for j in range(d):
            if x[j] != 0:
                _minhash_add(fam, j, codes)
        _minhash_finish(fam, codes)
        _densify(fam, codes)


cdef inline void _sparse_codes(
    const hash_family_t* fam,
    const int32_t* indices,
    const floating* values,
    intp_t nnz,
    double* scratch,
    int32_t* codes,
) noexcept nogil:
    cdef intp_t e
    cdef double v
    cdef int h
    if fam.family == SIMHASH:
        memset(scratch, 0, fam.n_hashes * sizeof(double))
        for e in range(nnz):
            if values[e] != 0:
                _simhash_add(fam, indices[e], values[e], scratch)
        _simhash_codes(fam, values, scratch, codes)
    elif fam.family == WTA:
        # Scatter into the zeroed dense scratch, then reset what was touched.
        for e in range(nnz):
            scratch[indices[e]] += values[e]
        _wta_codes(fam, <const double*> scratch, codes)
        for e in range(nnz):
            scratch[indices[e]] = 0
    elif fam.family == DWTA:
        _dwta_init(fam, scratch, codes)
        for e in range(nnz):
            v = values[e]
            if v != 0:
                _dwta_add(fam, indices[e], v, scratch, codes)
        for h in range(fam.n_hashes):
            scratch[h] = 0
        _densify(fam, codes)
    else:
        _minhash_init(fam, codes)
        for e in range(nnz):
            if values[e] != 0:
                _minhash_add(fam, indices[e], codes)
        _minhash_finish(fam, codes)
        _densify(fam, codes)


cdef inline void _pack_keys(
    const hash_family_t* fam, const int32_t* codes, key_t* keys
) noexcept nogil:
    cdef int K = fam.n_bits_per_table
    cdef int cb = fam.code_bits
    cdef int key_bits = fam.key_bits
    cdef int total_bits = K * cb
    cdef int t, i, n_bits
    cdef const int32_t* c
    cdef uint64_t acc, state
    for t in range(fam.n_tables):
        c = codes + <intp_t> t * K
        acc = 0
        if total_bits <= 64:
            for i in range(K):
                acc = (acc << cb) | <uint64_t> c[i]
            if total_bits <= key_bits:
                keys[t] = <key_t> acc
            else:
                keys[t] = <key_t> (_mix_bits(acc, total_bits, fam.seed)
                                   >> (total_bits - key_bits))
        else:
            # Pack up to 64 bits at a time, chain the words through the mixer
            # and keep the top key_bits bits (the best mixed ones).
            state = fam.seed
            n_bits = 0
            for i in range(K):
                if n_bits + cb > 64:
                    state = mix64(state ^ acc)
                    acc = 0
                    n_bits = 0
                acc = (acc << cb) | <uint64_t> c[i]
                n_bits += cb
            keys[t] = <key_t> (mix64(state ^ acc) >> (64 - key_bits))


cdef void hash_dense_row(
    const hash_family_t* family,
    const floating* x,
    double* scratch,
    int32_t* codes,
    key_t* keys,
) noexcept nogil:
    _dense_codes(family, x, scratch, codes)
    _pack_keys(family, codes, keys)


cdef void hash_sparse_row(
    const hash_family_t* family,
    const int32_t* indices,
    const floating* values,
    intp_t nnz,
    double* scratch,
    int32_t* codes,
    key_t* keys,
) noexcept nogil:
    _sparse_codes(family, indices, values, nnz, scratch, codes)
    _pack_keys(family, codes, keys)


cdef void simhash_block(
    const hash_family_t* family,
    const float* X,
    intp_t ld,
    int n_rows,
    float* acc,
    int32_t* codes,
    key_t* keys,
    intp_t keys_ld,
) noexcept nogil:
    # Column-major view: acc (n_hashes x n_rows) = proj (n_hashes x d) @ X.
    cdef int m = family.n_hashes, n = n_rows, k = family.n_features
    cdef int lda = m, ldb = <int> ld, ldc = m, K = family.n_bits_per_table
    cdef float one = 1, zero = 0
    cdef intp_t i
    cdef int h, t
    cdef key_t key
    cdef const float* row
    cdef int32_t* c
    sgemm(b"N", b"N", &m, &n, &k, &one, <float*> family.proj_dense, &lda,
          <float*> X, &ldb, &zero, acc, &ldc)
    if keys != NULL and K <= family.key_bits:
        # Keys of K sign bits, packed straight from the sums (_pack_keys
        # without folding).
        for i in range(n_rows):
            row = acc + i * m
            for t in range(family.n_tables):
                key = 0
                for h in range(t * K, (t + 1) * K):
                    key = (key << 1) | (row[h] > 0)
                keys[i * keys_ld + t] = key
        return
    for i in range(n_rows):
        row = acc + i * m
        c = codes if keys != NULL else codes + i * m
        for h in range(m):
            c[h] = row[h] > 0
        if keys != NULL:
            _pack_keys(family, c, keys + i * keys_ld)


# ---------------------------------------------------------------------------
# Batches, parallel over rows with one scratch row per thread. With want_codes,
# the codes of row i are written to codes[i] and no key is computed.

cdef void _hash_dense_batch(
    const hash_family_t* fam,
    const floating[:, ::1] X,
    double[:, ::1] scratch,
    int32_t[:, ::1] codes,
    key_t[:, ::1] keys,
    bint want_codes,
    int n_threads,
) noexcept nogil:
    cdef intp_t i, i0, n_rows = X.shape[0]
    cdef int tid
    if floating is float:
        if simhash_by_product(fam):
            for i in prange((n_rows + SIMHASH_ROWS - 1) // SIMHASH_ROWS,
                            schedule="static", num_threads=n_threads):
                tid = omp_get_thread_num()
                i0 = i * SIMHASH_ROWS
                simhash_block(fam, &X[i0, 0], X.shape[1],
                              <int> min(SIMHASH_ROWS, n_rows - i0),
                              <float*> &scratch[tid, 0],
                              &codes[i0 if want_codes else tid, 0],
                              NULL if want_codes else &keys[i0, 0],
                              keys.shape[1])
            return
    for i in prange(n_rows, schedule="static", num_threads=n_threads):
        tid = omp_get_thread_num()
        if want_codes:
            _dense_codes(fam, &X[i, 0], &scratch[tid, 0], &codes[i, 0])
        else:
            hash_dense_row(fam, &X[i, 0], &scratch[tid, 0], &codes[tid, 0],
                           &keys[i, 0])


cdef void _hash_csr_batch(
    const hash_family_t* fam,
    const floating* data,
    const int32_t* indices,
    const int64_t[::1] indptr,
    double[:, ::1] scratch,
    int32_t[:, ::1] codes,
    key_t[:, ::1] keys,
    bint want_codes,
    int n_threads,
) noexcept nogil:
    cdef intp_t i, start, nnz
    cdef int tid
    for i in prange(indptr.shape[0] - 1, schedule="static", num_threads=n_threads):
        tid = omp_get_thread_num()
        start = indptr[i]
        nnz = indptr[i + 1] - start
        if want_codes:
            _sparse_codes(fam, indices + start, data + start, nnz,
                          &scratch[tid, 0], &codes[i, 0])
        else:
            hash_sparse_row(fam, indices + start, data + start, nnz,
                            &scratch[tid, 0], &codes[tid, 0], &keys[i, 0])


def _check_int(name, value, low, high=None):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < low
        or (high is not None and value > high)
    ):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {allowed}; got {value!r}.")
    return int(value)


def _all_in(values, low, high):
    return values.size == 0 or (values.min() >= low and values.max() < high)


def _load_functions(params, arrays):
    """HashFunctions from their saved parameters and arrays, checked."""
    cdef HashFunctions functions = HashFunctions.__new__(HashFunctions)
    family, K, L, d, bin_size, key_bits, seed, mix_seed = params
    if family not in _FAMILY_IDS:
        raise ValueError(f"The saved hash family {family!r} is unknown.")
    if family != "simhash" and (bin_size < 2 or bin_size & (bin_size - 1)
                                or bin_size > d):
        raise ValueError(f"The saved bin_size {bin_size} is not valid.")
    code_bits = 1 if family == "simhash" else bin_size.bit_length() - 1
    if not (1 <= K and 1 <= L and 1 <= d < 2**31
            and 1 <= key_bits <= min(32, K * code_bits)):
        raise ValueError("The saved hash function parameters are not valid.")
    functions._assign(family, K, L, d, bin_size, key_bits, seed, mix_seed, arrays)
    return functions


cdef class HashFunctions:
    """K * L hash functions of one family, grouped into L tables of K codes.

    Parameters
    ----------
    family : {'simhash', 'wta', 'dwta', 'minhash'}
        The hash family.
    n_bits_per_table : int
        K, the number of codes packed into one key.
    n_tables : int
        L, the number of tables (keys per row).
    n_features : int
        The input dimension d.
    bin_size : int, default=8
        WTA/DWTA/MinHash: features a code chooses from, a power of two
        ``<= n_features``; codes take ``log2(bin_size)`` bits. Ignored by
        SimHash (1 bit per code).
    key_bits : int or None, default=None
        Bits of a key, in ``[1, 32]``. None means ``min(K * code_bits, 24)``.
        Set to ``K * code_bits`` when that is smaller; when it is larger, the
        packed codes are mixed into ``key_bits`` bits.
    seed : int, default=0
        Non-negative seed; all random parameters derive from it.

    Attributes
    ----------
    n_buckets : int
        ``2 ** key_bits``, the key range of every table.
    """

    def __init__(self, family, n_bits_per_table, n_tables, n_features,
                 bin_size=8, key_bits=None, seed=0):
        if family not in _FAMILY_IDS:
            raise ValueError(
                f"family must be one of {', '.join(map(repr, FAMILIES))}; "
                f"got {family!r}."
            )
        K = _check_int("n_bits_per_table", n_bits_per_table, 1)
        L = _check_int("n_tables", n_tables, 1)
        d = _check_int("n_features", n_features, 1)
        if d >= 2**31:
            raise ValueError(f"n_features must be < 2**31; got {d}.")
        if family == "simhash":
            code_bits = 1
        else:
            if (
                isinstance(bin_size, bool)
                or not isinstance(bin_size, numbers.Integral)
                or bin_size < 2
                or bin_size & (bin_size - 1)
            ):
                raise ValueError(
                    f"bin_size must be a power of two >= 2; got {bin_size!r}."
                )
            bin_size = int(bin_size)
            if bin_size > d:
                raise ValueError(
                    f"bin_size={bin_size} exceeds n_features={d}; family "
                    f"{family!r} needs bin_size <= n_features."
                )
            code_bits = bin_size.bit_length() - 1   # log2, not ln
        n_hashes = K * L
        if n_hashes * (1 if family == "simhash" else bin_size) >= 2**31:
            raise ValueError(
                f"n_bits_per_table * n_tables * bin_size must be < 2**31; got "
                f"{K} * {L} * {bin_size}."
            )
        if key_bits is None:
            key_bits = min(K * code_bits, 24)
        else:
            key_bits = _check_int("key_bits", key_bits, 1, 32)
            key_bits = min(key_bits, K * code_bits)
        if (
            isinstance(seed, bool)
            or not isinstance(seed, numbers.Integral)
            or seed < 0
        ):
            raise ValueError(f"seed must be a non-negative integer; got {seed!r}.")

        rng = np.random.default_rng(int(seed))
        mix_seed = int(rng.integers(0, 2**64, dtype=np.uint64))
        empty = np.zeros(1, dtype=np.int32)
        arrays = {"proj_indptr": empty, "proj_hash": empty,
                  "proj_sign": np.zeros(1, dtype=np.int8), "positions": empty,
                  "slots": empty}
        if family == "simhash":
            arrays.update(self._draw_projections(rng, d, n_hashes))
        elif family == "wta":
            arrays["positions"] = np.ascontiguousarray(
                [rng.choice(d, bin_size, replace=False) for _ in range(n_hashes)],
                dtype=np.int32,
            ).reshape(n_hashes, bin_size)
        else:
            bins_per_perm = d // bin_size
            n_perms = -(-n_hashes // bins_per_perm)
            positions = np.empty((n_perms, d), dtype=np.int32)
            for p in range(n_perms):
                positions[p] = rng.permutation(d)
            arrays["positions"] = positions
            # Slot of feature j in permutation p: hash p * bins_per_perm +
            # pos // bin_size, rank pos % bin_size.
            hashes = (
                np.arange(n_perms, dtype=np.int64)[:, None] * bins_per_perm
                + positions // bin_size
            )
            slots = hashes * bin_size + positions % bin_size
            slots[(positions >= bins_per_perm * bin_size) | (hashes >= n_hashes)] = -1
            arrays["slots"] = np.ascontiguousarray(slots.T, dtype=np.int32)
        self._assign(family, K, L, d, bin_size, key_bits, int(seed), mix_seed,
                     arrays)

    def _assign(self, family, K, L, d, bin_size, key_bits, seed, mix_seed,
                arrays):
        """Take the parameters and the drawn arrays, checked, into the struct.

        The nogil kernels index with these arrays without bounds checks, so a
        loaded model's arrays are checked here as a fresh draw's are.
        """
        cdef int code_bits = 1 if family == "simhash" else bin_size.bit_length() - 1
        cdef int n_hashes = K * L
        n_perms = 0
        if family in ("dwta", "minhash"):
            n_perms = -(-n_hashes // (d // bin_size))
        expected = {
            "simhash": {"proj_indptr": (d + 1,)},
            "wta": {"positions": (n_hashes, bin_size)},
            "dwta": {"positions": (n_perms, d), "slots": (d, n_perms)},
        }
        expected["minhash"] = expected["dwta"]
        arrays = dict(arrays)
        for name, dtype in (("proj_indptr", np.int32), ("proj_hash", np.int32),
                            ("proj_sign", np.int8), ("positions", np.int32),
                            ("slots", np.int32)):
            arr = np.ascontiguousarray(arrays[name])
            shape = expected[family].get(name)
            if arr.dtype != dtype or arr.ndim == 0 or (
                    shape is not None and arr.shape != shape):
                raise ValueError(
                    f"The {name} of {family!r} hash functions must be a {dtype.__name__} "
                    f"array{'' if shape is None else ' of shape %s' % (shape,)}; got "
                    f"{arr.dtype} {arr.shape}."
                )
            arrays[name] = arr
        if family == "simhash":
            indptr = arrays["proj_indptr"]
            nnz = int(indptr[d])
            if (indptr[0] != 0 or (np.diff(indptr) < 0).any()
                    or nnz > arrays["proj_hash"].shape[0]
                    or arrays["proj_sign"].shape[0] < nnz
                    or not _all_in(arrays["proj_hash"][:nnz], 0, n_hashes)):
                raise ValueError("The SimHash projections are not valid for "
                                 f"{d} features and {n_hashes} hashes.")
        elif not _all_in(arrays["positions"], 0, d) or not _all_in(
                arrays["slots"], -1, n_hashes * bin_size):
            raise ValueError(f"The {family!r} permutations are not valid for {d} "
                             f"features, {n_hashes} hashes and bins of {bin_size}.")

        self.family = family
        self.n_bits_per_table = K
        self.n_tables = L
        self.n_features = d
        self.bin_size = bin_size
        self.key_bits = key_bits
        self.seed = seed
        self.proj_indptr = arrays["proj_indptr"]
        self.proj_hash = arrays["proj_hash"]
        self.proj_sign = arrays["proj_sign"]
        self.positions = arrays["positions"]
        self.slots = arrays["slots"]
        cdef const int32_t[::1] proj_indptr = self.proj_indptr
        cdef const int32_t[::1] proj_hash = self.proj_hash
        cdef const int8_t[::1] proj_sign = self.proj_sign
        cdef const int32_t[::1] positions_flat = self.positions.reshape(-1)
        cdef const int32_t[::1] slots_flat = self.slots.reshape(-1)
        cdef const float[:, ::1] proj_dense
        self.c.family = _FAMILY_IDS[family]
        self.c.n_bits_per_table = K
        self.c.n_tables = L
        self.c.n_hashes = n_hashes
        self.c.n_features = d
        self.c.bin_size = 2 if family == "simhash" else bin_size
        self.c.code_bits = code_bits
        self.c.key_bits = key_bits
        self.c.n_perms = n_perms
        self.c.seed = mix_seed
        self.c.proj_indptr = &proj_indptr[0]
        self.c.proj_hash = &proj_hash[0]
        self.c.proj_sign = &proj_sign[0]
        self.c.proj_dense = NULL
        self.proj_dense = None
        if family == "simhash" and d * n_hashes <= DENSE_PROJECTIONS_MAX:
            nnz = int(self.proj_indptr[d])
            dense = np.zeros((d, n_hashes), dtype=np.float32)
            rows = np.repeat(np.arange(d), np.diff(self.proj_indptr))
            np.add.at(dense, (rows, self.proj_hash[:nnz]), self.proj_sign[:nnz])
            self.proj_dense = proj_dense = dense
            self.c.proj_dense = &proj_dense[0, 0]
        self.c.positions = &positions_flat[0]
        self.c.slots = &slots_flat[0]

    def _draw_projections(self, rng, d, n_hashes):
        # Entry (j, h) is non-zero with probability 1/3, sign +-1. Drawn in
        # chunks of features to bound memory; stored by feature (CSR).
        chunk = max(1, (1 << 22) // n_hashes)
        counts = np.zeros(d, dtype=np.int64)
        hash_parts, sign_parts = [], []
        for start in range(0, d, chunk):
            stop = min(d, start + chunk)
            nonzero = rng.integers(0, 3, size=(stop - start, n_hashes), dtype=np.uint8) == 0
            rows, cols = np.nonzero(nonzero)
            counts[start:stop] = np.bincount(rows, minlength=stop - start)
            hash_parts.append(cols.astype(np.int32))
            sign_parts.append(
                (rng.integers(0, 2, size=cols.shape[0], dtype=np.int8) * 2 - 1)
                .astype(np.int8)
            )
        indptr = np.zeros(d + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        if indptr[d] >= 2**31:
            raise ValueError(
                "SimHash projections too large: n_features * n_hashes / 3 must "
                f"be < 2**31; got about {indptr[d]}."
            )
        return {
            "proj_indptr": indptr.astype(np.int32),
            "proj_hash": np.concatenate(hash_parts + [np.zeros(1, np.int32)]),
            "proj_sign": np.concatenate(sign_parts + [np.zeros(1, np.int8)]),
        }

    @property
    def n_buckets(self):
        """Number of buckets of every table, ``2 ** key_bits``."""
        return 1 << self.key_bits

    @property
    def n_hashes(self):
        """Number of hash functions, ``n_bits_per_table * n_tables``."""
        return self.c.n_hashes

    @property
    def code_bits(self):
        """Bits of one code: ``log2(bin_size)``, 1 for SimHash."""
        return self.c.code_bits

    @property
    def n_perms(self):
        """DWTA/MinHash: number of permutations of the features (else 0)."""
        return self.c.n_perms

    def __reduce__(self):
        # The drawn arrays are saved, not redrawn from the seed on load: NumPy's
        # generators promise no stream across versions, and tables built with
        # these functions must be queried with the same ones.
        arrays = {name: getattr(self, name) for name in (
            "proj_indptr", "proj_hash", "proj_sign", "positions", "slots")}
        return (_load_functions, (
            (self.family, self.n_bits_per_table, self.n_tables, self.n_features,
             self.bin_size, self.key_bits, self.seed, int(self.c.seed)), arrays))

    def __repr__(self):
        return (
            f"HashFunctions(family={self.family!r}, "
            f"n_bits_per_table={self.n_bits_per_table}, "
            f"n_tables={self.n_tables}, n_features={self.n_features}, "
            f"bin_size={self.bin_size}, key_bits={self.key_bits}, "
            f"seed={self.seed})"
        )

    def _validate_X(self, X):
        if sp.issparse(X):
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D; got {X.ndim} dimensions.")
            X = X.tocsr()
            if X.data.dtype not in (np.float32, np.float64):
                X = X.astype(np.float64)
        else:
            X = np.asarray(X)
            if X.dtype not in (np.float32, np.float64):
                X = X.astype(np.float64)
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D; got {X.ndim} dimensions.")
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, but HashFunctions expects "
                f"{self.n_features}."
            )
        values = X.data if sp.issparse(X) else X
        if not np.isfinite(values).all():
            if np.isnan(values).any():
                raise ValueError("X contains NaN.")
            raise ValueError("X contains infinity.")
        if sp.issparse(X):
            # n_features < 2**31 (checked in __init__): int32 indices suffice.
            if not X.has_canonical_format:
                X = X.copy()
                X.sum_duplicates()   # sorts indices, as the kernels need
            data = np.ascontiguousarray(X.data)
            indices = np.ascontiguousarray(X.indices, dtype=np.int32)
            indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
            return data, indices, indptr
        return np.ascontiguousarray(X)

    def _run(self, X, n_threads, bint want_codes):
        n_threads = _check_int("n_threads", n_threads, 1)
        X = self._validate_X(X)
        sparse = isinstance(X, tuple)
        n_rows = X[2].shape[0] - 1 if sparse else X.shape[0]
        cdef int n_hashes = self.c.n_hashes
        cdef intp_t size = scratch_size(&self.c)
        if not sparse and X.dtype == np.float32 and simhash_by_product(&self.c):
            # Float32 products of a block of rows (see simhash_block).
            size = max(size, (SIMHASH_ROWS * n_hashes + 1) // 2)
        scratch = per_thread_rows(n_threads, size, np.float64)
        if want_codes:
            codes = np.zeros((n_rows, n_hashes), dtype=np.int32)
            keys = np.zeros((1, 1), dtype=np.uint32)
        else:
            codes = per_thread_rows(n_threads, n_hashes, np.int32)
            keys = np.zeros((n_rows, self.n_tables), dtype=np.uint32)
        if n_rows == 0:
            return codes if want_codes else keys
        if sparse:
            data, indices, indptr = X
            if data.shape[0] == 0:   # keep pointers valid
                data = np.zeros(1, dtype=data.dtype)
                indices = np.zeros(1, dtype=np.int32)
            if data.dtype == np.float32:
                self._csr32(data, indices, indptr, scratch, codes, keys,
                            want_codes, n_threads)
            else:
                self._csr64(data, indices, indptr, scratch, codes, keys,
                            want_codes, n_threads)
        elif X.dtype == np.float32:
            with one_blas_thread():
                self._dense32(X, scratch, codes, keys, want_codes, n_threads)
        else:
            self._dense64(X, scratch, codes, keys, want_codes, n_threads)
        return codes if want_codes else keys

    def _dense32(self, const float[:, ::1] X, double[:, ::1] scratch,
                 int32_t[:, ::1] codes, key_t[:, ::1] keys, bint want_codes,
                 int n_threads):
        with nogil:
            _hash_dense_batch(&self.c, X, scratch, codes, keys, want_codes,
                              n_threads)

    def _dense64(self, const double[:, ::1] X, double[:, ::1] scratch,
                 int32_t[:, ::1] codes, key_t[:, ::1] keys, bint want_codes,
                 int n_threads):
        with nogil:
            _hash_dense_batch(&self.c, X, scratch, codes, keys, want_codes,
                              n_threads)

    def _csr32(self, const float[::1] data, const int32_t[::1] indices,
               const int64_t[::1] indptr, double[:, ::1] scratch,
               int32_t[:, ::1] codes, key_t[:, ::1] keys, bint want_codes,
               int n_threads):
        with nogil:
            _hash_csr_batch(&self.c, &data[0], &indices[0], indptr, scratch,
                            codes, keys, want_codes, n_threads)

    def _csr64(self, const double[::1] data, const int32_t[::1] indices,
               const int64_t[::1] indptr, double[:, ::1] scratch,
               int32_t[:, ::1] codes, key_t[:, ::1] keys, bint want_codes,
               int n_threads):
        with nogil:
            _hash_csr_batch(&self.c, &data[0], &indices[0], indptr, scratch,
                            codes, keys, want_codes, n_threads)

    def hash(self, X, n_threads=1):
        """Bucket keys of the rows of X, one per table.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_rows, n_features)
            Dense float32/float64 (other dtypes are converted to float64) or
            any scipy sparse matrix or array.
        n_threads : int, default=1
            OpenMP threads; the keys do not depend on it.

        Returns
        -------
        keys : ndarray of shape (n_rows, n_tables), dtype uint32
            Keys in ``[0, n_buckets)``.
        """
        return self._run(X, n_threads, False)

    def _codes(self, X, n_threads=1):
        """Codes of the rows of X (for tests): (n_rows, n_hashes) int32."""
        return self._run(X, n_threads, True)
