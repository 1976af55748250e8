"""Block readers of svmlight and Extreme Classification Repository files."""

import gzip
import os
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

from sklearn_lsh.datasets import make_extreme_classification
from sklearn_lsh.io import (
    dump_xc_file,
    iter_svmlight_blocks,
    iter_xc_blocks,
    read_xc_header,
)


def _stack(blocks):
    Xs, ys = zip(*blocks)
    return sp.vstack(Xs, format="csr"), ys


def _assert_csr_equal(A, B):
    assert A.shape == B.shape
    assert A.dtype == B.dtype
    np.testing.assert_array_equal(A.indptr, B.indptr)
    np.testing.assert_array_equal(A.indices, B.indices)
    np.testing.assert_array_equal(A.data, B.data)


@pytest.fixture(scope="module")
def xc_data():
    X, Y = make_extreme_classification(
        700, n_features=300, n_classes=40, n_labels=3, nnz_per_row=20,
        random_state=0)
    return X, Y


# --------------------------------------------------------------- svmlight
@pytest.mark.parametrize("zero_based", [True, False])
@pytest.mark.parametrize("block_size", [1, 64, 10_000])
def test_svmlight_blocks_equal_load_svmlight_file(tmp_path, zero_based, block_size):
    X, y = make_extreme_classification(300, n_features=80, n_classes=7,
                                       nnz_per_row=10, random_state=1)
    X = X.astype(np.float64)
    X.data[X.indptr[5]:X.indptr[6]] = 0  # a row without features
    X.eliminate_zeros()
    path = tmp_path / "data.svm"
    dump_svmlight_file(X, y, str(path), zero_based=zero_based,
                       comment="made by a test")
    # Defaults (zero_based='auto', n_features from the file) on both sides.
    X_ref, y_ref = load_svmlight_file(path)
    blocks = list(iter_svmlight_blocks(path, block_size))
    assert all(b[0].shape[0] <= block_size for b in blocks)
    X_got, ys = _stack(blocks)
    _assert_csr_equal(X_got, X_ref)
    np.testing.assert_array_equal(np.concatenate(ys), y_ref)
    # Explicit settings read the file once and agree too.
    X_ref, y_ref = load_svmlight_file(path, n_features=90, zero_based=zero_based,
                                      dtype=np.float32)
    X_got, ys = _stack(iter_svmlight_blocks(
        path, block_size, n_features=90, zero_based=zero_based, dtype=np.float32))
    _assert_csr_equal(X_got, X_ref)
    np.testing.assert_array_equal(np.concatenate(ys), y_ref)


def test_svmlight_comments_blank_lines_multilabel_and_gzip(tmp_path):
    text = (b"# a comment line\n"
            b"1,3 1:0.5 4:2 # trailing comment\n"
            b"\n"
            b" 2:1\n"           # no labels
            b"2\n"              # no features
            b"   \n"
            b"0 qid:7 3:1.5\n")
    path = tmp_path / "ml.svm"
    path.write_bytes(text)
    gz = tmp_path / "ml.svm.gz"
    gz.write_bytes(gzip.compress(text))
    X_ref, y_ref = load_svmlight_file(path, multilabel=True)
    for f in (path, gz):
        X_got, ys = _stack(iter_svmlight_blocks(f, 2, multilabel=True))
        _assert_csr_equal(X_got, X_ref)
        assert [t for y in ys for t in y] == list(y_ref)


def test_svmlight_byte_ranges_cover_every_row_once(tmp_path):
    X, y = make_extreme_classification(30, n_features=50, n_classes=5,
                                       nnz_per_row=8, random_state=2)
    path = tmp_path / "r.svm"
    dump_svmlight_file(X, y, str(path), zero_based=True)
    X_ref, y_ref = load_svmlight_file(path, n_features=50)
    size = os.path.getsize(path)
    for step in (1, 37, 500, size):
        blocks = []
        for offset in range(0, size, step):
            blocks += iter_svmlight_blocks(path, 16, n_features=50, offset=offset,
                                           length=step)
        X_got, ys = _stack(blocks)
        _assert_csr_equal(X_got, X_ref.astype(X_got.dtype))
        np.testing.assert_array_equal(np.concatenate(ys), y_ref)


@pytest.mark.parametrize(
    "line, message",
    [
        (b"1 3:1 2:1\n", "sorted and unique"),
        (b"1 2:abc\n", "could not convert"),
        (b"x 2:1\n", "could not convert"),
        (b"1 2:1 7\n", ""),
        (b"1 -2:1\n", "Invalid index"),
    ],
)
def test_svmlight_bad_line_is_named(tmp_path, line, message):
    path = tmp_path / "bad.svm"
    path.write_bytes(b"1 1:1\n# comment\n0 2:1\n" + line + b"1 1:1\n")
    with pytest.raises(ValueError, match=rf"bad.svm, line 4: .*{message}"):
        list(iter_svmlight_blocks(path, 2, n_features=10, zero_based=True))


def test_svmlight_one_based_index_zero_is_an_error(tmp_path):
    path = tmp_path / "one.svm"
    path.write_bytes(b"1 1:1\n0 0:1\n")
    with pytest.raises(ValueError, match="line 2: Invalid index 0"):
        list(iter_svmlight_blocks(path, zero_based=False, n_features=3))


def test_svmlight_verbose_prints_a_line_per_block(tmp_path, capsys):
    path = tmp_path / "v.svm"
    path.write_bytes(b"".join(b"%d 1:1\n" % (i % 2) for i in range(25)))
    list(iter_svmlight_blocks(path, 10, verbose=1))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("[iter_svmlight_blocks] block 0: rows 0-9")
    assert lines[-1].startswith("[iter_svmlight_blocks] block 2: rows 20-24")
    assert "(100%)" in lines[-1]
    list(iter_svmlight_blocks(path, 10))
    assert capsys.readouterr().out == ""


# ------------------------------------------------ extreme classification
def test_xc_round_trip_and_agrees_with_load_svmlight_file(tmp_path, xc_data):
    X, Y = xc_data
    path = tmp_path / "train.txt"
    dump_xc_file(X, Y, path)
    with open(path, "rb") as f:
        assert f.readline() == b"700 300 40\n"
        # The rows are svmlight multilabel lines with zero-based indices.
        X_ref, labels = load_svmlight_file(f, multilabel=True, zero_based=True,
                                           n_features=300, dtype=np.float32)
    assert read_xc_header(path) == (700, 300, 40)
    blocks = list(iter_xc_blocks(path, 128))
    assert [b[0].shape[0] for b in blocks] == [128] * 5 + [60]
    X_got, Ys = _stack(blocks)
    _assert_csr_equal(X_got, X_ref)
    _assert_csr_equal(X_got, X)
    Y_got = sp.vstack(Ys, format="csr")
    assert Y_got.dtype == np.int32 and Y_got.shape == (700, 40)
    assert (Y_got != Y).nnz == 0
    assert [tuple(Y_got[i].indices.astype(float)) for i in range(700)] == \
        list(labels)


def test_xc_multiclass(tmp_path):
    X, y = make_extreme_classification(150, n_features=60, n_classes=9,
                                       nnz_per_row=6, random_state=3)
    path = tmp_path / "mc.txt"
    dump_xc_file(X, y, path, n_labels=9)
    assert read_xc_header(path) == (150, 60, 9)
    X_got, ys = _stack(iter_xc_blocks(path, 40, multilabel=False))
    _assert_csr_equal(X_got, X)
    y_got = np.concatenate(ys)
    assert y_got.dtype == np.int64
    np.testing.assert_array_equal(y_got, y)


def test_xc_block_by_block_writing_and_byte_ranges(tmp_path, xc_data):
    X, Y = xc_data
    path = tmp_path / "big.txt"
    with open(path, "wb") as f:
        for start in range(0, 700, 300):
            dump_xc_file(X[start:start + 300], Y[start:start + 300], f,
                         header=start == 0, n_rows=700, n_labels=40)
    X_full, Y_full = _stack(iter_xc_blocks(path))
    _assert_csr_equal(X_full, X)
    # Ranges of every size, down to one byte (on the first rows only).
    small = tmp_path / "small.txt"
    dump_xc_file(X[:15], Y[:15], small)
    for f, n, steps in [(small, 15, (1, 2, 50)), (path, 700, (999, 20_000))]:
        size = os.path.getsize(f)
        for step in (*steps, size):
            X_got, Ys = _stack(
                b for offset in range(0, size, step)
                for b in iter_xc_blocks(f, 50, offset=offset, length=step))
            _assert_csr_equal(X_got, X[:n])
            assert (sp.vstack(Ys) != Y[:n]).nnz == 0


def test_xc_edge_rows(tmp_path):
    path = tmp_path / "edge.txt"
    path.write_bytes(
        b"5 6 4\n"
        b"0,3 0:1 5:2\n"
        b" 1:0.5\n"           # no labels
        b"2\n"                # no features
        b"\n"                 # neither
        b"# a comment line is not a row\n"
        b"1 2:1 # trailing comment\n")
    (X, Y), = iter_xc_blocks(path)
    np.testing.assert_array_equal(
        X.toarray(),
        [[1, 0, 0, 0, 0, 2], [0, .5, 0, 0, 0, 0], [0] * 6, [0] * 6,
         [0, 0, 1, 0, 0, 0]])
    np.testing.assert_array_equal(
        Y.toarray(), [[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0], [0] * 4,
                      [0, 1, 0, 0]])
    # A dumped row without labels or features reads back as a row.
    dump_xc_file(sp.csr_matrix((2, 3)), sp.csr_matrix((2, 2)), tmp_path / "e.txt")
    (X, Y), = iter_xc_blocks(tmp_path / "e.txt")
    assert X.shape == (2, 3) and Y.shape == (2, 2) and X.nnz == Y.nnz == 0


@pytest.mark.parametrize(
    "body, message",
    [
        (b"0 0:1\n1 4:1 2:1\n", r"line 3: Feature indices .* sorted and unique"),
        (b"0 0:1\n9 1:1\n", r"line 3: label 9 is not an int in \[0, 4\)"),
        (b"0 0:1\n1.5 1:1\n", r"line 3: label 1.5 is not an int"),
        (b"0 0:1\n1,1 1:1\n", r"line 3: a label is repeated"),
        (b"0 0:1\n1 6:1\n", r"line 3: n_features was set to 6"),
        (b"0 0:1\n1 1:x\n", r"line 3: could not convert"),
    ],
)
def test_xc_bad_line_is_named(tmp_path, body, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"2 6 4\n" + body)
    with pytest.raises(ValueError, match="bad.txt, " + message):
        list(iter_xc_blocks(path))


def test_xc_bad_header_and_row_count(tmp_path):
    path = tmp_path / "h.txt"
    path.write_bytes(b"2 6\n0 0:1\n")
    with pytest.raises(ValueError, match="line 1: expected the header"):
        list(iter_xc_blocks(path))
    path.write_bytes(b"3 6 2\n0 0:1\n1 1:1\n")
    with pytest.raises(ValueError, match="header says 3 rows; the file has 2"):
        list(iter_xc_blocks(path))
    path.write_bytes(b"2 6 2\n0 0:1\n0,1 1:1\n")
    with pytest.raises(ValueError, match="line 3: 2 labels; multilabel=False"):
        list(iter_xc_blocks(path, multilabel=False))


def test_xc_error_in_a_byte_range_says_where(tmp_path):
    path = tmp_path / "r.txt"
    path.write_bytes(b"3 6 2\n0 0:1\n1 1:1\n1 9:1\n")
    with pytest.raises(ValueError, match="line 2 of the range starting at byte 12"):
        list(iter_xc_blocks(path, offset=8))


def test_xc_verbose(tmp_path, xc_data, capsys):
    X, Y = xc_data
    path = tmp_path / "v.txt"
    dump_xc_file(X, Y, path)
    list(iter_xc_blocks(path, 300, verbose=1))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "[iter_xc_blocks] block 0", "[iter_xc_blocks] block 1",
        "[iter_xc_blocks] block 2"]
    assert "rows 600-699" in lines[-1] and "(100%)" in lines[-1]


def test_xc_memory_is_bounded_by_the_block(tmp_path):
    # A file about 40 times a block: the peak of Python allocations while
    # streaming it stays a small multiple of one block's text, far below the
    # file's size.
    X, Y = make_extreme_classification(4000, n_features=2000, n_classes=100,
                                       n_labels=2, nnz_per_row=30, random_state=4)
    path = tmp_path / "m.txt"
    dump_xc_file(X, Y, path)
    size = os.path.getsize(path)
    tracemalloc.start()
    try:
        n = 0
        for Xb, _ in iter_xc_blocks(path, 100):
            n += Xb.shape[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 4000
    assert peak < size / 8, (peak, size)


def test_dump_xc_file_checks(tmp_path):
    with pytest.raises(ValueError, match="non-negative int labels"):
        dump_xc_file(np.eye(2), np.array([0.5, 1]), tmp_path / "x.txt")
    with pytest.raises(ValueError, match="X has 2 rows but y has 3"):
        dump_xc_file(np.eye(2), np.array([0, 1, 1]), tmp_path / "x.txt")
    with pytest.raises(ValueError, match="block_size"):
        next(iter_xc_blocks(tmp_path / "x.txt", 0))
