"""Tests of the hash families of sklearn_lsh._hashing."""

import pickle
import re

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import chisquare
from sklearn_lsh._hashing import HashFunctions

FAMILIES = ["simhash", "wta", "dwta", "minhash"]


def _sparse_rows(n_rows, n_features, density, seed, dtype=np.float64):
    """Random rows with exact zeros; values exactly representable in float32."""
    rng = np.random.default_rng(seed)
    X = np.round(rng.standard_normal((n_rows, n_features)) * 64) / 64
    X[rng.random((n_rows, n_features)) > density] = 0
    return X.astype(dtype)


def _unit_pairs(n_pairs, d, theta, rng):
    """Pairs of unit vectors at angle theta."""
    x = rng.standard_normal((n_pairs, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    u = rng.standard_normal((n_pairs, d))
    u -= (u * x).sum(axis=1, keepdims=True) * x
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return x, np.cos(theta) * x + np.sin(theta) * u


# --------------------------------------------------------------------------
# Collision probabilities


@pytest.mark.parametrize("theta", [0.2, 0.7, 1.2, 1.6, 2.2, 2.8])
def test_simhash_collision_rate_is_one_minus_theta_over_pi(theta):
    # K=1: each key is one code. 50 pairs x 2000 hashes: sd of the mean
    # about 0.005; projections differ from Gaussian by a little more.
    rng = np.random.default_rng(0)
    hf = HashFunctions("simhash", 1, 2000, 64, seed=1)
    x, y = _unit_pairs(50, 64, theta, rng)
    rate = np.mean(hf.hash(x) == hf.hash(y))
    assert rate == pytest.approx(1 - theta / np.pi, abs=0.02)


def test_simhash_is_scale_invariant_and_sign_flips():
    rng = np.random.default_rng(0)
    hf = HashFunctions("simhash", 1, 500, 32, seed=0)
    X = rng.standard_normal((20, 32))
    codes = hf._codes(X)
    np.testing.assert_array_equal(hf._codes(3.5 * X), codes)
    # -x flips every code whose projection is non-zero (all, for random x).
    np.testing.assert_array_equal(hf._codes(-X), 1 - codes)


@pytest.mark.parametrize("family", ["wta", "dwta"])
def test_wta_dwta_collision_rate_rises_with_similarity(family):
    rng = np.random.default_rng(0)
    hf = HashFunctions(family, 1, 500, 64, bin_size=8, seed=2)
    X = rng.standard_normal((40, 64))
    noise = rng.standard_normal((40, 64))
    keys = hf.hash(X)
    rates = [
        np.mean(hf.hash(X + sigma * noise) == keys)
        for sigma in [3.0, 1.0, 0.5, 0.2, 0.05, 0.0]
    ]
    assert np.all(np.diff(rates) > 0.02), rates
    assert rates[-1] == 1.0
    assert rates[0] < 0.4  # far from a constant hash


@pytest.mark.parametrize("overlap", [30, 100, 200, 270])
def test_minhash_collision_rate_matches_jaccard(overlap):
    # Sets of 300 of 2000 features sharing `overlap` elements.
    rng = np.random.default_rng(overlap)
    d, size = 2000, 300
    hf = HashFunctions("minhash", 1, 1000, d, bin_size=16, seed=0)
    rates = []
    for _ in range(10):
        perm = rng.permutation(d)
        a = perm[:size]
        b = np.concatenate([perm[:overlap], perm[size : 2 * size - overlap]])
        X = np.zeros((2, d))
        X[0, a] = rng.random(size) + 0.5  # values are ignored: binarised
        X[1, b] = 1.0
        keys = hf.hash(X)
        rates.append(np.mean(keys[0] == keys[1]))
    jaccard = overlap / (2 * size - overlap)
    assert np.mean(rates) == pytest.approx(jaccard, abs=0.03)


# --------------------------------------------------------------------------
# Codes against direct Python definitions


def test_wta_codes_are_argmax_of_chosen_features():
    rng = np.random.default_rng(0)
    hf = HashFunctions("wta", 2, 30, 40, bin_size=8, seed=0)
    X = rng.standard_normal((10, 40))
    X[0, :] = 1.0  # all ties: smallest rank
    assert hf.positions.shape == (60, 8)
    for row in hf.positions:
        assert len(set(row)) == 8
    expected = np.argmax(X[:, hf.positions], axis=2)
    np.testing.assert_array_equal(hf._codes(X), expected)
    assert np.all(hf._codes(X)[0] == 0)


def test_dwta_and_minhash_codes_follow_permutation_bins():
    # Dense random rows with no empty bin: codes are the within-bin rank of
    # the largest value (DWTA) or of the smallest position (MinHash).
    rng = np.random.default_rng(0)
    d, m = 48, 4
    bins_per_perm = d // m
    for family in ["dwta", "minhash"]:
        hf = HashFunctions(family, 3, 9, d, bin_size=m, seed=5)
        n_hashes = 27
        assert hf.n_perms == -(-n_hashes // bins_per_perm)
        assert hf.positions.shape == (hf.n_perms, d)
        X = rng.standard_normal((6, d))
        codes = hf._codes(X)
        for h in range(n_hashes):
            p, b = divmod(h, bins_per_perm)
            features = np.argsort(hf.positions[p])[b * m : (b + 1) * m]
            ranks = hf.positions[p, features] % m
            if family == "dwta":
                winner = np.argmax(X[:, features], axis=1)
                np.testing.assert_array_equal(codes[:, h], ranks[winner])
            else:
                np.testing.assert_array_equal(codes[:, h], ranks.min())


@pytest.mark.parametrize("family", ["dwta", "minhash"])
def test_densification_leaves_no_empty_code(family):
    d, m = 1000, 8
    hf = HashFunctions(family, 4, 50, d, bin_size=m, seed=0)
    X = np.zeros((4, d))
    X[0, 17] = 2.5
    X[1, [3, 911]] = [1.0, -4.0]
    X[2, :] = _sparse_rows(1, d, 0.01, seed=1)[0]
    codes = hf._codes(sp.csr_matrix(X))
    assert codes.min() >= 0 and codes.max() < m
    # Every hash holds or borrows the rank of a non-zero feature in a bin
    # (slots: (d, n_perms) of h * m + rank, -1 when unused).
    assert hf.slots.shape == (d, hf.n_perms)
    for i, features in [(0, [17]), (1, [3, 911])]:
        slots = hf.slots[features].ravel()
        ranks = set(slots[slots >= 0] % m)
        assert ranks and set(codes[i]) <= ranks
    # No non-zero at all: every code is 0.
    np.testing.assert_array_equal(codes[3], 0)
    np.testing.assert_array_equal(hf._codes(X), codes)


def test_densification_is_consistent_between_similar_rows():
    # Two rows with the same non-empty bins and the same winners get the same
    # codes in the empty bins too.
    d = 512
    hf = HashFunctions("dwta", 1, 200, d, bin_size=8, seed=0)
    x = np.zeros(d)
    x[[5, 77, 300]] = [1.0, 2.0, 3.0]
    y = 2 * x
    np.testing.assert_array_equal(hf._codes(x[None]), hf._codes(y[None]))


@pytest.mark.parametrize("family", FAMILIES)
def test_codes_in_range(family):
    hf = HashFunctions(family, 3, 20, 50, bin_size=4, seed=0)
    codes = hf._codes(_sparse_rows(30, 50, 0.1, seed=0))
    n_values = 2 if family == "simhash" else 4
    assert codes.shape == (30, 60)
    assert codes.min() >= 0 and codes.max() < n_values


# --------------------------------------------------------------------------
# Keys


def test_keys_pack_codes_in_log2_bits():
    hf = HashFunctions("dwta", 3, 5, 64, bin_size=8, seed=0)
    assert hf.key_bits == 9 and hf.n_buckets == 512 and hf.code_bits == 3
    X = np.random.default_rng(0).standard_normal((20, 64))
    codes = hf._codes(X).reshape(20, 5, 3)
    expected = (codes[..., 0] << 6) | (codes[..., 1] << 3) | codes[..., 2]
    np.testing.assert_array_equal(hf.hash(X), expected)
    hs = HashFunctions("simhash", 5, 4, 64, seed=0)
    assert hs.key_bits == 5 and hs.n_buckets == 32


def test_key_bits_default_and_folding():
    assert HashFunctions("dwta", 6, 2, 64).key_bits == 18
    assert HashFunctions("dwta", 10, 2, 64).key_bits == 24  # 30 bits folded
    assert HashFunctions("dwta", 10, 2, 64, key_bits=32).key_bits == 30
    assert HashFunctions("dwta", 2, 2, 64, key_bits=32).key_bits == 6
    assert HashFunctions("simhash", 100, 2, 64).key_bits == 24
    assert HashFunctions("dwta", 10, 2, 64, key_bits=12).n_buckets == 4096


@pytest.mark.parametrize(
    "family, K, n_features, key_bits, n_buckets",
    [
        ("dwta", 2, 64, None, 64),  # packed codes
        ("dwta", 6, 128, 10, 1024),  # 18 bits folded into 10
        ("dwta", 30, 512, 8, 256),  # 90 bits: chained 64-bit mixer
        ("simhash", 40, 64, 9, 512),  # 40 bits folded into 9
        ("simhash", 90, 64, 8, 256),  # 90 bits: chained 64-bit mixer
    ],
)
def test_keys_spread_uniformly_over_buckets(family, K, n_features, key_bits, n_buckets):
    # Settings whose codes are independent and uniform on Gaussian rows: each
    # DWTA table lies in one permutation (bins of one permutation are
    # disjoint). Not WTA (random subsets overlap), MinHash (small ranks are
    # likelier) or packed SimHash (sparse projections correlate a little).
    rng = np.random.default_rng(0)
    n_rows = 40 * n_buckets
    X = rng.standard_normal((n_rows, n_features))
    hf = HashFunctions(family, K, 2, n_features, key_bits=key_bits, seed=0)
    assert hf.n_buckets == n_buckets
    keys = hf.hash(X)
    assert keys.dtype == np.uint32 and keys.shape == (n_rows, 2)
    assert keys.max() < hf.n_buckets
    for t in range(2):
        counts = np.bincount(keys[:, t], minlength=n_buckets)
        assert chisquare(counts).pvalue > 1e-4


def test_folding_is_balanced():
    # 6 code bits folded into 4: every bucket receives exactly 4 code pairs.
    hf = HashFunctions("dwta", 2, 1, 64, bin_size=8, key_bits=4, seed=5)
    X = np.random.default_rng(0).standard_normal((5000, 64))
    codes = hf._codes(X)
    packed = codes[:, 0] * 8 + codes[:, 1]
    keys = hf.hash(X)[:, 0]
    pairs = np.unique(np.c_[packed, keys], axis=0)
    assert len(pairs) == 64  # a function of the codes, all 64 seen
    np.testing.assert_array_equal(np.bincount(pairs[:, 1], minlength=16), 4)


def test_dwta_reaches_most_buckets_log2_not_ln():
    # SLIDE packed DWTA codes with ln(bin_size) bits and reached under 4% of
    # its buckets; here K=6, bin 8 gives 2**18 buckets, and 60000 random rows
    # should reach about 20% of them (both tables lie in one permutation).
    rng = np.random.default_rng(0)
    hf = HashFunctions("dwta", 6, 2, 128, bin_size=8, seed=0)
    assert hf.n_buckets == 2**18
    keys = hf.hash(rng.standard_normal((60_000, 128)).astype(np.float32))
    assert keys.max() < hf.n_buckets
    for t in range(2):
        assert len(np.unique(keys[:, t])) > 0.15 * hf.n_buckets


# --------------------------------------------------------------------------
# Input forms give identical keys


@pytest.mark.parametrize("family", FAMILIES)
def test_dense_sparse_float32_float64_agree(family):
    X = _sparse_rows(60, 40, 0.2, seed=3)
    X[5] = 0  # an empty row
    hf = HashFunctions(family, 4, 10, 40, bin_size=8, seed=0)
    keys = hf.hash(X)
    np.testing.assert_array_equal(hf.hash(X.astype(np.float32)), keys)
    csr = sp.csr_matrix(X)
    np.testing.assert_array_equal(hf.hash(csr), keys)
    np.testing.assert_array_equal(hf.hash(csr.astype(np.float32)), keys)
    np.testing.assert_array_equal(hf.hash(sp.csr_array(X)), keys)
    np.testing.assert_array_equal(hf.hash(sp.coo_matrix(X)), keys)
    np.testing.assert_array_equal(hf.hash(sp.csc_array(X)), keys)
    # int64 indices, unsorted indices and explicit zeros.
    csr64 = csr.copy()
    csr64.indices = csr.indices.astype(np.int64)
    csr64.indptr = csr.indptr.astype(np.int64)
    assert csr64.indices.dtype == np.int64
    np.testing.assert_array_equal(hf.hash(csr64), keys)
    rows = []
    for i in range(X.shape[0]):
        cols = np.flatnonzero(X[i])[::-1]
        rows.append((np.full(len(cols) + 1, i), np.r_[cols, 0], np.r_[X[i, cols], 0]))
    r, c, v = (np.concatenate(parts) for parts in zip(*rows, strict=True))
    unsorted = sp.csr_matrix((v, c, np.searchsorted(r, np.arange(61))), shape=X.shape)
    unsorted.has_sorted_indices = False
    np.testing.assert_array_equal(hf.hash(unsorted), keys)
    assert not unsorted.has_sorted_indices  # the input is left alone
    # Other dtypes are converted.
    np.testing.assert_array_equal(hf.hash((X != 0).astype(np.int64)), hf.hash(X != 0))
    np.testing.assert_array_equal(hf.hash(np.asfortranarray(X)), keys)
    np.testing.assert_array_equal(hf._codes(csr), hf._codes(X))


def test_empty_input():
    hf = HashFunctions("dwta", 2, 3, 10, bin_size=2)
    assert hf.hash(np.zeros((0, 10))).shape == (0, 3)
    assert hf.hash(sp.csr_matrix((0, 10))).shape == (0, 3)
    assert hf.hash(sp.csr_matrix((4, 10))).shape == (4, 3)


# --------------------------------------------------------------------------
# Determinism


@pytest.mark.parametrize("family", FAMILIES)
def test_seed_threads_and_pickle(family):
    X = _sparse_rows(500, 30, 0.3, seed=0)
    hf = HashFunctions(family, 3, 8, 30, bin_size=4, seed=7)
    keys = hf.hash(X)
    np.testing.assert_array_equal(
        HashFunctions(family, 3, 8, 30, bin_size=4, seed=7).hash(X), keys
    )
    assert (
        np.mean(HashFunctions(family, 3, 8, 30, bin_size=4, seed=8).hash(X) == keys)
        < 0.5
    )
    np.testing.assert_array_equal(hf.hash(X, n_threads=2), keys)
    np.testing.assert_array_equal(hf.hash(sp.csr_matrix(X), n_threads=3), keys)
    clone = pickle.loads(pickle.dumps(hf))
    assert repr(clone) == repr(hf)
    np.testing.assert_array_equal(clone.hash(X), keys)
    np.testing.assert_array_equal(clone.positions, hf.positions)


def test_repr():
    hf = HashFunctions("dwta", 6, 50, 128, seed=3)
    assert repr(hf) == (
        "HashFunctions(family='dwta', n_bits_per_table=6, n_tables=50, "
        "n_features=128, bin_size=8, key_bits=18, seed=3)"
    )


# --------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"family": "lsh"}, "family must be one of .*'lsh'"),
        ({"n_bits_per_table": 0}, "n_bits_per_table must be an integer >= 1; got 0"),
        ({"n_tables": 0}, "n_tables must be an integer >= 1; got 0"),
        ({"n_tables": 2.5}, "n_tables must be an integer >= 1; got 2.5"),
        ({"n_features": 0}, "n_features must be an integer >= 1; got 0"),
        ({"bin_size": 6}, "bin_size must be a power of two >= 2; got 6"),
        ({"bin_size": 1}, "bin_size must be a power of two >= 2; got 1"),
        ({"bin_size": 32}, "bin_size=32 exceeds n_features=20"),
        ({"key_bits": 0}, r"key_bits must be an integer in \[1, 32\]; got 0"),
        ({"key_bits": 33}, r"key_bits must be an integer in \[1, 32\]; got 33"),
        ({"seed": -1}, "seed must be a non-negative integer; got -1"),
    ],
)
def test_bad_parameters(kwargs, match):
    params = {
        "family": "dwta",
        "n_bits_per_table": 2,
        "n_tables": 3,
        "n_features": 20,
    }
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        HashFunctions(**params)


@pytest.mark.parametrize("n_features", [129, 6000])
def test_simhash_dense_projections_hold_the_drawn_signs(n_features):
    """Up to 2**22 entries SimHash keeps its projections dense as well
    (float32 rows are summed over them in float32: dense ones a block of rows
    at a time by a matrix product, sparse ones row by row); wider inputs keep
    the sparse ones alone. Either way the codes of float32 and float64 rows
    are the signs of the float64 projections, wherever these lie beyond
    float32 rounding of zero, and dense and sparse float32 rows get the same
    codes and keys, whatever the number of rows and threads."""
    hf = HashFunctions("simhash", 8, 100, n_features, seed=0)
    nnz = hf.proj_indptr[-1]
    P = sp.csr_matrix((hf.proj_sign[:nnz].astype(np.float64), hf.proj_hash[:nnz],
                       hf.proj_indptr), shape=(n_features, hf.n_hashes))
    if n_features * hf.n_hashes <= 2**22:
        assert hf.proj_dense.dtype == np.float32
        np.testing.assert_array_equal(hf.proj_dense, P.toarray())
        assert set(np.unique(hf.proj_dense)) == {-1, 0, 1}
    else:
        assert hf.proj_dense is None
    rng = np.random.default_rng(n_features)
    X = np.maximum(rng.standard_normal((300, n_features)), 0)
    for dtype in (np.float32, np.float64):
        Xd = X.astype(dtype)
        sums = (sp.csr_matrix(Xd.astype(np.float64)) @ P).toarray()
        scale = (sp.csr_matrix(Xd.astype(np.float64)) @ abs(P)).toarray()
        clear = np.abs(sums) > 1e-5 * scale
        assert clear.mean() > 0.99
        codes = hf._codes(Xd)
        np.testing.assert_array_equal(codes[clear], (sums > 0)[clear])
        np.testing.assert_array_equal(hf._codes(sp.csr_matrix(Xd)), codes)
        # Whole blocks of SIMHASH_BLOCK (64) rows, a part of one, and one row.
        for n_rows in (1, 64, 300):
            for n_threads in (1, 2):
                rows = Xd[-n_rows:]
                np.testing.assert_array_equal(
                    hf._codes(rows, n_threads=n_threads), codes[-n_rows:])
                np.testing.assert_array_equal(
                    hf.hash(rows, n_threads=n_threads),
                    hf.hash(sp.csr_matrix(rows)))
        # Keys folded to fewer bits than the codes take the other packing.
        folded = HashFunctions("simhash", 8, 100, n_features, key_bits=5, seed=0)
        np.testing.assert_array_equal(folded.hash(Xd), folded.hash(sp.csr_matrix(Xd)))


def test_simhash_ignores_bin_size():
    hf = HashFunctions("simhash", 2, 3, 5, bin_size=6)
    assert hf.code_bits == 1 and hf.n_buckets == 4


def test_bad_input():
    hf = HashFunctions("dwta", 2, 3, 7, bin_size=4)
    msg = "X has 5 features, but HashFunctions expects 7"
    with pytest.raises(ValueError, match=msg):
        hf.hash(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=msg):
        hf.hash(sp.csr_matrix((2, 5)))
    with pytest.raises(ValueError, match="2-D"):
        hf.hash(np.zeros(7))
    X = np.zeros((3, 7))
    X[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        hf.hash(X)
    with pytest.raises(ValueError, match="NaN"):
        hf.hash(sp.csr_matrix(X))
    X[1, 2] = -np.inf
    with pytest.raises(ValueError, match="infinity"):
        hf.hash(X.astype(np.float32))
    with pytest.raises(ValueError, match="infinity"):
        hf.hash(sp.csr_matrix(X))
    with pytest.raises(
        ValueError, match=re.escape("n_threads must be an integer >= 1; got 0")
    ):
        hf.hash(np.zeros((2, 7)), n_threads=0)
