"""Tests of the CSR hash tables (sklearn_lsh._tables)."""

import pickle

import joblib
import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn_lsh._hashing import HashFunctions
from sklearn_lsh._tables import HashTables, _query_rows_serial

INT32_MAX = 2**31 - 1


# ---------------------------------------------------------------------------
# Pure Python references.


def ref_buckets(keys, n_buckets, capacity=None):
    """buckets[t][b]: ids with key b in table t, ascending (FIFO: the last)."""
    n_items, n_tables = keys.shape
    buckets = [[[] for _ in range(n_buckets)] for _ in range(n_tables)]
    for t in range(n_tables):
        for i in range(n_items):
            buckets[t][keys[i, t]].append(i)
    if capacity is not None:
        buckets = [
            [b[len(b) - min(len(b), capacity) :] for b in table] for table in buckets
        ]
    return buckets


def table_buckets(tables):
    return [
        [list(tables.bucket(t, b)) for b in range(tables.n_buckets)]
        for t in range(tables.n_tables)
    ]


def ref_query(buckets, keys, strategy, budget=None, min_count=1):
    """Candidate lists of each sample, straight from the definitions."""
    result = []
    for row in keys:
        counts = {}  # insertion order == first appearance
        for t, key in enumerate(row):
            for item in buckets[t][key]:
                counts[item] = counts.get(item, 0) + 1
        if strategy == "union":
            ids = list(counts)
        elif strategy == "threshold":
            ids = [item for item, c in counts.items() if c >= min_count]
        else:
            ids = sorted(counts, key=lambda item: -counts[item])  # stable
        result.append(ids if budget is None else ids[:budget])
    return result


def split(indptr, ids):
    return [list(ids[indptr[i] : indptr[i + 1]]) for i in range(len(indptr) - 1)]


def random_keys(rng, n_items, n_tables, n_buckets, n_distinct=None):
    # Few distinct keys per table make buckets overlap across tables, so that
    # counts > 1 and ties occur.
    n_distinct = n_buckets if n_distinct is None else min(n_distinct, n_buckets)
    return rng.integers(0, n_distinct, size=(n_items, n_tables)).astype(np.uint32)


# ---------------------------------------------------------------------------
# Build and query.


@pytest.mark.parametrize("n_buckets, n_tables", [(1, 3), (4, 1), (8, 5), (64, 12)])
def test_build_matches_reference_buckets(n_buckets, n_tables):
    rng = np.random.default_rng(n_buckets + n_tables)
    keys = random_keys(rng, 200, n_tables, n_buckets)
    tables = HashTables(n_tables, n_buckets, 200).build(keys)
    assert table_buckets(tables) == ref_buckets(keys, n_buckets)
    assert tables.offsets.shape == (n_tables, n_buckets + 1)
    assert tables.ids.shape == (n_tables, 200)
    assert tables.nbytes == 4 * n_tables * (n_buckets + 1 + 200)


def test_every_item_found_in_its_own_buckets():
    rng = np.random.default_rng(0)
    n_items, n_tables = 500, 7
    keys = random_keys(rng, n_items, n_tables, 1024)
    tables = HashTables(n_tables, 1024, n_items).build(keys)
    for strategy, min_count in [("union", 1), ("threshold", n_tables)]:
        indptr, ids = tables.query(keys, strategy=strategy, min_count=min_count)
        for i, found in enumerate(split(indptr, ids)):
            assert i in found
    # topk: an item is found in all L tables, so it ranks first or ties first.
    indptr, ids = tables.query(keys, strategy="topk", budget=n_items)
    for i, found in enumerate(split(indptr, ids)):
        assert i in found


@pytest.mark.parametrize(
    # The last: more than n_items / 4 tables, top-k's selection by scans.
    "n_buckets, n_tables, n_distinct",
    [(4, 3, 4), (16, 8, 5), (256, 20, 6), (8, 40, 3)],
)
@pytest.mark.parametrize("strategy", ["union", "topk", "threshold"])
@pytest.mark.parametrize("budget", [None, 1, 7, 40])
def test_query_matches_reference(n_buckets, n_tables, n_distinct, strategy, budget):
    if strategy == "topk" and budget is None:
        budget = 10**6  # topk needs a budget; a large one means all
    rng = np.random.default_rng(n_buckets * 7 + n_tables)
    n_items = 120
    keys = random_keys(rng, n_items, n_tables, n_buckets, n_distinct)
    queries = random_keys(rng, 60, n_tables, n_buckets, n_distinct)
    tables = HashTables(n_tables, n_buckets, n_items).build(keys)
    buckets = ref_buckets(keys, n_buckets)
    min_counts = [1, 2, n_tables] if strategy == "threshold" else [1]
    for min_count in min_counts:
        expected = ref_query(buckets, queries, strategy, budget, min_count)
        for n_threads in (1, 2):
            indptr, ids = tables.query(
                queries,
                strategy=strategy,
                budget=budget,
                min_count=min_count,
                n_threads=n_threads,
            )
            assert indptr.dtype == np.int64 and ids.dtype == np.int32
            assert indptr.shape == (len(queries) + 1,)
            assert split(indptr, ids) == expected


def test_topk_fewer_items_than_tables():
    # N <= L: query_row's top-k by scans, as for any N < 4 (L + 1).
    rng = np.random.default_rng(1)
    n_items, n_tables, n_buckets = 4, 9, 2
    keys = random_keys(rng, n_items, n_tables, n_buckets)
    queries = random_keys(rng, 30, n_tables, n_buckets)
    tables = HashTables(n_tables, n_buckets, n_items).build(keys)
    buckets = ref_buckets(keys, n_buckets)
    for budget in (1, 2, 10):
        indptr, ids = tables.query(queries, strategy="topk", budget=budget)
        assert split(indptr, ids) == ref_query(buckets, queries, "topk", budget)


def test_query_empty_and_unbuilt():
    tables = HashTables(3, 8, 10)
    indptr, ids = tables.query(np.zeros((2, 3), dtype=np.uint32))
    assert list(indptr) == [0, 0, 0] and ids.shape == (0,)
    indptr, ids = tables.query(np.zeros((0, 3), dtype=np.uint32))
    assert list(indptr) == [0] and ids.shape == (0,)


@pytest.mark.parametrize(
    "strategy, budget", [("union", None), ("topk", 5), ("threshold", None)]
)
def test_query_row_stamp_wraparound_and_tags_contract(strategy, budget):
    rng = np.random.default_rng(2)
    n_items, n_tables, n_buckets = 300, 6, 16
    keys = random_keys(rng, n_items, n_tables, n_buckets)
    queries = random_keys(rng, 12, n_tables, n_buckets)
    tables = HashTables(n_tables, n_buckets, n_items).build(keys)
    indptr, ids = tables.query(queries, strategy=strategy, budget=budget, min_count=2)
    expected = split(indptr, ids)
    # From zero, near the end of the stamps (a wrap on the first query) and
    # a few queries before it (a wrap between two queries).
    for stamp in (0, INT32_MAX - 2, INT32_MAX - 4 * n_tables):
        # A valid state: tags of older queries are at most the stamp; small
        # ones would collide with the new tags after a wrap that did not
        # clear them.
        tags = rng.integers(0, min(stamp, 12) + 1, n_items).astype(np.int32)
        found, last = _query_rows_serial(
            tables, queries, strategy, budget, 2, stamp, tags
        )
        assert [list(f) for f in found] == expected
        assert 0 < last < INT32_MAX
        # On return every tag is at most the stamp: the next query's are new.
        assert tags.max() <= last


# ---------------------------------------------------------------------------
# Threads and building from rows.


@pytest.mark.parametrize(
    "capacity, policy", [(None, "fifo"), (3, "fifo"), (3, "reservoir")]
)
def test_build_same_for_any_n_threads(capacity, policy):
    rng = np.random.default_rng(3)
    keys = random_keys(rng, 3000, 9, 32)
    a = HashTables(9, 32, 3000, capacity=capacity, policy=policy, seed=5).build(keys)
    b = HashTables(9, 32, 3000, capacity=capacity, policy=policy, seed=5)
    b.build(keys, n_threads=2)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.ids, b.ids)


@pytest.mark.parametrize(
    "family, dtype, capacity, policy",
    [
        ("dwta", np.float32, None, "fifo"),
        ("dwta", np.float64, None, "fifo"),
        ("simhash", np.float32, None, "fifo"),
        ("wta", np.float64, 2, "fifo"),
        ("dwta", np.float32, 2, "reservoir"),
    ],
)
def test_build_from_rows_equals_build_of_hash(family, dtype, capacity, policy):
    rng = np.random.default_rng(4)
    n_items, n_features, n_tables = 700, 32, 6
    rows = rng.standard_normal((n_items, n_features)).astype(dtype)
    rows[rng.random(rows.shape) < 0.5] = 0  # DWTA: empty bins get densified
    hf = HashFunctions(family, 3, n_tables, n_features, bin_size=4, seed=1)
    expected = HashTables(n_tables, hf.n_buckets, n_items, capacity, policy, seed=2)
    expected.build(hf.hash(rows))
    for n_threads, x in [
        (1, rows),
        (2, rows),
        (2, np.asfortranarray(rows)),
        (1, rows.astype(np.int64) if family != "simhash" else rows),
    ]:
        if x.dtype == np.int64:
            expected = HashTables(
                n_tables, hf.n_buckets, n_items, capacity, policy, seed=2
            )
            expected.build(hf.hash(x))
        tables = HashTables(n_tables, hf.n_buckets, n_items, capacity, policy, seed=2)
        tables.build_from_rows(hf, x, n_threads=n_threads)
        np.testing.assert_array_equal(tables.offsets, expected.offsets)
        np.testing.assert_array_equal(tables.ids, expected.ids)


@pytest.mark.parametrize("family", ["simhash", "wta", "dwta", "minhash"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_build_from_rows_with_center_hashes_the_centered_rows(family, dtype):
    rng = np.random.default_rng(7)
    n_items, n_features, n_tables = 300, 24, 5
    rows = rng.standard_normal((n_items, n_features)).astype(dtype)
    center = rng.standard_normal(n_features)
    hf = HashFunctions(family, 3, n_tables, n_features, bin_size=4, seed=3)
    # The reference subtracts in float64, as the kernel does.
    expected = HashTables(n_tables, hf.n_buckets, n_items, seed=2)
    expected.build(hf.hash(rows.astype(np.float64) - center))
    for n_threads in (1, 2):
        tables = HashTables(n_tables, hf.n_buckets, n_items, seed=2)
        tables.build_from_rows(hf, rows, n_threads=n_threads, center=center)
        np.testing.assert_array_equal(tables.offsets, expected.offsets)
        np.testing.assert_array_equal(tables.ids, expected.ids)


@pytest.mark.parametrize("family", ["simhash", "dwta"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("centered", [False, True])
def test_build_from_rows_with_last_hashes_rows_with_one_more_coordinate(
        family, dtype, centered):
    rng = np.random.default_rng(9)
    n_items, n_features, n_tables = 300, 24, 5
    rows = rng.standard_normal((n_items, n_features)).astype(dtype)
    center = rng.standard_normal(n_features) if centered else None
    last = rng.standard_normal(n_items)
    hf = HashFunctions(family, 3, n_tables, n_features + 1, bin_size=4, seed=3)
    whole = np.hstack([rows.astype(np.float64) - (center if centered else 0),
                       last[:, None]])
    expected = HashTables(n_tables, hf.n_buckets, n_items, seed=2)
    # The augmented rows are hashed in the rows' own precision.
    expected.build(hf.hash(whole.astype(dtype)))
    for n_threads in (1, 2):
        tables = HashTables(n_tables, hf.n_buckets, n_items, seed=2)
        tables.build_from_rows(hf, rows, n_threads=n_threads, center=center,
                               last=last)
        np.testing.assert_array_equal(tables.offsets, expected.offsets)
        np.testing.assert_array_equal(tables.ids, expected.ids)


def test_centered_simhash_finds_top_inner_products_of_rows_sharing_a_direction():
    # Rows = a large shared direction + their own parts: uncentered, SimHash
    # sends almost every row to the bucket of the shared direction, so a
    # query's buckets say little about which rows score highest.
    rng = np.random.default_rng(8)
    n_items, n_features, n_tables, k = 2000, 32, 20, 20
    shared = 3 * rng.standard_normal(n_features)
    rows = shared + rng.standard_normal((n_items, n_features))
    queries = rng.standard_normal((100, n_features))
    top = np.argsort(-(queries @ rows.T), axis=1)[:, :k]
    hf = HashFunctions("simhash", 6, n_tables, n_features, seed=0)
    keys = hf.hash(queries)
    recall = {}
    for name, center in [("plain", None), ("centered", rows.mean(axis=0))]:
        tables = HashTables(n_tables, hf.n_buckets, n_items, seed=0)
        tables.build_from_rows(hf, rows, center=center)
        indptr, ids = tables.query(keys, strategy="topk", budget=4 * k)
        recall[name] = np.mean([
            np.isin(top[i], ids[indptr[i]:indptr[i + 1]]).mean()
            for i in range(len(queries))])
    # With this seed: 0.09 plain, 0.32 centered.
    assert recall["centered"] > 0.25, recall
    assert recall["centered"] > 2.5 * recall["plain"], recall


def test_augmented_simhash_collision_rate_rises_with_the_pre_activation():
    """Rows [w - c, (w - c) . m + b] and queries [h - m, 1], as a SimHash
    layer over a dense hidden layer hashes them (``_layers._built``): their
    inner product is the pre-activation less one amount per query, and the
    collision rate of a query with a row rises with the pre-activation."""
    rng = np.random.default_rng(0)
    n_rows, n_queries, n_features = 400, 40, 32
    # Rows sharing a direction; ReLU-like queries sharing one too.
    W = 2 * rng.standard_normal(n_features) + rng.standard_normal(
        (n_rows, n_features))
    b = rng.standard_normal(n_rows)
    H = np.maximum(rng.standard_normal((n_queries, n_features)) + 1.0, 0)
    c, m = W.mean(axis=0), H.mean(axis=0)
    rows = np.hstack([W - c, ((W - c) @ m + b)[:, None]])
    queries = np.hstack([H - m, np.ones((n_queries, 1))])
    z = H @ W.T + b
    np.testing.assert_allclose(queries @ rows.T, z - (H @ c)[:, None],
                               atol=1e-10)
    # One-bit keys in 400 tables: each pair's rate is 1 - angle / pi, with a
    # standard deviation of at most 0.025 here.
    hf = HashFunctions("simhash", 1, 400, n_features + 1, seed=0)
    rate = (hf.hash(queries)[:, None, :] == hf.hash(rows)[None, :, :]).mean(axis=2)
    corr = np.array([spearmanr(rate[i], z[i])[0] for i in range(n_queries)])
    # With this seed: mean 0.82, least 0.56; the top 5% of each query's
    # pre-activations collide in 0.58 of the tables, the others in 0.50.
    assert corr.mean() > 0.75 and corr.min() > 0.45, corr
    top = np.argsort(-z, axis=1)[:, :20]
    is_top = np.zeros(z.shape, dtype=bool)
    np.put_along_axis(is_top, top, True, axis=1)
    assert rate[is_top].mean() > rate[~is_top].mean() + 0.05


def test_build_from_rows_checks_inputs():
    hf = HashFunctions("dwta", 2, 3, 16, bin_size=4)
    tables = HashTables(3, hf.n_buckets, 10)
    with pytest.raises(ValueError, match=r"got shape \(10, 15\)"):
        tables.build_from_rows(hf, np.zeros((10, 15)))
    with pytest.raises(ValueError, match=r"got shape \(9, 16\)"):
        tables.build_from_rows(hf, np.zeros((9, 16)))
    with pytest.raises(ValueError, match="n_tables=4"):
        HashTables(4, hf.n_buckets, 10).build_from_rows(hf, np.zeros((10, 16)))
    with pytest.raises(ValueError, match="n_buckets=1024"):
        HashTables(3, 1024, 10).build_from_rows(hf, np.zeros((10, 16)))
    with pytest.raises(TypeError, match="HashFunctions"):
        tables.build_from_rows("dwta", np.zeros((10, 16)))
    with pytest.raises(ValueError, match=r"center must have shape \(16,\), a "
                       r"row's; got shape \(15,\)"):
        tables.build_from_rows(hf, np.zeros((10, 16)), center=np.zeros(15))
    with pytest.raises(ValueError, match="center must be finite"):
        tables.build_from_rows(hf, np.zeros((10, 16)), center=np.full(16, np.nan))
    # With last, the rows have one column fewer than the functions' features.
    with pytest.raises(ValueError, match=r"got shape \(10, 16\)"):
        tables.build_from_rows(hf, np.zeros((10, 16)), last=np.zeros(10))
    with pytest.raises(ValueError, match=r"center must have shape \(15,\)"):
        tables.build_from_rows(hf, np.zeros((10, 15)), center=np.zeros(16),
                               last=np.zeros(10))
    with pytest.raises(ValueError, match=r"last must have shape \(10,\), "
                       r"n_items; got shape \(9,\)"):
        tables.build_from_rows(hf, np.zeros((10, 15)), last=np.zeros(9))
    with pytest.raises(ValueError, match="last must be finite"):
        tables.build_from_rows(hf, np.zeros((10, 15)), last=np.full(10, np.inf))


# ---------------------------------------------------------------------------
# Capacity.


def test_fifo_capacity_keeps_the_newest():
    rng = np.random.default_rng(5)
    keys = random_keys(rng, 400, 5, 8)
    for capacity in (1, 4, 50, 1000):
        tables = HashTables(5, 8, 400, capacity=capacity).build(keys)
        assert table_buckets(tables) == ref_buckets(keys, 8, capacity)
        sizes = np.diff(tables.offsets, axis=1)
        assert sizes.max() <= capacity
        for t in range(5):
            assert (tables.ids[t, tables.offsets[t, -1] :] == -1).all()


def test_reservoir_capacity_is_a_deterministic_uniform_subset():
    rng = np.random.default_rng(6)
    n_items, n_tables, n_buckets, capacity = 600, 6, 16, 10
    keys = random_keys(rng, n_items, n_tables, n_buckets)
    full = ref_buckets(keys, n_buckets)
    a = HashTables(n_tables, n_buckets, n_items, capacity, "reservoir", seed=3).build(
        keys
    )
    b = HashTables(n_tables, n_buckets, n_items, capacity, "reservoir", seed=3).build(
        keys
    )
    c = HashTables(n_tables, n_buckets, n_items, capacity, "reservoir", seed=4).build(
        keys
    )
    np.testing.assert_array_equal(a.ids, b.ids)
    assert not np.array_equal(a.ids, c.ids)
    got = table_buckets(a)
    for t in range(n_tables):
        for bucket in range(n_buckets):
            assert len(got[t][bucket]) == min(capacity, len(full[t][bucket]))
            assert len(set(got[t][bucket])) == len(got[t][bucket])
            assert set(got[t][bucket]) <= set(full[t][bucket])
    # Uniform: one bucket of 40 ids, 10 kept, in 400 tables (own streams):
    # each id is kept about 100 times (sd about 8.7), not the first 10 always.
    tables = HashTables(400, 1, 40, capacity=10, policy="reservoir", seed=0)
    tables.build(np.zeros((40, 400), dtype=np.uint32))
    kept = np.bincount(tables.ids[:, :10].ravel(), minlength=40)
    assert kept.sum() == 4000
    assert kept.min() > 60 and kept.max() < 140


# ---------------------------------------------------------------------------
# Reinsert.


@pytest.mark.parametrize("n_threads", [1, 2])
def test_reinsert_equals_rebuild(n_threads):
    rng = np.random.default_rng(7)
    n_items, n_tables, n_buckets = 800, 7, 32
    keys = random_keys(rng, n_items, n_tables, n_buckets)
    tables = HashTables(n_tables, n_buckets, n_items).build(keys)
    for size in (1, 50, 400, n_items):
        items = rng.choice(n_items, size=size, replace=False)
        new_keys = random_keys(rng, size, n_tables, n_buckets)
        keys[items] = new_keys
        tables.reinsert(items, new_keys, n_threads=n_threads)
        rebuilt = HashTables(n_tables, n_buckets, n_items).build(keys)
        np.testing.assert_array_equal(tables.offsets, rebuilt.offsets)
        got, expected = table_buckets(tables), table_buckets(rebuilt)
        assert [[set(b) for b in t] for t in got] == [
            [set(b) for b in t] for t in expected
        ]
    tables.reinsert(np.array([], dtype=np.int64), np.zeros((0, n_tables), np.uint32))
    np.testing.assert_array_equal(tables.offsets, rebuilt.offsets)


def test_reinsert_fifo_capacity_moved_in_are_newest():
    rng = np.random.default_rng(8)
    n_items, n_tables, n_buckets, capacity = 300, 4, 8, 12
    keys = random_keys(rng, n_items, n_tables, n_buckets)
    tables = HashTables(n_tables, n_buckets, n_items, capacity=capacity).build(keys)
    expected = ref_buckets(keys, n_buckets, capacity)
    for _ in range(4):
        items = rng.choice(n_items, size=60, replace=False)
        new_keys = random_keys(rng, 60, n_tables, n_buckets)
        tables.reinsert(items, new_keys, n_threads=2)
        moved = set(items.tolist())
        for t in range(n_tables):
            for b in range(n_buckets):
                seq = [i for i in expected[t][b] if i not in moved]
                seq += [
                    int(i) for i, k in zip(items, new_keys[:, t], strict=True) if k == b
                ]
                expected[t][b] = seq[len(seq) - min(len(seq), capacity) :]
        assert table_buckets(tables) == expected
        assert np.diff(tables.offsets, axis=1).max() <= capacity


def test_reinsert_reservoir_capacity():
    rng = np.random.default_rng(9)
    n_items, n_tables, n_buckets, capacity = 300, 4, 8, 12
    keys = random_keys(rng, n_items, n_tables, n_buckets)
    a = HashTables(n_tables, n_buckets, n_items, capacity, "reservoir", seed=1).build(
        keys
    )
    b = HashTables(n_tables, n_buckets, n_items, capacity, "reservoir", seed=1).build(
        keys
    )
    for _ in range(3):
        stored = table_buckets(a)
        items = rng.choice(n_items, size=80, replace=False)
        new_keys = random_keys(rng, 80, n_tables, n_buckets)
        keys[items] = new_keys
        a.reinsert(items, new_keys)
        b.reinsert(items, new_keys, n_threads=2)
        np.testing.assert_array_equal(a.ids, b.ids)
        moved = set(items.tolist())
        full = ref_buckets(keys, n_buckets)
        for t, table in enumerate(table_buckets(a)):
            for bucket, got in enumerate(table):
                offered = [i for i in stored[t][bucket] if i not in moved]
                offered += [
                    int(i)
                    for i, k in zip(items, new_keys[:, t], strict=True)
                    if k == bucket
                ]
                assert len(got) == min(capacity, len(offered))
                assert set(got) <= set(offered) and set(got) <= set(full[t][bucket])


def test_reinsert_checks_inputs():
    tables = HashTables(3, 8, 10).build(np.zeros((10, 3), dtype=np.uint32))
    keys = np.zeros((2, 3), dtype=np.uint32)
    with pytest.raises(ValueError, match="distinct"):
        tables.reinsert([1, 1], keys)
    with pytest.raises(ValueError, match="got 10"):
        tables.reinsert([1, 10], keys)
    with pytest.raises(ValueError, match="got -1"):
        tables.reinsert([-1, 2], keys)
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        tables.reinsert([1, 2, 3], keys)
    with pytest.raises(ValueError, match="1-D"):
        tables.reinsert([[1, 2]], keys)
    with pytest.raises(ValueError, match="got 8"):
        tables.reinsert([1, 2], keys + 8)


# ---------------------------------------------------------------------------
# Persistence.


@pytest.mark.parametrize("capacity, policy", [(None, "fifo"), (5, "reservoir")])
def test_pickle_round_trip(tmp_path, capacity, policy):
    rng = np.random.default_rng(10)
    n_items, n_tables, n_buckets = 400, 5, 16
    keys = random_keys(rng, n_items, n_tables, n_buckets)
    queries = random_keys(rng, 50, n_tables, n_buckets)
    tables = HashTables(n_tables, n_buckets, n_items, capacity, policy, seed=3).build(
        keys
    )
    expected = tables.query(queries, strategy="topk", budget=20)

    path = tmp_path / "tables.joblib"
    joblib.dump(tables, path)
    loaded = [pickle.loads(pickle.dumps(tables)), joblib.load(path, mmap_mode="r")]
    for other in loaded:
        assert repr(other) == repr(tables)
        assert other.ids.flags.writeable and other.offsets.flags.writeable
        got = other.query(queries, strategy="topk", budget=20)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])

    # Reinsert after a read-only load, in step with the original.
    items = rng.choice(n_items, size=100, replace=False)
    new_keys = random_keys(rng, 100, n_tables, n_buckets)
    tables.reinsert(items, new_keys)
    for other in loaded:
        other.reinsert(items, new_keys)
        np.testing.assert_array_equal(other.offsets, tables.offsets)
        np.testing.assert_array_equal(other.ids, tables.ids)
    # The file is untouched by the reinsert of the mmap-loaded copy.
    fresh = joblib.load(path)
    np.testing.assert_array_equal(fresh.query(queries, "topk", 20)[1], expected[1])


def test_setstate_rejects_bad_arrays():
    tables = HashTables(2, 4, 6).build(np.arange(12, dtype=np.uint32).reshape(6, 2) % 4)
    cls, args = HashTables, (2, 4, 6)
    state = {"offsets": tables.offsets, "ids": tables.ids}
    bad_offsets = state["offsets"].copy()
    bad_offsets[0, 2] = 7
    bad_ids = state["ids"].copy()
    bad_ids[1, 3] = 6
    for name, value, match in [
        ("offsets", np.zeros((2, 4), np.int32), r"offsets must be.*\(2, 5\)"),
        ("ids", np.zeros((2, 6), np.int64), "ids must be an int32 array"),
        ("offsets", bad_offsets, "not valid bucket offsets"),
        ("ids", bad_ids, "ids of table 1"),
    ]:
        with pytest.raises(ValueError, match=match):
            cls(*args).__setstate__({**state, name: value})


# ---------------------------------------------------------------------------
# Parameter and input validation.


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_tables": 0}, "n_tables must be an integer in \\[1, .*got 0"),
        ({"n_tables": 2.0}, "n_tables.*got 2.0"),
        ({"n_buckets": 0}, "n_buckets must be a power of two.*got 0"),
        ({"n_buckets": 12}, "n_buckets must be a power of two.*got 12"),
        ({"n_buckets": 2**33}, "n_buckets.*got 8589934592"),
        ({"n_items": 0}, "n_items.*got 0"),
        ({"capacity": 0}, "capacity must be an integer >= 1.*got 0"),
        ({"capacity": -3}, "capacity.*got -3"),
        ({"policy": "lru"}, "policy must be 'fifo' or 'reservoir'.*got 'lru'"),
        ({"seed": -1}, "seed.*got -1"),
    ],
)
def test_bad_parameters(kwargs, match):
    params = {"n_tables": 2, "n_buckets": 8, "n_items": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        HashTables(**params)


def test_bad_keys_and_query_parameters():
    tables = HashTables(3, 8, 5)
    good = np.zeros((5, 3), dtype=np.uint32)
    with pytest.raises(ValueError, match=r"shape \(5, 3\).*got shape \(5, 2\)"):
        tables.build(good[:, :2])
    with pytest.raises(ValueError, match=r"got shape \(4, 3\)"):
        tables.build(good[:4])
    with pytest.raises(ValueError, match=r"\[0, 8\); got 8"):
        tables.build(good + 8)
    with pytest.raises(ValueError, match="got -2"):
        tables.build(good.astype(np.int64) - 2)
    with pytest.raises(ValueError, match="integers"):
        tables.build(good.astype(np.float64))
    tables.build(good)
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        tables.query(good[0])
    with pytest.raises(ValueError, match="got 9"):
        tables.query(good + 9)
    with pytest.raises(ValueError, match="strategy must be.*got 'all'"):
        tables.query(good, strategy="all")
    with pytest.raises(ValueError, match="needs a budget"):
        tables.query(good, strategy="topk")
    with pytest.raises(ValueError, match="budget.*got 0"):
        tables.query(good, budget=0)
    with pytest.raises(ValueError, match="min_count.*got 4"):
        tables.query(good, strategy="threshold", min_count=4)
    with pytest.raises(ValueError, match="table.*got 3"):
        tables.bucket(3, 0)
    with pytest.raises(ValueError, match="key.*got 8"):
        tables.bucket(0, 8)
